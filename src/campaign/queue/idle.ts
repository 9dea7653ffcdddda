/**
 * How long a queue worker's threads sat without a trial to run: the queue's cost that wall-clock
 * comparisons show only on a quiet machine. Two measures:
 *
 * - the pool ran dry: stretches where the worker had given its pool no group that was not done
 *   yet, between one group's end and the next one's submission (with chunks that do not overlap,
 *   the time between one chunk's end and the next one's start). Seen from the main thread, this
 *   does not depend on how loaded the machine is: a worker that holds its next chunk has none.
 * - the threads waited: each thread measures, for every group it runs, how long it waited since
 *   its previous group ended (thread.ts), which adds the time a result and the next group spend
 *   between the threads; on a loaded machine this includes waiting to be scheduled again. The
 *   waits before each chunk's first group are added up apart.
 *
 * Nothing before the first group or after the last one counts: starting and draining are not
 * the queue's cost per chunk.
 */

export interface IdleReport {
  /** chunks whose work began, and groups whose thread's wait was measured */
  readonly chunks: number;
  readonly groups: number;
  /** stretches with no group in the pool between two groups, their total and the longest */
  readonly dryGaps: number;
  readonly dryMs: number;
  readonly longestDryMs: number;
  /** every measured wait of a thread, in thread-milliseconds, and those before a chunk's first group */
  readonly threadWaitMs: number;
  readonly chunkStartWaitMs: number;
}

export class IdleMeter {
  private chunks = 0;
  private groups = 0;
  private inPool = 0;
  private drySinceMs: number | undefined;
  private dryGaps = 0;
  private dryMs = 0;
  private longestDryMs = 0;
  private threadWaitMs = 0;
  private chunkStartWaitMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  chunkStarted(): void {
    this.chunks++;
  }

  groupSubmitted(): void {
    if (this.inPool++ > 0 || this.drySinceMs === undefined) return;
    const dryMs = this.now() - this.drySinceMs;
    this.dryGaps++;
    this.dryMs += dryMs;
    this.longestDryMs = Math.max(this.longestDryMs, dryMs);
    this.drySinceMs = undefined;
  }

  /** A group is done; its thread had waited `waitedMs` for it (undefined: the thread's first). */
  groupDone(waitedMs: number | undefined, firstOfChunk: boolean): void {
    if (--this.inPool === 0) this.drySinceMs = this.now();
    if (waitedMs === undefined) return;
    this.groups++;
    this.threadWaitMs += waitedMs;
    if (firstOfChunk) this.chunkStartWaitMs += waitedMs;
  }

  report(): IdleReport {
    const { chunks, groups, dryGaps, dryMs, longestDryMs, threadWaitMs, chunkStartWaitMs } = this;
    return { chunks, groups, dryGaps, dryMs, longestDryMs, threadWaitMs, chunkStartWaitMs };
  }
}

/** One line for stderr: what `queue work --idle-report` prints as it stops. */
export function describeIdle(report: IdleReport): string {
  const perChunk = (ms: number): string => (report.chunks === 0 ? '-' : (ms / report.chunks).toFixed(2));
  return (
    `${report.chunks} chunks, ${report.groups} groups; pool ran dry ${report.dryGaps} times, ${report.dryMs.toFixed(0)} ms (${perChunk(report.dryMs)} ms a chunk, longest ${report.longestDryMs.toFixed(1)} ms); ` +
    `threads waited ${report.threadWaitMs.toFixed(0)} ms (${perChunk(report.threadWaitMs)} ms a chunk), ${report.chunkStartWaitMs.toFixed(0)} ms of it before chunks' first groups (${perChunk(report.chunkStartWaitMs)} ms a chunk)\n`
  );
}
