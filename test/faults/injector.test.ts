/**
 * The injector on a booted (not running) system: each fault type changes exactly what it names
 * and nothing else, memory fractions map onto static data then heap, code faults stay inside
 * the code and are undone by `restore`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_FAULT_WINDOW_WORDS, registerNames, type FaultPlan, type FaultTarget } from '../../src/faults/fault.js';
import { injectFault, readRegister, type InjectionContext } from '../../src/faults/injector.js';
import { STATIC_BASE, StaticData } from '../../src/hypervisor/layout.js';
import { CpuMode, type CpuState } from '../../src/machine/cpu.js';
import { System } from '../../src/trial/system.js';

const trigger = { timeNs: 0, instructionsAfter: 0 };

interface Rig {
  readonly system: System;
  readonly cpu: CpuState;
  readonly context: InjectionContext;
  readonly staticWords: number;
  readonly heapWords: number;
}

/** One booted system for the whole file; `rig` puts its memory and CPU 1 back in a known state. */
const shared = new System({ configuration: '1AppVM', seed: 1 });
const pristineWords = shared.machine.memory.words.slice();

function rig(programCounterOffset = 10): Rig {
  const system = shared;
  system.machine.memory.words.set(pristineWords);
  const layout = system.hypervisor.layout;
  const program = system.hypervisor.program;
  const cpu = system.machine.cpus[1];
  cpu.mode = CpuMode.Running;
  cpu.programCounter = program.base + programCounterOffset;
  cpu.stackPointer = 0x8123;
  cpu.flags = 0b101;
  cpu.registers.set(Array.from({ length: 16 }, (_, index) => index * 0x1111 + 7));
  const heapWords = layout.heapEnd - layout.frameTable;
  return {
    system,
    cpu,
    staticWords: StaticData.sizeWords,
    heapWords,
    context: {
      machine: system.machine,
      nameAddress: (address) => `@${address}`,
      memorySpans: [
        { base: STATIC_BASE, sizeWords: StaticData.sizeWords },
        { base: layout.frameTable, sizeWords: heapWords },
      ],
      code: { base: program.base, sizeWords: program.words.length },
    },
  };
}

/** Addresses where two memory images differ. */
function differences(left: Int32Array, right: Int32Array): number[] {
  const found: number[] = [];
  for (let address = 0; address < left.length; address++) if (left[address] !== right[address]) found.push(address);
  return found;
}

function planOf(target: FaultTarget): FaultPlan {
  return { trigger, target };
}

function cpuState(cpu: CpuState): unknown {
  return { ...cpu.clone(), registers: Array.from(cpu.registers) };
}

describe('injectFault', () => {
  it('register faults flip one bit of the named register and nothing else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...registerNames), fc.integer({ min: 0, max: 31 }), (register, bit) => {
        const { system, cpu, context } = rig();
        const registersBefore = registerNames.map((name) => readRegister(cpu, name));
        const before = readRegister(cpu, register);
        const applied = injectFault(planOf({ type: 'register', register, bit }), cpu, context);
        expect(applied.restore).toBeUndefined();
        expect(applied.injection.location).toEqual({ type: 'register', register, bit, before, after: (before ^ (1 << bit)) | 0 });
        expect(readRegister(cpu, register)).toBe((before ^ (1 << bit)) | 0);
        // every other register is untouched, and so is memory
        registerNames.forEach((other, index) => {
          if (other !== register) expect(readRegister(cpu, other)).toBe(registersBefore[index]);
        });
        expect(differences(system.machine.memory.words, pristineWords)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('a failstop fault sets the PC to 0 and records the PC it replaced', () => {
    const { cpu, context } = rig(25);
    const pc = cpu.programCounter;
    const applied = injectFault(planOf({ type: 'failstop' }), cpu, context);
    expect(cpu.programCounter).toBe(0);
    expect(applied.injection.programCounter).toBe(pc);
    expect(applied.injection.location).toEqual({ type: 'failstop', before: pc, after: 0 });
  });

  it('records the CPU, its time and the machine-wide instruction count', () => {
    const { system, cpu, context } = rig();
    system.machine.hypervisorInstructions = 12_345;
    cpu.timeNs = 678;
    const { injection } = injectFault(planOf({ type: 'failstop' }), cpu, context);
    expect(injection).toMatchObject({ cpu: 1, timeNs: 678, instructionCount: 12_345 });
  });

  it('code faults flip a word within the window after the PC; restore puts it back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: CODE_FAULT_WINDOW_WORDS - 1 }), fc.integer({ min: 0, max: 31 }), (wordOffset, bit) => {
        const { system, cpu, context } = rig(40);
        const words = system.machine.memory.words;
        const pristine = pristineWords;
        const cpuBefore = cpuState(cpu);
        const applied = injectFault(planOf({ type: 'code', wordOffset, bit }), cpu, context);
        const address = cpu.programCounter + wordOffset;
        expect(applied.injection.location).toMatchObject({ type: 'code', address, bit, before: pristine[address], after: (pristine[address] ^ (1 << bit)) | 0 });
        expect(differences(words, pristine)).toEqual([address]);
        expect(cpuState(cpu)).toEqual(cpuBefore);
        expect(applied.restore).toBeDefined();
        applied.restore?.();
        expect(differences(words, pristine)).toEqual([]);
      }),
      { numRuns: 30 },
    );
  });

  it('a code fault whose window runs off the end of the code lands on the PC instead', () => {
    const { system, cpu, context } = rig();
    cpu.programCounter = context.code.base + context.code.sizeWords - 1;
    const applied = injectFault(planOf({ type: 'code', wordOffset: 2, bit: 5 }), cpu, context);
    expect(applied.injection.location).toMatchObject({ type: 'code', address: cpu.programCounter });
    applied.restore?.();
    expect(system.machine.memory.words[cpu.programCounter]).toBe(system.hypervisor.program.words.at(-1));
  });

  it('memory fractions map onto static data, then the in-use heap, in order', () => {
    const { staticWords, heapWords, system, cpu, context } = rig();
    const total = staticWords + heapWords;
    const layout = system.hypervisor.layout;
    const cases: [number, number][] = [
      [0, STATIC_BASE],
      [(staticWords - 0.5) / total, STATIC_BASE + staticWords - 1],
      [staticWords / total, layout.frameTable],
      [(total - 0.5) / total, layout.heapEnd - 1],
      [1 - Number.EPSILON, layout.heapEnd - 1],
    ];
    for (const [fraction, address] of cases) {
      const before = system.machine.memory.words[address];
      const applied = injectFault(planOf({ type: 'memory', fraction, bit: 31 }), cpu, context);
      expect(applied.injection.location).toMatchObject({ type: 'memory', address, before, after: (before ^ (1 << 31)) | 0, symbol: `@${address}` });
      expect(applied.restore).toBeUndefined();
    }
  });
});
