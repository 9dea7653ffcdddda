/**
 * A file written a piece at a time and put in place whole. The pieces go, through a buffer, to
 * a temporary file in the same directory; commit flushes it to disk and renames it over the
 * target, so the target is always either the old file or the complete new one, however large
 * the new one is and whenever the process dies.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const BUFFER_BYTES = 1 << 20;

let sequence = 0;

/** A hidden name beside the target, unique within this process and across processes. */
export function temporaryNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${sequence++}.tmp`);
}

export class StagedFile {
  private descriptor: number | undefined;
  private readonly buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;

  constructor(
    readonly path: string,
    readonly temporaryPath = temporaryNameFor(path),
  ) {
    this.descriptor = openSync(temporaryPath, 'w');
  }

  write(data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.used + bytes > this.buffer.length) this.flush();
    if (bytes > this.buffer.length) {
      writeFully(this.openDescriptor(), typeof data === 'string' ? Buffer.from(data) : data);
    } else if (typeof data === 'string') {
      this.used += this.buffer.write(data, this.used);
    } else {
      this.buffer.set(data, this.used);
      this.used += bytes;
    }
  }

  /** Flush, sync, rename over the target; on failure the temporary file is removed. */
  commit(): void {
    try {
      this.flush();
      const descriptor = this.openDescriptor();
      fsyncSync(descriptor);
      this.close();
      renameSync(this.temporaryPath, this.path);
    } catch (error) {
      this.discard();
      throw error;
    }
    syncDirectory(dirname(this.path));
  }

  /** Abandon the new file: the target stays as it was. */
  discard(): void {
    this.close();
    rmSync(this.temporaryPath, { force: true });
  }

  private flush(): void {
    if (this.used === 0) return;
    writeFully(this.openDescriptor(), this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  private openDescriptor(): number {
    if (this.descriptor === undefined) throw new Error(`${this.temporaryPath} is already closed`);
    return this.descriptor;
  }

  private close(): void {
    if (this.descriptor === undefined) return;
    closeSync(this.descriptor);
    this.descriptor = undefined;
  }
}

/**
 * A staged file that `write` has filled, ready to commit; if `write` throws, the temporary file is
 * removed and the target left as it was.
 */
export function stageFile(path: string, write: (file: StagedFile) => void, temporaryPath?: string): StagedFile {
  const file = new StagedFile(path, temporaryPath);
  try {
    write(file);
  } catch (error) {
    file.discard();
    throw error;
  }
  return file;
}

/** Write a whole file atomically (see StagedFile). */
export function writeFileAtomically(path: string, content: string, temporaryPath?: string): void {
  stageFile(path, (file) => file.write(content), temporaryPath).commit();
}

/** writeSync may write less than asked: keep going until it is all out. */
function writeFully(descriptor: number, bytes: Uint8Array): void {
  for (let written = 0; written < bytes.length; ) written += writeSync(descriptor, bytes, written, bytes.length - written);
}

/** Makes the rename itself durable; not every platform can open a directory, which is fine. */
function syncDirectory(directory: string): void {
  try {
    const descriptor = openSync(directory, 'r');
    try {
      fsyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
  } catch {
    // best effort: the rename is atomic either way
  }
}
