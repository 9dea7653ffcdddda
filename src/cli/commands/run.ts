/**
 * `ninelives run`: the main job. Runs a campaign file and writes its results and reports. The
 * steps every campaign run takes (`ablate` runs one too) are here: the plan checked against the
 * limits, the output directory claimed and given its manifest, the workers capped, the run
 * interruptible, the reports written, and harness errors or determinism mismatches failing it.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { chooseWorkers, MAX_SHARDS, MAX_TRIALS, MAX_WORKERS_PER_CORE, plannedFaultCount, plannedTrialCount } from '../../campaign/limits.js';
import type { Shard } from '../../campaign/plan.js';
import { planSizeOf, runManifest } from '../../campaign/run-manifest.js';
import { ResultsExistError, runCampaign, type RunProgress, type RunResult } from '../../campaign/runner.js';
import { DEFAULT_SELF_CHECK_EVERY, type SelfCheckResult } from '../../campaign/self-check.js';
import { shardingRefusal } from '../../campaign/stopping.js';
import { CampaignError, loadCampaign, type Campaign } from '../../campaign/spec.js';
import { checkGoldenRuns } from '../../campaign/golden-check.js';
import { isSystemIoFailure } from '../../errors.js';
import type { Manifest } from '../../results/manifest.js';
import { checkOutputDirectory, claimOutputDirectory, OutputDirectoryError, type Claim } from '../../results/output-directory.js';
import { ResultsFileError } from '../../results/store.js';
import type { Summary } from '../../results/summary.js';
import { writeDirectoryReports } from '../../report/write.js';
import { CommandFailure, errorLine, InputError, Interrupted, SystemIoError, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';
import { createProgress } from '../progress.js';
import { interruptibly, stoppingAtOnce } from '../interrupts.js';
import { shellCommand } from '../shell.js';
import { lockDirectory } from '../../results/lock.js';

interface RunCommandOptions {
  readonly out?: string;
  readonly workers?: number;
  readonly trials?: number;
  readonly resume?: boolean;
  readonly shard?: Shard;
  readonly force?: boolean;
  readonly selfCheckEvery?: number;
}

/** --workers as run and ablate take it: the default is one per core, and it is capped (chooseWorkers). */
export const workersOption = [
  '--workers <n>',
  `worker threads (default: one per core, here ${availableParallelism()}; at most ${MAX_WORKERS_PER_CORE} per core, and no more than the faults to inject)`,
  parseInteger('--workers', 1, 4096),
] as const;

export const forceOption = ['--force', 'write into an output directory that holds other files than this campaign\'s results'] as const;

export const selfCheckOption = [
  '--self-check-every <n>',
  `run about one fault in n a second time in another thread and compare the records, 0 for never (default: ${DEFAULT_SELF_CHECK_EVERY})`,
  parseInteger('--self-check-every', 0, MAX_TRIALS),
] as const;

export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('run a fault-injection campaign and write trials.jsonl, summary.json, report.md, report.html and trials.csv')
    .argument('<campaign>', 'campaign file (YAML), e.g. campaigns/quick.yaml')
    .option('--out <dir>', 'output directory (default: reports/<campaign name>/)')
    .option(...workersOption)
    .option('--trials <n>', 'trials per fault type, overriding the campaign file', parseInteger('--trials', 1, MAX_TRIALS))
    .option('--resume', 'run only the trials missing from an interrupted run in the output directory')
    .option('--shard <i/n>', 'run shard i of n (1-based); combine shards with `ninelives merge`', parseShard)
    .option(...forceOption)
    .option(...selfCheckOption)
    .action(async (path: string, options: RunCommandOptions, command: Command) => {
      const campaign = loadOrExplain(path);
      const outDirectory = options.out ?? defaultOut(campaign, options.shard);
      // the arguments runCli was given (the program has no options of its own, so its args are all
      // of them), not process.argv: the CLI may run inside another program, such as a test
      const commandLine = shellCommand(['ninelives', ...(command.parent?.args ?? ['run', path])]);
      const named = options.out === undefined ? 'the output directory' : '--out';
      const run = await runCampaignAndReport(campaign, { ...options, outDirectory, named, command: commandLine }, io);
      io.stdout.write(describeCompletion(run.summary, outDirectory, run.ran));
      failOnProblems(run, outDirectory, io);
    });
}

/** The campaign's size checked against the limits with --trials and --shard applied, and whether it may be sharded, before any work. */
function checkPlanSize(campaign: Campaign, options: CampaignRunOptions): void {
  const size = planSizeOf(campaign);
  const trials = plannedTrialCount(size, options.trials);
  if (trials > MAX_TRIALS) throw new UsageError('usage.tooManyTrials', `--trials ${options.trials} plans ${trials} trials, more than ${MAX_TRIALS}`);
  const sharding = shardingRefusal(campaign, options.shard);
  if (sharding !== undefined) throw new UsageError('usage.invalidShard', sharding);
  if (plannedTrialCount(size, options.trials, options.shard) === 0) {
    throw new UsageError('usage.invalidShard', `--shard ${options.shard?.index}/${options.shard?.count} selects no trials: the campaign has ${Math.max(...size.faults.map((count) => options.trials ?? count))} trials per fault type at most`);
  }
}

/** The output directory checked (see results/output-directory.ts) and created, or one line and exit 2. */
export function claimOrExplain(directory: string, claim: Claim, manifest?: Omit<Manifest, 'tool'>): Manifest | undefined {
  return explainingDirectory(() => claimOutputDirectory(directory, claim, manifest));
}

/** The output directory checked, nothing created yet (for a command with more to check first), or one line and exit 2. */
export function checkOrExplain(directory: string, claim: Claim): void {
  explainingDirectory(() => checkOutputDirectory(directory, claim));
}

function explainingDirectory<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof OutputDirectoryError) throw new UsageError('usage.outputDirectory', error.message);
    throw error;
  }
}

/**
 * A resumed run goes on with what the directory holds: the same shard, or the whole campaign.
 * Resumed without --shard, a shard's directory would grow into the whole campaign (running the
 * other shards' trials there too); with another shard, its trials are not this one's.
 */
function checkSameShard(previous: Manifest, options: CampaignRunOptions): void {
  const held = previous.shard;
  const given = options.shard;
  if (held?.index === given?.index && held?.count === given?.count) return;
  const holds = held === undefined ? `the whole campaign "${previous.campaign}", not a shard` : `shard ${held.index}/${held.count} of campaign "${previous.campaign}"`;
  const resume = held === undefined ? 'resume it without --shard' : `resume it with --shard ${held.index}/${held.count}`;
  throw new UsageError('usage.resultsExist', `${options.outDirectory} holds ${holds}: ${resume}, or choose another ${options.named}`);
}

export function loadOrExplain(path: string): Campaign {
  try {
    const campaign = loadCampaign(path);
    checkGoldenRuns(campaign, path);
    return campaign;
  } catch (error) {
    if (error instanceof CampaignError) throw new InputError('input.campaign', error.problems);
    throw error;
  }
}

export function defaultOut(campaign: Campaign, shard: Shard | undefined): string {
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

export interface CampaignRunOptions {
  readonly outDirectory: string;
  /** how the command line named the output directory, for messages ("--out") */
  readonly named: string;
  /** asked for; capped to what the run and the machine can use (default: one per core) */
  readonly workers?: number;
  readonly trials?: number;
  readonly resume?: boolean;
  readonly shard?: Shard;
  /** write into a directory that holds other files */
  readonly force?: boolean;
  readonly selfCheckEvery?: number;
  /** the command line, for the reports and the message on interruption */
  readonly command: string;
}

export interface CampaignRun {
  readonly summary: Summary;
  /** trials this run ran (a resumed run ran only the missing ones) */
  readonly ran: number;
  readonly selfCheck: SelfCheckResult;
}

/**
 * Runs a campaign with progress on stderr, stopping cleanly on SIGINT or SIGTERM, then writes its
 * reports. Before any work, the plan is checked against the limits and the output directory is
 * claimed (refused unless new, empty or this campaign's) and given its manifest; workers beyond
 * what is useful are capped, with a note on stderr.
 */
export async function runCampaignAndReport(campaign: Campaign, options: CampaignRunOptions, io: CliIo): Promise<CampaignRun> {
  checkPlanSize(campaign, options);
  const previous = claimOrExplain(options.outDirectory, { campaign: campaign.name, force: options.force, named: options.named });
  if (options.resume === true && previous !== undefined) checkSameShard(previous, options);
  const release = lockDirectory(options.outDirectory);
  try {
    const faults = plannedFaultCount(planSizeOf(campaign), options.trials, options.shard);
    const choice = chooseWorkers(options.workers ?? availableParallelism(), faults, availableParallelism());
    if (choice.note !== undefined) io.stderr.write(errorLine(`note: ${choice.note}`));
    // a second SIGINT or SIGTERM does not wait for the trials in progress: it says how to resume and exits
    const stopAtOnce = stoppingAtOnce(io, release, `stopped at once, the trials in progress dropped; continue with: ${resumeCommand(options.command)}`);
    const result = await runInterruptibly(campaign, { ...options, workers: choice.workers }, io, stopAtOnce).catch((error: unknown) => {
      // a full disk stops the run as an interruption does: what is stored is kept
      if (isSystemIoFailure(error)) throw new SystemIoError(error, `the finished trials are kept; once that is mended, continue with: ${resumeCommand(options.command)}`);
      throw error;
    });
    // thrown, not process.exitCode: runCli returns the exit code, and main.ts sets it from that
    if (result.kind === 'interrupted') throw new Interrupted(`interrupted after ${result.done}/${result.total} trials; continue with: ${resumeCommand(options.command)}`);
    await writeDirectoryReports(options.outDirectory, result.summary, { title: campaign.name, generatedBy: options.command });
    return { summary: result.summary, ran: result.ran, selfCheck: result.selfCheck };
  } finally {
    release();
  }
}

async function runInterruptibly(campaign: Campaign, options: CampaignRunOptions & { workers: number }, io: CliIo, stopAtOnce: () => never): Promise<RunResult> {
  const progress = createProgress(io, campaign.name);
  try {
    return await interruptibly(progress, stopAtOnce, (signal) =>
      runCampaign(campaign, {
        outDirectory: options.outDirectory,
        workers: options.workers,
        trials: options.trials,
        resume: options.resume ?? false,
        shard: options.shard,
        signal,
        manifest: runManifest(campaign, options.trials, options.shard),
        selfCheckEvery: options.selfCheckEvery,
        onProgress: (state) => progress.update(state.done, state.total, describeRates(state)),
      }),
    );
  } catch (error) {
    if (error instanceof ResultsExistError) throw new UsageError('usage.resultsExist', error.message);
    if (error instanceof ResultsFileError) throw new InputError('input.results', [error.message]);
    throw error;
  }
}

/** Harness errors and determinism mismatches: each said on stderr, and the run fails. */
export function failOnProblems(run: CampaignRun, directory: string, io: CliIo): void {
  const { mismatches, checked } = run.selfCheck;
  for (const mismatch of mismatches) {
    io.stderr.write(errorLine(`determinism check: trial ${mismatch.id} gave a different record when run again in another thread; replay the stored one with \`${mismatch.storedReplay}\` and run it afresh with \`${mismatch.freshReplay}\``));
  }
  const errors = run.summary.harnessErrors ?? 0;
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
