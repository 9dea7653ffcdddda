/**
 * `ninelives plan`: injections needed for a margin of error (Leveugle et al.), and
 * `ninelives schema`: the JSON Schema of campaign files.
 */
import type { Command } from 'commander';
import { campaignJsonSchema } from '../../campaign/spec.js';
import { sampleSize } from '../../results/statistics.js';
import { UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { parseDecimal, parseInteger } from '../options.js';

function parseFraction(option: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0 || value >= 1) throw new UsageError('usage.invalidNumber', `${option} expects a number between 0 and 1, got "${text}"`);
    return value;
  };
}

/** a margin of 0.0001 already takes 96 million injections; a smaller one is no campaign */
const MIN_MARGIN = 0.0001;

export function registerPlanCommands(program: Command, io: CliIo): void {
  program
    .command('plan')
    .description('print the number of injections needed for a margin of error (Leveugle et al., p = 0.5)')
    .option('--margin <e>', `margin of error, e.g. 0.02 (from ${MIN_MARGIN} to 0.5)`, parseDecimal('--margin', MIN_MARGIN, 0.5), 0.02)
    .option('--confidence <c>', 'confidence level, e.g. 0.95', parseFraction('--confidence'), 0.95)
    .option('--population <n>', 'size of the fault population (default: infinite)', parseInteger('--population', 2))
    .action((options: { margin: number; confidence: number; population?: number }) => {
      const needed = sampleSize(options.margin, options.confidence, options.population);
      const population = options.population === undefined ? '' : ` of ${options.population}`;
      io.stdout.write(`${needed} injections${population} for a margin of ${options.margin} at ${options.confidence} confidence\n`);
    });

  program
    .command('schema')
    .description('print the JSON Schema of campaign files (for editors)')
    .action(() => {
      io.stdout.write(JSON.stringify(campaignJsonSchema(), null, 2) + '\n');
    });
}
