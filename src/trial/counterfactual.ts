/**
 * Counterfactual re-runs of one trial, for triage: run a trial to its detection and keep the
 * state there (transient faults already put back, as the trial does), then recover from that
 * state again as often as asked, each time after a change (named state set back to the golden
 * run's values, a switched-off step switched on). Each re-run is the trial's own recovery and
 * liveness phase through the machine, so its verdict is as honest as the trial's.
 */
import type { Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';
import type { CpuState } from '../machine/cpu.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { trialSeed } from '../faults/random.js';
import { checkpointBefore, goldenRun, type GoldenRun } from './golden-cache.js';
import { runToTrigger, startFrom } from './fast-forward.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { RecoveryRecord, TrialRecord, TrialSpec } from './record.js';
import { RunawayBudget } from './budget.js';
import { classify, commonFields } from './classify.js';
import { instructionBudget } from './run-to-detection.js';
import { recoveryOf, type RecoveryObserver } from './recover-and-run.js';
import { runToDetection } from './run-to-detection.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';
import { systemOptionsOf } from './spec-system.js';

/** A trial stopped at its detection, before recovery touched anything. */
export interface DetectionPoint {
  readonly spec: TrialSpec;
  readonly options: SystemOptions;
  readonly golden: GoldenRun;
  readonly injection: Injection;
  readonly detection: Detection;
  /** the system at the detection, transient faults put back */
  readonly atDetection: SystemSnapshot;
  /**
   * the detecting CPU when its detection trap was raised, before the machine delivered the
   * exception (in the snapshot that delivery has happened: a frame pushed, or a double fault
   * taken because the stack pointer was bad); absent when no trap was the detection
   */
  readonly cpuAtTrap?: CpuState;
}

/** `spec`'s system from the golden run's checkpoint to its trigger, its faults injected; undefined when the trigger never lands. */
function injectedSystem(spec: TrialSpec): { options: SystemOptions; golden: GoldenRun; system: System; injected: ReturnType<typeof injectFaults> } | undefined {
  const options: SystemOptions = systemOptionsOf(spec);
  const golden = goldenRun(options);
  const plans = faultPlansOf(spec, trialSeed(spec.seed, spec.trialIndex), golden.runLengthNs);
  const system = new System(options);
  startFrom(system, golden, plans[0], false);
  const trigger = runToTrigger(system, plans[0]);
  if (trigger.kind !== 'landed') return undefined;
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  return { options, golden, system, injected: injectFaults(system, plans, trigger.cpu, namer) };
}

/** Run `spec`'s fault to its detection; undefined when it is not injected or not detected. */
export function runToDetectionPoint(spec: TrialSpec): DetectionPoint | undefined {
  const landed = injectedSystem(spec);
  if (landed === undefined) return undefined;
  const { options, golden, system, injected } = landed;
  const ending = runToDetection(system, golden, { instructionCount: injected.last.instructionCount, detection: injected.detection }, false);
  if (ending.kind !== 'detected') return undefined;
  injected.restoreTransient();
  return { spec, options, golden, injection: injected.first, detection: ending.detection, atDetection: system.snapshot(), cpuAtTrap: system.hypervisor.detectingCpuAtTrap() };
}

/**
 * A silent data corruption stopped where the trial is first compared with the fault-free run
 * after its fault: the first golden checkpoint after the injection (the fault still in place, as
 * an undetected trial keeps it). Setting state back there and running on to the end is the SDC's
 * counterfactual re-run.
 */
export interface SdcPoint {
  readonly spec: TrialSpec;
  readonly options: SystemOptions;
  readonly golden: GoldenRun;
  readonly injection: Injection;
  /** hypervisor instructions retired when the (last) fault was injected: the runaway budget counts from there */
  readonly instructionCount: number;
  readonly atNs: number;
  readonly atPoint: SystemSnapshot;
}

/** Run `spec`'s fault to the first checkpoint after it; undefined when it is not injected, or is detected or runs away before. */
export function runToSdcPoint(spec: TrialSpec): SdcPoint | undefined {
  const landed = injectedSystem(spec);
  if (landed === undefined) return undefined;
  const { options, golden, system, injected } = landed;
  if (injected.detection !== undefined) return undefined;
  const checkpoint = golden.checkpoints.find((candidate) => candidate.timeNs > system.machine.nowNs);
  if (checkpoint === undefined) return undefined;
  const stop = new RunawayBudget(system.hypervisor, injected.last.instructionCount + instructionBudget(golden)).run(checkpoint.timeNs);
  if (stop === 'runaway' || stop.kind === 'detected') return undefined;
  return { spec, options, golden, injection: injected.first, instructionCount: injected.last.instructionCount, atNs: checkpoint.timeNs, atPoint: system.snapshot() };
}

/** From the SDC point, after `change`, run on to the end as the trial did and classify: its record. */
export function runOnFromSdcPoint(point: SdcPoint, change: (system: System) => void): TrialRecord {
  const system = new System(point.options);
  system.restore(point.atPoint);
  change(system);
  const ending = runToDetection(system, point.golden, { instructionCount: point.instructionCount }, true);
  const plans = faultPlansOf(point.spec, trialSeed(point.spec.seed, point.spec.trialIndex), point.golden.runLengthNs);
  return classify(system, ending, point.injection, commonFields(point.spec, trialSeed(point.spec.seed, point.spec.trialIndex), plans[0]), undefined);
}

/** A fresh system in the state the trial had at its SDC point. */
export function systemAtSdcPoint(point: SdcPoint): System {
  const system = new System(point.options);
  system.restore(point.atPoint);
  return system;
}

/** The golden run's whole system at `timeNs` (from its latest checkpoint before then). */
export function goldenSystemAt(golden: GoldenRun, timeNs: number): System {
  const system = new System(golden.options);
  system.restore(checkpointBefore(golden, timeNs).snapshot);
  if (system.machine.nowNs < timeNs) system.hypervisor.run({ untilNs: timeNs });
  return system;
}

/**
 * Rewind the detecting CPU of `system` (at the detection) to the moment of its trap, let
 * `change` alter it there (registers set back, say), and let the machine deliver the exception
 * again: whether the frame can be pushed now, or the CPU double-faults, is the machine's verdict.
 */
export function redeliverFromTrap(system: System, point: DetectionPoint, change: (cpu: CpuState) => void): void {
  if (point.cpuAtTrap === undefined) throw new Error('the detection was not a trap: there is no moment to rewind to');
  const cpu = system.machine.cpus[point.detection.cpu];
  const atTrap = point.cpuAtTrap;
  // what delivering an exception changes; the CPU's timer and interrupt controller it leaves alone
  cpu.registers.set(atTrap.registers);
  cpu.stackPointer = atTrap.stackPointer;
  cpu.flags = atTrap.flags;
  cpu.programCounter = atTrap.programCounter;
  cpu.mode = atTrap.mode;
  cpu.interruptShadow = atTrap.interruptShadow;
  change(cpu);
  system.machine.redeliverException(cpu.index);
}

/** A fresh system in the state the trial had at its detection. */
export function systemAtDetection(point: DetectionPoint): System {
  const system = new System(point.options);
  system.restore(point.atDetection);
  return system;
}

export interface Rerun {
  /** changes to the state at detection before recovery starts (setting regions back, say) */
  readonly change?: (system: System) => void;
  /** the switched-off steps of this re-run (default: the spec's) */
  readonly disabledSteps?: readonly string[];
  readonly observer?: RecoveryObserver;
}

/** Recover from the detection again, after `rerun.change`; the recovery record and the system it left. */
export function recoverFromDetection(point: DetectionPoint, rerun: Rerun = {}): { recovery: RecoveryRecord | undefined; system: System } {
  const system = systemAtDetection(point);
  rerun.change?.(system);
  const spec = rerun.disabledSteps === undefined ? point.spec : { ...point.spec, disabledSteps: rerun.disabledSteps };
  const recovery = recoveryOf(system, spec, point.injection, point.detection, point.golden, rerun.observer ?? {});
  return { recovery, system };
}
