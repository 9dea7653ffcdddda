/**
 * Commands over a results directory: `merge` combines shards, `report` regenerates the summary
 * and reports from trials.jsonl alone, `replay` re-runs one trial and checks it reproduces.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { MergeConflictError, MixedCampaignsError, planMerge, writeMerged, type MergePlan, type ShardResults } from '../../results/merge.js';
import { existingTrialsFile, finishResults, TRIALS_FILE } from '../../results/directory.js';
import { writeDirectoryReports } from '../../report/write.js';
import { STOP_RULE_FILE } from '../../results/stopping.js';
import { ResultsFileError, firstRecord, readRecords } from '../../results/store.js';
import type { CampaignRecord } from '../../results/summary.js';
import { readTriage } from '../../results/triage.js';
import { formatTrace } from '../../trial/trace.js';
import { runTrial } from '../../trial/trial.js';
import { describePartial, manifestOf } from '../../results/result-facts.js';
import { storedSpecProblem } from '../../campaign/stored-spec.js';
import { checkShards, ShardMismatchError, type ShardCheck } from '../../results/shards.js';
import { CommandFailure, errorLine, InputError, UsageError } from '../errors.js';
import { claimOrExplain } from './run.js';
import type { CliIo } from '../io.js';
import { refuseNewFileTarget } from '../new-file.js';
import { writeTimeline } from '../timeline.js';
import { shellCommand } from '../shell.js';

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
    .option('--force', 'write the reports even where the directory holds other files than a ninelives result')
    .action((directory: string, options: { force?: boolean }) =>
      explainResultsFile(async () => {
        const path = existingTrialsFile(directory);
        const first = firstRecord(path);
        if (first === undefined) throw noTrials(path);
        claimOrExplain(directory, { campaign: first.campaign, force: options.force, named: 'the results directory' });
        const summary = finishResults(directory, first.campaign, first.record.seed);
        const triage = readTriage(directory);
        await writeDirectoryReports(directory, summary, { title: first.campaign, generatedBy: shellCommand(['ninelives', 'report', directory]), ...(triage === undefined ? {} : { triage }) });
        io.stdout.write(`report: ${join(directory, 'report.md')} (also report.html, summary.json, trials.csv)\n`);
        if (summary.partial !== undefined) io.stderr.write(errorLine(`${describePartial(summary.partial)}; the reports say so`));
        if (summary.ninelives === 'mixed') io.stderr.write(errorLine(`note: the records of ${path} were made by more than one version of ninelives (summary.json says "mixed"): their numbers may not be comparable`));
        const planned = summary.stopping === undefined ? manifestOf(directory)?.planned : undefined;
        if (planned !== undefined && summary.trials > planned) io.stderr.write(errorLine(`note: ${path} holds ${summary.trials} trials, more than the ${planned} its manifest (ninelives.json) plans: the two are not of one run`));
      }),
    );

  program
    .command('merge')
    .description('combine the results of shards into one results directory, as if run at once')
    .argument('<out>', 'output directory')
    .argument('<shards...>', 'shard result directories')
    .option('--force', 'write into an output directory that holds other files than this campaign\'s results')
    .action((out: string, shards: string[], options: { force?: boolean }) =>
      explainResultsFile(async () => {
        const inputs = shards.map((directory) => ({ directory, path: existingTrialsFile(directory) }));
        // the merged result beside the shards, never in one (where it is taken for the shard's own files)
        const within = shards.find((directory) => resolve(out).startsWith(resolve(directory) + sep));
        if (within !== undefined) throw new UsageError('usage.resultsExist', `${out} is inside shard ${within}: merge into a directory of its own`);
        const check = explainShards(inputs, out);
        // merging replaces OUT's trials: results already there (a finished run, a copy of a shard) are not thrown away
        if (existsSync(join(out, TRIALS_FILE))) throw new UsageError('usage.resultsExist', `${join(out, TRIALS_FILE)} exists: merge writes a new result and never over one; merge into a new directory`);
        const plan = mergePlan(inputs);
        if (plan.campaign === undefined) throw noTrials(plan.shards[0].path);
        claimOrExplain(out, { campaign: plan.campaign.name, force: options.force, named: 'the merge output directory' }, { campaign: plan.campaign.name, seed: plan.campaign.seed, ...check.manifest });
        writeMerged(plan, join(out, TRIALS_FILE));
        // a campaign that stops at a precision says so in its merged summary too
        const stopRule = shards.map((directory) => join(directory, STOP_RULE_FILE)).find((path) => existsSync(path));
        if (stopRule !== undefined) copyFileSync(stopRule, join(out, STOP_RULE_FILE));
        const summary = finishResults(out, plan.campaign.name, plan.campaign.seed);
        await writeDirectoryReports(out, summary, { title: plan.campaign.name, generatedBy: shellCommand(['ninelives', 'merge', out, ...shards]) });
        io.stdout.write(`merged ${plan.trials} trials from ${shards.length} shards; report: ${join(out, 'report.md')}\n`);
        const missing = check.missingShards.length === 0 ? [] : [`shard${check.missingShards.length === 1 ? '' : 's'} ${check.missingShards.join(', ')} of ${check.shardCount} missing`];
        const partial = summary.partial === undefined ? [] : [describePartial(summary.partial)];
        if (missing.length + partial.length > 0) throw new CommandFailure('merge.partial', `the merged result is not complete: ${[...missing, ...partial].join('; ')}`);
      }),
    );

  program
    .command('replay')
    .description('re-run one trial of a results directory and check that it reproduces its stored record')
    .argument('<dir>', 'results directory')
    .argument('<trial-id>', 'the trial\'s id, e.g. 3AppVM/register/microreset/all/12')
    .option('--trace', 'print the instructions around the injection and the path to detection')
    .option('--timeline <file.html>', 'also write the trial\'s timeline page (lanes per CPU, fault, detection, recovery steps, guest events)')
    .action((directory: string, id: string, options: { trace?: boolean; timeline?: string }) =>
      explainResultsFile(async () => {
        if (options.timeline !== undefined) refuseNewFileTarget('--timeline', options.timeline);
        const path = existingTrialsFile(directory);
        const stored = findRecord(path, id);
        if (stored === undefined) throw new UsageError('usage.noTrial', `no trial "${id}" in ${path}`);
        const problem = storedSpecProblem(stored.spec);
        if (problem !== undefined) throw new InputError('input.results', [`${path}: trial ${id}: ${problem}`]);
        const { record, trace } = runTrial(stored.spec, { trace: options.trace });
        io.stdout.write(JSON.stringify(record, null, 2) + '\n');
        if (trace !== undefined) io.stdout.write(formatTrace(trace) + '\n');
        if (JSON.stringify(record) !== JSON.stringify(stored.record)) {
          throw new CommandFailure('replay.diverged', `trial ${id} did not reproduce its stored record`);
        }
        io.stdout.write(`reproduced: the record equals the stored one\n`);
        if (options.timeline !== undefined) {
          await writeTimeline(stored.spec, options.timeline, id);
          io.stdout.write(`timeline: ${options.timeline}\n`);
        }
      }),
    );
}

function findRecord(path: string, id: string): CampaignRecord | undefined {
  for (const record of readRecords(path)) if (record.id === id) return record;
  return undefined;
}

/** The shards' manifests and first records checked against each other, before any records are read. */
function explainShards(inputs: readonly ShardResults[], out: string): ShardCheck {
  try {
    return checkShards(inputs, out);
  } catch (error) {
    if (error instanceof ShardMismatchError) throw new UsageError('usage.mixedShards', error.message);
    throw error;
  }
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
