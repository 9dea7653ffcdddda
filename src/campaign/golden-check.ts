/**
 * A campaign whose run is shorter than a configuration's own must still let that configuration's
 * fault-free run finish its work: below that, every trial's guests fall short of the golden
 * results, and a trial would record the shortfall as silent data corruption (1AppVM-blk's
 * BlkBench needs some 55 ms). Checked before any work by running the golden run itself.
 */
import { getConfiguration } from '../guests/configurations.js';
import { runGolden, type GoldenReport } from '../trial/golden.js';
import { CampaignError, type Campaign } from './spec.js';

/** What keeps a fault-free run from being clean, in words; undefined when it is clean. */
export function goldenProblem(report: GoldenReport): string | undefined {
  const failed = report.guests.find((guest) => guest.verdict.kind !== 'correct');
  if (failed !== undefined && failed.verdict.kind !== 'correct') return `${failed.workload} ${failed.verdict.reason}`;
  if (report.detections.length > 0) return `the hypervisor detected ${report.detections[0]}`;
  if (!report.audit.clean) return 'its audit is not clean';
  return undefined;
}

/** Throws a CampaignError naming each configuration whose fault-free run at the campaign's length is not clean. */
export function checkGoldenRuns(campaign: Campaign, path: string): void {
  if (campaign.runLengthMs === undefined) return;
  const runLengthNs = campaign.runLengthMs * 1_000_000;
  const problems = campaign.configurations
    .filter((configuration) => runLengthNs < getConfiguration(configuration).runLengthNs)
    .flatMap((configuration) => {
      const problem = goldenProblem(runGolden({ configuration, seed: campaign.seed, runLengthNs }));
      return problem === undefined ? [] : [`${path}: runLengthMs: ${campaign.runLengthMs} ms is too short for ${configuration}: its fault-free run does not finish (${problem}); give a longer run (\`ninelives golden --config ${configuration} --run-length-ms N\` shows whether a length is)`];
    });
  if (problems.length > 0) throw new CampaignError(problems);
}
