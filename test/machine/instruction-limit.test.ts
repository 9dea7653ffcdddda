/**
 * A run's `instructionLimit`: the run returns right after the machine's count of hypervisor
 * instructions reaches it; the limit is the run's own, so the next run goes on without it.
 */
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import { CODE_BASE, DATA_BASE, rig } from './rig.js';
import { machineState } from './state.js';

function counting(asm: Assembler): void {
  asm.label('main').movi(1, 0).movi(2, DATA_BASE);
  asm.label('top').addi(1, 1, 1).st(2, 0, 1).jmp(ref('top'));
}

describe('instructionLimit', () => {
  it('stops right after that many instructions', () => {
    const built = rig(counting);
    const outcome = built.machine.run({ untilNs: 1_000_000, instructionLimit: 50 });
    expect(outcome).toEqual({ kind: 'instructionLimit', cpu: 0 });
    expect(built.machine.hypervisorInstructions).toBe(50);
    const cpu = built.machine.cpus[0];
    expect(cpu.instructionsRetired).toBe(50);
    expect(cpu.timeNs).toBe(50);
    // 2 set-up instructions, then exactly 16 loops of 3: the next instruction is the 17th addi
    expect(cpu.registers[1]).toBe(16);
    expect(built.machine.memory.words[DATA_BASE]).toBe(16);
    expect(cpu.programCounter).toBe(CODE_BASE + 2);
  });

  it('counts instructions of all CPUs and names the CPU that reached it', () => {
    const built = rig(counting, { cpuCount: 3, entries: { 0: 'main', 1: 'main', 2: 'main' } });
    const outcome = built.machine.run({ untilNs: 1_000_000, instructionLimit: 10_001 });
    expect(outcome.kind).toBe('instructionLimit');
    expect(built.machine.hypervisorInstructions).toBe(10_001);
    const retired = built.machine.cpus.map((cpu) => cpu.instructionsRetired);
    expect(retired.reduce((sum, count) => sum + count, 0)).toBe(10_001);
    if (outcome.kind === 'instructionLimit') expect([0, 1, 2]).toContain(outcome.cpu);
  });

  it('continuing after the limit gives the same state as never stopping, and the limit does not carry over', () => {
    const straight = rig(counting, { cpuCount: 2, entries: { 0: 'main', 1: 'main' } });
    straight.machine.run(100_000);
    const stopped = rig(counting, { cpuCount: 2, entries: { 0: 'main', 1: 'main' } });
    expect(stopped.machine.run({ untilNs: 100_000, instructionLimit: 12_345 }).kind).toBe('instructionLimit');
    expect(stopped.machine.run(100_000).kind).toBe('timeReached');
    expect(machineState(stopped.machine)).toEqual(machineState(straight.machine));
  });

  it('a limit already passed never fires', () => {
    const built = rig(counting);
    built.machine.run(100);
    expect(built.machine.run({ untilNs: 1_000, instructionLimit: 50 }).kind).toBe('timeReached');
  });

  it('a limit on a halting instruction still stops', () => {
    const built = rig((asm) => asm.nop().hlt().nop());
    expect(built.machine.run({ untilNs: 1_000, instructionLimit: 2 })).toEqual({ kind: 'instructionLimit', cpu: 0 });
  });

  it('a tracer ends the run in progress at an instruction it sees', () => {
    const built = rig(counting);
    built.machine.tracer = (_cpu, _programCounter) => {
      if (built.machine.hypervisorInstructions === 30) built.machine.endRunAt(31);
    };
    expect(built.machine.run(1_000_000)).toEqual({ kind: 'instructionLimit', cpu: 0 });
    expect(built.machine.hypervisorInstructions).toBe(31);
    built.machine.tracer = undefined;
    expect(built.machine.run(1_000_000).kind).toBe('timeReached');
  });
});
