/**
 * One trial: fast-forward from the golden run's latest checkpoint before the trigger, inject the
 * fault where the trigger lands, run until detection or the end of the run, and classify.
 * Every outcome follows from running the model; nothing here looks at the fault to decide.
 */
import { CpuMode, type CpuState } from '../machine/cpu.js';
import { injectFault, type AppliedFault, type InjectionContext } from '../faults/injector.js';
import { planFault } from '../faults/plan.js';
import { trialSeed } from '../faults/random.js';
import type { FaultPlan, Injection } from '../faults/fault.js';
import { audit } from '../hypervisor/audit.js';
import { CODE_BASE, CODE_WORDS, STATIC_BASE, StaticData } from '../hypervisor/layout.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { getConfiguration } from '../guests/configurations.js';
import { checkpointBefore, goldenRun, type GoldenRun } from './golden-cache.js';
import { finalStateIfFollowing } from './follow.js';
import { settle } from './golden.js';
import { NOMINAL_HOST } from '../recovery/cost-model.js';
import { replayCommand, type LaterFault, type RecoveryRecord, type TrialRecord, type TrialSpec } from './record.js';
import { recoverAndRun, type RecoveryObserver } from './recovery-phase.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';
import type { Detection } from '../hypervisor/detection.js';
import { TraceRecorder, type TrialTrace } from './trace.js';
import { RunawayBudget } from './budget.js';

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

/** A trial's instruction budget is this many times the golden run's hypervisor instructions (see budget.ts). */
const BUDGET_FACTOR = 3;
const BUDGET_MINIMUM = 2_000_000;

type Ending =
  | { readonly kind: 'detected' }
  | { readonly kind: 'runaway'; readonly cause: string }
  | { readonly kind: 'matchedGolden'; readonly timeNs: number }
  /** ran to the end; `final` is the state there when it was derived by following the golden run */
  | { readonly kind: 'endOfRun'; readonly final?: System; readonly fromNs?: number };

export function runTrial(spec: TrialSpec, options: TrialOptions = {}): TrialResult {
  const systemOptions = systemOptionsOf(spec);
  const golden = goldenRun(systemOptions);
  const seedOfTrial = trialSeed(spec.seed, spec.trialIndex);
  const plans = faultPlansOf(spec, seedOfTrial, golden.runLengthNs);
  const plan = plans[0];
  const common = commonFields(spec, seedOfTrial, plan);
  const system = new System(systemOptions);
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  const recorder = options.trace ? new TraceRecorder(system.machine, (address) => namer.name(address)) : undefined;
  startFrom(system, golden, plan, options.fromBoot ?? false);
  const cpu = runToTrigger(system, plan);
  if (cpu === undefined) {
    options.onFinished?.(system);
    const laterFaults = plans.slice(1).map((later) => ({ plan: later, injection: null }));
    const record = { ...common, ...(plans.length > 1 ? { laterFaults } : {}), outcome: 'notInjected' as const };
    return { record, trace: recorder?.finish(undefined) };
  }
  recorder?.markInjection(cpu.index);
  const { first, last, laterFaults } = injectFaults(system, plans, cpu, injectionContext(system, namer));
  const withLater = plans.length > 1 ? { ...common, laterFaults } : common;
  const follow = options.trace !== true && options.followGolden !== false;
  const ending = system.hypervisor.detections.length > 0 ? { kind: 'detected' as const } : runAfterInjection(system, golden, last, follow);
  if (ending.kind === 'detected') options.onDetected?.(system);
  const observer = { beforeStep: options.onRecoveryStep, onRecovered: options.onRecovered };
  const recovery = ending.kind === 'detected' ? recoveryOf(system, spec, first, golden, observer) : undefined;
  const record = classify(system, ending, first, withLater, recovery);
  options.onFinished?.(finalSystem(system, ending));
  const followed = ending.kind === 'endOfRun' && ending.final !== undefined ? { followedGoldenFromNs: ending.fromNs } : {};
  return { record, trace: recorder?.finish(system.hypervisor.detections[0]?.cpu), ...followed };
}

/**
 * Lands the first fault on `cpu`, arms the detection hook (which puts transient faults back),
 * then lands each later fault in turn. Returns the first and the last injection.
 */
function injectFaults(
  system: System,
  plans: readonly FaultPlan[],
  cpu: CpuState,
  context: InjectionContext,
): { first: Injection; last: Injection; laterFaults: LaterFault[] } {
  const applied = [injectFault(plans[0], cpu, context)];
  system.hypervisor.recoveryHook = (_detection, hypervisor) => {
    for (const fault of applied) fault.restore?.();
    hypervisor.machine.stop('detected');
  };
  const laterFaults = plans.slice(1).map((later) => ({ plan: later, injection: injectLaterFault(system, later, context, applied) }));
  return { first: applied[0].injection, last: applied[applied.length - 1].injection, laterFaults };
}

/** The spec's explicit faults (checked), or the one fault drawn from the trial seed. */
function faultPlansOf(spec: TrialSpec, seedOfTrial: number, runLengthNs: number): readonly FaultPlan[] {
  if (spec.faults === undefined) return [planFault(seedOfTrial, spec.faultType, runLengthNs)];
  if (spec.faults.length === 0) throw new RangeError('a trial with explicit faults needs at least one');
  if (spec.faults[0].target.type !== spec.faultType) {
    throw new RangeError(`the first explicit fault is a ${spec.faults[0].target.type} fault, the spec says ${spec.faultType}`);
  }
  spec.faults.forEach((fault, index) => {
    const previous = spec.faults?.[index - 1];
    if (previous !== undefined && fault.trigger.timeNs < previous.trigger.timeNs) throw new RangeError('explicit faults must be in trigger-time order');
  });
  return spec.faults;
}

/**
 * Lands a later fault: runs to its trigger (or on from the previous fault, if that came later),
 * unless a detection comes first or the run ends. Returns its injection, or null.
 */
function injectLaterFault(system: System, plan: FaultPlan, context: InjectionContext, applied: AppliedFault[]): Injection | null {
  if (system.hypervisor.detections.length > 0) return null;
  const cpu = runToTrigger(system, plan);
  if (cpu === undefined || system.hypervisor.detections.length > 0) return null;
  const fault = injectFault(plan, cpu, context);
  applied.push(fault);
  return fault.injection;
}

/**
 * The same fault under several mechanism variants (the specs differ only in mechanism and
 * switched-off steps), as a campaign pairs them. Up to the detection every variant runs the same
 * model, so the run is shared: undetected faults give every variant the same classification, and
 * detected ones recover each variant from the state at detection. The records equal those of
 * runTrial(spec) for each spec, byte for byte (a test checks it).
 */
export function runTrialVariants(specs: readonly TrialSpec[]): TrialRecord[] {
  const [base] = specs;
  const shareable = specs.length > 1 && specs.every((spec) => spec.faults === undefined && sameFault(spec, base));
  if (!shareable) return specs.map((spec) => runTrial(spec).record);
  const systemOptions = systemOptionsOf(base);
  const golden = goldenRun(systemOptions);
  const seedOfTrial = trialSeed(base.seed, base.trialIndex);
  const plan = planFault(seedOfTrial, base.faultType, golden.runLengthNs);
  const commonOf = (spec: TrialSpec): Common => commonFields(spec, seedOfTrial, plan);
  const system = new System(systemOptions);
  startFrom(system, golden, plan, false);
  const cpu = runToTrigger(system, plan);
  if (cpu === undefined) return specs.map((spec) => ({ ...commonOf(spec), outcome: 'notInjected' }));
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  const { first } = injectFaults(system, [plan], cpu, injectionContext(system, namer));
  const ending = system.hypervisor.detections.length > 0 ? { kind: 'detected' as const } : runAfterInjection(system, golden, first, true);
  if (ending.kind !== 'detected') return specs.map((spec) => classify(system, ending, first, commonOf(spec), undefined));
  const atDetection = system.snapshot();
  const detections = system.hypervisor.detections.slice();
  return specs.map((spec, index) => {
    const variant = index === 0 ? system : restoredAt(systemOptions, atDetection, detections);
    return classify(variant, ending, first, commonOf(spec), recoveryOf(variant, spec, first, golden, {}));
  });
}

/** The system a trial of `spec` runs: the configuration, its workload seed, run length and NetBench rule. */
function systemOptionsOf(spec: TrialSpec): SystemOptions {
  return { configuration: spec.configuration, seed: spec.seed, runLengthNs: spec.runLengthNs, strictNetBench: spec.strictNetBench };
}

/** The fields every record of `spec` has, whatever its outcome. */
function commonFields(spec: TrialSpec, seedOfTrial: number, plan: FaultPlan): Common {
  return {
    configuration: spec.configuration,
    faultType: spec.faultType,
    mechanism: spec.mechanism ?? 'none',
    disabledSteps: spec.disabledSteps ?? [],
    seed: spec.seed,
    trialIndex: spec.trialIndex,
    trialSeed: seedOfTrial,
    plan,
    replay: replayCommand(spec, getConfiguration(spec.configuration).runLengthNs),
  };
}

/** Same configuration, workload, run, NetBench rule and fault: only the recovery may differ. */
function sameFault(spec: TrialSpec, base: TrialSpec): boolean {
  return (
    spec.configuration === base.configuration &&
    spec.seed === base.seed &&
    spec.trialIndex === base.trialIndex &&
    spec.faultType === base.faultType &&
    spec.runLengthNs === base.runLengthNs &&
    spec.strictNetBench === base.strictNetBench
  );
}

/** A fresh system put in the state a trial had at its detection. */
function restoredAt(options: SystemOptions, snapshot: SystemSnapshot, detections: readonly Detection[]): System {
  const system = new System(options);
  system.restore(snapshot);
  system.hypervisor.detections.push(...detections);
  return system;
}

function startFrom(system: System, golden: GoldenRun, plan: FaultPlan, fromBoot: boolean): void {
  if (fromBoot) system.start();
  else system.restore(checkpointBefore(golden, plan.trigger.timeNs).snapshot);
}

/**
 * Run to the trigger time, then until `instructionsAfter` more hypervisor instructions have
 * retired. Returns the CPU that retired the last one (the fault's CPU), or undefined when the
 * run ends (or an earlier fault's detection stops it) first. A CPU that just left hypervisor
 * execution (into a guest, or asleep) is not hypervisor execution: the fault moves on to the next
 * hypervisor instruction.
 */
function runToTrigger(system: System, plan: FaultPlan): CpuState | undefined {
  const machine = system.machine;
  // no instruction stop on the way to the trigger time (an earlier fault's has been reached)
  machine.instructionStop = Number.POSITIVE_INFINITY;
  if (machine.nowNs < plan.trigger.timeNs && machine.run(plan.trigger.timeNs).kind === 'stopped') return undefined;
  machine.instructionStop = machine.hypervisorInstructions + plan.trigger.instructionsAfter + 1;
  for (;;) {
    const outcome = machine.run(system.runLengthNs);
    if (outcome.kind !== 'instructionReached') return undefined;
    const cpu = machine.cpus[outcome.cpu];
    if (cpu.mode === CpuMode.Running) return cpu;
    machine.instructionStop = machine.hypervisorInstructions + 1;
  }
}

function injectionContext(system: System, namer: AddressNamer): InjectionContext {
  return {
    machine: system.machine,
    nameAddress: (address) => namer.name(address),
    memorySpans: [
      { base: STATIC_BASE, sizeWords: StaticData.sizeWords },
      { base: system.hypervisor.layout.frameTable, sizeWords: system.hypervisor.layout.heapEnd - system.hypervisor.layout.frameTable },
    ],
    code: { base: CODE_BASE, sizeWords: Math.min(CODE_WORDS, system.hypervisor.program.words.length) },
  };
}

function instructionBudget(golden: GoldenRun): number {
  return Math.max(BUDGET_MINIMUM, BUDGET_FACTOR * golden.report.hypervisorInstructions);
}

/** With a mechanism, recover from the detection and judge the recovery; without, nothing. */
function recoveryOf(
  system: System,
  spec: TrialSpec,
  injection: Injection,
  golden: GoldenRun,
  observer: RecoveryObserver,
): RecoveryRecord | undefined {
  const mechanism = spec.mechanism ?? 'none';
  if (mechanism === 'none') return undefined;
  const request = { mechanism, disabledSteps: spec.disabledSteps ?? [], host: spec.host ?? NOMINAL_HOST };
  return recoverAndRun(system, injection, request, instructionBudget(golden), observer);
}

/**
 * Run on, checkpoint by checkpoint, until detection, a runaway, a golden match, or the end. With
 * `follow`, a trial found to be following the golden run (see follow.ts) ends there, with the
 * state it would have reached at the end.
 */
function runAfterInjection(system: System, golden: GoldenRun, injection: Injection, follow: boolean): Ending {
  const machine = system.machine;
  const budget = new RunawayBudget(machine, instructionBudget(golden), injection.instructionCount);
  for (const checkpoint of golden.checkpoints) {
    if (checkpoint.timeNs <= machine.nowNs) continue;
    const outcome = budget.run(checkpoint.timeNs);
    if (system.hypervisor.detections.length > 0) return { kind: 'detected' };
    if (outcome === 'runaway') return { kind: 'runaway', cause: budget.runawayCause };
    if (system.isInStateOf(checkpoint.snapshot, checkpoint.stateBesidesMemory)) return { kind: 'matchedGolden', timeNs: checkpoint.timeNs };
    const final = follow ? finalStateIfFollowing(system, golden, checkpoint) : undefined;
    if (final !== undefined) return { kind: 'endOfRun', final, fromNs: checkpoint.timeNs };
  }
  settle(system);
  if (system.hypervisor.detections.length > 0) return { kind: 'detected' };
  return { kind: 'endOfRun' };
}

type Common = Omit<Extract<TrialRecord, { outcome: 'notInjected' }>, 'outcome'>;

function classify(system: System, ending: Ending, injection: Injection, common: Common, recovery: RecoveryRecord | undefined): TrialRecord {
  switch (ending.kind) {
    case 'detected': {
      const detection = system.hypervisor.detections[0];
      const detected = { ...common, outcome: 'detected' as const, injection, detection, detectionLatencyNs: detection.timeNs - injection.timeNs };
      return recovery === undefined ? detected : { ...detected, recovery };
    }
    case 'runaway':
      return { ...common, outcome: 'sdc', injection, cause: `runaway: ${ending.cause}` };
    case 'matchedGolden':
      return { ...common, outcome: 'nonManifested', injection, matchedGoldenAtNs: ending.timeNs };
    case 'endOfRun': {
      const cause = firstSymptom(finalSystem(system, ending));
      if (cause === undefined) return { ...common, outcome: 'nonManifested', injection, matchedGoldenAtNs: null };
      return { ...common, outcome: 'sdc', injection, cause };
    }
  }
}

function finalSystem(system: System, ending: Ending): System {
  return ending.kind === 'endOfRun' ? (ending.final ?? system) : system;
}

/** A guest's failure (the earliest), else a broken hypervisor; undefined when all is well. */
function firstSymptom(system: System): string | undefined {
  const nowNs = system.machine.nowNs;
  const failures = system
    .kernels()
    .map((kernel) => ({ kernel, verdict: kernel.verdict(nowNs) }))
    .flatMap(({ kernel, verdict }) => (verdict.kind === 'failed' ? [{ text: `${kernel.name} (domain ${kernel.domainId}) failed: ${verdict.reason}`, atNs: verdict.atNs }] : []))
    .sort((x, y) => x.atNs - y.atNs);
  if (failures.length > 0) return failures[0].text;
  if (!system.isQuiescent()) return 'hypervisor still busy at the end of the run';
  const result = audit(system.machine, system.hypervisor.layout);
  if (!result.clean) return `audit: ${result.findings[0].invariant}: ${result.findings[0].detail}`;
  return undefined;
}
