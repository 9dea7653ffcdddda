/**
 * `ninelives run`: the main job. Runs a campaign file and writes its results and reports.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ResultsExistError, runCampaign, type RunProgress, type RunResult } from '../../campaign/runner.js';
import { CampaignError, loadCampaign, type Campaign } from '../../campaign/spec.js';
import type { Shard } from '../../campaign/plan.js';
import { ResultsFileError } from '../../results/store.js';
import type { Summary } from '../../results/summary.js';
import { CliError, InputError, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';
import { createProgress } from '../progress.js';
import { writeDirectoryReports } from '../../report/write.js';

interface RunCommandOptions {
  readonly out?: string;
  readonly workers: number;
  readonly trials?: number;
  readonly resume?: boolean;
  readonly shard?: Shard;
}

export const EXIT_INTERRUPTED = 130;

/** SIGINT or SIGTERM stopped the run: the finished trials are kept and the message says how to resume. */
class RunInterrupted extends CliError {
  readonly exitCode = EXIT_INTERRUPTED;

  constructor(message: string) {
    super('run.interrupted', message);
  }
}

export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('run a fault-injection campaign and write trials.jsonl, summary.json, report.md, report.html and trials.csv')
    .argument('<campaign>', 'campaign file (YAML), e.g. campaigns/quick.yaml')
    .option('--out <dir>', 'output directory (default: reports/<campaign name>/)')
    .option('--workers <n>', 'worker threads (default: one per core)', parseInteger('--workers', 1, 256), availableParallelism())
    .option('--trials <n>', 'trials per fault type, overriding the campaign file', parseInteger('--trials', 1, 10_000_000))
    .option('--resume', 'run only the trials missing from an interrupted run in the output directory')
    .option('--shard <i/n>', 'run shard i of n (1-based); combine shards with `ninelives merge`', parseShard)
    .action(async (path: string, options: RunCommandOptions, command: Command) => {
      const campaign = loadOrExplain(path);
      const outDirectory = options.out ?? defaultOut(campaign, options.shard);
      // the arguments runCli was given (the program has no options of its own, so its args are all
      // of them), not process.argv: the CLI may run inside another program, such as a test
      const commandLine = ['ninelives', ...(command.parent?.args ?? ['run', path])].join(' ');
      await runWithProgress(campaign, { ...options, outDirectory, command: commandLine }, io);
    });
}

export function loadOrExplain(path: string): Campaign {
  try {
    return loadCampaign(path);
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
  if (match === null || count < 1 || index < 1 || index > count) {
    throw new UsageError('usage.invalidShard', `--shard expects i/n with 1 <= i <= n, got "${text}"`);
  }
  return { index, count };
}

export interface CampaignRunOptions {
  readonly outDirectory: string;
  readonly workers: number;
  readonly trials?: number;
  readonly resume?: boolean;
  readonly shard?: Shard;
  /** the command line, for the reports and the message on interruption */
  readonly command: string;
}

async function runWithProgress(campaign: Campaign, options: CampaignRunOptions, io: CliIo): Promise<void> {
  const { summary, ran } = await runCampaignAndReport(campaign, options, io);
  io.stdout.write(describeCompletion(summary, options.outDirectory, ran));
}

/**
 * Runs a campaign with progress on stderr, stopping cleanly on SIGINT or SIGTERM, then writes its
 * reports. Returns the summary and the number of trials this run ran.
 */
export async function runCampaignAndReport(campaign: Campaign, options: CampaignRunOptions, io: CliIo): Promise<{ summary: Summary; ran: number }> {
  const result = await runInterruptibly(campaign, options, io);
  // thrown, not process.exitCode: runCli returns the exit code, and main.ts sets it from that
  if (result.kind === 'interrupted') throw new RunInterrupted(`interrupted after ${result.done}/${result.total} trials; continue with: ${resumeCommand(options.command)}`);
  await writeDirectoryReports(options.outDirectory, result.summary, { title: campaign.name, generatedBy: options.command });
  return { summary: result.summary, ran: result.ran };
}

async function runInterruptibly(campaign: Campaign, options: CampaignRunOptions, io: CliIo): Promise<RunResult> {
  const progress = createProgress(io, campaign.name);
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    return await runCampaign(campaign, {
      outDirectory: options.outDirectory,
      workers: options.workers,
      trials: options.trials,
      resume: options.resume ?? false,
      shard: options.shard,
      signal: controller.signal,
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
