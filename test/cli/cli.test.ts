/**
 * The CLI run in-process: --version, --help, and the one-line error scheme with exit code 2.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { CommandRegistrar } from '../../src/cli/commands/index.js';
import { CommandFailure, EXIT_FAILURE, EXIT_SUCCESS, EXIT_USAGE, UsageError, errorLine } from '../../src/cli/errors.js';
import { runCli } from '../../src/cli/main.js';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Captured {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(argv: string[], registrars?: readonly CommandRegistrar[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } };
  const exitCode = await runCli(argv, io, registrars);
  return { exitCode, stdout, stderr };
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** A stand-in for real commands: `echo <word> [--times <n>]`, and commands that fail. */
const fakeCommands: CommandRegistrar = (program: Command, io) => {
  program
    .command('echo')
    .description('print a word')
    .argument('<word>', 'what to print')
    .option('--times <count>', 'how many times', '1')
    .action((word: string, options: { times: string }) => {
      const times = Number(options.times);
      if (!Number.isInteger(times) || times < 1) throw new UsageError('usage.invalidNumber', `--times must be a positive integer, got '${options.times}'`);
      io.stdout.write(`${Array(times).fill(word).join(' ')}\n`);
    });
  program.command('fail').action(() => {
    throw new CommandFailure('check.violated', 'the command failed\non purpose');
  });
  program.command('crash').action(async () => {
    throw new TypeError('undefined is not a function');
  });
};

function expectOneErrorLine(result: Captured, pattern: RegExp): void {
  expect(result.stdout).toBe('');
  expect(lines(result.stderr)).toHaveLength(1);
  expect(result.stderr.endsWith('\n')).toBe(true);
  expect(result.stderr).toMatch(/^ninelives: /);
  expect(result.stderr).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\bat .*\(.*:\d+:\d+\)/); // no stack trace
}

describe('--version and --help', () => {
  it.each([['--version'], ['-V']])('%s prints the package version', async (flag) => {
    const result = await run([flag]);
    expect(result).toEqual({ exitCode: EXIT_SUCCESS, stdout: `${packageVersion}\n`, stderr: '' });
  });

  it.each([['--help'], ['-h']])('%s prints usage to stdout', async (flag) => {
    const result = await run([flag]);
    expect(result.exitCode).toBe(EXIT_SUCCESS);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: ninelives /);
    expect(result.stdout).toContain('--version');
    expect(result.stdout).toContain('fault-injection testbed');
  });

  it('lists registered commands in the help', async () => {
    const result = await run(['--help'], [fakeCommands]);
    expect(result.stdout).toMatch(/echo \[options\] <word>\s+print a word/);
  });

  it('`help echo` prints the command\'s help as `echo --help` does (it exited 2); `help` of no such command is one line, exit 2', async () => {
    expect(await run(['help', 'echo'], [fakeCommands])).toEqual(await run(['echo', '--help'], [fakeCommands]));
    expect((await run(['help', 'echo'], [fakeCommands])).exitCode).toBe(EXIT_SUCCESS);
    const unknown = await run(['help', 'frobnicate'], [fakeCommands]);
    expect(unknown.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(unknown, /^ninelives: unknown command 'frobnicate'\n$/);
  });

  it('no arguments prints the help to stderr and exits 2', async () => {
    const result = await run([]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: ninelives /);
  });
});

describe('usage errors exit 2 with one stderr line', () => {
  it('an unknown option', async () => {
    const result = await run(['--bogus']);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /^ninelives: unknown option '--bogus'\n$/);
  });

  it('an unknown command', async () => {
    const result = await run(['frobnicate'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /^ninelives: unknown command 'frobnicate'\n$/);
  });

  it('a misspelt command, with its suggestion folded onto the same line', async () => {
    const result = await run(['ecko', 'hi'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /unknown command 'ecko' \(Did you mean echo\?\)/);
  });

  it('an unknown option of a command', async () => {
    const result = await run(['echo', 'hi', '--loud'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /unknown option '--loud'/);
  });

  it('a missing argument', async () => {
    const result = await run(['echo'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /^ninelives: missing required argument 'word'\n$/);
  });

  it('an option missing its value', async () => {
    const result = await run(['echo', 'hi', '--times'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /option '--times <count>' argument missing/);
  });

  it('an option of one value given twice, either way of writing it: refused before the command runs (commander kept the last)', async () => {
    for (const argv of [['echo', 'hi', '--times', '2', '--times', '3'], ['echo', 'hi', '--times=2', '--times', '3']]) {
      const result = await run(argv, [fakeCommands]);
      expect(result.exitCode).toBe(EXIT_USAGE);
      expect(result.stdout).toBe('');
      expectOneErrorLine(result, /^ninelives: --times is given 2 times: give it once\n$/);
    }
    // after `--`, words are arguments, not options
    expect((await run(['echo', '--times', '2', '--', '--times'], [fakeCommands])).stdout).toBe('--times --times\n');
  });

  it('what the user typed is shown, not acted on: escape sequences in an error line are written out (a terminal ran them)', async () => {
    const result = await run(['echo', 'hi', '--times', '\u001b]0;title\u0007\u001b[31m'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expect(result.stderr).toBe("ninelives: --times must be a positive integer, got '\\x1b]0;title\\x07\\x1b[31m'\n");
  });

  it('a UsageError thrown by a command', async () => {
    const result = await run(['echo', 'hi', '--times', 'many'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_USAGE);
    expectOneErrorLine(result, /^ninelives: --times must be a positive integer, got 'many'\n$/);
  });
});

describe('other errors', () => {
  it('a command runs and writes to the given stdout', async () => {
    expect(await run(['echo', 'hi', '--times', '3'], [fakeCommands])).toEqual({ exitCode: EXIT_SUCCESS, stdout: 'hi hi hi\n', stderr: '' });
  });

  it('a CommandFailure exits 1 with one line', async () => {
    const result = await run(['fail'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_FAILURE);
    expectOneErrorLine(result, /^ninelives: the command failed on purpose\n$/);
  });

  it('an unexpected exception is an internal error on one line, exit 1', async () => {
    const result = await run(['crash'], [fakeCommands]);
    expect(result.exitCode).toBe(EXIT_FAILURE);
    expectOneErrorLine(result, /^ninelives: internal error: undefined is not a function\n$/);
  });

  it('errorLine drops commander\'s prefix and joins lines', () => {
    expect(errorLine("error: unknown command 'x'\n(Did you mean y?)\n")).toBe("ninelives: unknown command 'x' (Did you mean y?)\n");
  });

  it('UsageError carries a stable code', () => {
    const error = new UsageError('usage.invalidNumber', 'bad seed');
    expect(error).toBeInstanceOf(Error);
    expect([error.code, error.message, error.exitCode, error.name]).toEqual(['usage.invalidNumber', 'bad seed', EXIT_USAGE, 'UsageError']);
  });
});
