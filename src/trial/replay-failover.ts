/**
 * A trial under replay-failover (HyCoR): checkpoints every `checkpointMs` as failover takes
 * them (trial/failover.ts's Replicator), and between them a log of the key-value server's
 * nondeterministic events streamed to the backup: what each system call returned and when it
 * happened, and with `ordering: log` the order of lock acquisitions (execute-follow). A reply
 * is released as soon as the log up to it is on the backup. With `ordering: deterministic` the
 * server's threads take the lock by Kendo's rule on both hosts and no order is logged.
 *
 * When the primary fails, the backup restores the last checkpoint it holds and replays the
 * server from the log until it has produced every released reply, then goes live. The backup
 * host's CPUs run at a speed of their own and take their timer and device interrupts a little
 * late (seeded perturbations, recorded in the trial's steps), so threads that race outside the lock may interleave differently in the replay: a
 * replayed reply that differs from the released one is a failed recovery (`replayDiverged`).
 * Nothing here decides that: the backup runs, and its replies are compared.
 *
 * Modelling limits: only the key-value server is replayed from a log. The PrivVM and NetBench
 * are single-threaded and their inputs come from the seeded devices, so the backup re-runs
 * them from the checkpoint as failover does. The perturbation is of the server's CPUs alone
 * (their speed and their interrupts' delivery), not of the other guests' CPUs. The pause of a
 * checkpoint is priced and accounted as in failover (a freeze, not replayed into the guests'
 * timing).
 */
import type { FaultPlan, Injection } from '../faults/fault.js';
import { trialSeed } from '../faults/random.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { KvRecording, type KvOrdering, type KvOutput, type KvServerOptions } from '../guests/kvserver.js';
import { SeededRandom } from '../guests/random.js';
import { failoverCosts, restoreMs } from '../recovery/failover.js';
import { DEFAULT_LINK, transferMs, type Link } from '../replication/link.js';
import { percentile, releaseTimeNs } from '../replication/output-commit.js';
import { classify, commonFields } from './classify.js';
import { Replicator, runPrimary, type PrimaryEnding } from './failover.js';
import { runToTrigger } from './fast-forward.js';
import { checkpointBefore, goldenRun, type GoldenRun } from './golden-cache.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { RecoveryRecord, TrialRecord, TrialSpec } from './record.js';
import { failedAppVms, firstCause, runLiveness } from './recover-and-run.js';
import { instructionBudget } from './run-to-detection.js';
import { systemOptionsOf } from './spec-system.js';
import { System, type SystemOptions } from './system.js';

export interface ReplayOptions {
  readonly checkpointMs: number;
  readonly ordering: KvOrdering;
  readonly timingAdjustment: boolean;
  readonly heartbeatMs: number;
  readonly link: Link;
  /** the backup's CPU speeds, instead of the seeded perturbation (tests construct a timing with it) */
  readonly backupSpeedFactors?: readonly number[];
  /** how late the backup's server CPUs take their interrupts, ns, instead of the seeded perturbation */
  readonly backupInterruptDelaysNs?: readonly number[];
}

export const DEFAULT_REPLAY: ReplayOptions = { checkpointMs: 100, ordering: 'log', timingAdjustment: true, heartbeatMs: 30, link: DEFAULT_LINK };

/** The backup host's CPUs run up to this much faster or slower than the primary's. */
export const BACKUP_SPEED_SPREAD = 0.002;

/**
 * The backup host's server CPUs take their timer and device interrupts up to this much later
 * than the primary's do (interrupt latency differs between hosts by microseconds).
 */
export const BACKUP_INTERRUPT_SPREAD_NS = 2_000;

/** Checkpoints kept on the backup: the last few cover commits still in flight at a failure. */
const KEPT_EPOCHS = 3;

/** How the primary's run ended. */

/** The backup host's timing: each server thread's compute time is multiplied by its factor. */
export function backupSpeedFactors(seedOfTrial: number): number[] {
  const random = SeededRandom.fromSeed(seedOfTrial, 'backup-host-timing');
  return [0, 1].map(() => Math.round((1 - BACKUP_SPEED_SPREAD + 2 * BACKUP_SPEED_SPREAD * random.fraction()) * 10_000) / 10_000);
}

/** The backup host's interrupt timing: how late each server thread's CPU takes its interrupts, ns. */
export function backupInterruptDelaysNs(seedOfTrial: number): number[] {
  const random = SeededRandom.fromSeed(seedOfTrial, 'backup-host-interrupts');
  return [0, 1].map(() => Math.round(BACKUP_INTERRUPT_SPREAD_NS * random.fraction()));
}

/** Per CPU of `system`, the delay of the server thread that runs there (0 for the CPUs of other guests). */
function delaysByCpu(system: System, delaysNs: readonly number[]): number[] {
  const serverCpus = system.configuration.domains.filter((domain) => domain.kind === 'kvserver').map((domain) => domain.cpu);
  return Array.from({ length: system.configuration.cpuCount }, (_, cpu) => {
    const thread = serverCpus.indexOf(cpu);
    return thread < 0 ? 0 : (delaysNs[thread] ?? 0);
  });
}

/** What a trial's run under replay-failover leaves for tests to look at besides its record. */
export interface ReplayTrialDetails {
  readonly record: TrialRecord;
  readonly recording: KvRecording | undefined;
  /** released replies, in order */
  readonly released: readonly KvOutput[];
  /** the backup's replies (replayed, then live), when it took over */
  readonly backupOutputs: readonly KvOutput[];
  readonly primaryLockOrder: readonly number[];
  readonly backupLockOrder: readonly number[];
  readonly backupSpeedFactors: readonly number[] | undefined;
  readonly backupInterruptDelaysNs: readonly number[] | undefined;
}

/** One trial of `spec` under replay-failover. */
export function runReplayFailoverTrial(spec: TrialSpec, options: ReplayOptions = replayOf(spec), kvServer?: KvServerOptions): TrialRecord {
  return runReplayFailoverDetails(spec, options, kvServer).record;
}

export function runReplayFailoverDetails(spec: TrialSpec, options: ReplayOptions = replayOf(spec), kvServer?: KvServerOptions): ReplayTrialDetails {
  const fromSpec = systemOptionsOf(spec);
  // a test's server options stand in for the spec's
  const systemOptions: SystemOptions = kvServer === undefined ? fromSpec : { ...fromSpec, kvServer };
  const golden = goldenRun(systemOptions);
  const seedOfTrial = trialSeed(spec.seed, spec.trialIndex);
  const plans = faultPlansOf(spec, seedOfTrial, golden.runLengthNs);
  const common = commonFields(spec, seedOfTrial, plans[0]);
  const system = new System(systemOptions);
  const replicator = new Replicator(system, { epochMs: options.checkpointMs, heartbeatMs: options.heartbeatMs, link: options.link }, true);
  const recording = startBefore(system, golden, replicator, plans[0], options.ordering);
  const nothing = { recording, released: [], backupOutputs: [], primaryLockOrder: system.kvServer.acquisitions, backupLockOrder: [], backupSpeedFactors: undefined, backupInterruptDelaysNs: undefined };
  const trigger = runToTrigger(system, plans[0]);
  if (trigger.kind !== 'landed') return { ...nothing, record: { ...common, outcome: 'notInjected' } };
  const injected = injectFaults(system, plans, trigger.cpu, new AddressNamer(system.hypervisor.program, system.hypervisor.layout));
  // under Kendo's rule the primary computes differently from the golden run: never the same state
  const comparesWithGolden = !(system.kvServer.threads.length > 0 && system.kvServer.shared().ordering === 'deterministic');
  const primary = runPrimary(system, golden, replicator, injected.detection, injected.last.instructionCount, comparesWithGolden);
  if (primary.kind === 'ended') return { ...nothing, record: classify(system, primary.ending, injected.first, common, undefined) };
  injected.restoreTransient();
  const takeover = failOver(systemOptions, golden, replicator, recording, injected.first, primary, options, seedOfTrial);
  const record = classify(system, { kind: 'detected', detection: primary.detection }, injected.first, common, takeover.recovery);
  return { ...nothing, record, released: recording?.outputs.items ?? [], backupOutputs: takeover.outputs, backupLockOrder: takeover.lockOrder, backupSpeedFactors: takeover.speedFactors, backupInterruptDelaysNs: takeover.interruptDelaysNs };
}

/**
 * Restore the golden run's checkpoint a few checkpoint intervals before the trigger, put the
 * server under the mechanism's ordering and start logging, then run to the trigger through the
 * checkpoints, so that the backup holds what it would hold at the fault.
 */
function startBefore(system: System, golden: GoldenRun, replicator: Replicator, plan: FaultPlan, ordering: KvOrdering): KvRecording | undefined {
  const startNs = Math.max(0, plan.trigger.timeNs - KEPT_EPOCHS * replicator.epochNs);
  system.restore(checkpointBefore(golden, startNs).snapshot);
  const recording = orderAndRecord(system, ordering);
  let first = true;
  if (startNs === 0) {
    // replication started with the run: the backup's initial copy is its first checkpoint
    replicator.baseline();
    replicator.epochEnd();
    first = false;
  }
  for (let endNs = replicator.nextEpochEndNs(system.machine.nowNs); endNs <= plan.trigger.timeNs; endNs += replicator.epochNs) {
    const stop = system.hypervisor.run({ untilNs: endNs });
    if (stop.kind === 'detected') return recording;
    if (first) replicator.baseline();
    replicator.epochEnd();
    first = false;
  }
  return recording;
}

/**
 * Put the server's lock under `ordering` from now on (Kendo's clocks start level) and log its
 * nondeterministic events; undefined for a configuration without the server.
 */
export function orderAndRecord(system: System, ordering: KvOrdering): KvRecording | undefined {
  const server = system.kvServer;
  if (server.threads.length === 0) return undefined;
  const shared = server.shared();
  shared.ordering = ordering;
  if (ordering === 'deterministic') {
    const level = Math.max(...shared.clocks);
    shared.clocks = shared.clocks.map(() => level);
    shared.lockReleasedAt = Math.min(shared.lockReleasedAt, level - 1);
  }
  server.recording = new KvRecording();
  return server.recording;
}

interface Takeover {
  readonly recovery: RecoveryRecord;
  readonly outputs: readonly KvOutput[];
  readonly lockOrder: readonly number[];
  readonly speedFactors: readonly number[] | undefined;
  readonly interruptDelaysNs: readonly number[] | undefined;
}

/**
 * The backup takes over: it restores the last checkpoint it holds, replays the server from the
 * log to the last released reply on its own (differently timed) CPUs, goes live, and is judged
 * as any recovery; a replayed reply that differs from the released one fails it.
 */
function failOver(
  options: SystemOptions,
  golden: GoldenRun,
  replicator: Replicator,
  recording: KvRecording | undefined,
  injection: Injection,
  primary: Extract<PrimaryEnding, { kind: 'failed' }>,
  replay: ReplayOptions,
  seedOfTrial: number,
): Takeover {
  const link = replicator.options.link;
  const noticedNs = primary.detection.detector === 'heartbeat' ? primary.detection.timeNs : primary.detection.timeNs + Math.round(link.latencyMs * 1_000_000);
  const detectedAtMs = (noticedNs - injection.timeNs) / 1_000_000;
  const checkpoint = replicator.committedBy(primary.lastAliveNs);
  const restoring = checkpoint === undefined ? 0 : restoreMs({ domains: new System(options).configuration.domains.length - 1, pages: Math.ceil(checkpoint.snapshot.machine.words.length / 1_024), guestBytes: JSON.stringify(checkpoint.snapshot.host.kernels).length });
  const speedFactors = replay.backupSpeedFactors ?? backupSpeedFactors(seedOfTrial);
  const interruptDelaysNs = replay.backupInterruptDelaysNs ?? backupInterruptDelaysNs(seedOfTrial);
  const hostTiming = { speed0: speedFactors[0], speed1: speedFactors[1], interruptDelay0Ns: interruptDelaysNs[0], interruptDelay1Ns: interruptDelaysNs[1] };
  const restoreStep = { step: 'restoreCheckpoint', work: { checkpointAtMs: (checkpoint?.takenNs ?? 0) / 1_000_000, bytes: checkpoint?.bytes ?? 0, ...hostTiming }, ms: restoring };
  if (checkpoint === undefined) {
    const steps = [{ step: 'detect', work: { detectedAtMs }, ms: 0 }, restoreStep];
    const recovery: RecoveryRecord = { result: 'recoveryFailed', noVmFailure: false, failedVms: [], cause: 'recoveryNeverRan', detail: 'the backup holds no checkpoint', steps, recoveryLatencyMs: 0, serviceInterruptionMs: detectedAtMs };
    return { recovery, outputs: [], lockOrder: [], speedFactors, interruptDelaysNs };
  }
  const backup = new System(options);
  backup.restore(checkpoint.snapshot);
  backup.machine.setInterruptDelays(delaysByCpu(backup, interruptDelaysNs));
  const server = backup.kvServer;
  const outputs: KvOutput[] = [];
  if (recording !== undefined) {
    server.speedFactors = speedFactors;
    server.onOutput = (output) => outputs.push(output);
    server.startReplay({ log: recording, timingAdjustment: replay.timingAdjustment });
  }
  const awaited = recording === undefined ? 0 : server.awaitedCount();
  if (backup.configuration.createsVmAfterRecovery) backup.requestNewVm();
  const ending = runLiveness(backup, checkpoint.takenNs, instructionBudget(golden));
  const replayEndedNs = server.replayEndedNs === undefined || server.replayEndedNs < 0 ? checkpoint.takenNs : server.replayEndedNs;
  const replayingMs = (replayEndedNs - checkpoint.takenNs) / 1_000_000;
  const resumingMs = failoverCosts.resumeMs;
  const recoveryLatencyMs = restoring + replayingMs + resumingMs;
  const steps: RecoveryRecord['steps'] = [
    { step: 'detect', work: { detectedAtMs }, ms: 0 },
    restoreStep,
    { step: 'replayLog', work: { outputs: awaited, timingAdjustment: replay.timingAdjustment ? 1 : 0 }, ms: replayingMs },
    { step: 'resumeVms', work: {}, ms: resumingMs },
  ];
  const timing = { recoveryLatencyMs, serviceInterruptionMs: detectedAtMs + recoveryLatencyMs };
  const judged = { outputs, lockOrder: server.acquisitions, speedFactors, interruptDelaysNs };
  const failedVms = failedAppVms(backup);
  const diverged = server.divergence;
  if (diverged !== undefined) {
    const detail = `replayed reply ${diverged.replayed.index} (request ${diverged.replayed.requestId}, thread ${diverged.replayed.thread}) = ${diverged.replayed.value}/${diverged.replayed.hits}, released (request ${diverged.released.requestId}, thread ${diverged.released.thread}) = ${diverged.released.value}/${diverged.released.hits}`;
    return { ...judged, recovery: { result: 'recoveryFailed', noVmFailure: false, failedVms, cause: 'replayDiverged', detail, steps, ...timing } };
  }
  if (server.replaying()) {
    const detail = `the replay had not reproduced ${server.awaitedCount()} of the ${awaited} replies released after the checkpoint by the end of the run`;
    return { ...judged, recovery: { result: 'recoveryFailed', noVmFailure: false, failedVms, cause: 'replayDiverged', detail, steps, ...timing } };
  }
  const cause = firstCause(backup, ending, failedVms);
  if (cause === undefined) return { ...judged, recovery: { result: 'recovered', noVmFailure: failedVms.length === 0, failedVms, cause: null, detail: null, steps, ...timing } };
  return { ...judged, recovery: { result: 'recoveryFailed', noVmFailure: false, failedVms, ...cause, steps, ...timing } };
}

/** The replay-failover options of a spec: its own, else the defaults. */
export function replayOf(spec: TrialSpec): ReplayOptions {
  return { ...DEFAULT_REPLAY, ...(spec.replay ?? {}) };
}

/** What replay-failover costs when nothing fails, measured on the golden run of a configuration. */
export interface ReplayCost {
  readonly checkpointMs: number;
  readonly ordering: KvOrdering;
  /** checkpoint pauses, plus with Kendo's rule the threads' time spent waiting for their turn */
  readonly overheadPercent: number;
  readonly pausePercent: number;
  readonly orderingWaitPercent: number;
  /** how much later each server reply leaves than without replication: its log's transfer */
  readonly outputDelayMs: { readonly p50: number; readonly p99: number };
  /** the same replies under failover's output commit at the same checkpoint interval */
  readonly failoverOutputDelayMs: { readonly p50: number; readonly p99: number };
  readonly replies: number;
}

/** Bytes of the log entries a reply's release waits for: its recv, lock acquisition, send and itself. */
const LOG_BYTES_PER_REPLY = 4 * 16;

/**
 * Run a configuration with the server from boot under a replicator and the ordering, with no
 * fault, and measure: the checkpoints' pauses, the threads' ordering waits, and how long each
 * reply waits for the log covering it to reach the backup (the link is a FIFO: a log entry
 * leaves once the one before it is through).
 */
export function measureReplayCost(options: SystemOptions, replay: ReplayOptions = DEFAULT_REPLAY): ReplayCost {
  const system = new System(options);
  const replicator = new Replicator(system, { epochMs: replay.checkpointMs, heartbeatMs: replay.heartbeatMs, link: replay.link }, false);
  system.start();
  const recording = orderAndRecord(system, replay.ordering);
  replicator.baseline();
  for (let endNs = replicator.epochNs; endNs <= system.runLengthNs; endNs += replicator.epochNs) {
    const stop = system.hypervisor.run({ untilNs: endNs });
    if (stop.kind === 'detected') throw new Error(`the golden run of ${options.configuration} detected an error: replay cannot be measured`);
    replicator.epochEnd();
  }
  system.hypervisor.run({ untilNs: system.runLengthNs });
  // without the server, NetBench's replies are the outputs (their log: the ring's contents)
  const outputs = recording?.outputs.items ?? system.nic.transmissions().map((transmission) => ({ timeNs: transmission.timeNs }));
  let linkFreeNs = 0;
  const delays = outputs.map((output) => {
    const sentNs = Math.max(output.timeNs, linkFreeNs);
    const arrivedNs = sentNs + Math.round(transferMs(replay.link, LOG_BYTES_PER_REPLY) * 1_000_000);
    linkFreeNs = arrivedNs - Math.round(replay.link.latencyMs * 1_000_000);
    return (arrivedNs - output.timeNs) / 1_000_000;
  });
  const failoverDelays = outputs.flatMap((output) => {
    const releasedNs = releaseTimeNs(replicator.commits, output.timeNs);
    return releasedNs === undefined ? [] : [(releasedNs - output.timeNs) / 1_000_000];
  });
  const pausedMs = replicator.pauses.reduce((sum, ms) => sum + ms, 0);
  const epochs = replicator.pauses.length;
  const pausePercent = epochs === 0 ? 0 : (100 * pausedMs) / (epochs * replay.checkpointMs + pausedMs);
  const waits = recording === undefined ? [] : system.kvServer.shared().orderingWaitNs;
  const orderingWaitPercent = waits.length === 0 ? 0 : (100 * waits.reduce((sum, ns) => sum + ns, 0)) / (system.runLengthNs * waits.length);
  return {
    checkpointMs: replay.checkpointMs,
    ordering: replay.ordering,
    overheadPercent: pausePercent + orderingWaitPercent,
    pausePercent,
    orderingWaitPercent,
    outputDelayMs: { p50: percentile(delays, 50), p99: percentile(delays, 99) },
    failoverOutputDelayMs: { p50: percentile(failoverDelays, 50), p99: percentile(failoverDelays, 99) },
    replies: outputs.length,
  };
}
