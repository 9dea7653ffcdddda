/**
 * `ninelives ablate`: recovery rate at each cumulative stage of a mechanism's repairs.
 */
import type { Command } from 'commander';
import { runAblation, type AblationRow } from '../../campaign/ablation.js';
import type { FaultType } from '../../faults/fault.js';
import type { CliIo } from '../io.js';
import { UsageError } from '../errors.js';
import { parseConfiguration, parseFaultType, parseInteger, parseMechanism } from '../options.js';
import { createProgress } from '../progress.js';

interface AblateOptions {
  readonly mechanism: string;
  readonly fault: FaultType;
  readonly config: string;
  readonly trials: number;
  readonly seed: number;
  readonly json?: boolean;
}

export function registerAblateCommand(program: Command, io: CliIo): void {
  program
    .command('ablate')
    .description('run the same faults through each cumulative stage of a mechanism\'s repairs (first row: no repairs)')
    .requiredOption('--mechanism <name>', 'microreset or microreboot', parseMechanism)
    .option('--fault <type>', 'fault type', parseFaultType, 'failstop')
    .option('--config <name>', 'configuration', parseConfiguration, '1AppVM')
    .option('--trials <n>', 'trials per stage', parseInteger('--trials', 1, 1_000_000), 1000)
    .option('--seed <n>', 'campaign seed', parseInteger('--seed'), 42)
    .option('--json', 'print the rows as a JSON array')
    .action((options: AblateOptions) => {
      if (options.mechanism === 'none') throw new UsageError('usage.invalidMechanism', '--mechanism must be microreset or microreboot');
      const progress = createProgress(io, `ablate ${options.mechanism}`);
      const rows = runAblation(
        { mechanism: options.mechanism as 'microreset' | 'microreboot', faultType: options.fault, configuration: options.config, trials: options.trials, seed: options.seed },
        (done, total) => progress.update(done, total),
      );
      progress.stop();
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
