/**
 * The worker-thread entry (piscina) for triage: diagnoses one failed trial (or one SDC). Each worker keeps its
 * own golden-run cache, as a campaign's workers do.
 */
import { diagnoseSdc, diagnoseTrial, type FailedTrial, type SilentTrial, type TriageBounds } from './diagnose.js';
import type { TrialDiagnosis } from '../../results/triage.js';

export interface TriageJob {
  readonly trial: FailedTrial | SilentTrial;
  readonly bounds: TriageBounds;
}

export default function diagnoseJob(job: TriageJob): TrialDiagnosis {
  return 'kind' in job.trial ? diagnoseSdc(job.trial, job.bounds) : diagnoseTrial(job.trial, job.bounds);
}
