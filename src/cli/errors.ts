/**
 * Errors the CLI reports to its user, as typed values with stable codes (the one list in
 * src/errors.ts, shared with the library's errors). The top level turns each into one stderr
 * line, `ninelives: <message>`, and its exit code; nothing prints a stack.
 */
import { isErrorCode, NinelivesError, SYSTEM_IO_REASONS, type ErrorCode } from '../errors.js';

export const EXIT_SUCCESS = 0;
/** the command ran and failed, or something unexpected broke */
export const EXIT_FAILURE = 1;
/** the command line was wrong: unknown command or option, missing or invalid argument */
export const EXIT_USAGE = 2;

/** SIGINT or SIGTERM stopped the command (the shell's code for an interrupted command) */
export const EXIT_INTERRUPTED = 130;

export const PROGRAM_NAME = 'ninelives';

/** Base of every error the CLI reports: a NinelivesError with an exit code. */
export abstract class CliError extends NinelivesError {
  abstract readonly exitCode: number;
}

/** The command line was wrong. Codes look like `usage.unknownOption` or `usage.invalidConfig`. */
export class UsageError extends CliError {
  readonly exitCode = EXIT_USAGE;

  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * An input file was wrong: every problem, each naming the key, on one line that names the file
 * once (`file: seed: ...; faults: ...`). Exit 2.
 */
export class InputError extends CliError {
  readonly exitCode = EXIT_USAGE;

  constructor(
    code: ErrorCode,
    readonly problems: readonly string[],
  ) {
    super(code, oneLine(problems));
  }
}

/** The problems joined on one line, the prefix they share (the file, up to a `: `) said once. */
function oneLine(problems: readonly string[]): string {
  if (problems.length <= 1) return problems.join('');
  const shared = sharedPrefix(problems);
  const prefix = shared.slice(0, shared.lastIndexOf(': ') + 2);
  return prefix + problems.map((problem) => problem.slice(prefix.length)).join('; ');
}

function sharedPrefix(texts: readonly string[]): string {
  let length = 0;
  while (texts.every((text) => length < text.length && text[length] === texts[0][length])) length++;
  return texts[0].slice(0, length);
}

/** The command line was fine but the command failed (a replay diverged, a campaign had errors). */
export class CommandFailure extends CliError {
  readonly exitCode = EXIT_FAILURE;

  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/** SIGINT or SIGTERM stopped the command: what it finished is kept, and the message says how to go on. */
export class Interrupted extends CliError {
  readonly exitCode = EXIT_INTERRUPTED;

  constructor(message: string) {
    super('run.interrupted', message);
  }
}

/**
 * The machine refused a file operation for a reason of its own (a full disk, a read-only file
 * system, a name too long): not a fault of ninelives, so not an internal error. Exit 1.
 */
export class SystemIoError extends CliError {
  readonly exitCode = EXIT_FAILURE;

  /** `next`: what the user can do once it is mended (how to resume), after the reason */
  constructor(cause: NodeJS.ErrnoException, next?: string) {
    super('system.io', `${SYSTEM_IO_REASONS[cause.code as string]}: ${cause.message}${next === undefined ? '' : `; ${next}`}`, { cause });
  }
}

/** Something the CLI did not expect (a bug): reported on one line too, with exit code 1. */
export class InternalError extends CliError {
  readonly exitCode = EXIT_FAILURE;

  constructor(cause: unknown) {
    super('internal', `internal error: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * A library error the command did not translate: its code says what it is, and so its exit
 * code (a usage or input error exits 2).
 */
export class DomainError extends CliError {
  readonly exitCode: number;

  constructor(error: NinelivesError) {
    super(error.code, error.message, { cause: error });
    this.exitCode = /^(usage|input)\./.test(error.code) ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/** commander's own error codes (`commander.unknownOption`) as usage codes (`usage.unknownOption`). */
export function usageCodeFromCommander(commanderCode: string): ErrorCode {
  const code = commanderCode.replace(/^commander\./, 'usage.');
  return isErrorCode(code) && code.startsWith('usage.') ? code : 'usage.commandLine';
}

/** `ninelives: <message>` on one line, without commander's `error: ` prefix. */
export function errorLine(message: string): string {
  const text = message
    .replace(/^error:\s*/i, '')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ')
    // a name the user typed may hold escape sequences: shown, not acted on by the terminal
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `${PROGRAM_NAME}: ${text}\n`;
}
