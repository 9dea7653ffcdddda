/**
 * A whole simulated system for one configuration and seed: the machine with the booted
 * hypervisor, the guest host with every kernel attached, and the platform's devices.
 * This is the one place that wires the layers together.
 */
import { CpuMode } from '../machine/cpu.js';
import { Fingerprint, addCpuState } from '../machine/digest.js';
import type { MachineSnapshot } from '../machine/machine.js';
import { samePageKeys, sameWords } from '../machine/state-equality.js';
import { MAX_DOMAINS, PRIVILEGED_DOMAIN_ID } from '../hypervisor/abi.js';
import { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Detection } from '../hypervisor/detection.js';
import { MULTICALL_BUFFER_WORDS, RING_WORDS } from '../hypervisor/layout.js';
import { getConfiguration, type Configuration, type DomainKind, type DomainPlan } from '../guests/configurations.js';
import { Disk, Nic, type DevicePlatform, type DiskState, type NicState } from '../guests/devices.js';
import { createKernel } from '../guests/factory.js';
import { GuestHost, type GuestHostState, type SavedVcpu } from '../guests/host.js';
import type { GuestKernel, SharedRegion } from '../guests/kernel.js';
import type { NetBench } from '../guests/netbench.js';
import type { PrivVm } from '../guests/privvm.js';
import { KvServerLink, type KvServerOptions } from '../guests/kvserver.js';

export interface SystemOptions {
  readonly configuration: string;
  readonly seed: number;
  /** simulated run length; the configuration's default when absent */
  readonly runLengthNs?: number;
  /** NetBench counts losses inside service interruptions too */
  readonly strictNetBench?: boolean;
  /** the key-value server's race rate and load imbalance (configuration 3AppVM-mt) */
  readonly kvServer?: KvServerOptions;
  /** the hypervisor enforces its intended-sharing policy with protection keys (PUSh) */
  readonly protectionKeys?: boolean;
}

/**
 * Which host a system is: the primary boots every domain of its configuration; a backup host
 * (failover) boots its hypervisor with the PrivVM alone, and its toolstack creates the AppVMs'
 * domains when it takes over (trial/backup.ts).
 */
export type HostRole = 'primary' | 'backup';

export interface SystemSnapshot {
  readonly machine: MachineSnapshot;
  readonly host: GuestHostState;
  readonly disk: DiskState;
  readonly nic: NicState;
  readonly createdDomains: readonly number[];
  /** the detection the hypervisor is stopped at (recovery has not resumed it yet), or null */
  readonly stoppedAt: Detection | null;
}

/** The simulated run length of a system built with `options`. */
export function runLengthOf(options: SystemOptions): number {
  return options.runLengthNs ?? getConfiguration(options.configuration).runLengthNs;
}

/** A guest's view of one shared page in hypervisor memory. */
class MemoryRegion implements SharedRegion {
  constructor(
    private readonly words: Int32Array,
    private readonly base: number,
    readonly sizeWords: number,
  ) {}

  read(offset: number): number {
    this.check(offset);
    return this.words[this.base + offset];
  }

  write(offset: number, value: number): void {
    this.check(offset);
    this.words[this.base + offset] = value;
  }

  private check(offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.sizeWords) {
      throw new RangeError(`shared page offset ${offset} outside 0..${this.sizeWords - 1}`);
    }
  }
}

export class System {
  readonly configuration: Configuration;
  readonly seed: number;
  readonly runLengthNs: number;
  readonly hypervisor: Hypervisor;
  readonly host: GuestHost;
  readonly disk: Disk;
  readonly nic: Nic;
  private createdDomains: number[] = [];
  /** the key-value server's threads and its link to a replicator (3AppVM-mt) */
  readonly kvServer: KvServerLink;
  /**
   * On a backup host: what its toolstack does when domctl(create) returns a domain id, in place
   * of attaching a new VM (trial/backup.ts loads the checkpointed domain's state there).
   */
  adoptCreatedDomain: ((domainId: number) => void) | undefined;

  constructor(
    private readonly options: SystemOptions,
    readonly role: HostRole = 'primary',
  ) {
    this.configuration = getConfiguration(options.configuration);
    this.kvServer = new KvServerLink(options.kvServer);
    this.seed = options.seed;
    this.runLengthNs = runLengthOf(options);
    const { cpuCount } = this.configuration;
    const domains = role === 'primary' ? this.configuration.domains : this.configuration.domains.filter((domain) => domain.domainId === PRIVILEGED_DOMAIN_ID);
    this.host = new GuestHost(cpuCount);
    this.hypervisor = new Hypervisor({ cpuCount, domains, ...(options.protectionKeys === true ? { protectionKeys: true } : {}) }, this.host);
    const machine = this.hypervisor.machine;
    const platform: DevicePlatform = { raiseInterrupt: (timeNs, cpu, vector) => machine.raiseInterrupt(timeNs, cpu, vector) };
    const privCpu = domains.find((domain) => domain.domainId === PRIVILEGED_DOMAIN_ID)?.cpu ?? 0;
    this.disk = new Disk({ seed: this.seed, platform, cpu: privCpu });
    this.nic = new Nic({ seed: this.seed, platform, cpu: privCpu, runLengthNs: this.runLengthNs });
    for (const domain of domains) this.host.attach(domain.domainId, this.buildKernel(domain.kind, domain.domainId, options));
    this.host.provisioner = (vcpuId) => this.provisionNewVm(vcpuId, options);
  }

  get machine(): Hypervisor['machine'] {
    return this.hypervisor.machine;
  }

  /** Release the CPUs and the devices. */
  start(): void {
    this.hypervisor.start();
    if (this.netBenchPlan() !== undefined) this.nic.start();
  }

  kernels(): GuestKernel[] {
    return this.host.attachedKernels();
  }

  privVm(): PrivVm {
    return this.host.kernel(PRIVILEGED_DOMAIN_ID) as PrivVm;
  }

  netBench(): NetBench | undefined {
    const plan = this.netBenchPlan();
    return plan === undefined ? undefined : (this.host.kernel(plan.domainId) as NetBench);
  }

  /** Domains created since boot (by the PrivVM's toolstack), in order. */
  createdDomainIds(): readonly number[] {
    return this.createdDomains;
  }

  /** Ask the PrivVM's toolstack to create the configuration's new VM. */
  requestNewVm(): void {
    this.privVm().requestCreateDomain(this.configuration.newVm.cpu);
  }

  /** True when every CPU is in a guest or asleep: no hypervisor thread is in flight. */
  isQuiescent(): boolean {
    return this.machine.cpus.every((cpu) => cpu.mode === CpuMode.Guest || cpu.mode === CpuMode.Halted);
  }

  snapshot(): SystemSnapshot {
    return {
      machine: this.machine.snapshot(),
      host: this.host.saveState(),
      disk: this.disk.saveState(),
      nic: this.nic.saveState(),
      createdDomains: this.createdDomains.slice(),
      stoppedAt: this.hypervisor.stoppedDetection() ?? null,
    };
  }

  restore(snapshot: SystemSnapshot): void {
    if (snapshot.createdDomains.length !== this.createdDomains.length) {
      throw new Error('cannot restore a snapshot taken with a different set of created domains');
    }
    this.machine.restore(snapshot.machine);
    this.host.loadState(snapshot.host);
    this.disk.loadState(snapshot.disk);
    this.nic.loadState(snapshot.nic);
    this.hypervisor.restoreStop(snapshot.stoppedAt ?? undefined);
  }

  /** A fingerprint of the whole system: hypervisor memory, CPU state, guest and device state. */
  digest(): string {
    const fingerprint = new Fingerprint().addWords(this.machine.memory.words);
    // the pages' protection keys, on a machine that has them (the others' digests stay as they were)
    if (this.machine.protectionKeys) fingerprint.addWords(this.machine.memory.pageKeys);
    return fingerprint.addString(this.stateBesidesMemory()).hex();
  }

  /**
   * Everything digest() covers except hypervisor memory, as text that is compared as it is: the
   * CPUs by fingerprint, guest and device state as JSON (hashing it cost more than making it).
   */
  stateBesidesMemory(): string {
    return `${this.cpusDigest()} ${this.guestsAndDevices()}`;
  }

  /**
   * True when the system is in the state `snapshot` was taken in, given stateBesidesMemory() of
   * that state: what comparing digests tells, but memory is compared word for word, which costs
   * far less than hashing it and stops at the first difference. The CPUs, first in the text,
   * nearly always tell a different state apart, so they are checked before the rest is written.
   */
  isInStateOf(snapshot: SystemSnapshot, stateBesidesMemory: string): boolean {
    const cpus = `${this.cpusDigest()} `;
    return (
      stateBesidesMemory.startsWith(cpus) &&
      stateBesidesMemory.slice(cpus.length) === this.guestsAndDevices() &&
      sameWords(this.machine.memory.words, snapshot.machine.words) &&
      samePageKeys(this.machine.memory.pageKeys, snapshot.machine.pageKeys)
    );
  }

  private guestsAndDevices(): string {
    return `${JSON.stringify(this.host.saveState())} ${JSON.stringify(this.disk.saveState())} ${this.nic.fingerprint()}`;
  }

  private cpusDigest(): string {
    const fingerprint = new Fingerprint();
    for (const cpu of this.machine.cpus) addCpuState(fingerprint, cpu);
    return fingerprint.hex();
  }

  private buildKernel(kind: DomainKind, domainId: number, options: SystemOptions): GuestKernel {
    const layout = this.hypervisor.layout;
    const words = this.machine.memory.words;
    const ring = new MemoryRegion(words, layout.rings[domainId], RING_WORDS);
    const kernelSeed = this.seed;
    switch (kind) {
      case 'privvm':
        return createKernel('privvm', {
          domainId,
          seed: kernelSeed,
          rings: this.appVmRings(),
          netDomainId: this.netBenchPlan()?.domainId,
          disk: this.disk,
          nic: this.netBenchPlan() === undefined ? undefined : this.nic,
          onDomainCreated: (created) => this.attachNewVm(created, options),
        });
      case 'unixbench':
        return createKernel('unixbench', {
          domainId,
          seed: kernelSeed,
          multicallRegion: new MemoryRegion(words, layout.multicallBuffers[domainId], MULTICALL_BUFFER_WORDS),
        });
      case 'blkbench':
        return createKernel('blkbench', { domainId, seed: kernelSeed, ringRegion: ring });
      case 'netbench':
        return createKernel('netbench', { domainId, seed: kernelSeed, ringRegion: ring, nic: this.nic, strict: options.strictNetBench });
      case 'kvserver':
        return createKernel('kvserver', { domainId, seed: kernelSeed, thread: this.kvServer.threads.length, link: this.kvServer });
    }
  }

  private netBenchPlan(): DomainPlan | undefined {
    return this.configuration.domains.find((domain) => domain.kind === 'netbench');
  }

  private appVmRings(): Map<number, SharedRegion> {
    const rings = new Map<number, SharedRegion>();
    for (let domainId = 1; domainId < MAX_DOMAINS; domainId++) {
      rings.set(domainId, new MemoryRegion(this.machine.memory.words, this.hypervisor.layout.rings[domainId], RING_WORDS));
    }
    return rings;
  }

  /**
   * Attach the guest of configured domain `domainId` with its saved kernel state and vCPU (a
   * backup host taking over a checkpointed VM).
   */
  attachSavedGuest(domainId: number, kernel: unknown, vcpu: SavedVcpu, savedAtNs: number): void {
    const plan = this.configuration.domains.find((domain) => domain.domainId === domainId);
    if (plan === undefined) throw new Error(`domain ${domainId} is not one of ${this.configuration.name}'s`);
    const guest = this.buildKernel(plan.kind, domainId, this.options);
    guest.loadState(kernel);
    this.host.attachSaved(domainId, guest, vcpu, savedAtNs);
  }

  /** The toolstack's domctl(create) returned: make sure the new domain has its guest. */
  private attachNewVm(domainId: number, options: SystemOptions): void {
    if (this.adoptCreatedDomain !== undefined) return this.adoptCreatedDomain(domainId);
    if (this.host.kernel(domainId) !== undefined) return;
    const kernel = this.provisionNewVm(domainId, options);
    if (kernel !== undefined) this.host.attach(domainId, kernel);
  }

  /** The new VM's guest, for a domain the toolstack is creating; undefined for anything else. */
  private provisionNewVm(domainId: number, options: SystemOptions): GuestKernel | undefined {
    const configured = this.configuration.domains.some((domain) => domain.domainId === domainId);
    if (!this.privVm().isCreatingDomain() || configured || domainId <= 0 || domainId >= MAX_DOMAINS) return undefined;
    if (this.createdDomains.includes(domainId)) return undefined;
    this.createdDomains.push(domainId);
    return this.buildKernel(this.configuration.newVm.kind, domainId, options);
  }
}
