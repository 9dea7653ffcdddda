/**
 * One writer a results directory: a run (or triage) holds DIR/.ninelives.lock, which names its
 * process, from its claim to its end. A second one finds it and is refused in one line; a lock
 * whose process is gone (killed with -9) is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NinelivesError } from '../errors.js';

export const LOCK_FILE = '.ninelives.lock';

export class DirectoryInUseError extends NinelivesError {
  constructor(message: string) {
    super('usage.resultsExist', message);
  }
}

/** Take `directory`'s lock; returns the function that gives it back. Throws DirectoryInUseError. */
export function lockDirectory(directory: string): () => void {
  const path = join(directory, LOCK_FILE);
  for (;;) {
    try {
      const descriptor = openSync(path, 'wx');
      writeSync(descriptor, `${process.pid}\n`);
      closeSync(descriptor);
      return () => releaseIfOurs(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = holderOf(path);
    if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
      throw new DirectoryInUseError(`${directory} is in use by process ${holder}, another ninelives writing there: wait for it to end, or stop it`);
    }
    // its process is gone (or it is this one's, left by an earlier command in this process)
    rmSync(path, { force: true });
  }
}

function holderOf(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseIfOurs(path: string): void {
  if (holderOf(path) === process.pid) rmSync(path, { force: true });
}
