/**
 * `ninelives ablate`: recovery rate at each cumulative stage of a mechanism's repairs. It runs a
 * one-cell ablation campaign through the campaign runner, so it has workers, an output directory
 * with the results, the reports and a manifest (claimed as `run` claims one: new, empty or this
 * campaign's), resumption, the harness's retries and the determinism self-check, as `run` does.
 */
import type { Command } from 'commander';
import { ablationCampaign, ablationRows, type AblationRow, type AblationSpec } from '../../campaign/ablation.js';
import { MAX_SEED, MAX_TRIALS } from '../../campaign/limits.js';
import { CampaignError, type Campaign } from '../../campaign/spec.js';
import type { FaultType } from '../../faults/fault.js';
import type { CliIo } from '../io.js';
import { UsageError } from '../errors.js';
import { configurationHelp, parseChoice, parseConfiguration, parseFaultType, parseInteger } from '../options.js';
import { defaultOut, failOnProblems, forceOption, runCampaignAndReport, selfCheckOption, workersOption } from './run.js';
import { shellCommand } from '../shell.js';

interface AblateOptions {
  readonly mechanism: 'microreset' | 'microreboot';
  readonly fault: FaultType;
  readonly config: string;
  readonly trials: number;
  readonly seed: number;
  readonly json?: boolean;
  readonly out?: string;
  readonly workers?: number;
  readonly resume?: boolean;
  readonly force?: boolean;
  readonly selfCheckEvery?: number;
}

export function registerAblateCommand(program: Command, io: CliIo): void {
  program
    .command('ablate')
    .description('run the same faults through each cumulative stage of a mechanism\'s repairs (first row: no repairs), as a one-cell campaign')
    .requiredOption('--mechanism <name>', 'microreset or microreboot', parseChoice('--mechanism', ['microreset', 'microreboot'] as const))
    .option('--fault <type>', 'fault type', parseFaultType, 'failstop')
    .option('--config <name>', configurationHelp(), parseConfiguration, '1AppVM')
    .option('--trials <n>', 'trials per stage', parseInteger('--trials', 1, MAX_TRIALS), 1000)
    .option('--seed <n>', 'campaign seed', parseInteger('--seed', 0, MAX_SEED), 42)
    .option('--out <dir>', 'output directory (default: reports/<ablation campaign name>/)')
    .option(...workersOption)
    .option('--resume', 'run only the trials missing from an interrupted run in the output directory')
    .option(...forceOption)
    .option(...selfCheckOption)
    .option('--json', 'print the rows as a JSON array')
    .action(async (options: AblateOptions, command: Command) => {
      const campaign = campaignOrExplain({ mechanism: options.mechanism, faultType: options.fault, configuration: options.config, trials: options.trials, seed: options.seed });
      const outDirectory = options.out ?? defaultOut(campaign, undefined);
      const commandLine = shellCommand(['ninelives', ...(command.parent?.args ?? ['ablate'])]);
      const named = options.out === undefined ? 'the output directory' : '--out';
      const run = await runCampaignAndReport(campaign, { outDirectory, named, workers: options.workers, resume: options.resume, force: options.force, selfCheckEvery: options.selfCheckEvery, command: commandLine }, io);
      const rows = ablationRows(campaign, run.summary);
      io.stdout.write(options.json ? JSON.stringify(rows.map(jsonRow)) + '\n' : formatAblation(rows));
      failOnProblems(run, outDirectory, io);
    });
}

/** The ablation's campaign; the only way it can be wrong is its size (the stages times --trials). */
function campaignOrExplain(spec: AblationSpec): Campaign {
  try {
    return ablationCampaign(spec);
  } catch (error) {
    if (error instanceof CampaignError) throw new UsageError('usage.tooManyTrials', `--trials ${spec.trials}: ${error.problems.map((problem) => problem.replace(/^ablation: faults: /, '')).join('; ')}`);
    throw error;
  }
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
