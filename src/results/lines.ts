/**
 * A JSON-lines file read a chunk at a time, so that reading it takes the same memory however
 * long it is. Each complete line comes with its byte offset and length, so a caller can keep
 * where a line is rather than the line, and read it again later (readBytes).
 *
 * A torn last line (an interrupted append: bytes after the last newline) is not a line. When a
 * read reaches it, it is cut off the file, so that the next append starts a line of its own.
 */
import { closeSync, existsSync, openSync, readSync, statSync, truncateSync } from 'node:fs';
import { NinelivesError } from '../errors.js';

const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;
/** A trial record is a few kilobytes: a longer line is no record, and is not held whole. */
export const MAX_LINE_BYTES = 4 << 20;

/** A line of a results file that is not a trial record: the user's file, so one line to say so. */
export class ResultsFileError extends NinelivesError {
  constructor(message: string) {
    super('input.results', message);
  }
}

export interface Line {
  readonly text: string;
  /** where the line starts in the file, in bytes */
  readonly offset: number;
  /** in bytes, without the newline that ends it */
  readonly length: number;
  /** 1-based, blank lines counted, for messages */
  readonly number: number;
}

export interface ReadOptions {
  /**
   * Cut a torn last line off the file (the default). False for a file another process may be
   * appending to (a queue worker's): its last line may be a write in progress.
   */
  readonly repairTornEnd?: boolean;
  /**
   * Start at this byte, the start of a line (where a previous read's last line ended, plus its
   * newline): for following a file that grows. Line numbers then count from there.
   */
  readonly fromOffset?: number;
}

/** The file's complete lines that are not blank, in order; none if the file does not exist. */
export function* readLines(path: string, options: ReadOptions = {}): Generator<Line> {
  if (!existsSync(path)) return;
  const descriptor = openSync(path, 'r');
  let tornAt: number | undefined;
  try {
    tornAt = yield* linesOf(descriptor, options.fromOffset ?? 0);
  } catch (error) {
    if (error instanceof ResultsFileError) throw new ResultsFileError(`${path} ${error.message}`);
    throw error;
  } finally {
    closeSync(descriptor);
  }
  if (tornAt !== undefined && options.repairTornEnd !== false) truncateSync(path, tornAt);
}

/** Yields the lines; returns where a torn last line starts, if there is one. */
function* linesOf(descriptor: number, fromOffset: number): Generator<Line, number | undefined> {
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  // the start of a line that runs past the chunk it began in
  let carried = Buffer.alloc(0);
  let position = fromOffset;
  let number = 0;
  for (let read = readSync(descriptor, chunk, 0, CHUNK_BYTES, position); read > 0; read = readSync(descriptor, chunk, 0, CHUNK_BYTES, position)) {
    const data = carried.length === 0 ? chunk.subarray(0, read) : Buffer.concat([carried, chunk.subarray(0, read)]);
    const dataOffset = position - carried.length;
    position += read;
    let start = 0;
    // a newline byte is never part of a multi-byte UTF-8 character, so splitting bytes is safe
    for (let end = data.indexOf(NEWLINE, start); end !== -1; end = data.indexOf(NEWLINE, start)) {
      number++;
      const text = data.toString('utf8', start, end);
      if (text.trim() !== '') yield { text, offset: dataOffset + start, length: end - start, number };
      start = end + 1;
    }
    // copied: the chunk is read into again
    carried = Buffer.from(data.subarray(start));
    if (carried.length > MAX_LINE_BYTES) throw new ResultsFileError(`line ${number + 1} is longer than ${MAX_LINE_BYTES} bytes: not a trial record`);
  }
  return carried.length > 0 ? position - carried.length : undefined;
}

/** `length` bytes at `offset`, read into `into` when it is big enough. */
export function readBytes(descriptor: number, offset: number, length: number, into: Buffer): Buffer {
  const target = into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
  for (let done = 0; done < length; ) {
    const read = readSync(descriptor, target, done, length - done, offset + done);
    if (read === 0) throw new Error(`the file ended ${length - done} bytes early, at byte ${offset + done}: it changed while being read`);
    done += read;
  }
  return target;
}

/** Bytes up to and including the last newline (0 if there is none). */
export function wholeLinesLength(path: string): number {
  const size = statSync(path).size;
  const descriptor = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 16);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      readSync(descriptor, chunk, 0, end - start, start);
      const newline = chunk.subarray(0, end - start).lastIndexOf(0x0a);
      if (newline >= 0) return start + newline + 1;
      end = start;
    }
    return 0;
  } finally {
    closeSync(descriptor);
  }
}

/** Cut a torn last line (an append a kill interrupted) off the file, so that the next append starts a line of its own. */
export function cutTornEnd(path: string): void {
  if (!existsSync(path)) return;
  const whole = wholeLinesLength(path);
  if (whole < statSync(path).size) truncateSync(path, whole);
}
