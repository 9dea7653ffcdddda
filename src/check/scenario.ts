/**
 * A scenario: one trial with its faults spelled out (trigger time, instruction count, target),
 * so that fast-check can generate and shrink every choice. Running it runs the real trial
 * (runTrial with explicit faults) and keeps what the invariants look at: the record, the final
 * system, and observations taken at detection and when the mechanism released the CPUs.
 */
import type { FaultPlan } from '../faults/fault.js';
import { audit, type AuditResult } from '../hypervisor/audit.js';
import type { NominalHost } from '../recovery/cost-model.js';
import type { MechanismName } from '../recovery/mechanisms.js';
import { nmiIpi, stopCpus } from '../recovery/steps/stop-cpus.js';
import type { TrialRecord, TrialSpec } from '../trial/record.js';
import type { System, SystemOptions } from '../trial/system.js';
import { runTrial } from '../trial/trial.js';
import { goldenReference, type GoldenReference } from './reference.js';
import { guestProgress, rewoundHypercalls, vmStates, type GuestProgress, type RewoundHypercall, type VmState } from './observe.js';

export interface Scenario {
  readonly configuration: string;
  /** seeds the workloads and devices: with the configuration and run length, it names the golden run */
  readonly seed: number;
  readonly runLengthNs: number;
  readonly mechanism: MechanismName;
  /** repair steps switched off, by name */
  readonly disabledSteps: readonly string[];
  /** one or more, in trigger-time order */
  readonly faults: readonly FaultPlan[];
  readonly strictNetBench?: boolean;
  /** the hypervisor built with its intended-sharing policy (protection keys) */
  readonly pkeys?: boolean;
  readonly host?: NominalHost;
}

/** What the system looked like at one moment of the trial. */
export interface Observation {
  readonly timeNs: number;
  readonly vms: readonly VmState[];
  readonly progress: readonly GuestProgress[];
}

/** The moment the mechanism reported success: CPUs released at their resume point, nothing run. */
export interface RecoveryObservation extends Observation {
  readonly audit: AuditResult;
  /** the guest hypercalls recovery rewound for the guests to issue again */
  readonly rewound: readonly RewoundHypercall[];
}

export interface ScenarioRun {
  readonly scenario: Scenario;
  readonly record: TrialRecord;
  /** the system as the trial left it (settled at the end of the run, or stopped at a failure) */
  readonly system: System;
  /** at the first detection, before recovery touched anything */
  readonly atDetection: Observation | undefined;
  /**
   * once the mechanism has stopped every CPU, before its first step that changes state (until
   * then guests may still be entered, and take a hypercall's answer, as the CPUs wind down)
   */
  readonly atStop: Observation | undefined;
  /** when the mechanism resumed the CPUs; undefined without a detection, a mechanism, or when recovery crashed or hung */
  readonly atRecovery: RecoveryObservation | undefined;
  /** the fault-free run of the same configuration, seed and run length, with its results streams (computed on first use) */
  golden(): GoldenReference;
  /** the record of the same scenario run again from boot (computed on first use) */
  rerun(): TrialRecord;
}

/** The steps that only stop the CPUs (they run the machine until every CPU has parked). */
const STOPPING_STEPS: readonly string[] = [stopCpus.name, nmiIpi.name];

export function systemOptionsOf(scenario: Scenario): SystemOptions {
  return { configuration: scenario.configuration, seed: scenario.seed, runLengthNs: scenario.runLengthNs, strictNetBench: scenario.strictNetBench, ...(scenario.pkeys === true ? { protectionKeys: true } : {}) };
}

export function trialSpecOf(scenario: Scenario): TrialSpec {
  return {
    configuration: scenario.configuration,
    seed: scenario.seed,
    trialIndex: 0,
    faultType: scenario.faults[0].target.type,
    runLengthNs: scenario.runLengthNs,
    strictNetBench: scenario.strictNetBench,
    ...(scenario.pkeys === true ? { pkeys: true } : {}),
    mechanism: scenario.mechanism,
    disabledSteps: scenario.disabledSteps,
    host: scenario.host,
    faults: scenario.faults,
  };
}

export function runScenario(scenario: Scenario): ScenarioRun {
  const spec = trialSpecOf(scenario);
  let atDetection: Observation | undefined;
  let atStop: Observation | undefined;
  let atRecovery: RecoveryObservation | undefined;
  let finalSystem: System | undefined;
  const { record } = runTrial(spec, {
    onDetected: (system) => (atDetection = observe(system)),
    onRecoveryStep: (step, system) => {
      if (atStop === undefined && !STOPPING_STEPS.includes(step)) atStop = observe(system);
    },
    onRecovered: (system) => (atRecovery = { ...observe(system), audit: audit(system.machine, system.hypervisor.layout), rewound: rewoundHypercalls(system) }),
    onFinished: (system) => (finalSystem = system),
  });
  if (finalSystem === undefined) throw new Error('runTrial did not report its final system');
  let rerun: TrialRecord | undefined;
  return {
    scenario,
    record,
    system: finalSystem,
    atDetection,
    atStop,
    atRecovery,
    golden: () => goldenReference(systemOptionsOf(scenario)),
    rerun: () => (rerun ??= runTrial(spec, { fromBoot: true }).record),
  };
}

function observe(system: System): Observation {
  return { timeNs: system.machine.nowNs, vms: vmStates(system), progress: guestProgress(system) };
}

/** A stable text key for a scenario (runs are cached by it). */
export function scenarioKey(scenario: Scenario): string {
  return JSON.stringify(scenario);
}
