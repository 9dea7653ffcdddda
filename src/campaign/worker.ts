/**
 * The worker-thread entry (piscina): runs one trial job and returns its campaign record.
 * Each worker keeps its own golden-run cache, so a worker pays for a golden run once.
 */
import { runTrial } from '../trial/trial.js';
import type { TrialJob } from './plan.js';
import type { CampaignRecord } from './summary.js';

export default function runJob(job: TrialJob): CampaignRecord {
  return { campaign: job.campaign, id: job.id, stage: job.stage, spec: job.spec, record: runTrial(job.spec).record };
}
