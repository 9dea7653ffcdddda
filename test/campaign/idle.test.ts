/**
 * The queue worker's idle meter (src/campaign/queue/idle.ts), on a clock the test moves: the pool
 * runs dry exactly for the time between one chunk's last group and the next chunk's first when
 * chunks follow one another, and never when the next chunk is given before the last one ends;
 * the threads' own waits are added up, apart before a chunk's first group.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeIdle, IdleMeter } from '../../src/campaign/queue/idle.js';

/** A chunk: its groups' run times, and the pause before the next chunk's groups are given. */
const chunks = fc.array(fc.record({ groupsMs: fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }), pauseMs: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 8 });

/** One thread running each chunk's groups in turn; `prefetch`: the next chunk is given as this one starts. */
function run(schedule: readonly { groupsMs: readonly number[]; pauseMs: number }[], prefetch: boolean): IdleMeter {
  let now = 0;
  const meter = new IdleMeter(() => now);
  schedule.forEach((chunk, index) => {
    meter.chunkStarted();
    if (!prefetch || index === 0) chunk.groupsMs.forEach(() => meter.groupSubmitted());
    // the next chunk's groups wait in the pool's queue behind this chunk's
    if (prefetch && index + 1 < schedule.length) schedule[index + 1].groupsMs.forEach(() => meter.groupSubmitted());
    chunk.groupsMs.forEach((ms, group) => {
      now += ms;
      // the thread's own waits are the last test's subject
      meter.groupDone(index === 0 && group === 0 ? undefined : 0, group === 0);
    });
    if (!prefetch) now += chunk.pauseMs;
  });
  return meter;
}

describe('the idle meter', () => {
  it('chunks that follow one another: the pool runs dry between each two, for the pause between them', () => {
    fc.assert(
      fc.property(chunks, (schedule) => {
        const report = run(schedule, false).report();
        const pauses = schedule.slice(0, -1).map((chunk) => chunk.pauseMs);
        expect(report.dryGaps).toBe(pauses.length);
        expect(report.dryMs).toBe(pauses.reduce((sum, ms) => sum + ms, 0));
        expect(report.longestDryMs).toBe(Math.max(0, ...pauses));
        expect(report.chunks).toBe(schedule.length);
      }),
    );
  });

  it('a worker that holds the next chunk: the pool never runs dry', () => {
    fc.assert(
      fc.property(chunks, (schedule) => {
        const report = run(schedule, true).report();
        expect(report).toMatchObject({ dryGaps: 0, dryMs: 0, chunks: schedule.length });
      }),
    );
  });

  it('adds the threads\' waits, apart those before a chunk\'s first group; a thread\'s first group has none', () => {
    const meter = new IdleMeter(() => 0);
    meter.chunkStarted();
    meter.groupSubmitted();
    meter.groupDone(undefined, true);
    meter.groupSubmitted();
    meter.groupDone(0.5, false);
    meter.chunkStarted();
    meter.groupSubmitted();
    meter.groupDone(4, true);
    expect(meter.report()).toEqual({ chunks: 2, groups: 2, dryGaps: 2, dryMs: 0, longestDryMs: 0, threadWaitMs: 4.5, chunkStartWaitMs: 4 });
    expect(describeIdle(meter.report())).toBe("2 chunks, 2 groups; pool ran dry 2 times, 0 ms (0.00 ms a chunk, longest 0.0 ms); threads waited 5 ms (2.25 ms a chunk), 4 ms of it before chunks' first groups (2.00 ms a chunk)\n");
  });
});
