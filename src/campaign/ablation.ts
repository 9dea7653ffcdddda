/**
 * Ablation: the same faults (the same trial seeds) recovered by a mechanism at each cumulative
 * stage of its repairs, from none to all, in the order the real system added them.
 */
import type { FaultType } from '../faults/fault.js';
import type { NominalHost } from '../recovery/cost-model.js';
import { ablationStages, mechanismNamed } from '../recovery/mechanisms.js';
import { wilson, type Interval } from '../results/statistics.js';
import { runTrial } from '../trial/trial.js';

export interface AblationSpec {
  readonly mechanism: 'microreset' | 'microreboot';
  readonly faultType: FaultType;
  readonly configuration: string;
  readonly trials: number;
  readonly seed: number;
  readonly host?: NominalHost;
}

export interface AblationRow {
  readonly stage: string;
  readonly disabledSteps: readonly string[];
  readonly trials: number;
  readonly detected: number;
  readonly recovered: number;
  readonly recoveryRate: Interval;
}

export type TrialProgress = (done: number, total: number) => void;

export function runAblation(spec: AblationSpec, onProgress: TrialProgress = () => undefined): AblationRow[] {
  const stages = ablationStages(mechanismNamed(spec.mechanism));
  const total = stages.length * spec.trials;
  let done = 0;
  return stages.map(({ stage, disabledSteps }) => {
    let detected = 0;
    let recovered = 0;
    for (let trialIndex = 0; trialIndex < spec.trials; trialIndex++) {
      const { record } = runTrial({ ...spec, trialIndex, disabledSteps });
      if (record.outcome === 'detected') {
        detected++;
        if (record.recovery?.result === 'recovered') recovered++;
      }
      onProgress(++done, total);
    }
    return { stage, disabledSteps, trials: spec.trials, detected, recovered, recoveryRate: wilson(recovered, detected) };
  });
}
