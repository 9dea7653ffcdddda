/**
 * A trial's record: a plain JSON object, a discriminated union on its outcome, that names the
 * command replaying it.
 */
import type { FaultPlan, FaultType, Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';

export interface TrialSpec {
  readonly configuration: string;
  /** the campaign seed: seeds the workloads, and with the index, the fault */
  readonly seed: number;
  readonly trialIndex: number;
  readonly faultType: FaultType;
  /** simulated run length; the configuration's default when absent */
  readonly runLengthNs?: number;
  readonly strictNetBench?: boolean;
}

interface TrialCommon {
  readonly configuration: string;
  readonly faultType: FaultType;
  readonly mechanism: 'none';
  readonly seed: number;
  readonly trialIndex: number;
  readonly trialSeed: number;
  readonly plan: FaultPlan;
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
    });

export type TrialOutcome = TrialRecord['outcome'];
export const trialOutcomes: readonly TrialOutcome[] = ['notInjected', 'nonManifested', 'sdc', 'detected'];

export function replayCommand(spec: TrialSpec, defaultRunLengthNs: number): string {
  const parts = ['ninelives inject', `--config ${spec.configuration}`, `--fault ${spec.faultType}`, `--seed ${spec.seed}`, `--trial ${spec.trialIndex}`];
  if (spec.runLengthNs !== undefined && spec.runLengthNs !== defaultRunLengthNs) parts.push(`--run-length-ms ${spec.runLengthNs / 1_000_000}`);
  if (spec.strictNetBench === true) parts.push('--strict-netbench');
  return parts.join(' ');
}
