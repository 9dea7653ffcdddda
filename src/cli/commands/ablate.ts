/**
 * `ninelives ablate`: recovery rate at each cumulative stage of a mechanism's repairs. It runs a
 * one-cell ablation campaign through the campaign runner, so it has workers, an output directory
 * with the results and reports, and resumption, as `run` does.
 */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { ablationCampaign, ablationRows, type AblationRow } from '../../campaign/ablation.js';
import type { FaultType } from '../../faults/fault.js';
import type { CliIo } from '../io.js';
import { UsageError } from '../errors.js';
import { parseConfiguration, parseFaultType, parseInteger, parseMechanism } from '../options.js';
import { defaultOut, runCampaignAndReport } from './run.js';

interface AblateOptions {
  readonly mechanism: string;
  readonly fault: FaultType;
  readonly config: string;
  readonly trials: number;
  readonly seed: number;
  readonly json?: boolean;
  readonly out?: string;
  readonly workers: number;
  readonly resume?: boolean;
}

export function registerAblateCommand(program: Command, io: CliIo): void {
  program
    .command('ablate')
    .description('run the same faults through each cumulative stage of a mechanism\'s repairs (first row: no repairs), as a one-cell campaign')
    .requiredOption('--mechanism <name>', 'microreset or microreboot', parseMechanism)
    .option('--fault <type>', 'fault type', parseFaultType, 'failstop')
    .option('--config <name>', 'configuration', parseConfiguration, '1AppVM')
    .option('--trials <n>', 'trials per stage', parseInteger('--trials', 1, 1_000_000), 1000)
    .option('--seed <n>', 'campaign seed', parseInteger('--seed'), 42)
    .option('--out <dir>', 'output directory (default: reports/<ablation campaign name>/)')
    .option('--workers <n>', 'worker threads (default: one per core)', parseInteger('--workers', 1, 256), availableParallelism())
    .option('--resume', 'run only the trials missing from an interrupted run in the output directory')
    .option('--json', 'print the rows as a JSON array')
    .action(async (options: AblateOptions, command: Command) => {
      if (options.mechanism === 'none') throw new UsageError('usage.invalidMechanism', '--mechanism must be microreset or microreboot');
      const mechanism = options.mechanism as 'microreset' | 'microreboot';
      const campaign = ablationCampaign({ mechanism, faultType: options.fault, configuration: options.config, trials: options.trials, seed: options.seed });
      const outDirectory = options.out ?? defaultOut(campaign, undefined);
      const commandLine = ['ninelives', ...(command.parent?.args ?? ['ablate'])].join(' ');
      const { summary } = await runCampaignAndReport(campaign, { outDirectory, workers: options.workers, resume: options.resume, command: commandLine }, io);
      const rows = ablationRows(campaign, summary);
      io.stdout.write(options.json ? JSON.stringify(rows.map(jsonRow)) + '\n' : formatAblation(rows));
    });
}

function jsonRow(row: AblationRow) {
  const { stage, trials, detected, recovered, recoveryRate } = row;
  return { stage, trials, detected, recovered, recoveryRate: { value: recoveryRate.value, low: recoveryRate.low, high: recoveryRate.high } };
}

export function formatAblation(rows: readonly AblationRow[]): string {
  const percent = (value: number): string => (Number.isNaN(value) ? '   -  ' : `${(value * 100).toFixed(1).padStart(5)}%`);
  const lines = [
    '| stage | trials | detected | recovered | recovery rate (95% Wilson) |',
    '|---|---:|---:|---:|---|',
    ...rows.map((row) => `| ${row.stage} | ${row.trials} | ${row.detected} | ${row.recovered} | ${percent(row.recoveryRate.value)} [${percent(row.recoveryRate.low)}, ${percent(row.recoveryRate.high)}] |`),
  ];
  return lines.join('\n') + '\n';
}
