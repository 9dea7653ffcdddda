/**
 * `ninelives plan`: injections needed for a margin of error (Leveugle et al.), and
 * `ninelives schema`: the JSON Schema of campaign files.
 */
import type { Command } from 'commander';
import { campaignJsonSchema } from '../../campaign/spec.js';
import { MAX_CONFIDENCE, MIN_CONFIDENCE, sampleSize } from '../../results/statistics.js';
import type { CliIo } from '../io.js';
import { parseDecimal, parseInteger } from '../options.js';

/** a margin of 0.0001 already takes 96 million injections; a smaller one is no campaign */
const MIN_MARGIN = 0.0001;

export function registerPlanCommands(program: Command, io: CliIo): void {
  program
    .command('plan')
    .description('print the number of injections needed for a margin of error (Leveugle et al., p = 0.5)')
    .option('--margin <e>', `margin of error, e.g. 0.02 (from ${MIN_MARGIN} to 0.5)`, parseDecimal('--margin', MIN_MARGIN, 0.5), 0.02)
    .option('--confidence <c>', `confidence level, e.g. 0.95 (from ${MIN_CONFIDENCE} to ${MAX_CONFIDENCE})`, parseDecimal('--confidence', MIN_CONFIDENCE, MAX_CONFIDENCE), 0.95)
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
