/**
 * A trial's record: a plain JSON object, a discriminated union on its outcome, that names the
 * command replaying it.
 */
import type { FaultPlan, FaultType, Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';
import type { NominalHost } from '../recovery/cost-model.js';
import type { MechanismName } from '../recovery/mechanisms.js';
import type { StepWork } from '../recovery/step.js';

export interface TrialSpec {
  readonly configuration: string;
  /** the campaign seed: seeds the workloads, and with the index, the fault */
  readonly seed: number;
  readonly trialIndex: number;
  readonly faultType: FaultType;
  /** simulated run length; the configuration's default when absent */
  readonly runLengthNs?: number;
  readonly strictNetBench?: boolean;
  /** the hypervisor enforces its intended-sharing policy with protection keys (PUSh); absent: off */
  readonly pkeys?: boolean;
  /** what to do on detection; 'none' ends the trial there */
  readonly mechanism?: MechanismName;
  /** repair steps switched off, by name */
  readonly disabledSteps?: readonly string[];
  /** the host the recovery cost model prices (default 8 CPUs, 8 GiB) */
  readonly host?: NominalHost;
  /**
   * Explicit faults, in trigger order, instead of the one drawn from (seed, trialIndex): property
   * tests generate and shrink these. The first one's type must be `faultType`. Each later fault
   * lands `instructionsAfter` hypervisor instructions after its trigger time, or after the
   * previous fault if that is later; faults whose turn comes after a detection are not injected.
   */
  readonly faults?: readonly FaultPlan[];
  /** failover only: the epoch and heartbeat periods (defaults 30 ms and 30 ms) */
  readonly replication?: { readonly epochMs?: number; readonly heartbeatMs?: number };
  /** replay-failover only: checkpoint interval (default 100 ms), lock ordering (default log), timing adjustment (default on) */
  readonly replay?: ReplayFailoverSettings;
  /** 3AppVM-mt only: the key-value server's race rate and load imbalance (defaults 0.1 and 0) */
  readonly kvServer?: KvServerSettings;
}

export interface ReplayFailoverSettings {
  readonly checkpointMs?: number;
  readonly ordering?: 'log' | 'deterministic' | 'none';
  readonly timingAdjustment?: boolean;
}

export interface KvServerSettings {
  readonly raceRate?: number;
  readonly imbalance?: number;
}

export type RecoveryFailureCause =
  /** the recovery routine never got going: its entry, in the machine, crashed or hung */
  | 'recoveryNeverRan'
  | 'recoveryCrashed'
  | 'recoveryHung'
  | 'secondFailure'
  | 'hypervisorRunaway'
  | 'privVmFailed'
  | 'appVmFailed'
  | 'multipleVmFailures'
  | 'newVmFailed'
  | 'hypervisorInconsistent'
  /** failover: the corruption had reached a VM's state before detection and was checkpointed to the backup */
  | 'corruptionReplicated'
  /** replay-failover: the backup's replay produced a reply that differs from one already released */
  | 'replayDiverged';

export interface FailedVm {
  readonly domainId: number;
  readonly workload: string;
  readonly reason: string;
}

export interface RecoveryRecord {
  readonly result: 'recovered' | 'recoveryFailed';
  /** recovered with no AppVM failed */
  readonly noVmFailure: boolean;
  readonly failedVms: readonly FailedVm[];
  /** the first cause of a failed recovery */
  readonly cause: RecoveryFailureCause | null;
  readonly detail: string | null;
  readonly steps: readonly { readonly step: string; readonly work: StepWork; readonly ms: number }[];
  readonly recoveryLatencyMs: number;
  /** detection latency (simulated) + recovery latency (cost model) */
  readonly serviceInterruptionMs: number;
}

/** A fault after the first one of a trial with explicit faults; null injection: not injected. */
export interface LaterFault {
  readonly plan: FaultPlan;
  readonly injection: Injection | null;
}

/** What names a trial in every record, a harness error's too: its spec with the defaults filled in. */
export interface SpecFields {
  readonly configuration: string;
  readonly faultType: FaultType;
  readonly mechanism: MechanismName;
  readonly disabledSteps: readonly string[];
  readonly seed: number;
  readonly trialIndex: number;
  /** present (true) only for a hypervisor built with protection keys: records without them stay as they were */
  readonly pkeys?: true;
  /** failover's periods, when the spec sets them (records of other trials do not have the key) */
  readonly replication?: TrialSpec['replication'];
  /** replay-failover's options, when the spec sets any (records of other trials do not have the key) */
  readonly replayOptions?: ReplayFailoverSettings;
  /** the key-value server's options, when the spec sets any */
  readonly kvServer?: KvServerSettings;
}

export function specFields(spec: TrialSpec): SpecFields {
  return {
    configuration: spec.configuration,
    faultType: spec.faultType,
    mechanism: spec.mechanism ?? 'none',
    disabledSteps: spec.disabledSteps ?? [],
    seed: spec.seed,
    trialIndex: spec.trialIndex,
    ...(spec.pkeys === true ? { pkeys: true as const } : {}),
    ...(spec.replication === undefined ? {} : { replication: { ...spec.replication } }),
    ...(isEmpty(spec.replay) ? {} : { replayOptions: { ...spec.replay } }),
    ...(isEmpty(spec.kvServer) ? {} : { kvServer: { ...spec.kvServer } }),
  };
}

/** Absent, or an object whose every key is absent: the defaults, as a record without the key says. */
function isEmpty(settings: object | undefined): settings is undefined {
  return settings === undefined || Object.values(settings).every((value) => value === undefined);
}

interface TrialCommon extends SpecFields {
  readonly trialSeed: number;
  readonly plan: FaultPlan;
  /** present only when the spec gave more than one fault */
  readonly laterFaults?: readonly LaterFault[];
  readonly replay: string;
}

export type TrialRecord =
  | (TrialCommon & { readonly outcome: 'notInjected' })
  | (TrialCommon & {
      readonly outcome: 'nonManifested';
      readonly injection: Injection;
      /** the checkpoint time at which the state was found identical to the golden run's, if any */
      readonly matchedGoldenAtNs: number | null;
    })
  | (TrialCommon & {
      readonly outcome: 'sdc';
      readonly injection: Injection;
      /** the first symptom: a guest's failure, the audit's first finding, or a runaway */
      readonly cause: string;
    })
  | (TrialCommon & {
      readonly outcome: 'detected';
      readonly injection: Injection;
      readonly detection: Detection;
      readonly detectionLatencyNs: number;
      /** absent when the mechanism is 'none' */
      readonly recovery?: RecoveryRecord;
    });

export type TrialOutcome = TrialRecord['outcome'];
export const trialOutcomes: readonly TrialOutcome[] = ['notInjected', 'nonManifested', 'sdc', 'detected'];

export function replayCommand(spec: TrialSpec, defaultRunLengthNs: number): string {
  if (spec.faults !== undefined) return scenarioReplayCommand(spec, defaultRunLengthNs);
  const parts = ['ninelives inject', `--config ${spec.configuration}`, `--fault ${spec.faultType}`, `--seed ${spec.seed}`, `--trial ${spec.trialIndex}`];
  if (spec.runLengthNs !== undefined && spec.runLengthNs !== defaultRunLengthNs) parts.push(`--run-length-ms ${spec.runLengthNs / 1_000_000}`);
  if (spec.strictNetBench === true) parts.push('--strict-netbench');
  if (spec.pkeys === true) parts.push('--pkeys');
  if (spec.mechanism !== undefined && spec.mechanism !== 'none') parts.push(`--mechanism ${spec.mechanism}`);
  if (spec.disabledSteps !== undefined && spec.disabledSteps.length > 0) parts.push(`--disable ${spec.disabledSteps.join(',')}`);
  if (spec.host !== undefined) parts.push(`--cpus ${spec.host.cpus} --memory-gib ${spec.host.memoryGiB}`);
  if (spec.replication?.epochMs !== undefined) parts.push(`--epoch-ms ${spec.replication.epochMs}`);
  if (spec.replication?.heartbeatMs !== undefined) parts.push(`--heartbeat-ms ${spec.replication.heartbeatMs}`);
  if (spec.replay?.checkpointMs !== undefined) parts.push(`--checkpoint-ms ${spec.replay.checkpointMs}`);
  if (spec.replay?.ordering !== undefined) parts.push(`--ordering ${spec.replay.ordering}`);
  if (spec.replay?.timingAdjustment !== undefined) parts.push(`--timing-adjustment ${spec.replay.timingAdjustment ? 'on' : 'off'}`);
  if (spec.kvServer?.raceRate !== undefined) parts.push(`--race-rate ${spec.kvServer.raceRate}`);
  if (spec.kvServer?.imbalance !== undefined) parts.push(`--imbalance ${spec.kvServer.imbalance}`);
  return parts.join(' ');
}

/**
 * A trial with explicit faults is a property-test scenario: `ninelives check --scenario` runs
 * exactly it again (and checks the invariants on it).
 */
function scenarioReplayCommand(spec: TrialSpec, defaultRunLengthNs: number): string {
  const scenario = {
    configuration: spec.configuration,
    seed: spec.seed,
    runLengthNs: spec.runLengthNs ?? defaultRunLengthNs,
    mechanism: spec.mechanism ?? 'none',
    disabledSteps: spec.disabledSteps ?? [],
    faults: spec.faults,
    ...(spec.strictNetBench === true ? { strictNetBench: true } : {}),
    ...(spec.pkeys === true ? { pkeys: true } : {}),
    ...(spec.host === undefined ? {} : { host: spec.host }),
  };
  return `ninelives check --scenario '${JSON.stringify(scenario)}'`;
}
