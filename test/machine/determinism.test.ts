/**
 * Determinism: the same program gives the same state; snapshots restore exactly; and where a
 * run is cut (a time boundary, an instruction stop, a snapshot) never changes what follows.
 */
import fc from 'fast-check';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { buildRandomProgram, randomProgram, runThrough } from './random-program.js';
import { machineDigest, machineState } from './state.js';

const RUN_NS = 60_000;

describe('determinism', () => {
  it('the same program always gives the same final state', () => {
    fc.assert(
      fc.property(randomProgram, (program) => {
        const first = buildRandomProgram(program);
        const second = buildRandomProgram(program);
        runThrough(first.machine, RUN_NS);
        runThrough(second.machine, RUN_NS);
        expect(machineState(second.machine)).toEqual(machineState(first.machine));
        expect(machineDigest(second.machine)).toBe(machineDigest(first.machine));
      }),
      { numRuns: 60 },
    );
  });

  it('the same seed gives the same digest; different seeds give different digests', () => {
    const digestFor = (seed: string): string => {
      const [program] = fc.sample(randomProgram, { seed: seedrandom(seed).int32(), numRuns: 1 });
      const built = buildRandomProgram(program);
      runThrough(built.machine, RUN_NS);
      return machineDigest(built.machine);
    };
    expect(digestFor('alpha')).toBe(digestFor('alpha'));
    const digests = new Set(['alpha', 'beta', 'gamma', 'delta'].map(digestFor));
    expect(digests.size).toBe(4);
  });
});

describe('snapshots', () => {
  it('snapshot, run, restore, run again gives the same state as the first run', () => {
    fc.assert(
      fc.property(randomProgram, fc.integer({ min: 0, max: RUN_NS }), (program, cutNs) => {
        const { machine } = buildRandomProgram(program);
        runThrough(machine, cutNs);
        const snapshot = machine.snapshot();
        runThrough(machine, RUN_NS);
        const first = machineState(machine);
        machine.restore(snapshot);
        runThrough(machine, RUN_NS);
        expect(machineState(machine)).toEqual(first);
      }),
      { numRuns: 60 },
    );
  });

  it('a snapshot is a copy: running on does not change it', () => {
    const [program] = fc.sample(randomProgram, { seed: 7, numRuns: 1 });
    const { machine } = buildRandomProgram(program);
    runThrough(machine, 1_000);
    const snapshot = machine.snapshot();
    const saved = machineState(machine);
    runThrough(machine, RUN_NS);
    machine.restore(snapshot);
    expect(machineState(machine)).toEqual(saved);
  });
});

describe('cut independence', () => {
  it('running in two legs equals running straight through', () => {
    fc.assert(
      fc.property(randomProgram, fc.integer({ min: 1, max: RUN_NS - 1 }), (program, cutNs) => {
        const straight = buildRandomProgram(program);
        runThrough(straight.machine, RUN_NS);
        const cut = buildRandomProgram(program);
        runThrough(cut.machine, cutNs);
        runThrough(cut.machine, RUN_NS);
        expect(machineState(cut.machine)).toEqual(machineState(straight.machine));
      }),
      { numRuns: 100 },
    );
  });

  it('stopping at an instruction and carrying on equals running straight through', () => {
    fc.assert(
      fc.property(randomProgram, fc.integer({ min: 1, max: 20_000 }), (program, stop) => {
        const straight = buildRandomProgram(program);
        runThrough(straight.machine, RUN_NS);
        const cut = buildRandomProgram(program);
        runThrough(cut.machine, RUN_NS, { instructionLimit: stop });
        expect(machineState(cut.machine)).toEqual(machineState(straight.machine));
      }),
      { numRuns: 100 },
    );
  });
});
