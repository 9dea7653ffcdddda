/**
 * `ninelives mechanisms`: every mechanism's steps, in order, with their stable names.
 */
import type { Command } from 'commander';
import { mechanisms } from '../../recovery/mechanisms.js';
import type { CliIo } from '../io.js';

export function registerMechanismsCommand(program: Command, io: CliIo): void {
  program
    .command('mechanisms')
    .description('list the recovery mechanisms and their steps (names for --disable), in execution order')
    .option('--json', 'print as JSON')
    .action((options: { json?: boolean }) => {
      const listing = mechanisms.map((mechanism) => ({
        name: mechanism.name,
        description: mechanism.description,
        steps: mechanism.steps.map(({ step, role }) => ({ name: step.name, role, fixes: step.fixes })),
        repairOrder: mechanism.repairOrder,
      }));
      if (options.json) {
        io.stdout.write(JSON.stringify(listing, null, 2) + '\n');
        return;
      }
      for (const mechanism of listing) {
        io.stdout.write(`${mechanism.name}: ${mechanism.description}\n`);
        for (const step of mechanism.steps) io.stdout.write(`  ${step.name.padEnd(28)} ${step.role.padEnd(9)} ${step.fixes}\n`);
        io.stdout.write(`  ablation order: ${mechanism.repairOrder.join(', ')}\n\n`);
      }
      io.stdout.write('(a third mechanism, none, ends a trial at detection)\n');
    });
}
