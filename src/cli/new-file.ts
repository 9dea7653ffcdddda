/**
 * Files a command writes at a name the user gives (`export --parquet`, `--timeline`): always a
 * new file. The name is checked before any work (not empty, nothing there yet, its directory
 * present and not the system's: /etc, /usr, /proc, ...); the file is written whole under a
 * hidden name beside it and linked into place only if the name is still free, so nothing there
 * is ever replaced and a failed write leaves nothing.
 */
import { existsSync, linkSync, lstatSync, rmSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isSystemPlace } from '../results/output-directory.js';
import { temporaryNameFor } from '../results/staged-file.js';
import { UsageError } from './errors.js';

/** File systems take names of up to 255 bytes; the temporary name beside the file is longer. */
const MAX_FILE_NAME_BYTES = 200;

/** Refuses, in one line, a name the file cannot be written at as a new file. */
export function refuseNewFileTarget(option: string, file: string): void {
  if (file.trim() === '') throw new UsageError('usage.invalidPath', `${option} is empty: name a file to write`);
  const name = basename(file);
  if (/[/\\]$/.test(file) || name === '.' || name === '..') throw new UsageError('usage.invalidPath', `${option} ${file} names a directory: name a file to write`);
  // the file is written beside itself first, under a name some 20 bytes longer (staged-file.ts)
  if (Buffer.byteLength(name) > MAX_FILE_NAME_BYTES) throw new UsageError('usage.invalidPath', `${option}: a file name of at most ${MAX_FILE_NAME_BYTES} bytes, not ${Buffer.byteLength(name)}`);
  if (occupied(file)) throw exists(option, file);
  const directory = dirname(file);
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new UsageError('usage.invalidPath', `${option} ${file}: there is no directory ${directory} to write it in`);
  if (isSystemPlace(directory)) throw new UsageError('usage.invalidPath', `${option} ${file} is in a system directory: write it in a directory of your own`);
}

/** Anything at the name, a link that leads nowhere included (existsSync follows links). */
function occupied(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

function exists(option: string, file: string): UsageError {
  return new UsageError('usage.invalidPath', `${option} ${file} exists: ninelives writes a new file and never over one (remove it, or name another)`);
}

/** Write `file` as a new file: `write` fills a temporary file beside it, which is then linked in. */
export async function writeNewFile(option: string, file: string, write: (temporary: string) => Promise<void> | void): Promise<void> {
  const temporary = temporaryNameFor(file);
  try {
    await write(temporary);
    linkSync(temporary, file);
  } catch (error) {
    // something took the name while the file was written
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw exists(option, file);
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}
