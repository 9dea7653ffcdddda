/**
 * The determinism self-check (as FoundationDB does it): a seeded sample of the faults a run
 * ran, about one in `every`, is run a second time in another thread (the main thread when the
 * first run was in a worker, a fresh worker thread when it was in the main thread) and the
 * records are compared byte for byte. A difference means a trial does not follow from its seed
 * alone: the run reports it with the commands to replay both, and exits non-zero.
 */
import { idHash } from '../results/merge.js';
import type { TrialJob } from './plan.js';
import type { CampaignRecord } from '../results/summary.js';

export const DEFAULT_SELF_CHECK_EVERY = 200;

export interface Mismatch {
  readonly id: string;
  /** replays the record the run stored */
  readonly storedReplay: string;
  /** runs the trial afresh */
  readonly freshReplay: string;
}

export interface SelfCheckResult {
  readonly checked: number;
  readonly mismatches: readonly Mismatch[];
}

/** Whether a fault (the jobs of one trial index) is in the sample: a hash of its identity and the seed. */
export function inSample(group: readonly TrialJob[], every: number): boolean {
  if (every <= 0 || group.length === 0) return false;
  const { spec } = group[0];
  const hash = idHash(`${spec.seed}/${spec.configuration}/${spec.faultType}/${spec.trialIndex}`) >>> 0;
  return hash % every === 0;
}

/** Compare the first run's records with the second run's, trial by trial. */
export function compareRuns(first: readonly CampaignRecord[], second: readonly CampaignRecord[], directory: string): Mismatch[] {
  const again = new Map(second.map((entry) => [entry.id, JSON.stringify(entry.record)]));
  return first
    .filter((entry) => again.get(entry.id) !== JSON.stringify(entry.record))
    .map((entry) => ({ id: entry.id, storedReplay: `ninelives replay ${directory} ${entry.id}`, freshReplay: entry.record.replay }));
}
