/**
 * What is particular to stopping the CPUs and to microreboot: the NMI IPI that reaches a CPU
 * spinning with interrupts masked (a repair in ReHype's list, part of the mechanism in
 * NiLiHype's), and the fresh boot that discards corrupted code, which a microreset keeps.
 */
import { describe, expect, it } from 'vitest';
import { CpuMode } from '../../src/machine/cpu.js';
import { FLAG_INTERRUPT_ENABLE, Opcode, decode, isValidWord } from '../../src/machine/isa.js';
import { Vcpu, scheduleLockAddress } from '../../src/hypervisor/layout.js';
import {
  MS,
  ONE_APP_VM,
  UNIXBENCH_CPU,
  expectRecovered,
  expectRecoveryFailed,
  failstopAt,
  findPoint,
  persistentCodeFaultAt,
  recoverFrom,
  restoredSystem,
  routineAt,
  workOf,
  type MechanismChoice,
  type Point,
} from './scenario.js';

import { System } from '../../src/trial/system.js';
/** Where boot puts the CPUs' locks: the heap layout depends only on the CPU count (4 in every configuration). */
const CPU_LOCKS = new System({ configuration: '1AppVM', seed: 0 }).hypervisor.layout.cpuLocks;

const SPINNING_CPU = 2;
const UNIXBENCH_DOMAIN = 1;
/** an owner no CPU will ever release: the lock was left held */
const LOST_OWNER = 99;

describe('the stop phase', () => {
  // CPU 2's schedule lock is left held; CPU 2 (idle) spins for it, interrupts masked, from its
  // next scheduler tick. Then UnixBench's CPU fails in a hypercall, before the watchdog notices,
  // as it calls the handler, once it has recorded the hypercall for a retry (a fail-stop before
  // that loses the guest's call).
  const point = () =>
    findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      prepare: (system) => {
        system.machine.memory.words[scheduleLockAddress(CPU_LOCKS, SPINNING_CPU)] = LOST_OWNER;
      },
      cpu: UNIXBENCH_CPU,
      routines: ['vmexit_entry'],
      at: ({ system, cpu, words }) =>
        system.machine.cpus[SPINNING_CPU].mode === CpuMode.Paused &&
        decode(words[cpu.programCounter]).opcode === Opcode.CallRegister &&
        words[system.hypervisor.layout.vcpus[UNIXBENCH_DOMAIN] + Vcpu.offset.resumeToken] === cpu.registers[5] &&
        words[system.hypervisor.layout.vcpus[UNIXBENCH_DOMAIN] + Vcpu.offset.hypercallInProgress] === 1,
    });

  it('finds the CPU spinning in schedule with interrupts masked when the error is detected', () => {
    const system = restoredSystem(point());
    const spinning = system.machine.cpus[SPINNING_CPU];
    expect(routineAt(system, spinning.programCounter)).toBe('schedule');
    expect(spinning.registers[10]).toBe(scheduleLockAddress(CPU_LOCKS, SPINNING_CPU));
    expect(spinning.flags & FLAG_INTERRUPT_ENABLE).toBe(0);
  });

  it.each(['microreboot', 'microreset'] as MechanismChoice[])('%s: without nmi-ipi that CPU never takes the recovery IPI and recovery hangs', (mechanism) => {
    const at = point();
    const without = recoverFrom(failstopAt(at), mechanism, ['nmi-ipi']);
    expectRecoveryFailed(without, 'recoveryHung', /^discard-threads: cpu 2 never entered recovery \(interrupts masked\)$/);
    expect(workOf(without, 'stop-cpus')).toEqual({ cpusSignalled: 3, cpusStillRunning: 1 });
    expect(without.steps.map((report) => report.step)).toEqual(['stop-cpus']);

    // With it the NMI stops the CPU; the lock is released (microreset's static-lock repair, the
    // microreboot's fresh static data) and the recovery IPI it never took is ignored once it runs.
    const withIt = recoverFrom(failstopAt(at), mechanism);
    expect(workOf(withIt, 'nmi-ipi')).toEqual({ cpusSignalled: 1, cpusStillRunning: 0 });
    expectRecovered(withIt);
  });
});

describe('boot-new-instance', () => {
  // UnixBench's CPU is inside sched_op; the instruction it executes next gets an opcode bit
  // flipped that makes it invalid. Unlike the injector's transient code faults, the bit is not
  // put back at detection: only a mechanism that reloads the code gets rid of it.
  const point = () =>
    findPoint({ options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['do_sched_op'], at: () => true });

  /** The first opcode bit (bits 31..26) whose flip makes the instruction at the point invalid. */
  function invalidatingBit(at: Point): number {
    const word = restoredSystem(at).machine.memory.words[at.programCounter];
    const bit = [31, 30, 29, 28, 27, 26].find((candidate) => !isValidWord(word ^ (1 << candidate)));
    if (bit === undefined) throw new Error(`no single opcode bit makes ${word} invalid`);
    return bit;
  }

  it('microreset keeps the corrupted code: the retried sched_op executes it again, a second failure', () => {
    const at = point();
    const detected = persistentCodeFaultAt(at, invalidatingBit(at));
    expect(detected.detection).toMatchObject({ detector: 'exception', exception: 'invalidOpcode', cpu: UNIXBENCH_CPU, programCounter: at.programCounter });
    const record = recoverFrom(detected, 'microreset');
    expectRecoveryFailed(record, 'secondFailure', new RegExp(`^invalidOpcode at cpu 1 pc 0x${at.programCounter.toString(16)} `));
  });

  it('microreboot boots pristine code over it and recovers', () => {
    const at = point();
    const detected = persistentCodeFaultAt(at, invalidatingBit(at));
    const record = recoverFrom(detected, 'microreboot');
    expectRecovered(record);
    expect(workOf(record, 'retry-hypercalls')).toEqual({ hypercallsRewound: 1 });
    const program = detected.system.hypervisor.program;
    expect(detected.system.machine.memory.words[at.programCounter]).toBe(program.words[at.programCounter - program.base]);
  });
});
