/**
 * Which CPU the hypervisor runs on comes from its stack pointer, as Xen's `get_cpu_info()`: the
 * last word of the STACK_WORDS-aligned block holding it. Every stack a CPU can run on (its own,
 * its NMI and double-fault stacks) lies in a block whose `cpu_info` names that CPU, and the
 * hypervisor's smp_processor_id() reads it through the machine.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODE_BASE, rig, segments } from '../machine/rig.js';
import { startedSystem } from './system-helpers.js';
import { smpProcessorId } from '../../src/hypervisor/code/helpers.js';
import {
  CPU_INFO_WORDS,
  IST_STACK_WORDS,
  MAX_CPUS,
  cpuInfoAddressOf,
  cpuInfoAddresses,
  doubleFaultStackBase,
  doubleFaultStackTop,
  nmiStackBase,
  nmiStackTop,
  segmentsFor,
  stackBase,
  stackTop,
} from '../../src/hypervisor/layout.js';

/** [lowest, highest] stack pointer a push-down stack uses, for each of `cpu`'s stacks */
function stacksOf(cpu: number): [number, number][] {
  return [
    [stackBase(cpu), stackTop(cpu)],
    [nmiStackBase(cpu), nmiStackTop(cpu)],
    [doubleFaultStackBase(cpu), doubleFaultStackTop(cpu)],
  ];
}

describe("cpu_info at the top of each CPU's stack blocks", () => {
  it('a stack pointer anywhere in one of its stacks reads a cpu_info word of that CPU, which no stack overlaps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_CPUS - 1 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 0xff }), (cpu, which, offset) => {
        const [low, high] = stacksOf(cpu)[which];
        const stackPointer = low + (offset % (high - low + 1));
        expect(cpuInfoAddresses(cpu)).toContain(cpuInfoAddressOf(stackPointer));
        // pushes write below the stack pointer: the top word written is high - 1, below cpu_info
        for (const address of cpuInfoAddresses(cpu)) expect(address < low || address >= high).toBe(true);
      }),
    );
  });

  it('each index word lies in mapped memory of its stack segments, a guest frame above the stack it serves', () => {
    const stacks = segmentsFor(MAX_CPUS).filter((segment) => segment.kind === 'stack');
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      for (const address of cpuInfoAddresses(cpu)) expect(stacks.some((segment) => address >= segment.base && address < segment.base + segment.sizeWords)).toBe(true);
      // the CPU's index sits above a guest frame's worth of words over each stack's top
      expect(cpuInfoAddresses(cpu).map((address, which) => address - [stackTop(cpu), doubleFaultStackTop(cpu)][which])).toEqual([CPU_INFO_WORDS - 1, CPU_INFO_WORDS - 1]);
      expect(doubleFaultStackTop(cpu) - doubleFaultStackBase(cpu)).toBe(IST_STACK_WORDS - CPU_INFO_WORDS);
    }
  });

  it("boot writes each CPU's index there", () => {
    const system = startedSystem({ configuration: '3AppVM', seed: 5 });
    const words = system.machine.memory.words;
    for (let cpu = 0; cpu < system.machine.cpus.length; cpu++) {
      expect(cpuInfoAddresses(cpu).map((address) => words[address])).toEqual([cpu, cpu]);
    }
  });

  it('smp_processor_id() reads the cpu_info of the block its stack pointer is in, through the machine', () => {
    const cpuCount = 2;
    const hypervisorStacks = segmentsFor(cpuCount).filter((segment) => segment.kind === 'stack');
    const built = rig(
      (asm) => {
        smpProcessorId(asm, 0);
        asm.hlt();
      },
      { cpuCount, config: { segments: [...segments, ...hypervisorStacks] } },
    );
    const words = built.machine.memory.words;
    for (let cpu = 0; cpu < cpuCount; cpu++) for (const address of cpuInfoAddresses(cpu)) words[address] = 40 + cpu;
    for (let cpu = 0; cpu < cpuCount; cpu++) {
      for (const [low, top] of stacksOf(cpu)) {
        for (const stackPointer of [low, top]) {
          const cpuState = built.machine.cpus[0];
          built.machine.startCpu(0, CODE_BASE, stackPointer);
          built.machine.run(built.machine.nowNs + 1_000);
          expect(cpuState.registers[0]).toBe(40 + cpu);
        }
      }
    }
  });
});
