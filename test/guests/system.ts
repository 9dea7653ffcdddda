/**
 * Builds a whole guest configuration (kernels, devices, regions) on the fake hypervisor, the way
 * the real guest host will on the machine; tests run it, swap kernels through snapshots, and
 * read verdicts.
 */
import { MULTICALL_ENTRY_WORDS, MULTICALL_MAX_ENTRIES, PRIVILEGED_DOMAIN_ID, RING_WORDS } from '../../src/hypervisor/abi.js';
import { getConfiguration, type Configuration, type DomainKind } from '../../src/guests/configurations.js';
import { Disk, Nic, type DiskOptions, type NicOptions, type ServiceInterruption } from '../../src/guests/devices.js';
import { createKernel, type KernelOptionsByKind } from '../../src/guests/factory.js';
import type { GuestKernel, GuestVerdict } from '../../src/guests/kernel.js';
import type { NetBench } from '../../src/guests/netbench.js';
import type { PrivVm } from '../../src/guests/privvm.js';
import { KvServerLink } from '../../src/guests/kvserver.js';
import { FakeHypervisor, FakeRegion, type FakeTamper } from './fake-hypervisor.js';

export interface SystemOptions {
  readonly configuration: string;
  readonly seed: number;
  readonly runLengthNs?: number;
  readonly tamper?: FakeTamper;
  readonly pauses?: readonly ServiceInterruption[];
  readonly makeDisk?: (options: DiskOptions) => Disk;
  readonly makeNic?: (options: NicOptions) => Nic;
  /** what domctl(create) answers instead of creating a domain */
  readonly createDomainError?: number;
  /** see FakeOptions.deliverByInterrupt */
  readonly deliverByInterrupt?: 'always' | 'exceptBeforeBlock';
}

interface DomainRecord {
  readonly domainId: number;
  readonly kind: DomainKind;
  readonly cpu: number;
  readonly multicallRegion: FakeRegion;
  readonly ringRegion: FakeRegion;
}

export class TestSystem {
  readonly configuration: Configuration;
  readonly runLengthNs: number;
  readonly fake: FakeHypervisor;
  disk: Disk;
  nic: Nic | undefined;
  readonly createdDomains: number[] = [];
  private readonly records = new Map<number, DomainRecord>();
  private readonly kvServer = new KvServerLink();

  constructor(private readonly options: SystemOptions) {
    this.configuration = getConfiguration(options.configuration);
    this.runLengthNs = options.runLengthNs ?? this.configuration.runLengthNs;
    this.fake = new FakeHypervisor({
      tamper: options.tamper,
      pauses: options.pauses,
      deliverByInterrupt: options.deliverByInterrupt,
      createDomain: (cpu) => this.createDomain(cpu),
    });
    [this.disk, this.nic] = this.makeDevices();
    for (const plan of this.configuration.domains) this.records.set(plan.domainId, this.record(plan.domainId, plan.kind, plan.cpu));
    for (const record of this.records.values()) this.fake.addDomain(record.domainId, record.cpu, this.build(record), record.multicallRegion);
    this.nic?.start();
  }

  get privVm(): PrivVm {
    return this.kernel(PRIVILEGED_DOMAIN_ID) as PrivVm;
  }

  kernel(domainId: number): GuestKernel {
    return this.fake.kernel(domainId);
  }

  kernelOfKind(kind: DomainKind): GuestKernel {
    const record = [...this.records.values()].find((candidate) => candidate.kind === kind);
    if (record === undefined) throw new Error(`no ${kind} domain`);
    return this.kernel(record.domainId);
  }

  netBench(): NetBench {
    return this.kernelOfKind('netbench') as NetBench;
  }

  run(untilNs = this.runLengthNs): void {
    this.fake.run(untilNs);
  }

  verdicts(atNs = this.fake.nowNs): Record<string, GuestVerdict> {
    const verdicts: Record<string, GuestVerdict> = {};
    for (const record of this.records.values()) verdicts[`${record.domainId}:${record.kind}`] = this.kernel(record.domainId).verdict(atNs);
    return verdicts;
  }

  summaries(): Record<string, Readonly<Record<string, number>>> {
    const summaries: Record<string, Readonly<Record<string, number>>> = {};
    for (const record of this.records.values()) summaries[`${record.domainId}:${record.kind}`] = this.kernel(record.domainId).summary();
    return summaries;
  }

  /** Replaces every kernel and device by a fresh one loaded from its snapshot. */
  reloadFromSnapshots(): void {
    const kernelStates = new Map(this.fake.domainIds().map((domainId) => [domainId, structuredClone(this.kernel(domainId).saveState())]));
    const diskState = structuredClone(this.disk.saveState());
    const nicState = this.nic === undefined ? undefined : structuredClone(this.nic.saveState());
    [this.disk, this.nic] = this.makeDevices();
    this.disk.loadState(diskState);
    if (nicState !== undefined) this.nic!.loadState(nicState);
    for (const [domainId, state] of kernelStates) {
      const fresh = this.build(this.records.get(domainId)!);
      fresh.loadState(state);
      this.fake.replaceKernel(domainId, fresh);
    }
  }

  private makeDevices(): [Disk, Nic | undefined] {
    const privCpu = this.configuration.domains.find((domain) => domain.kind === 'privvm')!.cpu;
    const deviceBase = { seed: this.options.seed, platform: this.fake.platform, cpu: privCpu };
    const disk = (this.options.makeDisk ?? ((diskOptions) => new Disk(diskOptions)))(deviceBase);
    const hasNet = this.configuration.domains.some((domain) => domain.kind === 'netbench');
    const makeNic = this.options.makeNic ?? ((nicOptions) => new Nic(nicOptions));
    return [disk, hasNet ? makeNic({ ...deviceBase, runLengthNs: this.runLengthNs }) : undefined];
  }

  private record(domainId: number, kind: DomainKind, cpu: number): DomainRecord {
    return {
      domainId,
      kind,
      cpu,
      multicallRegion: new FakeRegion(MULTICALL_MAX_ENTRIES * MULTICALL_ENTRY_WORDS),
      ringRegion: new FakeRegion(RING_WORDS),
    };
  }

  private build(record: DomainRecord): GuestKernel {
    const { domainId, multicallRegion, ringRegion } = record;
    const seed = this.options.seed;
    switch (record.kind) {
      case 'privvm': {
        const privVm = createKernel('privvm', this.privVmOptions());
        for (const created of this.createdDomains) privVm.attachRing(created, this.records.get(created)!.ringRegion);
        return privVm;
      }
      case 'unixbench':
        return createKernel('unixbench', { domainId, seed, multicallRegion });
      case 'blkbench':
        return createKernel('blkbench', { domainId, seed, ringRegion });
      case 'netbench':
        return createKernel('netbench', { domainId, seed, ringRegion, nic: this.nic });
      case 'kvserver':
        return createKernel('kvserver', { domainId, seed, thread: this.kvServer.threads.length, link: this.kvServer });
    }
  }

  private privVmOptions(): KernelOptionsByKind['privvm'] {
    const appVms = this.configuration.domains.filter((domain) => domain.kind !== 'privvm');
    return {
      domainId: PRIVILEGED_DOMAIN_ID,
      seed: this.options.seed,
      rings: new Map(appVms.map((domain) => [domain.domainId, this.records.get(domain.domainId)!.ringRegion])),
      netDomainId: appVms.find((domain) => domain.kind === 'netbench')?.domainId,
      disk: this.disk,
      nic: this.nic,
      onDomainCreated: (domainId) => {
        this.createdDomains.push(domainId);
        this.privVm.attachRing(domainId, this.records.get(domainId)!.ringRegion);
      },
    };
  }

  /** The fake's domctl(create): a new BlkBench domain on `cpu`, booted right away. */
  private createDomain(cpu: number): number {
    if (this.options.createDomainError !== undefined) return this.options.createDomainError;
    const domainId = Math.max(...this.records.keys()) + 1;
    const record = this.record(domainId, this.configuration.newVm.kind, cpu);
    this.records.set(domainId, record);
    this.fake.addDomain(domainId, cpu, this.build(record), record.multicallRegion, this.fake.nowNs + 2_000);
    return domainId;
  }
}
