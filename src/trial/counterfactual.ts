/**
 * Counterfactual re-runs of one trial, for triage: run a trial to its detection and keep the
 * state there (transient faults already put back, as the trial does), then recover from that
 * state again as often as asked, each time after a change (named state set back to the golden
 * run's values, a switched-off step switched on). Each re-run is the trial's own recovery and
 * liveness phase through the machine, so its verdict is as honest as the trial's.
 */
import type { Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { trialSeed } from '../faults/random.js';
import { checkpointBefore, goldenRun, type GoldenRun } from './golden-cache.js';
import { runToTrigger, startFrom } from './fast-forward.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { RecoveryRecord, TrialSpec } from './record.js';
import { recoveryOf, type RecoveryObserver } from './recover-and-run.js';
import { runToDetection } from './run-to-detection.js';
import { System, type SystemOptions, type SystemSnapshot } from './system.js';

/** A trial stopped at its detection, before recovery touched anything. */
export interface DetectionPoint {
  readonly spec: TrialSpec;
  readonly options: SystemOptions;
  readonly golden: GoldenRun;
  readonly injection: Injection;
  readonly detection: Detection;
  /** the system at the detection, transient faults put back */
  readonly atDetection: SystemSnapshot;
}

/** Run `spec`'s fault to its detection; undefined when it is not injected or not detected. */
export function runToDetectionPoint(spec: TrialSpec): DetectionPoint | undefined {
  const options: SystemOptions = { configuration: spec.configuration, seed: spec.seed, runLengthNs: spec.runLengthNs, strictNetBench: spec.strictNetBench, ...(spec.pkeys === true ? { protectionKeys: true } : {}) };
  const golden = goldenRun(options);
  const plans = faultPlansOf(spec, trialSeed(spec.seed, spec.trialIndex), golden.runLengthNs);
  const system = new System(options);
  startFrom(system, golden, plans[0], false);
  const trigger = runToTrigger(system, plans[0]);
  if (trigger.kind !== 'landed') return undefined;
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  const injected = injectFaults(system, plans, trigger.cpu, namer);
  const ending = runToDetection(system, golden, { instructionCount: injected.last.instructionCount, detection: injected.detection }, false);
  if (ending.kind !== 'detected') return undefined;
  injected.restoreTransient();
  return { spec, options, golden, injection: injected.first, detection: ending.detection, atDetection: system.snapshot() };
}

/** The golden run's whole system at `timeNs` (from its latest checkpoint before then). */
export function goldenSystemAt(golden: GoldenRun, timeNs: number): System {
  const system = new System(golden.options);
  system.restore(checkpointBefore(golden, timeNs).snapshot);
  if (system.machine.nowNs < timeNs) system.hypervisor.run({ untilNs: timeNs });
  return system;
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
