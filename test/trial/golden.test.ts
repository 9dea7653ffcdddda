/**
 * Golden runs on the real hypervisor: fault-free, every guest correct, the audit clean, nothing
 * detected; deterministic per seed; and the counters show the workload really ran through the
 * hypervisor.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hypercallNames } from '../../src/hypervisor/abi.js';
import { runGolden, type GoldenReport } from '../../src/trial/golden.js';
import { goldenRun } from '../../src/trial/golden-cache.js';
import { System } from '../../src/trial/system.js';

const MS = 1_000_000;
const seeds = fc.integer({ min: 0, max: 0x7fffffff });

type HypercallName = (typeof hypercallNames)[number];

function expectHealthy(report: GoldenReport, workloads: readonly string[]): void {
  expect(report.detections).toEqual([]);
  expect(report.audit).toEqual({ clean: true });
  expect(report.guests.map((guest) => guest.workload)).toEqual(workloads);
  for (const guest of report.guests) expect({ domain: guest.domainId, verdict: guest.verdict }).toEqual({ domain: guest.domainId, verdict: { kind: 'correct' } });
}

/** The hypercalls a configuration's workloads make, and only those, were issued. */
function expectHypercallKinds(report: GoldenReport, used: readonly HypercallName[]): void {
  for (const name of hypercallNames) {
    if (used.includes(name)) expect(report.hypercalls[name], name).toBeGreaterThan(0);
    else expect(report.hypercalls[name], name).toBe(0);
  }
}

function summaryOf(report: GoldenReport, workload: string): Readonly<Record<string, number>> {
  const guest = report.guests.find((candidate) => candidate.workload === workload);
  if (guest === undefined) throw new Error(`no ${workload} in ${report.configuration}`);
  return guest.summary;
}

describe('golden runs are clean for every seed', () => {
  it('1AppVM (UnixBench)', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const report = runGolden({ configuration: '1AppVM', seed, runLengthNs: 400 * MS });
        expectHealthy(report, ['privvm', 'unixbench']);
        expectHypercallKinds(report, ['mmu_update', 'multicall', 'sched_op', 'set_timer_op']);
        // The guest checked every answer it counted: its counts match what it issued (the last
        // call may still be in flight at the end of the run).
        const unix = summaryOf(report, 'unixbench');
        expect(report.hypercalls.mmu_update - unix.mmuUpdates).toBeGreaterThanOrEqual(0);
        expect(report.hypercalls.mmu_update - unix.mmuUpdates).toBeLessThanOrEqual(1);
        expect(report.hypercalls.multicall - unix.multicalls).toBeGreaterThanOrEqual(0);
        expect(report.hypercalls.multicall - unix.multicalls).toBeLessThanOrEqual(1);
      }),
      { numRuns: 8 },
    );
  });

  it('1AppVM-blk (BlkBench finishes its whole sequence)', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        // BlkBench must finish within the run, so it keeps the configuration's full length.
        const report = runGolden({ configuration: '1AppVM-blk', seed });
        expectHealthy(report, ['privvm', 'blkbench']);
        expectHypercallKinds(report, ['sched_op', 'set_timer_op', 'event_channel_op', 'physdev_op']);
        const blk = summaryOf(report, 'blkbench');
        expect(blk.finished).toBe(1);
        expect(blk.completed).toBe(blk.operations);
        expect(blk.verifiedReads).toBeGreaterThan(0);
        const privVm = summaryOf(report, 'privvm');
        expect(privVm.blockRequests).toBe(blk.requests);
        expect(privVm.blockResponses).toBe(blk.requests);
        // every disk interrupt ended by the PrivVM's EOI, none refused
        expect(privVm.eoiErrors).toBe(0);
      }),
      { numRuns: 6 },
    );
  });

  it('3AppVM (UnixBench and NetBench through the PrivVM)', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        // 1.2 s: one whole 1 s NetBench window and part of the next.
        const report = runGolden({ configuration: '3AppVM', seed, runLengthNs: 1_200 * MS });
        expectHealthy(report, ['privvm', 'unixbench', 'netbench']);
        expectHypercallKinds(report, ['mmu_update', 'multicall', 'sched_op', 'set_timer_op', 'event_channel_op', 'physdev_op']);
        expect(summaryOf(report, 'privvm').eoiErrors).toBe(0);
        const net = summaryOf(report, 'netbench');
        expect(net.window0Pings).toBeGreaterThanOrEqual(990);
        expect(net.window0Lost).toBe(0);
        expect(net.wrongReplies).toBe(0);
        expect(net.answered).toBeGreaterThanOrEqual(1_190);
      }),
      { numRuns: 3 },
    );
  });
});

describe('golden runs are deterministic', () => {
  it('the same seed gives the same report and digest, a different seed a different digest (3AppVM, full length)', () => {
    const first = runGolden({ configuration: '3AppVM', seed: 42 });
    const again = runGolden({ configuration: '3AppVM', seed: 42 });
    expect(again).toEqual(first);
    expect(first.digest).toMatch(/^[0-9a-f]{16}$/);

    const other = runGolden({ configuration: '3AppVM', seed: 43 });
    expect(other.digest).not.toBe(first.digest);

    // Plausible counters for 2.4 s of three busy domains.
    expectHealthy(first, ['privvm', 'unixbench', 'netbench']);
    expect(first.simulatedNs).toBeGreaterThanOrEqual(2_400 * MS);
    expect(first.simulatedNs).toBeLessThan(2_400 * MS + 1 * MS);
    expect(first.hypervisorInstructions).toBeGreaterThan(1_000_000);
    expect(first.hypervisorInstructions).toBeLessThan(100_000_000);
    expect(first.contextSwitches).toBeGreaterThan(1_000);
    // at least a timer interrupt per scheduler tick on each of the 4 CPUs (10 ms)
    expect(first.interrupts).toBeGreaterThan(4 * 240);
    // NetBench answers one ping per millisecond, and the PrivVM forwards every one
    expect(summaryOf(first, 'netbench').answered).toBeGreaterThanOrEqual(2_390);
    expect(summaryOf(first, 'privvm').pingsForwarded).toBe(summaryOf(first, 'netbench').replies);
    expect(first.hypercalls.event_channel_op).toBeGreaterThanOrEqual(2_390);
  });

  it('different seeds give different digests (1AppVM, short runs)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(seeds, { minLength: 3, maxLength: 3 }), (threeSeeds) => {
        const digests = threeSeeds.map((seed) => runGolden({ configuration: '1AppVM', seed, runLengthNs: 100 * MS }).digest);
        expect(new Set(digests).size).toBe(3);
      }),
      { numRuns: 3 },
    );
  });
});

describe('golden checkpoints', () => {
  it('a system run on from one checkpoint is in the state of the next; one memory word, register or guest counter changed, it is not', () => {
    const run = goldenRun({ configuration: '1AppVM', seed: 11, runLengthNs: 200 * MS });
    const [, earlier, later] = run.checkpoints;
    const system = new System(run.options);
    system.restore(earlier.snapshot);
    expect(system.isInStateOf(later.snapshot, later.stateBesidesMemory)).toBe(false);
    system.machine.run(later.timeNs);
    const atLater = (): boolean => system.isInStateOf(later.snapshot, later.stateBesidesMemory);
    expect(atLater()).toBe(true);
    const words = system.machine.memory.words;
    const registers = system.machine.cpus[1].registers;
    for (const [array, index] of [[words, words.length - 1], [registers, 3], [system.host.hypercallCounts, 0]] as const) {
      array[index] ^= 1;
      expect(atLater()).toBe(false);
      array[index] ^= 1;
      expect(atLater()).toBe(true);
    }
  });
});
