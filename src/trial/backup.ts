/**
 * The backup host takes over (failover). It is a second simulated host that booted its own
 * hypervisor (the same program) with its PrivVM alone, beside the primary, and has been idle
 * since. When it declares the primary failed it restores the last committed checkpoint as
 * Remus's and NiLiCon's restore does:
 *
 * 1. the guest memory pages the AppVMs share with the PrivVM (their rings and multicall
 *    buffers) are written from the checkpoint;
 * 2. its PrivVM takes over the I/O service of the checkpointed one on the mirrored disk, and
 *    the outside world's traffic moves to its NIC;
 * 3. its toolstack creates each AppVM's domain through its hypervisor's domctl(create), in
 *    simulated code: a domain and vCPU taken from the pool, published, placed on its CPU and
 *    woken. When the call returns to the toolstack, before the new vCPU first runs, the
 *    toolstack loads the domain's checkpointed state into it: page table, frame use counts,
 *    pending event channels, one-shot timer, the vCPU's context (resume token, return value, a
 *    hypercall in flight to be executed again) and the guest's memory (its kernel state).
 *
 * A vCPU that runs before its state is loaded has no guest to enter: the backup's hypervisor
 * detects a VM entry failure, and the takeover fails as a broken backup path would.
 */
import { FRAMES_PER_DOMAIN, PAGE_TABLE_SLOTS, PRIVILEGED_DOMAIN_ID, firstFrameOf } from '../hypervisor/abi.js';
import { describeDetection } from '../hypervisor/detection.js';
import { Domain, FrameDescriptor, MULTICALL_BUFFER_WORDS, RING_WORDS, Timer, Vcpu, perCpuAddress } from '../hypervisor/layout.js';
import { insertTimer, rawWords } from '../hypervisor/lists.js';
import type { HeapLayout } from '../hypervisor/boot.js';
import type { SavedVcpu } from '../guests/host.js';
import type { Configuration } from '../guests/configurations.js';
import type { RestoredState } from '../recovery/failover.js';
import { PAGE_WORDS } from '../replication/checkpoint.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';

/** How long the toolstack waits for one domctl(create) to return before giving up. */
const CREATE_TIMEOUT_NS = 10_000_000;

export type Takeover =
  | { readonly kind: 'resumed'; readonly backup: System; readonly resumeNs: number; readonly domainsCreated: number }
  | { readonly kind: 'failed'; readonly backup: System; readonly detail: string };

/** Tests look at (or break) the backup as the restore starts. */
export interface TakeoverObserver {
  readonly beforeRestore?: (backup: System) => void;
}

/**
 * The backup host of a system built with `options`: booted at time 0 and idle until
 * `restoreNs`, when it restores `checkpoint` (taken at `takenNs` on the primary).
 */
export function takeOver(options: SystemOptions, checkpoint: SystemSnapshot, takenNs: number, restoreNs: number, observer: TakeoverObserver = {}): Takeover {
  const backup = new System(options, 'backup');
  backup.hypervisor.start();
  const idle = backup.hypervisor.run({ untilNs: restoreNs });
  if (idle.kind === 'detected') return { kind: 'failed', backup, detail: `the backup's hypervisor, idle: ${describeDetection(idle.detection)}` };
  observer.beforeRestore?.(backup);
  if (checkpoint.createdDomains.length > 0) return { kind: 'failed', backup, detail: 'the checkpoint holds domains created after boot, which the toolstack cannot name' };
  const appVms = backup.configuration.domains.filter((domain) => domain.domainId !== PRIVILEGED_DOMAIN_ID).sort((x, y) => x.domainId - y.domainId);
  for (const domain of appVms) loadSharedPages(backup, checkpoint, domain.domainId);
  backup.privVm().takeOverService(checkpoint.host.kernels[PRIVILEGED_DOMAIN_ID]);
  backup.disk.loadState(checkpoint.disk);
  backup.disk.raisePendingInterrupts(backup.machine.nowNs);
  backup.nic.loadState(checkpoint.nic);
  backup.nic.takeOverTraffic(backup.machine.nowNs);
  for (const domain of appVms) {
    const created = createDomain(backup, checkpoint, takenNs, domain.domainId, domain.cpu);
    if (created !== undefined) return { kind: 'failed', backup, detail: created };
  }
  backup.adoptCreatedDomain = undefined;
  return { kind: 'resumed', backup, resumeNs: backup.machine.nowNs, domainsCreated: appVms.length };
}

/**
 * The toolstack's domctl(create) for the checkpoint's domain `domainId` on `cpu`, and the
 * checkpointed state loaded when it returns. Returns why it failed, or undefined.
 */
function createDomain(backup: System, checkpoint: SystemSnapshot, takenNs: number, domainId: number, cpu: number): string | undefined {
  let returned: number | undefined;
  backup.adoptCreatedDomain = (createdId) => {
    returned = createdId;
    if (createdId === domainId) loadDomainState(backup, checkpoint, takenNs, domainId);
  };
  backup.privVm().requestCreateDomain(cpu);
  const deadlineNs = backup.machine.nowNs + CREATE_TIMEOUT_NS;
  while (returned === undefined && backup.machine.nowNs < deadlineNs) {
    const stop = backup.hypervisor.run({ untilNs: Math.min(deadlineNs, backup.machine.nowNs + 100_000) });
    if (stop.kind === 'detected') return `restoring domain ${domainId}: ${describeDetection(stop.detection)}`;
  }
  if (returned === undefined) return `domctl(create) for domain ${domainId} did not return within ${CREATE_TIMEOUT_NS / 1_000_000} ms`;
  if (returned !== domainId) return `domctl(create) gave domain ${returned}, the checkpoint's is ${domainId}`;
  return undefined;
}

/** The pages domain `domainId` shares with the PrivVM: its ring and its multicall buffer. */
function loadSharedPages(backup: System, checkpoint: SystemSnapshot, domainId: number): void {
  for (const [base, count] of sharedPages(backup.hypervisor.layout, domainId)) copyWords(backup, checkpoint, base, count);
}

function sharedPages(layout: HeapLayout, domainId: number): WordRange[] {
  return [
    [layout.rings[domainId], RING_WORDS],
    [layout.multicallBuffers[domainId], MULTICALL_BUFFER_WORDS],
  ];
}

/** A run of hypervisor memory words: base and count. */
export type WordRange = readonly [number, number];

/** Everything of domain `domainId` in hypervisor memory a checkpoint carries to the backup, as word ranges. */
export function domainStateRanges(layout: HeapLayout, domainId: number): WordRange[] {
  return [...sharedPages(layout, domainId), ...hypervisorSide(layout, domainId)];
}

/** What the hypervisor keeps of domain `domainId` beside the pool's structures: loaded once domctl has made it. */
function hypervisorSide(layout: HeapLayout, domainId: number): WordRange[] {
  const domain = layout.domains[domainId];
  const vcpu = layout.vcpus[domainId];
  const vcpuField = (field: keyof typeof Vcpu.offset): WordRange => [vcpu + Vcpu.offset[field], 1];
  return [
    [domain + Domain.offset.pageTable, PAGE_TABLE_SLOTS],
    [domain + Domain.offset.pendingEvents, 1],
    [layout.frameTable + firstFrameOf(domainId) * FrameDescriptor.sizeWords, FRAMES_PER_DOMAIN * FrameDescriptor.sizeWords],
    vcpuField('resumeToken'),
    vcpuField('returnValue'),
    vcpuField('hypercallNumber'),
    [vcpu + Vcpu.offset.hypercallArguments, Vcpu.offset.hypercallInProgress - Vcpu.offset.hypercallArguments],
    vcpuField('runtimeUs'),
  ];
}

/**
 * Domain `domainId` was just created from the pool (page table cleared, vCPU reset and woken):
 * load its checkpointed state before its vCPU first runs.
 */
function loadDomainState(backup: System, checkpoint: SystemSnapshot, takenNs: number, domainId: number): void {
  const words = backup.machine.memory.words;
  const saved = checkpoint.machine.words;
  const vcpu = backup.hypervisor.layout.vcpus[domainId];
  // its shared pages were loaded before the PrivVM took over: the PrivVM has used them since
  for (const [base, count] of hypervisorSide(backup.hypervisor.layout, domainId)) copyWords(backup, checkpoint, base, count);
  // a hypercall the pause caught inside the primary's hypervisor is executed again by the guest,
  // as Xen rewinds a guest onto a hypercall it preempted
  words[vcpu + Vcpu.offset.restartHypercall] = saved[vcpu + Vcpu.offset.hypercallInProgress] !== 0 || saved[vcpu + Vcpu.offset.restartHypercall] !== 0 ? 1 : 0;
  armSavedTimer(backup, checkpoint, vcpu);
  const guest = checkpoint.host.vcpus[domainId];
  if (guest === null || guest === undefined) throw new Error(`the checkpoint has no vCPU context for domain ${domainId}`);
  backup.attachSavedGuest(domainId, checkpoint.host.kernels[domainId], guest as SavedVcpu, takenNs);
  backup.privVm().notifyReconnected(domainId);
}

/** The vCPU's one-shot timer, if it was armed in the checkpoint: armed again at its expiry (at once if that has passed). */
function armSavedTimer(backup: System, checkpoint: SystemSnapshot, vcpu: number): void {
  const timer = vcpu + Vcpu.offset.timer;
  const words = backup.machine.memory.words;
  if (checkpoint.machine.words[timer + Timer.offset.active] === 0 || words[timer + Timer.offset.active] !== 0) return;
  words[timer + Timer.offset.expiresUs] = checkpoint.machine.words[timer + Timer.offset.expiresUs];
  insertTimer(rawWords(words), perCpuAddress(words[timer + Timer.offset.cpu]), timer);
}

/**
 * What a takeover restores from `checkpoint`, for the cost model: the AppVMs' domains, the
 * hypervisor memory pages their state occupies, and the guest state (each AppVM's memory and
 * vCPU context, the PrivVM's I/O service).
 */
export function restoredState(layout: HeapLayout, configuration: Configuration, checkpoint: SystemSnapshot): RestoredState {
  const appVms = configuration.domains.map((domain) => domain.domainId).filter((id) => id !== PRIVILEGED_DOMAIN_ID);
  const words = appVms.flatMap((id) => domainStateRanges(layout, id)).reduce((sum, [, count]) => sum + count, 0);
  const guests = [...appVms.map((id) => [checkpoint.host.kernels[id], checkpoint.host.vcpus[id]]), checkpoint.host.kernels[PRIVILEGED_DOMAIN_ID]];
  return { domains: appVms.length, pages: Math.ceil(words / PAGE_WORDS), guestBytes: JSON.stringify(guests).length };
}

function copyWords(backup: System, checkpoint: SystemSnapshot, base: number, count: number): void {
  backup.machine.memory.words.set(checkpoint.machine.words.subarray(base, base + count), base);
}
