/**
 * One list of error codes for the library and the CLI: library errors carry codes from it, and a
 * library error a command does not translate still reaches the user as one line with the exit
 * code its code implies (usage and input: 2; the rest: 1).
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { CampaignError } from '../../src/campaign/spec.js';
import { ResultsExistError } from '../../src/campaign/runner.js';
import { EXIT_FAILURE, EXIT_USAGE } from '../../src/cli/errors.js';
import { runCli } from '../../src/cli/run.js';
import { errorCodes, NinelivesError } from '../../src/errors.js';
import { UnknownConfigurationError } from '../../src/guests/configurations.js';
import { UnknownStepError } from '../../src/recovery/mechanisms.js';
import { MergeConflictError } from '../../src/results/merge.js';
import { ForeignManifestError } from '../../src/results/manifest.js';
import { OutputDirectoryError } from '../../src/results/output-directory.js';
import { ShardMismatchError } from '../../src/results/shards.js';
import { ResultsFileError } from '../../src/results/store.js';

async function cliThrowing(error: Error): Promise<{ exitCode: number; stderr: string }> {
  let stderr = '';
  const io = { stdout: { write: () => undefined }, stderr: { write: (text: string) => (stderr += text) } };
  const register = (program: Command) => {
    program.command('go').action(() => {
      throw error;
    });
  };
  const exitCode = await runCli(['go'], io, [register]);
  return { exitCode, stderr };
}

describe('error codes', () => {
  it('library errors carry codes from the one list', () => {
    const errors = [new CampaignError(['x']), new ResultsExistError('x'), new ResultsFileError('x'), new MergeConflictError('x'), new UnknownStepError('microreset', ['x']), new UnknownConfigurationError('x'), new OutputDirectoryError('x'), new ForeignManifestError('x'), new ShardMismatchError('x')];
    for (const error of errors) {
      expect(error).toBeInstanceOf(NinelivesError);
      expect(errorCodes).toContain(error.code);
    }
    expect(new UnknownStepError('microreset', ['x']).name).toBe('UnknownStepError');
  });

  it('an untranslated library error is one line with the exit code of its code', async () => {
    const usage = await cliThrowing(new UnknownStepError('microreboot', ['stop-cpu']));
    expect(usage).toEqual({ exitCode: EXIT_USAGE, stderr: 'ninelives: microreboot has no step named "stop-cpu"\n' });
    const refused = await cliThrowing(new OutputDirectoryError('--out / is the filesystem root'));
    expect(refused).toEqual({ exitCode: EXIT_USAGE, stderr: 'ninelives: --out / is the filesystem root\n' });
    const failure = await cliThrowing(new MergeConflictError('shards disagree'));
    expect(failure).toEqual({ exitCode: EXIT_FAILURE, stderr: 'ninelives: shards disagree\n' });
  });

  it('the machine refusing a write (a full disk, a read-only file system, a name too long) is said as such, exit 1, not an internal error', async () => {
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC' });
    expect(await cliThrowing(full)).toEqual({ exitCode: EXIT_FAILURE, stderr: 'ninelives: the disk is full: ENOSPC: no space left on device, write\n' });
    const readOnly = Object.assign(new Error("EROFS: read-only file system, open 'x'"), { code: 'EROFS' });
    expect(await cliThrowing(readOnly)).toEqual({ exitCode: EXIT_FAILURE, stderr: "ninelives: the file system is read-only: EROFS: read-only file system, open 'x'\n" });
    const other = Object.assign(new Error('ECONNRESET: socket hang up'), { code: 'ECONNRESET' });
    expect((await cliThrowing(other)).stderr).toBe('ninelives: internal error: ECONNRESET: socket hang up\n');
  });
});
