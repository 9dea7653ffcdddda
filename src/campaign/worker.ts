/**
 * The worker-thread entry (piscina): runs one fault under all its mechanism variants (the jobs of
 * one trial index) and returns their campaign records. Each worker keeps its own golden-run
 * cache, so a worker pays for a golden run once.
 */
import { runTrialVariants } from '../trial/trial.js';
import { afterTrialHook, beforeTrialHook } from './harness.js';
import type { TrialJob } from './plan.js';
import type { CampaignRecord } from '../results/summary.js';

export default function runJobs(jobs: readonly TrialJob[]): CampaignRecord[] {
  jobs.forEach(beforeTrialHook);
  const records = runTrialVariants(jobs.map((job) => job.spec));
  return jobs.map((job, index) => ({ campaign: job.campaign, id: job.id, stage: job.stage, spec: job.spec, record: afterTrialHook(job, records[index]) }));
}
