/**
 * The worker-thread entry (piscina) for triage: diagnoses one failed trial. Each worker keeps its
 * own golden-run cache, as a campaign's workers do.
 */
import { diagnoseTrial, type FailedTrial, type TriageBounds } from './diagnose.js';
import type { TrialDiagnosis } from '../../results/triage.js';

export interface TriageJob {
  readonly trial: FailedTrial;
  readonly bounds: TriageBounds;
}

export default function diagnoseJob(job: TriageJob): TrialDiagnosis {
  return diagnoseTrial(job.trial, job.bounds);
}
