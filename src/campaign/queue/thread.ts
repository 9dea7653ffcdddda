/**
 * A queue worker's thread entry (piscina): a fault group's records, as the plain run's worker
 * entry gives them, and how long this thread waited for the group since it finished its last
 * one (its idle time, measured where it happens: the main thread cannot see the time a task's
 * result and the next task spend between the threads). Records are the same as a plain run's.
 */
import type { CampaignRecord } from '../../results/summary.js';
import type { TrialJob } from '../plan.js';
import runJobs from '../worker.js';

export interface TimedRecords {
  readonly records: CampaignRecord[];
  /** since this thread's previous group ended; undefined for its first */
  readonly waitedMs: number | undefined;
}

let previousEndMs: number | undefined;

export default function runTimedJobs(jobs: readonly TrialJob[]): TimedRecords {
  const startMs = performance.now();
  const waitedMs = previousEndMs === undefined ? undefined : startMs - previousEndMs;
  try {
    return { records: runJobs(jobs), waitedMs };
  } finally {
    previousEndMs = performance.now();
  }
}
