/**
 * A trial under failover (Remus/NiLiCon). The primary runs the trial as any trial does, and a
 * replicator watches it: at the end of every epoch it captures what changed (the pause and the
 * transfer are priced from that state), and the backup holds the checkpoint once the transfer
 * is through. The primary's pause is a freeze of the VMs, so it stretches wall-clock time without
 * changing what the VMs compute: the simulated run is the same run, and the pause is accounted
 * as overhead and as output delay (outputs wait for their epoch's commit).
 *
 * When the primary fails (a detector of its hypervisor fires, or its heartbeats stop) the backup
 * host, a second simulated host that booted the same hypervisor with its PrivVM alone, takes the
 * last checkpoint it holds and restores it through its own toolstack (trial/backup.ts): each
 * AppVM's domain is created by domctl in the backup's machine, and the VMs' checkpointed state
 * is loaded into it; in 3AppVM the new-VM check then runs there. What the checkpoint carried
 * decides the outcome: a corruption that reached a VM before the checkpoint was taken comes back
 * with it (cause corruptionReplicated); the primary's hypervisor state does not travel.
 *
 * The VMs resume on the backup at its clock, so they lose the time from the checkpoint to the
 * takeover (a service interruption, as after any recovery).
 *
 * What replication costs when nothing fails is measured on the golden run with the epoch
 * pauses taken from the AppVMs (the guest host holds their vCPUs for each stop time): the guest
 * work lost and the output delay are measured against the run without replication. Modelling
 * limit: in fault trials the primary's pauses are priced (commit times, output delay) but not
 * taken from its guests, so that a trial's primary follows the golden run it is compared with.
 */
import type { FaultPlan, Injection } from '../faults/fault.js';
import { CpuMode } from '../machine/cpu.js';
import { sameWords } from '../machine/state-equality.js';
import { trialSeed } from '../faults/random.js';
import type { Detection } from '../hypervisor/detection.js';
import { PRIVILEGED_DOMAIN_ID } from '../hypervisor/abi.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import type { HeapLayout } from '../hypervisor/boot.js';
import { getConfiguration } from '../guests/configurations.js';
import { failoverCosts, pauseMs, restoreMs } from '../recovery/failover.js';
import { changedGuestBytes, changedPages, checkpointBytes, type CapturedState } from '../replication/checkpoint.js';
import { HeartbeatMonitor, MISSED_HEARTBEATS } from '../replication/heartbeat.js';
import { DEFAULT_LINK, transferMs, type Link } from '../replication/link.js';
import { percentile, releaseTimeNs, type EpochCommit } from '../replication/output-commit.js';
import { RunawayBudget } from './budget.js';
import { classify, commonFields } from './classify.js';
import { runToTrigger } from './fast-forward.js';
import { settle } from './golden.js';
import { checkpointBefore, goldenRun, type GoldenRun } from './golden-cache.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { RecoveryRecord, TrialRecord, TrialSpec } from './record.js';
import { failedAppVms, firstCause, runLiveness } from './recover-and-run.js';
import { instructionBudget, type Ending } from './run-to-detection.js';
import { domainStateRanges, restoredState, takeOver } from './backup.js';
import { systemOptionsOf } from './spec-system.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';

export interface ReplicationOptions {
  readonly epochMs: number;
  readonly heartbeatMs: number;
  readonly link: Link;
}

export const DEFAULT_REPLICATION: ReplicationOptions = { epochMs: 30, heartbeatMs: 30, link: DEFAULT_LINK };

/** One epoch's checkpoint as the replicator took it. */
export interface EpochCheckpoint extends EpochCommit {
  readonly captured: CapturedState;
  readonly pauseMs: number;
  readonly bytes: number;
  readonly snapshot: SystemSnapshot;
}

/** Checkpoints kept for failover: enough to cover commits still in flight at a failure. */
const KEPT_CHECKPOINTS = 8;

/** Watches the primary and takes its checkpoints at epoch ends. */
export class Replicator {
  private previousWords: Int32Array | undefined;
  private previousGuests: string[] = [];
  readonly commits: EpochCommit[] = [];
  readonly pauses: number[] = [];
  readonly bytes: number[] = [];
  private kept: EpochCheckpoint[] = [];

  constructor(
    private readonly system: System,
    readonly options: ReplicationOptions,
    private readonly keepSnapshots: boolean,
  ) {}

  get epochNs(): number {
    return Math.round(this.options.epochMs * 1_000_000);
  }

  /** The first epoch end after `timeNs`. */
  nextEpochEndNs(timeNs: number): number {
    return (Math.floor(timeNs / this.epochNs) + 1) * this.epochNs;
  }

  /** The baseline the first checkpoint is measured against (the state at the previous epoch end). */
  baseline(): void {
    this.previousWords = this.system.machine.memory.words.slice();
    this.previousGuests = this.appVmStates();
  }

  /** An epoch ends now: capture what changed, price the pause and the transfer, note the commit. */
  epochEnd(): EpochCheckpoint {
    const words = this.system.machine.memory.words;
    const guests = this.appVmStates();
    const appVms = this.appVmIds().length;
    const captured: CapturedState = {
      hypervisorPages: this.previousWords === undefined ? 0 : changedPages(this.previousWords, words),
      guestBytes: changedGuestBytes(this.previousGuests, guests),
      vcpus: appVms,
      rings: appVms,
    };
    this.previousWords = words.slice();
    this.previousGuests = guests;
    const paused = pauseMs(captured);
    const bytes = checkpointBytes(captured);
    const takenNs = this.system.machine.nowNs;
    const committedNs = takenNs + Math.round((paused + transferMs(this.options.link, bytes) + this.options.link.latencyMs) * 1_000_000);
    const checkpoint = { takenNs, committedNs, captured, pauseMs: paused, bytes, snapshot: this.keepSnapshots ? this.system.snapshot() : (undefined as unknown as SystemSnapshot) };
    this.commits.push({ takenNs, committedNs });
    this.pauses.push(paused);
    this.bytes.push(bytes);
    if (this.keepSnapshots) this.kept = [...this.kept.slice(1 - KEPT_CHECKPOINTS), checkpoint];
    return checkpoint;
  }

  /** The latest checkpoint the backup holds whole by `timeNs`. */
  committedBy(timeNs: number): EpochCheckpoint | undefined {
    return this.kept.filter((checkpoint) => checkpoint.committedNs <= timeNs).at(-1);
  }

  private appVmIds(): number[] {
    return this.system.configuration.domains.map((domain) => domain.domainId).filter((id) => id !== PRIVILEGED_DOMAIN_ID);
  }

  /** Each AppVM's guest state and vCPU, as text (what a checkpoint of it would send). */
  private appVmStates(): string[] {
    const state = this.system.host.saveState();
    return this.appVmIds().map((id) => JSON.stringify([state.kernels[id], state.vcpus[id]]));
  }
}

/** How the primary's run under replication ended. */
export type PrimaryEnding = { readonly kind: 'failed'; readonly detection: Detection; readonly lastAliveNs: number } | { readonly kind: 'ended'; readonly ending: Ending };

/** One trial of `spec` (mechanism failover). */
export function runFailoverTrial(spec: TrialSpec, options: ReplicationOptions = replicationOf(spec)): TrialRecord {
  const systemOptions = systemOptionsOf(spec);
  const golden = goldenRun(systemOptions);
  const seedOfTrial = trialSeed(spec.seed, spec.trialIndex);
  const plans = faultPlansOf(spec, seedOfTrial, golden.runLengthNs);
  const common = commonFields(spec, seedOfTrial, plans[0]);
  const system = new System(systemOptions);
  const replicator = new Replicator(system, options, true);
  startBefore(system, golden, replicator, plans[0]);
  const trigger = runToTrigger(system, plans[0]);
  if (trigger.kind !== 'landed') return { ...common, outcome: 'notInjected' };
  const injected = injectFaults(system, plans, trigger.cpu, new AddressNamer(system.hypervisor.program, system.hypervisor.layout), (timeNs) => runEpochs(system, replicator, timeNs));
  const primary = runPrimary(system, golden, replicator, injected.detection, injected.last.instructionCount);
  if (primary.kind === 'ended') return classify(system, primary.ending, injected.first, common, undefined);
  injected.restoreTransient();
  const recovery = failOver(systemOptions, golden, replicator, injected.first, primary);
  return classify(system, { kind: 'detected', detection: primary.detection }, injected.first, common, recovery);
}

/** Run to `untilNs` through the epoch ends on the way, taking their checkpoints; a detection stops it. */
function runEpochs(system: System, replicator: Replicator, untilNs: number): Detection | undefined {
  for (let endNs = replicator.nextEpochEndNs(system.machine.nowNs); endNs <= untilNs; endNs += replicator.epochNs) {
    const stop = system.hypervisor.run({ untilNs: endNs });
    if (stop.kind === 'detected') return stop.detection;
    if (!hostStopped(system)) replicator.epochEnd();
  }
  return undefined;
}

/**
 * Restore the golden run's checkpoint a few epochs before the trigger and run to the trigger
 * through the epoch ends, so that the backup holds the checkpoints it would hold at the fault.
 */
function startBefore(system: System, golden: GoldenRun, replicator: Replicator, plan: FaultPlan): void {
  const startNs = Math.max(0, plan.trigger.timeNs - KEPT_CHECKPOINTS * replicator.epochNs);
  system.restore(checkpointBefore(golden, startNs).snapshot);
  let first = true;
  for (let endNs = replicator.nextEpochEndNs(system.machine.nowNs); endNs <= plan.trigger.timeNs; endNs += replicator.epochNs) {
    const stop = system.hypervisor.run({ untilNs: endNs });
    if (stop.kind === 'detected') return;
    // the first epoch end is the backup's initial synchronisation: the checkpoints build on it
    if (first) replicator.baseline();
    replicator.epochEnd();
    first = false;
  }
}

/**
 * Run the primary from the injection, taking checkpoints at epoch ends and sending heartbeats,
 * until its hypervisor detects the error, the backup declares it failed, it runs away, it is
 * back in the golden run's state (unless `comparesWithGolden` is false: a primary that computes
 * differently from the golden run never is), or the run ends.
 */
export function runPrimary(system: System, golden: GoldenRun, replicator: Replicator, detected: Detection | undefined, instructionCount: number, comparesWithGolden = true): PrimaryEnding {
  const machine = system.machine;
  if (detected !== undefined) return { kind: 'failed', detection: detected, lastAliveNs: detected.timeNs };
  const heartbeatNs = Math.round(replicator.options.heartbeatMs * 1_000_000);
  const monitor = new HeartbeatMonitor(heartbeatNs, replicator.options.link, machine.nowNs);
  const budget = new RunawayBudget(system.hypervisor, instructionCount + instructionBudget(golden));
  let nextEpochNs = replicator.nextEpochEndNs(machine.nowNs);
  let nextHeartbeatNs = (Math.floor(machine.nowNs / heartbeatNs) + 1) * heartbeatNs;
  let retired = machine.hypervisorInstructions;
  let lastAliveNs = machine.nowNs;
  const checkpoints = comparesWithGolden ? golden.checkpoints.filter((checkpoint) => checkpoint.timeNs > machine.nowNs) : [];
  while (machine.nowNs < system.runLengthNs) {
    const goldenNs = checkpoints[0]?.timeNs ?? Infinity;
    const untilNs = Math.min(nextEpochNs, nextHeartbeatNs, goldenNs, system.runLengthNs);
    const stop = budget.run(untilNs);
    if (stop === 'runaway') return { kind: 'ended', ending: { kind: 'runaway', cause: budget.runawayCause } };
    if (stop.kind === 'detected') return { kind: 'failed', detection: stop.detection, lastAliveNs: stop.detection.timeNs };
    if (untilNs === nextHeartbeatNs) {
      const ran = machine.hypervisorInstructions > retired;
      retired = machine.hypervisorInstructions;
      if (ran) lastAliveNs = untilNs;
      monitor.tick(untilNs, ran);
      nextHeartbeatNs += heartbeatNs;
      if (monitor.hasDeclared(untilNs)) return { kind: 'failed', detection: heartbeatDetection(monitor.declaredAtNs()), lastAliveNs };
    }
    if (untilNs === nextEpochNs) {
      if (!hostStopped(system)) replicator.epochEnd();
      nextEpochNs += replicator.epochNs;
    }
    if (untilNs === goldenNs) {
      const checkpoint = checkpoints.shift();
      if (checkpoint !== undefined && system.isInStateOf(checkpoint.snapshot, checkpoint.stateBesidesMemory)) return { kind: 'ended', ending: { kind: 'matchedGolden', timeNs: checkpoint.timeNs } };
    }
  }
  const detection = settle(system, budget.bounds());
  return detection === undefined ? { kind: 'ended', ending: { kind: 'endOfRun' } } : { kind: 'failed', detection, lastAliveNs: detection.timeNs };
}

/** A host whose every CPU has stopped sends no checkpoint (nor heartbeat). */
function hostStopped(system: System): boolean {
  return system.machine.cpus.every((cpu) => cpu.mode === CpuMode.Stopped);
}

function heartbeatDetection(timeNs: number): Detection {
  return { detector: 'heartbeat', missed: MISSED_HEARTBEATS, cpu: -1, programCounter: 0, timeNs };
}

/**
 * The backup takes over: the latest checkpoint it holds whole when the primary stopped sending,
 * restored on its own host, the VMs resumed there, the new-VM check where the configuration has
 * one, and the same judgement as any recovery.
 */
function failOver(options: SystemOptions, golden: GoldenRun, replicator: Replicator, injection: Injection, primary: Extract<PrimaryEnding, { kind: 'failed' }>): RecoveryRecord {
  const link = replicator.options.link;
  const noticedNs = primary.detection.detector === 'heartbeat' ? primary.detection.timeNs : primary.detection.timeNs + Math.round(link.latencyMs * 1_000_000);
  const checkpoint = replicator.committedBy(primary.lastAliveNs);
  const restoring = checkpoint === undefined ? 0 : restoreMs(restoredState(layoutOf(options), getConfiguration(options.configuration), checkpoint.snapshot));
  const resumingMs = failoverCosts.resumeMs;
  const recoveryLatencyMs = restoring + resumingMs;
  const timing = { recoveryLatencyMs, serviceInterruptionMs: (noticedNs - injection.timeNs) / 1_000_000 + recoveryLatencyMs };
  const steps: RecoveryRecord['steps'] = [
    { step: 'detect', work: { detectedAtMs: (noticedNs - injection.timeNs) / 1_000_000 }, ms: 0 },
    { step: 'restoreCheckpoint', work: { checkpointAtMs: (checkpoint?.takenNs ?? 0) / 1_000_000, bytes: checkpoint?.bytes ?? 0 }, ms: restoring },
    { step: 'resumeVms', work: {}, ms: resumingMs },
  ];
  if (checkpoint === undefined) return { result: 'recoveryFailed', noVmFailure: false, failedVms: [], cause: 'recoveryNeverRan', detail: 'the backup holds no checkpoint', steps, ...timing };
  // the toolstack's priced work (reading the checkpoint, building the domains' memory) comes
  // first; the domctl calls that create the domains and the loads into them run in the machine
  const takeover = takeOver(options, checkpoint.snapshot, checkpoint.takenNs, noticedNs + Math.round(restoring * 1_000_000));
  if (takeover.kind === 'failed') return { result: 'recoveryFailed', noVmFailure: false, failedVms: [], cause: 'recoveryCrashed', detail: takeover.detail, steps, ...timing };
  const backup = takeover.backup;
  // the VMs lose the time from the checkpoint to their resume on the backup
  const paused = [{ startNs: Math.min(injection.timeNs, checkpoint.takenNs), endNs: takeover.resumeNs + Math.round(resumingMs * 1_000_000) }];
  for (const kernel of backup.kernels()) kernel.setServiceInterruptions(paused);
  if (backup.configuration.createsVmAfterRecovery) backup.requestNewVm();
  const ending = runLiveness(backup, takeover.resumeNs, instructionBudget(golden));
  const failedVms = failedAppVms(backup);
  const cause = firstCause(backup, ending, failedVms);
  if (cause === undefined) return { result: 'recovered', noVmFailure: failedVms.length === 0, failedVms, cause: null, detail: null, steps, ...timing };
  const replicated = checkpoint.takenNs > injection.timeNs && differsFromGolden(checkpoint, options, golden);
  const failure = replicated ? { cause: 'corruptionReplicated' as const, detail: `checkpoint at ${checkpoint.takenNs} ns (after the fault) held a state the golden run does not have; then ${cause.cause}: ${cause.detail}` } : cause;
  return { result: 'recoveryFailed', noVmFailure: false, failedVms, ...failure, steps, ...timing };
}

/**
 * True when a checkpoint holds a VM state the golden run does not have at the same time: a
 * VM's guest state or vCPU context, or the hypervisor-side state of a VM the backup loads
 * (trial/backup.ts). The primary's hypervisor state does not travel: the backup has its own.
 */
function differsFromGolden(checkpoint: EpochCheckpoint, options: SystemOptions, golden: GoldenRun): boolean {
  const reference = new System(options);
  reference.restore(checkpointBefore(golden, checkpoint.takenNs).snapshot);
  reference.hypervisor.run({ untilNs: checkpoint.takenNs });
  const ids = reference.configuration.domains.map((domain) => domain.domainId).filter((id) => id !== PRIVILEGED_DOMAIN_ID);
  const expected = reference.host.saveState();
  const saved = checkpoint.snapshot;
  const guestsDiffer = ids.some((id) => JSON.stringify([expected.kernels[id], expected.vcpus[id]]) !== JSON.stringify([saved.host.kernels[id], saved.host.vcpus[id]]));
  // the PrivVM's I/O service and the mirrored disk travel too
  const serviceDiffers = JSON.stringify([expected.kernels[PRIVILEGED_DOMAIN_ID], reference.disk.saveState()]) !== JSON.stringify([saved.host.kernels[PRIVILEGED_DOMAIN_ID], saved.disk]);
  const words = reference.machine.memory.words;
  const domainsDiffer = ids.some((id) => domainStateRanges(reference.hypervisor.layout, id).some(([base, count]) => !sameWords(words.subarray(base, base + count), saved.machine.words.subarray(base, base + count))));
  return guestsDiffer || serviceDiffers || domainsDiffer;
}

/** The heap layout every host of `options` boots to (the same program, the same configuration). */
function layoutOf(options: SystemOptions): HeapLayout {
  return new System(options).hypervisor.layout;
}

/** The replication options of a spec: its own, else the defaults. */
export function replicationOf(spec: TrialSpec): ReplicationOptions {
  return { ...DEFAULT_REPLICATION, ...(spec.replication ?? {}) };
}

/** One output to the outside world under output commit. */
export interface ReleasedOutput {
  readonly kind: 'reply' | 'diskWrite';
  readonly producedNs: number;
  /** when the same output left in the run without replication (undefined: it did not) */
  readonly withoutReplicationNs: number | undefined;
  readonly releasedNs: number | undefined;
}

/** What replication costs when nothing fails, measured on the golden run of a configuration. */
export interface ReplicationCost {
  readonly epochMs: number;
  /**
   * the guest work (UnixBench's operations) the pauses took, against the run without
   * replication; the paused share where no guest is CPU-bound
   */
  readonly overheadPercent: number;
  /** share of wall-clock time the VMs are paused: stop time over epoch plus stop time */
  readonly pausedPercent: number;
  readonly pauseMs: { readonly mean: number; readonly max: number };
  /** how much later each output (NetBench reply, disk write) is released than it would be without replication */
  readonly outputDelayMs: { readonly p50: number; readonly p99: number };
  readonly checkpointBytes: { readonly mean: number };
  readonly commits: readonly EpochCommit[];
  /**
   * each output's (produced, released) times, in order of production: NetBench's replies as
   * the NIC sends them and the disk writes as the PrivVM completes them (Remus mirrors them to
   * the backup, which applies them at commit); released undefined when the checkpoint of its
   * epoch never committed
   */
  readonly outputs: readonly ReleasedOutput[];
}

/** What a run leaves to measure replication by: its outputs and the guests' work. */
interface MeasuredRun {
  readonly system: System;
  readonly writesNs: readonly number[];
  /** UnixBench's operations, the CPU-bound work a pause takes time from; undefined without it */
  readonly work: number | undefined;
}

/**
 * Run the golden run of `options` from boot under a replicator (no fault), the AppVMs paused
 * for each epoch's stop time as Remus pauses them, and measure against the same run without
 * replication: the guest work lost, and how much later each output (NetBench reply, completed
 * disk write) reaches the outside world under output commit.
 */
export function measureReplicationCost(options: SystemOptions, replication: ReplicationOptions = DEFAULT_REPLICATION): ReplicationCost {
  const plain = measuredRun(options, undefined);
  const system = new System(options);
  const replicator = new Replicator(system, replication, false);
  const replicated = measuredRun(options, replicator, system);
  const plainReplyNs = new Map(plain.system.nic.transmissions().map((transmission) => [transmission.pingId, transmission.timeNs]));
  const produced = [
    ...system.nic.transmissions().map((transmission) => ({ kind: 'reply' as const, producedNs: transmission.timeNs, withoutReplicationNs: plainReplyNs.get(transmission.pingId) })),
    ...replicated.writesNs.map((producedNs, index) => ({ kind: 'diskWrite' as const, producedNs, withoutReplicationNs: plain.writesNs[index] as number | undefined })),
  ].sort((x, y) => x.producedNs - y.producedNs);
  const outputs = produced.map((output) => ({ ...output, releasedNs: releaseTimeNs(replicator.commits, output.producedNs) }));
  const delays = outputs.flatMap(({ withoutReplicationNs, releasedNs }) => (releasedNs === undefined || withoutReplicationNs === undefined ? [] : [(releasedNs - withoutReplicationNs) / 1_000_000]));
  const pausedMs = replicator.pauses.reduce((sum, ms) => sum + ms, 0);
  const epochs = replicator.pauses.length;
  const pausedPercent = epochs === 0 ? 0 : (100 * pausedMs) / (epochs * replication.epochMs + pausedMs);
  const workLostPercent = plain.work === undefined || replicated.work === undefined || plain.work === 0 ? undefined : 100 * (1 - replicated.work / plain.work);
  const bytes = replicator.bytes;
  return {
    epochMs: replication.epochMs,
    overheadPercent: workLostPercent ?? pausedPercent,
    pausedPercent,
    pauseMs: { mean: epochs === 0 ? 0 : pausedMs / epochs, max: Math.max(0, ...replicator.pauses) },
    outputDelayMs: { p50: percentile(delays, 50), p99: percentile(delays, 99) },
    checkpointBytes: { mean: epochs === 0 ? 0 : bytes.reduce((sum, value) => sum + value, 0) / epochs },
    commits: replicator.commits,
    outputs,
  };
}

/**
 * One golden run from boot: without replication when `replicator` is undefined; else epoch by
 * epoch, each epoch's stop time taken from the AppVMs (the next epoch starts after it).
 */
function measuredRun(options: SystemOptions, replicator: Replicator | undefined, system = new System(options)): MeasuredRun {
  const writesNs: number[] = [];
  system.disk.onCompleted = (completion, nowNs) => {
    if (completion.operation === 'write') writesNs.push(nowNs);
  };
  system.start();
  const detected = replicator === undefined ? system.hypervisor.run({ untilNs: system.runLengthNs }).kind === 'detected' : runPaused(system, replicator);
  if (detected) throw new Error(`the golden run of ${options.configuration} detected an error: replication cannot be measured`);
  return { system, writesNs, work: unixBenchWork(system) };
}

/** Epochs and their pauses to the end of the run; true when the hypervisor detected an error. */
function runPaused(system: System, replicator: Replicator): boolean {
  replicator.baseline();
  const appVms = system.configuration.domains.map((domain) => domain.domainId).filter((id) => id !== PRIVILEGED_DOMAIN_ID);
  for (let endNs = replicator.epochNs; endNs <= system.runLengthNs; ) {
    if (system.hypervisor.run({ untilNs: endNs }).kind === 'detected') return true;
    const pauseNs = Math.round(replicator.epochEnd().pauseMs * 1_000_000);
    const nowNs = system.machine.nowNs;
    for (const cpu of system.host.pauseVcpus(appVms, nowNs, nowNs + pauseNs)) system.machine.cpus[cpu].guestExitNs += pauseNs;
    endNs = nowNs + pauseNs + replicator.epochNs;
  }
  return system.hypervisor.run({ untilNs: system.runLengthNs }).kind === 'detected';
}

function unixBenchWork(system: System): number | undefined {
  const counts = system.kernels().filter((kernel) => kernel.name === 'unixbench').map((kernel) => kernel.summary().operations ?? 0);
  return counts.length === 0 ? undefined : counts.reduce((sum, count) => sum + count, 0);
}
