/**
 * Errors the CLI reports to its user, as typed values with stable codes. The top level turns
 * each into one stderr line, `ninelives: <message>`, and its exit code; nothing prints a stack.
 */

export const EXIT_SUCCESS = 0;
/** the command ran and failed, or something unexpected broke */
export const EXIT_FAILURE = 1;
/** the command line was wrong: unknown command or option, missing or invalid argument */
export const EXIT_USAGE = 2;

export const PROGRAM_NAME = 'ninelives';

/** Base of every error meant for the user. `code` is stable: scripts and tests may match it. */
export abstract class CliError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: number;
}

/** The command line was wrong. Codes look like `usage.unknownOption` or `usage.invalidConfig`. */
export class UsageError extends CliError {
  readonly code: string;
  readonly exitCode = EXIT_USAGE;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.code = code;
  }
}

/** An input file was wrong: one line per problem, each naming the file and the key. Exit 2. */
export class InputError extends CliError {
  readonly exitCode = EXIT_USAGE;

  constructor(
    readonly code: string,
    readonly problems: readonly string[],
  ) {
    super(problems.join('\n'));
    this.name = 'InputError';
  }
}

/** The command line was fine but the command failed (a replay diverged, a campaign had errors). */
export class CommandFailure extends CliError {
  readonly code: string;
  readonly exitCode = EXIT_FAILURE;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'CommandFailure';
    this.code = code;
  }
}

/** Something the CLI did not expect (a bug): reported on one line too, with exit code 1. */
export class InternalError extends CliError {
  readonly code = 'internal';
  readonly exitCode = EXIT_FAILURE;

  constructor(cause: unknown) {
    super(`internal error: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'InternalError';
  }
}

/** commander's own error codes (`commander.unknownOption`) as usage codes (`usage.unknownOption`). */
export function usageCodeFromCommander(commanderCode: string): string {
  return commanderCode.replace(/^commander\./, 'usage.');
}

/** `ninelives: <message>` on one line, without commander's `error: ` prefix. */
export function errorLine(message: string): string {
  const text = message
    .replace(/^error:\s*/i, '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
  return `${PROGRAM_NAME}: ${text}\n`;
}
