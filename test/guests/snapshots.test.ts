/** saveState/loadState mid-run: fresh kernels loaded from snapshots continue exactly as the originals. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKernel } from '../../src/guests/factory.js';
import { FakeRegion } from './fake-hypervisor.js';
import { TestSystem, type SystemOptions } from './system.js';

const MS = 1_000_000;
const seeds = fc.integer({ min: 0, max: 0x7fffffff });

interface Outcome {
  trace: string[];
  verdicts: unknown;
  summaries: unknown;
}

/** Runs a system, reloading every kernel and device from snapshots at each of `cutsNs`. */
function runWithCuts(options: SystemOptions, cutsNs: readonly number[], createAtNs: number | null): Outcome {
  const system = new TestSystem(options);
  const stops = [...cutsNs.map((timeNs) => ({ timeNs, kind: 'cut' as const })), ...(createAtNs === null ? [] : [{ timeNs: createAtNs, kind: 'create' as const }])];
  stops.sort((a, b) => a.timeNs - b.timeNs || (a.kind === 'create' ? -1 : 1));
  for (const stop of stops) {
    system.run(stop.timeNs);
    if (stop.kind === 'cut') system.reloadFromSnapshots();
    else system.privVm.requestCreateDomain(system.configuration.newVm.cpu);
  }
  system.run();
  return { trace: system.fake.trace, verdicts: system.verdicts(), summaries: system.summaries() };
}

describe('snapshots', () => {
  it('3AppVM continues identically after reloading every kernel and device at random times', () => {
    const runLengthNs = 800 * MS;
    fc.assert(
      fc.property(
        seeds,
        fc.array(fc.integer({ min: 1, max: runLengthNs - 1 }), { minLength: 1, maxLength: 3 }),
        fc.option(fc.integer({ min: 1, max: 600 * MS }), { nil: null }),
        (seed, cutsNs, createAtNs) => {
          const options = { configuration: '3AppVM', seed, runLengthNs };
          const reference = runWithCuts(options, [], createAtNs);
          const reloaded = runWithCuts(options, cutsNs, createAtNs);
          expect(reloaded.verdicts).toEqual(reference.verdicts);
          expect(reloaded.summaries).toEqual(reference.summaries);
          expect(reloaded.trace.length).toBe(reference.trace.length);
          expect(reloaded.trace).toEqual(reference.trace);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('1AppVM-blk continues identically, including mid-request', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 1, max: 80 * MS }), (seed, cutNs) => {
        const options = { configuration: '1AppVM-blk', seed, runLengthNs: 200 * MS };
        expect(runWithCuts(options, [cutNs], null)).toEqual(runWithCuts(options, [], null));
      }),
      { numRuns: 12 },
    );
  });

  it('snapshots are plain data that survive JSON and refuse to load into another kernel', () => {
    const system = new TestSystem({ configuration: '3AppVM', seed: 5, runLengthNs: 50 * MS });
    system.run();
    for (const domainId of system.fake.domainIds()) {
      const saved = system.kernel(domainId).saveState();
      expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
    }
    const other = createKernel('unixbench', { domainId: 1, seed: 5, multicallRegion: new FakeRegion(40) });
    expect(() => other.loadState(system.kernelOfKind('netbench').saveState())).toThrow(/cannot load the state of netbench/);
    expect(() => other.loadState(42)).toThrow(/not a saved kernel state/);
  });
});
