/**
 * Every fault lands exactly where its record says. Each record (from a fast-forwarded trial) is
 * checked against a fresh system booted and run independently to the same instruction: the
 * instruction count follows from the trigger, the CPU, its time and PC match, and the flipped
 * register or word held the recorded value there and differs from it in exactly the recorded bit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_FAULT_WINDOW_WORDS, registerNames, type FaultType } from '../../src/faults/fault.js';
import { readRegister } from '../../src/faults/injector.js';
import { planFault } from '../../src/faults/plan.js';
import { trialSeed } from '../../src/faults/random.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { CODE_BASE, STATIC_BASE, StaticData } from '../../src/hypervisor/layout.js';
import { disassemble } from '../../src/machine/disassembler.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial } from '../../src/trial/trial.js';
import { MS, bootedSystem, injectedRecord, landingOf, popcount, type InjectedRecord, type Landing } from './helpers.js';

const indexes = fc.integer({ min: 0, max: 99_999 });

function injectedTrial(spec: TrialSpec): { record: InjectedRecord; lastBefore: [number, number] | undefined } | undefined {
  const { record, trace } = runTrial(spec, { trace: true });
  if (record.outcome === 'notInjected') return undefined;
  const last = trace?.beforeInjection.at(-1);
  return { record, lastBefore: last === undefined ? undefined : [last.programCounter, last.timeNs] };
}

/** What holds for every fault type: when, where, on which CPU, before which instruction. */
function expectLandedAtRecordedPoint(record: InjectedRecord, landing: Landing, lastBefore: [number, number] | undefined): void {
  const { injection } = record;
  const { cpu, system } = landing;
  expect(injection.instructionCount).toBe(system.machine.hypervisorInstructions);
  expect(injection.cpu).toBe(cpu.index);
  expect(injection.timeNs).toBe(cpu.timeNs);
  expect(injection.timeNs).toBeGreaterThanOrEqual(record.plan.trigger.timeNs);
  // the trial's own trace of the faulty CPU ends with the instruction the independent run retired last
  expect(lastBefore).toEqual(landing.lastExecuted[cpu.index]);
  // the PC the fault found is the one recorded, and the instruction text is the word there
  const pcBefore = injection.location.type === 'failstop' || (injection.location.type === 'register' && injection.location.register === 'pc') ? injection.location.before : cpu.programCounter;
  expect(cpu.programCounter).toBe(pcBefore);
  expect(injection.programCounter).toBe(cpu.programCounter);
  expect(injection.instruction.startsWith(`${disassemble(system.machine.memory.words[injection.programCounter])} <`)).toBe(true);
}

function expectFlipOfRecordedBit(before: number, after: number, bit: number): void {
  expect(Number.isInteger(bit) && bit >= 0 && bit < 32).toBe(true);
  expect(popcount(before ^ after)).toBe(1);
  expect((before ^ after) >>> 0).toBe((1 << bit) >>> 0);
}

function checkLanding(spec: TrialSpec): boolean {
  const trial = injectedTrial(spec);
  if (trial === undefined) return false;
  const { record } = trial;
  const landing = landingOf(spec, record);
  expectLandedAtRecordedPoint(record, landing, trial.lastBefore);
  const { cpu, system } = landing;
  const location = record.injection.location;
  const target = record.plan.target;
  expect(location.type).toBe(spec.faultType);
  switch (location.type) {
    case 'failstop':
      expect(location.before).toBe(record.injection.programCounter);
      expect(location.after).toBe(0);
      break;
    case 'register': {
      expect(registerNames).toHaveLength(19);
      expect(registerNames).toContain(location.register);
      expect(target).toEqual({ type: 'register', register: location.register, bit: location.bit });
      expect(readRegister(cpu, location.register)).toBe(location.before);
      expectFlipOfRecordedBit(location.before, location.after, location.bit);
      break;
    }
    case 'code': {
      const program = system.hypervisor.program;
      const pc = record.injection.programCounter;
      expect(target.type === 'code' && target.bit).toBe(location.bit);
      expect(location.address).toBeGreaterThanOrEqual(pc);
      expect(location.address).toBeLessThan(pc + CODE_FAULT_WINDOW_WORDS);
      expect(location.address).toBeGreaterThanOrEqual(CODE_BASE);
      expect(location.address).toBeLessThan(program.base + program.words.length);
      // the word found there is the pristine program word
      expect(system.machine.memory.words[location.address]).toBe(location.before);
      expect(program.words[location.address - program.base]).toBe(location.before);
      expectFlipOfRecordedBit(location.before, location.after, location.bit);
      break;
    }
    case 'memory': {
      const layout = system.hypervisor.layout;
      const inStatic = location.address >= STATIC_BASE && location.address < STATIC_BASE + StaticData.sizeWords;
      const inHeap = location.address >= layout.frameTable && location.address < layout.heapEnd;
      expect(inStatic || inHeap).toBe(true);
      expect(target.type === 'memory' && target.bit).toBe(location.bit);
      expect(system.machine.memory.words[location.address]).toBe(location.before);
      expectFlipOfRecordedBit(location.before, location.after, location.bit);
      break;
    }
  }
  return true;
}

const faultTypesUnderTest: readonly FaultType[] = ['failstop', 'register', 'code', 'memory'];

describe('each fault lands exactly where its record says', () => {
  for (const faultType of faultTypesUnderTest) {
    it(`${faultType} on 1AppVM`, () => {
      let landed = 0;
      fc.assert(
        fc.property(indexes, (trialIndex) => {
          if (checkLanding({ configuration: '1AppVM', seed: 11, trialIndex, faultType, runLengthNs: 300 * MS })) landed++;
        }),
        { numRuns: 12 },
      );
      expect(landed).toBeGreaterThan(6);
    });

    it(`${faultType} on 3AppVM`, () => {
      let landed = 0;
      fc.assert(
        fc.property(indexes, (trialIndex) => {
          if (checkLanding({ configuration: '3AppVM', seed: 7, trialIndex, faultType, runLengthNs: 300 * MS })) landed++;
        }),
        { numRuns: 4 },
      );
      expect(landed).toBeGreaterThan(0);
    });
  }

  it('moves on to the next hypervisor instruction when the trigger instruction leaves hypervisor execution', () => {
    // Find triggers whose counted instruction leaves its CPU outside hypervisor execution (it
    // entered a guest or went to sleep): rare. One run from boot visits the trigger times in
    // order, peeking ahead to each trigger's instruction and back; then the trials of those
    // indexes are checked step by step.
    const base = { configuration: '1AppVM', seed: 4, runLengthNs: 300 * MS } as const;
    const plans = Array.from({ length: 600 }, (_, trialIndex) => ({ trialIndex, plan: planFault(trialSeed(base.seed, trialIndex), 'failstop', base.runLengthNs) }));
    plans.sort((x, y) => x.plan.trigger.timeNs - y.plan.trigger.timeNs);
    const system = bootedSystem({ ...base, trialIndex: 0, faultType: 'failstop' });
    const machine = system.machine;
    const moved: number[] = [];
    for (const { trialIndex, plan } of plans) {
      machine.run(plan.trigger.timeNs);
      const saved = system.snapshot();
      const outcome = machine.run({ untilNs: system.runLengthNs, instructionLimit: machine.hypervisorInstructions + plan.trigger.instructionsAfter + 1 });
      if (outcome.kind === 'instructionLimit' && machine.cpus[outcome.cpu].mode !== CpuMode.Running) moved.push(trialIndex);
      system.restore(saved);
      if (moved.length === 2) break;
    }
    expect(moved.length).toBeGreaterThan(0);
    for (const trialIndex of moved) {
      for (const faultType of ['register', 'memory'] as const) {
        const spec: TrialSpec = { ...base, trialIndex, faultType };
        const record = injectedRecord(runTrial(spec).record);
        const landing = landingOf(spec, record);
        expect(record.injection.instructionCount).toBeGreaterThan(landing.countAtTrigger + record.plan.trigger.instructionsAfter + 1);
        expect(record.injection.programCounter).toBe(landing.cpu.programCounter);
      }
    }
  });
});
