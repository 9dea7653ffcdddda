/**
 * The trial engine. A trial runs in five phases, each in its own file: fast-forward from the
 * golden run's latest checkpoint before the trigger (fast-forward.ts), inject the fault where the
 * trigger lands (inject.ts), run until detection or the end of the run (run-to-detection.ts),
 * recover and run on (recover-and-run.ts), and classify (classify.ts). The engine runs one fault
 * under several mechanism variants, sharing the run up to the detection; runTrial is the case of
 * one variant. Every outcome follows from running the model; nothing here looks at the fault.
 */
import type { FaultPlan, Injection } from '../faults/fault.js';
import { trialSeed } from '../faults/random.js';
import { rejectUnknownSteps } from '../recovery/mechanisms.js';
import type { Detection } from '../hypervisor/detection.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { classify, commonFields, type Common } from './classify.js';
import { runToTrigger, startFrom } from './fast-forward.js';
import { goldenRun, type GoldenRun } from './golden-cache.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { LaterFault, RecoveryRecord, TrialRecord, TrialSpec } from './record.js';
import { runFailoverTrial } from './failover.js';
import { runReplayFailoverTrial } from './replay-failover.js';
import { recoveryOf, type RecoveryObserver } from './recover-and-run.js';
import { finalSystem, runToDetection, type Ending } from './run-to-detection.js';
import { systemOptionsOf } from './spec-system.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';
import { TraceRecorder, type TrialTrace } from './trace.js';

export interface TrialOptions {
  /** run from boot instead of fast-forwarding from a golden checkpoint (for checking equivalence) */
  readonly fromBoot?: boolean;
  readonly trace?: boolean;
  /**
   * stop a trial found to be following the golden run and derive its end state (the default; off
   * when tracing). False runs it to the end, to check the shortcut.
   */
  readonly followGolden?: boolean;
  /** called with the system as the trial leaves it, so tests can inspect the final machine state */
  readonly onFinished?: (system: System) => void;
  /** called at the first detection, before recovery touches anything (observation only) */
  readonly onDetected?: (system: System) => void;
  /** called before each enabled recovery step runs, with its name (observation only) */
  readonly onRecoveryStep?: (step: string, system: System) => void;
  /**
   * called when the mechanism reports success: every CPU released at its resume point, nothing
   * run yet (observation only)
   */
  readonly onRecovered?: (system: System) => void;
}

export interface TrialResult {
  readonly record: TrialRecord;
  readonly trace?: TrialTrace;
  /** the checkpoint from which the trial was found to follow the golden run, if it was */
  readonly followedGoldenFromNs?: number;
}

/** One trial: the engine with a single variant. A switched-off step the mechanism lacks is an UnknownStepError. */
export function runTrial(spec: TrialSpec, options: TrialOptions = {}): TrialResult {
  return runVariants([spec], options)[0];
}

/**
 * The same fault under several mechanism variants (the specs differ only in mechanism and
 * switched-off steps), as a campaign pairs them. Up to the detection every variant runs the same
 * model, so the run is shared: undetected faults give every variant the same classification, and
 * detected ones recover each variant from the state at detection. The records equal those of
 * runTrial(spec) for each spec, byte for byte (a test checks it).
 */
export function runTrialVariants(specs: readonly TrialSpec[]): TrialRecord[] {
  return runVariants(specs, {}).map((result) => result.record);
}

/** What every variant of a fault shares: its system, golden run, faults and run up to detection. */
interface SharedRun {
  readonly system: System;
  readonly golden: GoldenRun;
  readonly seedOfTrial: number;
  readonly plans: readonly FaultPlan[];
  readonly recorder?: TraceRecorder;
}

function runVariants(specs: readonly TrialSpec[], options: TrialOptions): TrialResult[] {
  for (const spec of specs) rejectUnknownSteps(spec.mechanism ?? 'none', spec.disabledSteps ?? []);
  const [base] = specs;
  if (base === undefined) return [];
  // failover runs the primary under replication and a backup host: its own engine (failover.ts)
  if (specs.some((spec) => spec.mechanism === 'failover')) return specs.map((spec) => (spec.mechanism === 'failover' ? { record: runFailoverTrial(spec) } : runVariants([spec], options)[0]));
  // replay-failover logs and replays to a backup host: its own engine too (replay-failover.ts)
  if (specs.some((spec) => spec.mechanism === 'replay-failover')) return specs.map((spec) => (spec.mechanism === 'replay-failover' ? { record: runReplayFailoverTrial(spec) } : runVariants([spec], options)[0]));
  if (!specs.every((spec) => sameFault(spec, base))) return specs.map((spec) => runTrial(spec, options));
  const run = prepare(base, options);
  const trigger = runToTrigger(run.system, run.plans[0]);
  if (trigger.kind !== 'landed') {
    options.onFinished?.(run.system);
    const trace = run.recorder?.finish(undefined);
    return specs.map((spec) => ({ record: { ...commonOf(run, spec, run.plans.slice(1).map((plan) => ({ plan, injection: null }))), outcome: 'notInjected' }, trace }));
  }
  run.recorder?.markInjection(trigger.cpu.index);
  const namer = new AddressNamer(run.system.hypervisor.program, run.system.hypervisor.layout);
  const injected = injectFaults(run.system, run.plans, trigger.cpu, namer);
  const { first, laterFaults } = injected;
  const follow = options.trace !== true && options.followGolden !== false;
  const ending = runToDetection(run.system, run.golden, { instructionCount: injected.last.instructionCount, detection: injected.detection }, follow);
  const commonFor = (spec: TrialSpec): Common => commonOf(run, spec, laterFaults);
  if (ending.kind !== 'detected') return specs.map((spec) => finishUndetected(run, ending, first, commonFor(spec), options));
  injected.restoreTransient();
  options.onDetected?.(run.system);
  return recoverEach(run, specs, first, ending.detection, options).map((variant, index) => ({
    record: classify(variant.system, ending, first, commonFor(specs[index]), variant.recovery),
    trace: index === 0 ? run.recorder?.finish(ending.detection.cpu) : undefined,
  }));
}

function prepare(base: TrialSpec, options: TrialOptions): SharedRun {
  const systemOptions = systemOptionsOf(base);
  const golden = goldenRun(systemOptions);
  const seedOfTrial = trialSeed(base.seed, base.trialIndex);
  const plans = faultPlansOf(base, seedOfTrial, golden.runLengthNs);
  const system = new System(systemOptions);
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  const recorder = options.trace ? new TraceRecorder(system.machine, (address) => namer.name(address)) : undefined;
  startFrom(system, golden, plans[0], options.fromBoot ?? false);
  return { system, golden, seedOfTrial, plans, recorder };
}

/** A spec's common fields, with its later faults when it has more than one. */
function commonOf(run: SharedRun, spec: TrialSpec, laterFaults: readonly LaterFault[]): Common {
  const common = commonFields(spec, run.seedOfTrial, run.plans[0]);
  return run.plans.length > 1 ? { ...common, laterFaults } : common;
}

function finishUndetected(run: SharedRun, ending: Ending, injection: Injection, common: Common, options: TrialOptions): TrialResult {
  const record = classify(run.system, ending, injection, common, undefined);
  options.onFinished?.(finalSystem(run.system, ending));
  const followed = ending.kind === 'endOfRun' && ending.final !== undefined ? { followedGoldenFromNs: ending.fromNs } : {};
  return { record, trace: run.recorder?.finish(undefined), ...followed };
}

/**
 * Each variant recovers from the state at detection: the first on the trial's own system, the
 * others on a fresh system restored to that state.
 */
function recoverEach(run: SharedRun, specs: readonly TrialSpec[], injection: Injection, detection: Detection, options: TrialOptions): { system: System; recovery: RecoveryRecord | undefined }[] {
  const observer: RecoveryObserver = { beforeStep: options.onRecoveryStep, onRecovered: options.onRecovered };
  const atDetection = specs.length > 1 ? run.system.snapshot() : undefined;
  return specs.map((spec, index) => {
    const system = index === 0 || atDetection === undefined ? run.system : restoredAt(systemOptionsOf(spec), atDetection);
    const recovery = recoveryOf(system, spec, injection, detection, run.golden, observer);
    options.onFinished?.(system);
    return { system, recovery };
  });
}

/** Same configuration, workload, run, NetBench rule and faults: only the recovery may differ. */
function sameFault(spec: TrialSpec, base: TrialSpec): boolean {
  return (
    spec.configuration === base.configuration &&
    spec.seed === base.seed &&
    spec.trialIndex === base.trialIndex &&
    spec.faultType === base.faultType &&
    spec.runLengthNs === base.runLengthNs &&
    spec.strictNetBench === base.strictNetBench &&
    spec.pkeys === base.pkeys &&
    JSON.stringify(spec.kvServer) === JSON.stringify(base.kvServer) &&
    JSON.stringify(spec.faults) === JSON.stringify(base.faults)
  );
}

/** A fresh system put in the state a trial had at its detection. */
function restoredAt(options: SystemOptions, snapshot: SystemSnapshot): System {
  const system = new System(options);
  system.restore(snapshot);
  return system;
}
