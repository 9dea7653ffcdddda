/**
 * `ninelives triage DIR`: why did recoveries fail? Diagnoses every failed recovery of a finished
 * campaign (footprint, audit, minimal restoring set, the switched-off steps that repair it) on
 * the worker pool, clusters them, and writes triage.md, triage.json and a section of report.html.
 * An interrupted triage resumes where it stopped when run again (triage.jsonl keeps each diagnosis).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { storedDiagnosisOf, triageDirectory, type TriageRun } from '../../campaign/triage/run.js';
import { DEFAULT_BOUNDS, type TriageBounds } from '../../campaign/triage/diagnose.js';
import { existingTrialsFile, finishResults } from '../../results/directory.js';
import { describePartial } from '../../results/result-facts.js';
import { firstRecord } from '../../results/store.js';
import { writeFileAtomically } from '../../results/staged-file.js';
import { TRIAGE_CLUSTERS_FILE, type Triage } from '../../results/triage.js';
import { writeDirectoryReports } from '../../report/write.js';
import { diagnosedText, renderTriageMarkdown } from '../../report/triage.js';
import { errorLine, Interrupted, UsageError } from '../errors.js';
import { writeTrialPage, writeTrialPages } from '../trial-pages.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';
import { createProgress } from '../progress.js';
import { interruptibly, stoppingAtOnce } from '../interrupts.js';
import { claimOrExplain } from './run.js';
import { shellCommand } from '../shell.js';
import { lockDirectory } from '../../results/lock.js';
import type { CampaignRecord } from '../../results/summary.js';

interface TriageCommandOptions {
  readonly workers: number;
  readonly json?: boolean;
  readonly maxReruns: number;
  readonly timeBudgetMs?: number;
  readonly force?: boolean;
  readonly sdc?: boolean;
  readonly page?: string;
}

export function registerTriageCommand(program: Command, io: CliIo): void {
  program
    .command('triage')
    .description('diagnose and cluster the failed recoveries of a results directory; writes triage.md, triage.json and a section of report.html')
    .argument('<dir>', 'results directory of a finished campaign')
    .option('--workers <n>', 'worker threads (default: one per core)', parseInteger('--workers', 1, 256), availableParallelism())
    .option('--json', 'print { clusters: [ { signature, count, trials, restoring, repairedBy, reading } ] } instead of the findings')
    .option('--max-reruns <n>', 're-runs through the machine per trial (steps and restoring-set search together)', parseInteger('--max-reruns', 1, 100_000), DEFAULT_BOUNDS.maxReruns)
    .option('--time-budget-ms <ms>', 'wall-clock budget per trial (makes results depend on the machine\'s speed)', parseInteger('--time-budget-ms', 1, 86_400_000))
    .option('--sdc', 'also diagnose and cluster the silent data corruptions (footprint and restoring set at the first checkpoint after the fault)')
    .option('--page <id>', 'write only trial <id>\'s browser page (record, the other mechanisms\' records, footprint and restoring set, timeline) to <dir>/trials/ and print its path')
    .option('--force', 'write the triage even where the directory holds other files than a ninelives result')
    .action(async (directory: string, options: TriageCommandOptions, command: Command) => {
      refusePageMisuse(options);
      const path = existingTrialsFile(directory);
      const first = firstRecord(path);
      if (first === undefined) throw new UsageError('usage.noResults', `${path} holds no trials`);
      // triage writes beside the results (triage.*, trials/, the reports): the directory must be this campaign's, as for report
      claimOrExplain(directory, { campaign: first.campaign, force: options.force, named: 'the results directory' });
      const release = lockDirectory(directory);
      try {
        await triageOrPage(directory, path, first, options, command, io, release);
      } finally {
        release();
      }
    });
}

const WHOLE_TRIAGE_OPTIONS = [
  ['json', '--json'],
  ['sdc', '--sdc'],
  ['timeBudgetMs', '--time-budget-ms'],
] as const;

/** --page names a trial, and writes its page only: what the whole triage does is not asked of it. */
function refusePageMisuse(options: TriageCommandOptions): void {
  if (options.page === undefined) return;
  if (options.page.trim() === '') throw new UsageError('usage.noTrial', '--page is empty: name a trial (its id, as trials.jsonl has it)');
  const given = WHOLE_TRIAGE_OPTIONS.filter(([key]) => options[key] !== undefined).map(([, option]) => option);
  if (given.length > 0) throw new UsageError('usage.commandLine', `--page writes one trial's page; ${given.join(', ')} ${given.length === 1 ? 'is' : 'are'} for the whole triage`);
}

/** `--page`: one trial's page; else the whole triage, its pages and reports. */
async function triageOrPage(directory: string, path: string, first: CampaignRecord, options: TriageCommandOptions, command: Command, io: CliIo, release: () => void): Promise<void> {
  if (options.page !== undefined) {
    const page = await writeTrialPage(directory, options.page, storedDiagnosisOf(directory, options.page));
    if (page === undefined) throw new UsageError('usage.noTrial', `no trial ${options.page} in ${path}`);
    io.stdout.write(`page: ${join(directory, page)}\n`);
    return;
  }
  const commandLine = shellCommand(['ninelives', ...(command.parent?.args ?? ['triage', directory])]);
  const bounds: TriageBounds = options.timeBudgetMs === undefined ? { maxReruns: options.maxReruns } : { maxReruns: options.maxReruns, timeBudgetMs: options.timeBudgetMs };
  // a second SIGINT or SIGTERM does not wait for the diagnoses in progress (triage.jsonl keeps the finished ones)
  const stopAtOnce = stoppingAtOnce(io, release, `stopped at once, the diagnoses in progress dropped; continue with: ${commandLine}`);
  const run = await triageWithProgress(directory, { workers: options.workers, bounds, sdc: options.sdc === true }, io, stopAtOnce);
  if (run.kind === 'interrupted') throw new Interrupted(`interrupted after ${run.done}/${run.total} trials; continue with: ${commandLine}`);
  const { pages, discordant } = await writeTrialPages(directory, run.triage, new Map(run.diagnoses.map((diagnosis) => [diagnosis.id, diagnosis])));
  const triage: Triage = { ...run.triage, pages: Object.fromEntries(pages), discordant };
  const summary = finishResults(directory, first.campaign, first.record.seed);
  // the failed recoveries of the trials there are: say so where the results are partial, as report does
  if (summary.partial !== undefined) io.stderr.write(errorLine(describePartial(summary.partial)));
  writeFileAtomically(join(directory, TRIAGE_CLUSTERS_FILE), JSON.stringify(triage, null, 2) + '\n');
  writeFileAtomically(join(directory, 'triage.md'), renderTriageMarkdown(triage, commandLine, summary.partial));
  await writeDirectoryReports(directory, summary, { title: first.campaign, generatedBy: commandLine, triage });
  io.stdout.write(options.json === true ? JSON.stringify(jsonOf(triage), null, 2) + '\n' : describe(triage, directory));
}

function triageWithProgress(directory: string, { workers, bounds, sdc }: { workers: number; bounds: TriageBounds; sdc: boolean }, io: CliIo, stopAtOnce: () => never): Promise<TriageRun> {
  const progress = createProgress(io, 'triage');
  return interruptibly(progress, stopAtOnce, (signal) => triageDirectory(directory, { workers, bounds, sdc, signal, onProgress: (done, total) => progress.update(done, total) }));
}

function jsonOf(triage: Triage): unknown {
  return { clusters: triage.clusters.map(({ signature, count, trials, restoring, repairedBy, reading }) => ({ signature, count, trials, restoring, repairedBy, reading })) };
}

function describe(triage: Triage, directory: string): string {
  const lines = [`${diagnosedText(triage)} in ${triage.clusters.length} clusters:`];
  for (const cluster of triage.clusters.slice(0, 10)) {
    const place = cluster.faultRoutine === undefined ? '' : ` [fault in ${cluster.faultRoutine}]`;
    lines.push(`  ${String(cluster.count).padStart(5)}  ${cluster.reading}${place}`, `         e.g. ${cluster.replay}`);
  }
  lines.push(`triage: ${join(directory, 'triage.md')} (also triage.json, triage.jsonl, and a section of report.html)`);
  return lines.join('\n') + '\n';
}
