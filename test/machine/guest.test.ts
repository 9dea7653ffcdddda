/**
 * Guest mode through a fake GuestPort: entry, exit on time, exit forced by an interrupt.
 */
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import { CpuMode, NO_DEADLINE } from '../../src/machine/cpu.js';
import { NMI_EVENT } from '../../src/machine/event-queue.js';
import type { GuestPort } from '../../src/machine/machine.js';
import { rig, stackTop } from './rig.js';

interface GuestCall {
  readonly kind: 'enter' | 'exit';
  readonly cpu: number;
  readonly nowNs: number;
  readonly context?: number;
  readonly interrupted?: boolean;
}

/** Context 1 runs for `runNs`; any other context is refused. The exit writes r0 = 42. */
function fakePort(runNs: number): GuestPort & { calls: GuestCall[] } {
  const calls: GuestCall[] = [];
  return {
    calls,
    enter(cpu, context, registers, nowNs) {
      calls.push({ kind: 'enter', cpu, context, nowNs });
      registers[9] = 1000 + context;
      return context === 1 ? runNs : undefined;
    },
    exit(cpu, registers, nowNs, interrupted) {
      calls.push({ kind: 'exit', cpu, nowNs, interrupted });
      registers[0] = 42;
    },
  };
}

/** main: enter context 1; the exit handler records the stack pointer and halts. */
function guestProgram(asm: Assembler): void {
  asm.label('main').movi(1, 0x7f0).wrsp(1).movi(1, 1).sti().label('enter').vmenter(1);
  asm.label('after').movi(3, 1).hlt(); // never reached: exits land on vmExitEntry
  asm.label('exit').rdsp(2).label('idle').hlt().jmp(ref('idle'));
  asm.label('handler9').eoi().iret();
}

function guestRig(runNs: number, nmiPeriodNs?: number) {
  const built = rig(guestProgram, {
    entries: { 0: 'main' },
    vmExitEntry: 'exit',
    handlers: { 9: 'handler9' },
    config: nmiPeriodNs === undefined ? {} : { nmiPeriodNs },
  });
  const port = fakePort(runNs);
  built.machine.guestPort = port;
  return { ...built, port };
}

describe('vmenter', () => {
  it('runs the guest for the returned time, then exits to vmExitEntry on the host stack', () => {
    const { machine, port, address } = guestRig(5_000);
    const entered = 5; // four instructions before vmenter, which itself takes one nanosecond
    machine.run(1_000);
    expect(machine.cpus[0].mode).toBe(CpuMode.Guest);
    expect(machine.cpus[0].guestExitNs).toBe(entered + 5_000);
    expect(machine.cpus[0].registers[9]).toBe(1001);
    machine.run(1_000_000);
    expect(port.calls).toEqual([
      { kind: 'enter', cpu: 0, context: 1, nowNs: entered },
      { kind: 'exit', cpu: 0, nowNs: entered + 5_000, interrupted: false },
    ]);
    const cpu = machine.cpus[0];
    expect(cpu.registers[0]).toBe(42);
    expect(cpu.registers[2]).toBe(stackTop(0));
    expect(cpu.registers[3]).toBe(0);
    expect(cpu.flags).toBe(0);
    expect(cpu.guestExitNs).toBe(NO_DEADLINE);
    expect(cpu.programCounter).toBe(address('idle') + 1);
  });

  it('guest time costs no hypervisor instructions', () => {
    const { machine } = guestRig(5_000_000_000, 1e15);
    machine.run(4_000_000_000);
    expect(machine.hypervisorInstructions).toBe(5);
    expect(machine.cpus[0].mode).toBe(CpuMode.Guest);
  });

  it('an interrupt forces an early exit with interrupted=true and stays pending', () => {
    const { machine, port } = guestRig(5_000);
    machine.raiseInterrupt(1_000, 0, 9);
    machine.run(1_200);
    expect(port.calls[1]).toEqual({ kind: 'exit', cpu: 0, nowNs: 1_000, interrupted: true });
    expect(machine.cpus[0].mode).toBe(CpuMode.Halted);
    expect(machine.cpus[0].pendingVectors).toBe(1 << 9); // the exit handler runs with IF clear
  });

  it('an NMI forces an early exit too', () => {
    const { machine, port } = guestRig(5_000);
    machine.raiseInterrupt(2_000, 0, NMI_EVENT);
    machine.run(2_001);
    expect(port.calls[1]).toEqual({ kind: 'exit', cpu: 0, nowNs: 2_000, interrupted: true });
  });

  it('an interrupt already pending at entry exits at once', () => {
    const built = rig(
      (asm) => {
        asm.label('main').movi(1, 1).vmenter(1);
        asm.label('exit').hlt();
      },
      { entries: { 0: 'main' }, vmExitEntry: 'exit' },
    );
    const port = fakePort(5_000);
    built.machine.guestPort = port;
    built.machine.cpus[0].pendingVectors = 1 << 9;
    built.machine.run(1_000);
    expect(port.calls).toEqual([
      { kind: 'enter', cpu: 0, context: 1, nowNs: 2 },
      { kind: 'exit', cpu: 0, nowNs: 2, interrupted: true },
    ]);
  });

  it('an interrupt below one in service does not force an exit', () => {
    const { machine, port } = guestRig(5_000);
    machine.cpus[0].inServiceVectors = 1 << 20;
    machine.raiseInterrupt(1_000, 0, 9);
    machine.run(10_000);
    expect(port.calls[1]).toEqual({ kind: 'exit', cpu: 0, nowNs: 5_005, interrupted: false });
  });

  it('a guest that exits at once still takes a nanosecond', () => {
    const { machine, port } = guestRig(0);
    machine.run(1_000);
    expect(port.calls[1]).toEqual({ kind: 'exit', cpu: 0, nowNs: 6, interrupted: false });
  });

  it('a refused context is a vmEntryFailure at the vmenter', () => {
    const built = rig(
      (asm) => asm.label('main').movi(1, 2).label('enter').vmenter(1).hlt(),
      { entries: { 0: 'main' } },
    );
    built.machine.guestPort = fakePort(5_000);
    built.machine.run(1_000);
    expect(built.traps).toEqual([
      { kind: 'exception', exception: 'vmEntryFailure', cpu: 0, programCounter: built.address('enter'), address: 0, access: 'none' },
    ]);
  });

  it('each CPU exits onto its own host stack', () => {
    const built = rig(
      (asm) => {
        asm.label('main').movi(1, 1).vmenter(1);
        asm.label('exit').rdsp(2).hlt();
      },
      { cpuCount: 3, entries: { 0: 'main', 1: 'main', 2: 'main' }, vmExitEntry: 'exit' },
    );
    built.machine.guestPort = fakePort(100);
    built.machine.run(1_000);
    expect(built.machine.cpus.map((cpu) => cpu.registers[2])).toEqual([stackTop(0), stackTop(1), stackTop(2)]);
  });
});
