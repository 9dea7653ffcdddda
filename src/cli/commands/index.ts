/**
 * The command registry. Each command lives in its own file under src/cli/commands/ and exports
 * a registrar that adds it to the program with `program.command(...)` (so that it inherits the
 * program's error handling and output). Register it by adding it to the list below.
 */
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { registerAblateCommand } from './ablate.js';
import { registerCheckCommand } from './check.js';
import { registerGoldenCommand } from './golden.js';
import { registerInjectCommand } from './inject.js';
import { registerLatencyCommand } from './latency.js';
import { registerMechanismsCommand } from './mechanisms.js';
import { registerPlanCommands } from './plan.js';
import { registerResultsCommands } from './results.js';
import { registerQueryCommands } from './query.js';
import { registerQueueCommands } from './queue.js';
import { registerRunCommand } from './run.js';
import { registerTriageCommand } from './triage.js';

export type CommandRegistrar = (program: Command, io: CliIo) => void;

export const commandRegistrars: readonly CommandRegistrar[] = [
  registerRunCommand,
  registerResultsCommands,
  registerPlanCommands,
  registerGoldenCommand,
  registerInjectCommand,
  registerMechanismsCommand,
  registerLatencyCommand,
  registerAblateCommand,
  registerCheckCommand,
  registerTriageCommand,
  registerQueryCommands,
  registerQueueCommands,
];
