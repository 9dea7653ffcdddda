/**
 * Commands over a results directory: `merge` combines shards, `report` regenerates the summary
 * and reports from trials.jsonl alone, `replay` re-runs one trial and checks it reproduces.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { MergeConflictError, MixedCampaignsError, planMerge, writeMerged, type MergePlan, type ShardResults } from '../../results/merge.js';
import { TRIALS_FILE, finishResults } from '../../results/directory.js';
import { writeDirectoryReports } from '../../report/write.js';
import { STOP_RULE_FILE } from '../../results/stopping.js';
import { ResultsFileError, firstRecord, readRecords } from '../../results/store.js';
import type { CampaignRecord } from '../../results/summary.js';
import { formatTrace } from '../../trial/trace.js';
import { runTrial } from '../../trial/trial.js';
import { CommandFailure, InputError, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';

function resultsFile(directory: string): string {
  const path = join(directory, TRIALS_FILE);
  if (!existsSync(path)) throw new UsageError('usage.noResults', `no ${TRIALS_FILE} in ${directory}`);
  return path;
}

function noTrials(path: string): UsageError {
  return new UsageError('usage.noResults', `${path} holds no trials`);
}

/** A results file with a line that is not a trial record is the user's input: say which line. */
async function explainResultsFile<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ResultsFileError) throw new InputError('input.results', [error.message]);
    throw error;
  }
}

export function registerResultsCommands(program: Command, io: CliIo): void {
  program
    .command('report')
    .description('regenerate summary.json, report.md, report.html and trials.csv from a directory\'s trials.jsonl')
    .argument('<dir>', 'results directory')
    .action((directory: string) =>
      explainResultsFile(async () => {
        const path = resultsFile(directory);
        const first = firstRecord(path);
        if (first === undefined) throw noTrials(path);
        const summary = finishResults(directory, first.campaign, first.record.seed);
        await writeDirectoryReports(directory, summary, { title: first.campaign, generatedBy: `ninelives report ${directory}` });
        io.stdout.write(`report: ${join(directory, 'report.md')} (also report.html, summary.json, trials.csv)\n`);
      }),
    );

  program
    .command('merge')
    .description('combine the results of shards into one results directory, as if run at once')
    .argument('<out>', 'output directory')
    .argument('<shards...>', 'shard result directories')
    .action((out: string, shards: string[]) =>
      explainResultsFile(async () => {
        const plan = mergePlan(shards.map((directory) => ({ directory, path: resultsFile(directory) })));
        if (plan.campaign === undefined) throw noTrials(plan.shards[0].path);
        mkdirSync(out, { recursive: true });
        writeMerged(plan, join(out, TRIALS_FILE));
        // a campaign that stops at a precision says so in its merged summary too
        const stopRule = shards.map((directory) => join(directory, STOP_RULE_FILE)).find((path) => existsSync(path));
        if (stopRule !== undefined) copyFileSync(stopRule, join(out, STOP_RULE_FILE));
        const summary = finishResults(out, plan.campaign.name, plan.campaign.seed);
        await writeDirectoryReports(out, summary, { title: plan.campaign.name, generatedBy: `ninelives merge ${out} ${shards.join(' ')}` });
        io.stdout.write(`merged ${plan.trials} trials from ${shards.length} shards; report: ${join(out, 'report.md')}\n`);
      }),
    );

  program
    .command('replay')
    .description('re-run one trial of a results directory and check that it reproduces its stored record')
    .argument('<dir>', 'results directory')
    .argument('<trial-id>', 'the trial\'s id, e.g. 3AppVM/register/microreset/all/12')
    .option('--trace', 'print the instructions around the injection and the path to detection')
    .action((directory: string, id: string, options: { trace?: boolean }) =>
      explainResultsFile(async () => {
        const path = resultsFile(directory);
        const stored = findRecord(path, id);
        if (stored === undefined) throw new UsageError('usage.noTrial', `no trial "${id}" in ${path}`);
        const { record, trace } = runTrial(stored.spec, { trace: options.trace });
        io.stdout.write(JSON.stringify(record, null, 2) + '\n');
        if (trace !== undefined) io.stdout.write(formatTrace(trace) + '\n');
        if (JSON.stringify(record) !== JSON.stringify(stored.record)) {
          throw new CommandFailure('replay.diverged', `trial ${id} did not reproduce its stored record`);
        }
        io.stdout.write(`reproduced: the record equals the stored one\n`);
      }),
    );
}

function findRecord(path: string, id: string): CampaignRecord | undefined {
  for (const record of readRecords(path)) if (record.id === id) return record;
  return undefined;
}

/** The shards checked against each other, their failures as the CLI's errors. */
function mergePlan(shards: readonly ShardResults[]): MergePlan {
  try {
    return planMerge(shards);
  } catch (error) {
    if (error instanceof MergeConflictError) throw new CommandFailure('merge.conflict', error.message);
    if (error instanceof MixedCampaignsError) throw new UsageError('usage.mixedCampaigns', error.message);
    throw error;
  }
}
