/**
 * The errors ninelives reports, library and CLI alike, each with a stable code from one list:
 * scripts and tests may match the codes. `usage.*` is a wrong command line or argument, `input.*`
 * a wrong input file (both exit 2 at the CLI); the others are failures of a command that was
 * asked properly (exit 1). This module is the lowest layer: every folder may import it.
 */
export const errorCodes = [
  // a command-line value or an argument of the library API
  'usage.invalidConfig',
  'usage.invalidFault',
  'usage.invalidMechanism',
  'usage.invalidNumber',
  'usage.invalidChoice',
  'usage.invalidStep',
  'usage.invalidShard',
  'usage.invalidList',
  'usage.invalidModule',
  'usage.invalidPath',
  'usage.invalidEnvironment',
  'usage.invalidScenario',
  'usage.invalidScenarioSpace',
  'usage.unknownInvariant',
  'usage.mixedCampaigns',
  'usage.noResults',
  'usage.noTrial',
  'usage.resultsExist',
  'usage.outputDirectory',
  'usage.tooManyTrials',
  'usage.mixedShards',
  'usage.missingPackage',
  'usage.noQueue',
  // commander's own, as usage codes
  'usage.unknownCommand',
  'usage.unknownOption',
  'usage.missingArgument',
  'usage.optionMissingArgument',
  'usage.missingMandatoryOptionValue',
  'usage.invalidArgument',
  'usage.excessArguments',
  'usage.conflictingOption',
  'usage.commandLine',
  // input files
  'input.campaign',
  'input.results',
  'input.sql',
  // failures
  'check.violated',
  'golden.unhealthy',
  'merge.conflict',
  'merge.partial',
  'queue.versionMismatch',
  'replay.diverged',
  'run.interrupted',
  'run.errors',
  'system.io',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** Base of every error meant for a user of ninelives, with its stable code. */
export class NinelivesError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isErrorCode(text: string): text is ErrorCode {
  return (errorCodes as readonly string[]).includes(text);
}

/** The system's I/O failures a user can meet and mend (a full disk, a read-only file system), in words. */
export const SYSTEM_IO_REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EFBIG: 'a file is larger than this process may write',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'a file name is too long',
  EMFILE: 'too many open files',
  EIO: 'an input/output error',
};

/** True for an error of the system's that SYSTEM_IO_REASONS names: the machine's, not ninelives'. */
export function isSystemIoFailure(error: unknown): error is NodeJS.ErrnoException {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  // its own entries only: 'constructor' or 'toString' is no system failure
  return typeof code === 'string' && Object.hasOwn(SYSTEM_IO_REASONS, code);
}
