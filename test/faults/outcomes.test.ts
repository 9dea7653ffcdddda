/**
 * Outcomes that follow from what a fault does, checked on real trials: a failstop fault is always
 * caught (the fetch at address 0 faults), a flip in a dead register changes nothing, a code fault
 * is undone once detected, and a trigger past the end of the run is "not injected".
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planFault } from '../../src/faults/plan.js';
import { trialSeed } from '../../src/faults/random.js';
import { CODE_BASE } from '../../src/hypervisor/layout.js';
import type { TrialRecord, TrialSpec } from '../../src/trial/record.js';
import type { System } from '../../src/trial/system.js';
import { runTrial } from '../../src/trial/trial.js';
import { MS, bootedSystem, overwrittenUnread } from './helpers.js';

const indexes = fc.integer({ min: 0, max: 99_999 });

function expectFailstopCaught(record: TrialRecord): boolean {
  if (record.outcome === 'notInjected') return false;
  expect(record.outcome).toBe('detected');
  if (record.outcome !== 'detected') return true;
  expect(record.detection).toMatchObject({ detector: 'exception', exception: 'pageFault', programCounter: 0, address: 0 });
  // the faulty CPU itself faults, at once or after an interrupt handler returns to address 0
  expect(record.detection.cpu).toBe(record.injection.cpu);
  expect(record.detectionLatencyNs).toBeGreaterThanOrEqual(0);
  expect(record.detectionLatencyNs).toBeLessThan(1 * MS);
  return true;
}

describe('failstop faults', () => {
  it('are always detected as a page fault at pc 0 (3AppVM)', () => {
    let detected = 0;
    fc.assert(
      fc.property(indexes, (trialIndex) => {
        if (expectFailstopCaught(runTrial({ configuration: '3AppVM', seed: 42, trialIndex, faultType: 'failstop' }).record)) detected++;
      }),
      { numRuns: 30 },
    );
    expect(detected).toBeGreaterThan(20);
  });

  it('are always detected as a page fault at pc 0 (1AppVM)', () => {
    let detected = 0;
    fc.assert(
      fc.property(indexes, fc.integer({ min: 0, max: 1_000 }), (trialIndex, seed) => {
        if (expectFailstopCaught(runTrial({ configuration: '1AppVM', seed, trialIndex, faultType: 'failstop', runLengthNs: 200 * MS }).record)) detected++;
      }),
      { numRuns: 20 },
    );
    expect(detected).toBeGreaterThan(12);
  });
});

describe('a flip in a dead register', () => {
  it('is non-manifested: the state matches the golden run again', () => {
    // Every fault type of one trial index lands at the same point (the plan draws the trigger
    // first), so a cheap failstop trial shows which instruction a register fault would meet.
    // Keep the indexes whose register fault hits a register that instruction overwrites
    // without reading, run those register trials, and confirm in their own trace that the
    // instruction ran next.
    const base = { configuration: '1AppVM', seed: 5, runLengthNs: 300 * MS } as const;
    const program = bootedSystem({ ...base, trialIndex: 0, faultType: 'register' }).hypervisor.program;
    let confirmed = 0;
    for (let trialIndex = 0; trialIndex < 1_500 && confirmed < 3; trialIndex++) {
      const plan = planFault(trialSeed(base.seed, trialIndex), 'register', base.runLengthNs);
      if (plan.target.type !== 'register') throw new Error('not a register plan');
      const register = plan.target.register;
      const probe = runTrial({ ...base, trialIndex, faultType: 'failstop' }).record;
      if (probe.outcome === 'notInjected') continue;
      expect(probe.plan.trigger).toEqual(plan.trigger);
      const pc = probe.injection.programCounter;
      if (!overwrittenUnread(program.words[pc - program.base]).includes(register)) continue;

      const { record, trace } = runTrial({ ...base, trialIndex, faultType: 'register' }, { trace: true });
      if (record.outcome === 'notInjected') throw new Error('the register fault did not land where the failstop did');
      expect(record.injection.programCounter).toBe(pc);
      expect(record.injection.location).toMatchObject({ type: 'register', register });
      if (trace?.afterInjection[0]?.programCounter !== pc) continue; // an interrupt came first
      expect({ trialIndex, register, instruction: record.injection.instruction, outcome: record.outcome }).toEqual({
        trialIndex,
        register,
        instruction: record.injection.instruction,
        outcome: 'nonManifested',
      });
      // the flipped value was overwritten before anyone read it, so the state is the golden one
      if (record.outcome === 'nonManifested') expect(record.matchedGoldenAtNs).not.toBeNull();
      confirmed++;
    }
    expect(confirmed).toBe(3);
  });
});

describe('code faults', () => {
  it('are restored when detected, and stay in place when not', () => {
    const base = { configuration: '1AppVM', seed: 9, runLengthNs: 300 * MS, faultType: 'code' } as const;
    const seen = { detected: 0, undetected: 0 };
    for (let trialIndex = 0; trialIndex < 60 && (seen.detected < 4 || seen.undetected < 2); trialIndex++) {
      let finished: System | undefined;
      const { record } = runTrial({ ...base, trialIndex }, { onFinished: (system) => (finished = system) });
      if (finished === undefined) throw new Error('onFinished was not called');
      if (record.outcome === 'notInjected') continue;
      const location = record.injection.location;
      if (location.type !== 'code') throw new Error(`a code trial recorded a ${location.type} fault`);
      const program = finished.hypervisor.program;
      const code = finished.machine.memory.words.subarray(CODE_BASE, CODE_BASE + program.words.length);
      if (record.outcome === 'detected') {
        // the whole code segment is the pristine program again
        expect(code[location.address - CODE_BASE]).toBe(location.before);
        expect(Array.from(code)).toEqual(Array.from(program.words));
        seen.detected++;
      } else {
        expect(code[location.address - CODE_BASE]).toBe(location.after);
        seen.undetected++;
      }
    }
    expect(seen.detected).toBeGreaterThanOrEqual(4);
    expect(seen.undetected).toBeGreaterThanOrEqual(2);
  });
});

describe('notInjected', () => {
  it('is the outcome exactly when the trigger falls too close to the end of the run', () => {
    // Count, on an independent run from boot, the hypervisor instructions left after each
    // trigger time; a trigger that needs more than are left cannot land.
    const base = { configuration: '1AppVM', seed: 3, runLengthNs: 200 * MS, faultType: 'register' } as const;
    const plans = Array.from({ length: 400 }, (_, trialIndex) => ({ trialIndex, plan: planFault(trialSeed(base.seed, trialIndex), base.faultType, base.runLengthNs) }));
    const lateOnes = plans.filter(({ plan }) => plan.trigger.timeNs > base.runLengthNs - 30 * MS).sort((x, y) => x.plan.trigger.timeNs - y.plan.trigger.timeNs);
    const system = bootedSystem({ ...base, trialIndex: 0 });
    const countAt = new Map<number, number>();
    for (const { trialIndex, plan } of lateOnes) {
      system.machine.run(plan.trigger.timeNs);
      countAt.set(trialIndex, system.machine.hypervisorInstructions);
    }
    system.machine.run(system.runLengthNs);
    const total = system.machine.hypervisorInstructions;

    let notInjected = 0;
    let injected = 0;
    for (const { trialIndex, plan } of lateOnes) {
      const needed = (countAt.get(trialIndex) as number) + plan.trigger.instructionsAfter + 1;
      const spec: TrialSpec = { ...base, trialIndex };
      const { record, trace } = runTrial(spec, { trace: true });
      if (needed > total) {
        expect(record.outcome).toBe('notInjected');
        expect(Object.keys(record)).not.toContain('injection');
        expect(JSON.parse(JSON.stringify(record))).not.toHaveProperty('injection');
        expect(trace?.afterInjection).toEqual([]);
        notInjected++;
      } else if (needed < total - 1_000) {
        expect(record.outcome).not.toBe('notInjected');
        injected++;
      }
    }
    expect(notInjected).toBeGreaterThan(0);
    expect(injected).toBeGreaterThan(0);
  });
});
