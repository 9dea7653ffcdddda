/**
 * Ablation: the same faults (the same trial seeds) recovered by a mechanism at each cumulative
 * stage of its repairs, from none to all, in the order the real system added them. An ablation
 * is a one-cell campaign whose mechanism has `ablation: true`: the campaign runner runs it, with
 * its workers, resumption and results directory, and its rows are read from the summary.
 */
import type { FaultType } from '../faults/fault.js';
import type { Interval } from '../results/statistics.js';
import type { Summary } from '../results/summary.js';
import { campaignOf, type Campaign } from './spec.js';

export interface AblationSpec {
  readonly mechanism: 'microreset' | 'microreboot';
  readonly faultType: FaultType;
  readonly configuration: string;
  /** trials per stage */
  readonly trials: number;
  readonly seed: number;
}

export interface AblationRow {
  readonly stage: string;
  readonly disabledSteps: readonly string[];
  readonly trials: number;
  readonly detected: number;
  readonly recovered: number;
  readonly recoveryRate: Interval;
}

export function ablationCampaign(spec: AblationSpec): Campaign {
  return campaignOf(
    {
      name: `ablate-${spec.mechanism}-${spec.faultType}-${spec.configuration}`,
      description: `Ablation of ${spec.mechanism} on ${spec.faultType} faults, ${spec.configuration}`,
      seed: spec.seed,
      configurations: [spec.configuration],
      faults: { [spec.faultType]: spec.trials },
      mechanisms: [{ name: spec.mechanism, ablation: true }],
    },
    'ablation',
  );
}

/** The rows of an ablation campaign's summary, one per stage, in stage order. */
export function ablationRows(campaign: Campaign, summary: Summary): AblationRow[] {
  return campaign.variants.flatMap((variant) => {
    const group = summary.groups.find((candidate) => candidate.mechanism === variant.mechanism && candidate.stage === variant.stage);
    if (group === undefined) return [];
    const { trials, recoveryRate } = group;
    return [{ stage: variant.stage, disabledSteps: variant.disabledSteps, trials, detected: group.outcomes.detected, recovered: group.recovery.success, recoveryRate }];
  });
}
