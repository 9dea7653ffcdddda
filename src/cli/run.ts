/**
 * The CLI as a function: parse `argv`, run the command, report errors, return the exit code.
 * Nothing here calls process.exit, so tests run it in-process.
 */
import { Command, CommanderError } from 'commander';
import { commandRegistrars, type CommandRegistrar } from './commands/index.js';
import { isSystemIoFailure, NinelivesError } from '../errors.js';
import { CliError, DomainError, EXIT_SUCCESS, EXIT_USAGE, InternalError, PROGRAM_NAME, SystemIoError, UsageError, errorLine, usageCodeFromCommander } from './errors.js';
import type { CliIo } from './io.js';
import { packageVersion } from '../package-info.js';

const DESCRIPTION =
  'A fault-injection testbed for hypervisor recovery: microreset (NiLiHype) against microreboot (ReHype) on a simulated machine.';

/** commander exits that are not errors */
const NORMAL_EXITS = new Set(['commander.helpDisplayed', 'commander.version']);

export function createProgram(io: CliIo, registrars: readonly CommandRegistrar[] = commandRegistrars): Command {
  const program = new Command(PROGRAM_NAME)
    .description(DESCRIPTION)
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print help')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // reported by runCli as one line; commander must not print it too
      outputError: () => undefined,
    });
  // settings above are inherited by commands created afterwards with program.command()
  for (const register of registrars) register(program, io);
  return program;
}

/** Options that gather their values (`--invariant a --invariant b`): given more than once on purpose. */
const GATHERING_OPTIONS = new Set(['--invariant']);

/**
 * An option that takes one value, given twice, is a mistake (commander would keep the last
 * silently: `--out a ... --out b` writing into b): one line, before any work.
 */
function refuseRepeatedOptions(command: Command, rawArgs: readonly string[]): void {
  const end = rawArgs.indexOf('--');
  const words = end === -1 ? rawArgs : rawArgs.slice(0, end);
  for (const option of command.options) {
    const long = option.long;
    if (long === undefined || option.variadic || option.isBoolean() || GATHERING_OPTIONS.has(long)) continue;
    const given = words.filter((word) => word === long || word.startsWith(`${long}=`));
    if (given.length > 1) throw new UsageError('usage.commandLine', `${long} is given ${given.length} times: give it once`);
  }
}

/** Run the CLI on user arguments (without `node` and the script path) and return the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, registrars?: readonly CommandRegistrar[]): Promise<number> {
  try {
    const program = createProgram(io, registrars);
    program.hook('preAction', (_, command) => refuseRepeatedOptions(command, argv));
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    // commander answers `help <no such command>` with the whole help on stderr
    if (argv[0] === 'help' && argv.length > 1 && !program.commands.some((command) => command.name() === argv[1])) {
      throw new UsageError('usage.unknownCommand', `unknown command '${argv[1]}'`);
    }
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_SUCCESS;
  } catch (error) {
    return report(error, io);
  }
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError && NORMAL_EXITS.has(error.code)) return EXIT_SUCCESS;
  // `help run` asked for it (exit 0); no command given, commander wrote the help to stderr (exit 1)
  if (error instanceof CommanderError && error.code === 'commander.help') return error.exitCode === 0 ? EXIT_SUCCESS : EXIT_USAGE;
  const cliError = toCliError(error);
  io.stderr.write(errorLine(cliError.message));
  return cliError.exitCode;
}

function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof NinelivesError) return new DomainError(error);
  if (error instanceof CommanderError) return new UsageError(usageCodeFromCommander(error.code), error.message);
  if (isSystemIoFailure(error)) return new SystemIoError(error);
  return new InternalError(error);
}
