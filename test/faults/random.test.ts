/**
 * Seeds and plans: trial seeds derive deterministically from (campaign seed, trial index) and
 * change with each; plans are pure functions of the trial seed, with every choice in range.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_FAULT_WINDOW_WORDS, MAX_INSTRUCTIONS_AFTER_TRIGGER, faultTypes, registerNames } from '../../src/faults/fault.js';
import { planFault } from '../../src/faults/plan.js';
import { Random, trialSeed } from '../../src/faults/random.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });
const trialIndexes = fc.integer({ min: 0, max: 1_000_000 });
const runLengths = fc.integer({ min: 1, max: 60_000 }).map((ms) => ms * 1_000_000);

describe('trialSeed', () => {
  it('is a deterministic unsigned 32-bit value', () => {
    fc.assert(
      fc.property(seeds, trialIndexes, (seed, index) => {
        const value = trialSeed(seed, index);
        expect(value).toBe(trialSeed(seed, index));
        expect(Number.isInteger(value) && value >= 0 && value <= 0xffffffff).toBe(true);
      }),
    );
  });

  it('changes with the trial index', () => {
    fc.assert(
      fc.property(seeds, trialIndexes, trialIndexes, (seed, first, second) => {
        fc.pre(first !== second);
        expect(trialSeed(seed, first)).not.toBe(trialSeed(seed, second));
      }),
    );
  });

  it('changes with the campaign seed', () => {
    fc.assert(
      fc.property(seeds, seeds, trialIndexes, (first, second, index) => {
        fc.pre(first !== second);
        expect(trialSeed(first, index)).not.toBe(trialSeed(second, index));
      }),
    );
  });

  it('does not collide over a campaign of consecutive trials, and mixes its bits', () => {
    for (const seed of [0, 1, 7, 42]) {
      const values = Array.from({ length: 5_000 }, (_, index) => trialSeed(seed, index));
      expect(new Set(values).size).toBe(values.length);
      // each bit is set in roughly half the seeds (a sum of 5,000 fair bits lies within ±300 of 2,500)
      for (let bit = 0; bit < 32; bit++) {
        const ones = values.filter((value) => (value >>> bit) & 1).length;
        expect(Math.abs(ones - 2_500), `bit ${bit}`).toBeLessThan(300);
      }
    }
  });

  it('is pinned: a changed derivation would silently change every recorded campaign', () => {
    expect([trialSeed(42, 0), trialSeed(42, 1), trialSeed(7, 999)]).toEqual([786604370, 2174715732, 2948818160]);
    expect(new Random(786604370).integer(1_000_000)).toBe(942096);
  });
});

describe('planFault', () => {
  it('is a pure function of the trial seed', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.constantFrom(...faultTypes), runLengths, (seed, faultType, runLengthNs) => {
        expect(planFault(seed, faultType, runLengthNs)).toEqual(planFault(seed, faultType, runLengthNs));
      }),
    );
  });

  it('draws every choice within its range', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.constantFrom(...faultTypes), runLengths, (seed, faultType, runLengthNs) => {
        const { trigger, target } = planFault(seed, faultType, runLengthNs);
        expect(target.type).toBe(faultType);
        expect(Number.isInteger(trigger.timeNs) && trigger.timeNs >= 0 && trigger.timeNs < runLengthNs).toBe(true);
        expect(Number.isInteger(trigger.instructionsAfter)).toBe(true);
        expect(trigger.instructionsAfter).toBeGreaterThanOrEqual(0);
        expect(trigger.instructionsAfter).toBeLessThanOrEqual(MAX_INSTRUCTIONS_AFTER_TRIGGER);
        switch (target.type) {
          case 'failstop':
            break;
          case 'register':
            expect(registerNames).toContain(target.register);
            expect(target.bit >= 0 && target.bit < 32 && Number.isInteger(target.bit)).toBe(true);
            break;
          case 'code':
            expect(target.wordOffset >= 0 && target.wordOffset < CODE_FAULT_WINDOW_WORDS && Number.isInteger(target.wordOffset)).toBe(true);
            expect(target.bit >= 0 && target.bit < 32 && Number.isInteger(target.bit)).toBe(true);
            break;
          case 'memory':
            expect(target.fraction >= 0 && target.fraction < 1).toBe(true);
            expect(target.bit >= 0 && target.bit < 32 && Number.isInteger(target.bit)).toBe(true);
            break;
        }
      }),
    );
  });

  it('draws the trigger first, so that one trial index lands every fault type at the same point', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), runLengths, (seed, runLengthNs) => {
        const triggers = faultTypes.map((faultType) => planFault(seed, faultType, runLengthNs).trigger);
        for (const trigger of triggers) expect(trigger).toEqual(triggers[0]);
      }),
    );
  });

  it('covers every register, every bit and every code offset over a campaign', () => {
    const registers = new Set<string>();
    const bits = new Set<number>();
    const offsets = new Set<number>();
    for (let index = 0; index < 2_000; index++) {
      const register = planFault(trialSeed(5, index), 'register', 1e9).target;
      const code = planFault(trialSeed(5, index), 'code', 1e9).target;
      if (register.type === 'register') {
        registers.add(register.register);
        bits.add(register.bit);
      }
      if (code.type === 'code') offsets.add(code.wordOffset);
    }
    expect(registers.size).toBe(registerNames.length);
    expect(bits.size).toBe(32);
    expect(offsets.size).toBe(CODE_FAULT_WINDOW_WORDS);
  });
});
