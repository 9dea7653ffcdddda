/**
 * ninelives as a library: property-test recovery invariants (check, scenarios, arbitraries,
 * the named invariants, and the pieces to write your own), and run single trials.
 *
 *   import fc from 'fast-check';
 *   import { check, defineInvariant, scenarioArbitrary, runScenario } from 'ninelives';
 */

// property testing of recovery invariants
export {
  DEFAULT_RUNS,
  DEFAULT_SEED,
  RUNS_ENVIRONMENT_VARIABLE,
  check,
  resolveInvariants,
  runsFromEnvironment,
  violationOf,
  type CheckOptions,
  type CheckProgress,
  type CheckResult,
  type InvariantFailed,
  type InvariantOutcome,
  type InvariantPassed,
} from './check/check.js';
export {
  defaultScenarioSpace,
  faultPlanArbitrary,
  faultTargetArbitrary,
  faultsArbitrary,
  scenarioArbitrary,
  scenarioSpace,
  triggerArbitrary,
  ScenarioSpaceError,
  type ScenarioSpace,
} from './check/arbitraries.js';
export { defineInvariant, type Invariant } from './check/invariant.js';
export {
  deterministic,
  goldenResults,
  invariantNamed,
  invariantNames,
  invariants,
  preservedVmState,
  recoveredAuditClean,
  retrySameEffect,
  UnknownInvariantError,
} from './check/invariants.js';
export {
  runScenario,
  systemOptionsOf,
  trialSpecOf,
  type Observation,
  type RecoveryObservation,
  type Scenario,
  type ScenarioRun,
} from './check/scenario.js';
export {
  changedParts,
  domainPages,
  guestProgress,
  resultsOf,
  vmStates,
  type DomainPages,
  type GuestProgress,
  type Results,
  type RewoundHypercall,
  type VmState,
} from './check/observe.js';
export { GoldenReference, goldenReference, type ResultsStep } from './check/reference.js';
export { parseScenario, replayArguments, ScenarioFormatError } from './check/replay.js';
export { describeSpace, formatFailure, formatInvariantList } from './check/report.js';
export { firstDifference } from './check/difference.js';

// errors: one list of stable codes, shared with the CLI
export { errorCodes, NinelivesError, type ErrorCode } from './errors.js';

// trials and the model underneath
export { runTrial, runTrialVariants, type TrialOptions, type TrialResult } from './trial/trial.js';
export type { FailedVm, LaterFault, RecoveryFailureCause, RecoveryRecord, TrialOutcome, TrialRecord, TrialSpec } from './trial/record.js';
export { runGolden, type GoldenReport, type GuestReport } from './trial/golden.js';
export { System, type SystemOptions } from './trial/system.js';
export { audit, describeAudit, type AuditFinding, type AuditInvariant, type AuditResult } from './hypervisor/audit.js';
export type { Detection } from './hypervisor/detection.js';
export { faultTypes, registerNames, type FaultPlan, type FaultTarget, type FaultType, type Injection, type Trigger } from './faults/fault.js';
export { planFault } from './faults/plan.js';
export { mechanismNames, mechanisms, UnknownStepError, type MechanismName } from './recovery/mechanisms.js';
export { isStepName, stepNames, type StepName } from './recovery/steps/index.js';
export type { Mechanism, MechanismStep, RecoveryStep } from './recovery/step.js';
export { configurationNames, getConfiguration, type Configuration } from './guests/configurations.js';

// triage: why recoveries failed (diagnosis, counterfactual re-runs, clusters) and trial timelines
export { diagnoseTrial, DEFAULT_BOUNDS, type FailedTrial, type TriageBounds } from './campaign/triage/diagnose.js';
export { triageDirectory, type TriageOptions, type TriageRun } from './campaign/triage/run.js';
export { clusterDiagnoses, signatureOf, stepRepairs } from './campaign/triage/cluster.js';
export { ddmin, type MinimalSet } from './campaign/triage/ddmin.js';
export type { Footprint, RegionDifference, RestoringSet, TrialDiagnosis, Triage, TriageCluster } from './results/triage.js';
export { recoverFromDetection, runToDetectionPoint, type DetectionPoint, type Rerun } from './trial/counterfactual.js';
export { trialTimeline, type TrialTimeline, type TimelineEvent, type TimelineSegment } from './trial/timeline.js';
