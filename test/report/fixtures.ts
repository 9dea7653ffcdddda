/**
 * Hand-made trial records for report tests: small enough to count by hand, shaped exactly as
 * src/trial/record.ts declares them.
 */
import type { CampaignRecord } from '../../src/results/summary.js';
import type { FaultType, Injection } from '../../src/faults/fault.js';
import type { RecoveryFailureCause, RecoveryRecord, TrialRecord } from '../../src/trial/record.js';

type Mechanism = TrialRecord['mechanism'];

export interface TrialShape {
  readonly config?: string;
  readonly faultType?: FaultType;
  readonly mechanism?: Mechanism;
  readonly stage?: string;
  readonly disabledSteps?: readonly string[];
  readonly trialIndex: number;
}

function common(shape: TrialShape) {
  const config = shape.config ?? '1AppVM';
  const faultType = shape.faultType ?? 'register';
  const mechanism = shape.mechanism ?? 'microreset';
  return {
    configuration: config,
    faultType,
    mechanism,
    disabledSteps: shape.disabledSteps ?? [],
    seed: 42,
    trialIndex: shape.trialIndex,
    trialSeed: 1000 + shape.trialIndex,
    plan: { trigger: { timeNs: 5_000_000, instructionsAfter: 123 }, target: { type: 'register' as const, register: 'r3' as const, bit: 5 } },
    replay: `ninelives inject --config ${config} --fault ${faultType} --seed 42 --trial ${shape.trialIndex}${mechanism === 'none' ? '' : ` --mechanism ${mechanism}`}`,
  };
}

export const injection: Injection = {
  cpu: 2,
  timeNs: 5_012_345,
  instructionCount: 987_654,
  programCounter: 0x1a40,
  instruction: 'ld r3, [r4+2] <schedule+12>',
  location: { type: 'register', register: 'r3', bit: 5, before: 0x10, after: 0x30 },
};

function entry(shape: TrialShape, record: TrialRecord): CampaignRecord {
  const stage = shape.stage ?? 'all';
  const spec = {
    configuration: record.configuration,
    seed: record.seed,
    trialIndex: record.trialIndex,
    faultType: record.faultType,
    mechanism: record.mechanism,
    disabledSteps: record.disabledSteps,
  };
  return { campaign: 'report-test', id: `${record.configuration}/${record.faultType}/${record.mechanism}/${stage}/${record.trialIndex}`, stage, spec, record };
}

export function notInjected(shape: TrialShape): CampaignRecord {
  return entry(shape, { ...common(shape), outcome: 'notInjected' });
}

export function nonManifested(shape: TrialShape): CampaignRecord {
  return entry(shape, { ...common(shape), outcome: 'nonManifested', injection, matchedGoldenAtNs: 10_000_000 });
}

export function sdc(shape: TrialShape, cause = 'unixbench: wrong mmu_update result'): CampaignRecord {
  return entry(shape, { ...common(shape), outcome: 'sdc', injection, cause });
}

export interface RecoveryShape {
  readonly recovered: boolean;
  readonly noVmFailure?: boolean;
  readonly cause?: RecoveryFailureCause;
  readonly serviceInterruptionMs: number;
  readonly detector?: 'hang' | 'assertion' | 'pageFault';
}

export function detected(shape: TrialShape, recovery?: RecoveryShape): CampaignRecord {
  const detectionLatencyNs = 2_000_000;
  const detector = recovery?.detector ?? 'pageFault';
  const detection =
    detector === 'hang'
      ? { detector: 'hang' as const, cpu: 2, programCounter: 0x1a40, timeNs: 7_012_345 }
      : detector === 'assertion'
        ? { detector: 'assertion' as const, assertion: 'irq_count == 0', cpu: 2, programCounter: 0x1a40, timeNs: 7_012_345 }
        : { detector: 'exception' as const, exception: 'pageFault' as const, cpu: 2, programCounter: 0x1a40, address: 0, timeNs: 7_012_345 };
  const record: RecoveryRecord | undefined =
    recovery === undefined
      ? undefined
      : {
          result: recovery.recovered ? 'recovered' : 'recoveryFailed',
          noVmFailure: recovery.recovered && (recovery.noVmFailure ?? true),
          failedVms: recovery.recovered && recovery.noVmFailure !== false ? [] : [{ domainId: 1, workload: 'unixbench', reason: 'wrong result' }],
          cause: recovery.recovered ? null : (recovery.cause ?? 'recoveryHung'),
          detail: recovery.recovered ? null : 'the "second" failure, after recovery',
          steps: [{ step: 'discard-threads', work: { cpus: 4 }, ms: 0.5 }],
          recoveryLatencyMs: recovery.serviceInterruptionMs - detectionLatencyNs / 1e6,
          serviceInterruptionMs: recovery.serviceInterruptionMs,
        };
  return entry(shape, { ...common(shape), outcome: 'detected', injection, detection, detectionLatencyNs, ...(record === undefined ? {} : { recovery: record }) });
}
