/** Against a correct (fake) hypervisor, every workload ends correct, for any seed. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TestSystem } from './system.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });
const MS = 1_000_000;

function expectAllCorrect(system: TestSystem): void {
  for (const [domain, verdict] of Object.entries(system.verdicts())) expect({ domain, verdict }).toEqual({ domain, verdict: { kind: 'correct' } });
}

describe('workloads on a correct hypervisor', () => {
  it('1AppVM: UnixBench does many checked operations and ends correct', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const system = new TestSystem({ configuration: '1AppVM', seed });
        system.run();
        expectAllCorrect(system);
        const summary = system.kernelOfKind('unixbench').summary();
        expect(summary.operations).toBeGreaterThan(1_000);
        expect(summary.mmuUpdates).toBeGreaterThan(100);
        expect(summary.multicallEntries).toBeGreaterThan(100);
        expect(summary.timers).toBeGreaterThan(50);
        expect(summary.yields).toBeGreaterThan(50);
      }),
      { numRuns: 8 },
    );
  });

  it('1AppVM-blk: BlkBench completes every operation through the PrivVM and the disk', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const system = new TestSystem({ configuration: '1AppVM-blk', seed });
        system.run();
        expectAllCorrect(system);
        const summary = system.kernelOfKind('blkbench').summary();
        expect(summary.completed).toBe(summary.operations);
        expect(summary.finished).toBe(1);
        expect(summary.verifiedReads).toBeGreaterThan(20);
      }),
      { numRuns: 8 },
    );
  });

  it('3AppVM: NetBench loses no ping, UnixBench runs, and a VM created mid-run completes BlkBench', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 1, max: 2_000 }), (seed, createAtMs) => {
        const system = new TestSystem({ configuration: '3AppVM', seed });
        system.run(createAtMs * MS);
        system.privVm.requestCreateDomain(system.configuration.newVm.cpu);
        system.run();
        expectAllCorrect(system);
        expect(system.createdDomains).toEqual([3]);
        expect(system.kernel(3).summary()).toMatchObject({ completed: 150, finished: 1 });
        const net = system.netBench().summary();
        expect(net).toMatchObject({ answered: system.nic!.pingCount, lost: 0, downtimeLosses: 0, wrongReplies: 0 });
        expect(system.nic!.droppedPingIds()).toEqual([]);
        expect(system.kernelOfKind('unixbench').summary().operations).toBeGreaterThan(2_000);
      }),
      { numRuns: 6 },
    );
  });

  it('3AppVM stays correct when events arrive through interrupt exits (deliverEvents)', () => {
    fc.assert(
      fc.property(seeds, (seed) => {
        const system = new TestSystem({ configuration: '3AppVM', seed, deliverByInterrupt: 'exceptBeforeBlock', runLengthNs: 600 * MS });
        system.run(300 * MS);
        system.privVm.requestCreateDomain(3);
        system.run();
        expectAllCorrect(system);
        expect(system.fake.trace.some((line) => line.includes('interrupt delivers'))).toBe(true);
        expect(system.kernel(3).summary().finished).toBe(1);
      }),
      { numRuns: 4 },
    );
  });
});
