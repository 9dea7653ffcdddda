/**
 * `ninelives run`: the main job. Runs a campaign file and writes its results and reports.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ResultsExistError, runCampaign, type RunProgress, type RunResult } from '../../campaign/runner.js';
import { CampaignError, loadCampaign, type Campaign } from '../../campaign/spec.js';
import type { Shard } from '../../campaign/plan.js';
import { ResultsFileError } from '../../campaign/store.js';
import type { Summary } from '../../campaign/summary.js';
import { chooseWorkers, MAX_SHARDS, MAX_TRIALS, MAX_WORKERS_PER_CORE, plannedFaultCount, plannedTrialCount, type PlanSize } from '../../campaign/limits.js';
import { campaignFingerprint, type Manifest } from '../../campaign/manifest.js';
import { claimOutputDirectory, OutputDirectoryError, type Claim } from '../../campaign/output-directory.js';
import { currentProvenance } from '../../campaign/provenance.js';
import { DEFAULT_SELF_CHECK_EVERY } from '../../campaign/self-check.js';
import { CliError, CommandFailure, errorLine, InputError, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';
import { createProgress } from '../progress.js';

interface RunCommandOptions {
  readonly out?: string;
  readonly workers?: number;
  readonly trials?: number;
  readonly resume?: boolean;
  readonly shard?: Shard;
  readonly force?: boolean;
  readonly selfCheckEvery?: number;
}

export const EXIT_INTERRUPTED = 130;

/** SIGINT or SIGTERM stopped the run: the finished trials are kept and the message says how to resume. */
class RunInterrupted extends CliError {
  readonly code = 'run.interrupted';
  readonly exitCode = EXIT_INTERRUPTED;
}

export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('run a fault-injection campaign and write trials.jsonl, summary.json, report.md, report.html and trials.csv')
    .argument('<campaign>', 'campaign file (YAML), e.g. campaigns/quick.yaml')
    .option('--out <dir>', 'output directory (default: reports/<campaign name>/)')
    .option('--workers <n>', `worker threads (default: one per core, here ${availableParallelism()}; at most ${MAX_WORKERS_PER_CORE} per core, and no more than the faults to inject)`, parseInteger('--workers', 1, 4096))
    .option('--trials <n>', 'trials per fault type, overriding the campaign file', parseInteger('--trials', 1, MAX_TRIALS))
    .option('--resume', 'run only the trials missing from an interrupted run in the output directory')
    .option('--shard <i/n>', 'run shard i of n (1-based); combine shards with `ninelives merge`', parseShard)
    .option('--force', 'write into an output directory that holds other files than this campaign\'s results')
    .option('--self-check-every <n>', `run about one fault in n a second time in another thread and compare the records, 0 for never (default: ${DEFAULT_SELF_CHECK_EVERY})`, parseInteger('--self-check-every', 0, MAX_TRIALS))
    .action(async (path: string, options: RunCommandOptions, command: Command) => {
      const campaign = loadOrExplain(path);
      const size = planSize(campaign, options);
      const outDirectory = options.out ?? defaultOut(campaign, options.shard);
      // the arguments runCli was given (the program has no options of its own, so its args are all
      // of them), not process.argv: the CLI may run inside another program, such as a test
      const commandLine = ['ninelives', ...(command.parent?.args ?? ['run', path])].join(' ');
      claimOrExplain(outDirectory, { campaign: campaign.name, force: options.force, named: options.out === undefined ? 'the output directory' : '--out' });
      const manifest = {
        campaign: campaign.name,
        seed: campaign.seed,
        ...(campaign.description === undefined ? {} : { description: campaign.description }),
        planned: plannedTrialCount(size, options.trials, options.shard),
        ...(options.shard === undefined ? {} : { shard: options.shard }),
        campaignTrials: plannedTrialCount(size, options.trials),
        fingerprint: campaignFingerprint(campaign, options.trials),
        ninelives: currentProvenance(),
      };
      const choice = chooseWorkers(options.workers ?? availableParallelism(), plannedFaultCount(size, options.trials, options.shard), availableParallelism());
      if (choice.note !== undefined) io.stderr.write(errorLine(`note: ${choice.note}`));
      await runWithProgress(campaign, { ...options, workers: choice.workers, outDirectory, command: commandLine, manifest }, io);
    });
}

/** The campaign's size, checked against the limits with --trials and --shard applied. */
function planSize(campaign: Campaign, options: RunCommandOptions): PlanSize {
  const size = { configurations: campaign.configurations.length, faults: Object.values(campaign.faults), variants: campaign.variants.length };
  const trials = plannedTrialCount(size, options.trials);
  if (trials > MAX_TRIALS) throw new UsageError('usage.tooManyTrials', `--trials ${options.trials} plans ${trials} trials, more than ${MAX_TRIALS}`);
  if (plannedTrialCount(size, options.trials, options.shard) === 0) {
    throw new UsageError('usage.invalidShard', `--shard ${options.shard?.index}/${options.shard?.count} selects no trials: the campaign has ${Math.max(...size.faults.map((count) => options.trials ?? count))} trials per fault type at most`);
  }
  return size;
}

/** The output directory checked (see output-directory.ts) and created, or one line and exit 2. */
export function claimOrExplain(directory: string, claim: Claim, manifest?: Omit<Manifest, 'tool'>): Manifest | undefined {
  try {
    return claimOutputDirectory(directory, claim, manifest);
  } catch (error) {
    if (error instanceof OutputDirectoryError) throw new UsageError('usage.outputDirectory', error.message);
    throw error;
  }
}

export function loadOrExplain(path: string): Campaign {
  try {
    return loadCampaign(path);
  } catch (error) {
    if (error instanceof CampaignError) throw new InputError('input.campaign', error.problems);
    throw error;
  }
}

function defaultOut(campaign: Campaign, shard: Shard | undefined): string {
  const base = join('reports', campaign.name);
  return shard === undefined ? base : join(base, `shard-${shard.index}-of-${shard.count}`);
}

export function parseShard(text: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (match === null || count < 1 || index < 1 || index > count || count > MAX_SHARDS) {
    throw new UsageError('usage.invalidShard', `--shard expects i/n with 1 <= i <= n <= ${MAX_SHARDS}, got "${text}"`);
  }
  return { index, count };
}

async function runWithProgress(campaign: Campaign, options: RunCommandOptions & { workers: number; outDirectory: string; command: string; manifest: Omit<Manifest, 'tool'> }, io: CliIo): Promise<void> {
  const progress = createProgress(io, campaign.name);
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let result: RunResult;
  try {
    result = await runCampaign(campaign, {
      outDirectory: options.outDirectory,
      workers: options.workers,
      trials: options.trials,
      resume: options.resume ?? false,
      shard: options.shard,
      command: options.command,
      signal: controller.signal,
      manifest: options.manifest,
      selfCheckEvery: options.selfCheckEvery,
      onProgress: (state) => progress.update(state.done, state.total, describeRates(state)),
    });
  } catch (error) {
    if (error instanceof ResultsExistError) throw new UsageError('usage.resultsExist', error.message);
    if (error instanceof ResultsFileError) throw new InputError('input.results', [error.message]);
    throw error;
  } finally {
    progress.stop();
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
  // thrown, not process.exitCode: runCli returns the exit code, and main.ts sets it from that
  if (result.kind === 'interrupted') throw new RunInterrupted(`interrupted after ${result.done}/${result.total} trials; continue with: ${resumeCommand(options.command)}`);
  io.stdout.write(describeCompletion(result.summary, options.outDirectory, result.ran));
  reportProblems(result, options.outDirectory, io);
}

/** Harness errors and determinism mismatches: each said on stderr, and the run fails. */
function reportProblems(result: Extract<RunResult, { kind: 'completed' }>, directory: string, io: CliIo): void {
  const { mismatches, checked } = result.selfCheck;
  for (const mismatch of mismatches) {
    io.stderr.write(errorLine(`determinism check: trial ${mismatch.id} gave a different record when run again in another thread; replay the stored one with \`${mismatch.storedReplay}\` and run it afresh with \`${mismatch.freshReplay}\``));
  }
  const errors = result.summary.harnessErrors ?? 0;
  const problems = [
    ...(errors > 0 ? [`${errors} trial${errors === 1 ? '' : 's'} failed in the harness (outcome harnessError in ${join(directory, 'trials.jsonl')})`] : []),
    ...(mismatches.length > 0 ? [`${mismatches.length} of ${checked} re-run faults did not reproduce`] : []),
  ];
  if (problems.length > 0) throw new CommandFailure('run.errors', `the campaign had errors: ${problems.join('; ')}`);
}

function resumeCommand(command: string): string {
  return command.includes('--resume') ? command : `${command} --resume`;
}

function describeRates(state: RunProgress): string {
  return Object.entries(state.recovery)
    .map(([mechanism, counts]) => `${mechanism} ${counts.attempted === 0 ? '-' : ((100 * counts.recovered) / counts.attempted).toFixed(1) + '%'}`)
    .join(' ');
}

function describeCompletion(summary: Summary, directory: string, ran: number): string {
  const lines = [`ran ${ran} trials (${summary.trials} in the results); recovery rates (95% Wilson):`];
  for (const group of summary.groups) {
    const rate = group.recoveryRate;
    const text = Number.isNaN(rate.value) ? 'no recoveries attempted' : `${(100 * rate.value).toFixed(1)}% [${(100 * rate.low).toFixed(1)}, ${(100 * rate.high).toFixed(1)}] of ${group.outcomes.detected} detected`;
    lines.push(`  ${group.config} ${group.faultType.padEnd(8)} ${group.mechanism.padEnd(11)} ${group.stage.padEnd(12)} ${text}`);
  }
  lines.push(`report: ${join(directory, 'report.md')} (also report.html, summary.json, trials.csv, trials.jsonl)`);
  return lines.join('\n') + '\n';
}
