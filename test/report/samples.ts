/**
 * Small campaigns whose every number can be checked by hand.
 */
import type { CampaignRecord } from '../../src/results/summary.js';
import { detected, nonManifested, notInjected, sdc, type TrialShape } from './fixtures.js';

/**
 * 1AppVM, register faults, trials 0-9 under microreset and microreboot (paired):
 * 0 not injected, 1-2 non-manifested, 3 SDC, 4-9 detected (6 of 9 injected).
 * - microreset: 4-8 recovered (8 with an AppVM failed), 9 failed (recoveryHung);
 *   SI 20, 22, 24, 30, 26, 40 ms -> p50 24, p90 40, max 40; rate 5/6, no VM failure 4/6.
 * - microreboot: 4 and 6-9 recovered, 5 failed (appVmFailed);
 *   SI 690, 700, 705, 710, 720, 730 ms -> p50 705, p90 730, max 730.
 * Paired: both recovered 4, 6, 7, 8; only microreboot 9; only microreset 5.
 */
export function pairedCampaign(): CampaignRecord[] {
  const entries: CampaignRecord[] = [];
  const resetInterruptions = [20, 22, 24, 30, 26, 40];
  const rebootInterruptions = [690, 700, 705, 710, 720, 730];
  for (let trialIndex = 0; trialIndex < 10; trialIndex++) {
    for (const mechanism of ['microreset', 'microreboot'] as const) {
      const shape: TrialShape = { mechanism, trialIndex };
      if (trialIndex === 0) entries.push(notInjected(shape));
      else if (trialIndex <= 2) entries.push(nonManifested(shape));
      else if (trialIndex === 3) entries.push(sdc(shape));
      else if (mechanism === 'microreset') {
        const serviceInterruptionMs = resetInterruptions[trialIndex - 4];
        if (trialIndex === 9) entries.push(detected(shape, { recovered: false, cause: 'recoveryHung', serviceInterruptionMs, detector: 'hang' }));
        else entries.push(detected(shape, { recovered: true, noVmFailure: trialIndex !== 8, serviceInterruptionMs }));
      } else {
        const serviceInterruptionMs = rebootInterruptions[trialIndex - 4];
        if (trialIndex === 5) entries.push(detected(shape, { recovered: false, cause: 'appVmFailed', serviceInterruptionMs, detector: 'assertion' }));
        else entries.push(detected(shape, { recovered: true, serviceInterruptionMs }));
      }
    }
  }
  return entries;
}

/**
 * Microreset's cumulative stages on failstop faults, 4 trials each, all detected:
 * '0 no repairs' recovers 1 of 4, '1 + clear-irq-count' 2, '2 + release-heap-locks' 4.
 */
export function ablationCampaign(): CampaignRecord[] {
  const stages = [
    { stage: '0 no repairs', recovered: 1 },
    { stage: '1 + clear-irq-count', recovered: 2 },
    { stage: '2 + release-heap-locks', recovered: 4 },
  ];
  const entries: CampaignRecord[] = [];
  for (const { stage, recovered } of stages) {
    for (let trialIndex = 0; trialIndex < 4; trialIndex++) {
      const shape: TrialShape = { faultType: 'failstop', mechanism: 'microreset', stage, trialIndex };
      entries.push(detected(shape, trialIndex < recovered ? { recovered: true, serviceInterruptionMs: 21 } : { recovered: false, cause: 'secondFailure', serviceInterruptionMs: 23 }));
    }
  }
  return entries;
}

/** Nothing detected: no rates, no service interruption, no comparisons. */
export function undetectedCampaign(): CampaignRecord[] {
  return [0, 1, 2, 3].flatMap((trialIndex) => [
    notInjected({ trialIndex, mechanism: 'microreset', faultType: 'memory' }),
    nonManifested({ trialIndex: trialIndex + 4, mechanism: 'microreset', faultType: 'memory' }),
    detected({ trialIndex: trialIndex + 8, mechanism: 'none', faultType: 'code' }),
  ]);
}
