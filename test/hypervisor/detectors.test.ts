/**
 * The hypervisor's own detectors on the real system: the NMI watchdog declares a hang, and a
 * hardware exception or a failed assertion in a handler reaches the panic path with its cause.
 * The state is broken by hand at a quiescent point; whether and where it is noticed follows from
 * running the hypervisor.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Hypercall, firstFrameOf } from '../../src/hypervisor/abi.js';
import { GuestHost } from '../../src/guests/host.js';
import type { Detection } from '../../src/hypervisor/detection.js';
import { frameField } from '../../src/hypervisor/frames.js';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import {
  IST_STACK_WORDS,
  nmiStackBase,
  FRAME_TABLE_POINTER,
  FrameDescriptor,
  PerCpu,
  SOFTIRQ_TIMER,
  scheduleLockAddress,
  WATCHDOG_STRIKES,
  assertionNames,
  BUG_FRAME_COUNT_NEGATIVE,
  BUG_IRQ_COUNT_AT_SCHEDULE,
  perCpuAddress,
  DIRECT_MAP_END,
} from '../../src/hypervisor/layout.js';
import { Assembler, ref } from '../../src/machine/assembler.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { FLAG_INTERRUPT_ENABLE } from '../../src/machine/isa.js';
import { NMI_PERIOD_NS } from '../../src/machine/machine.js';
import { disassemble, symbolizerFor } from '../../src/machine/disassembler.js';
import { reportOf } from '../../src/trial/golden.js';
import { System } from '../../src/trial/system.js';
import { PlaylistKernel, call, sleep } from './scripted-kernel.js';
import { MS, auditInvariants, routineAt, runToQuiescence, startedSystem, verdictOf } from './system-helpers.js';

/** Where boot puts the CPUs' locks: the heap layout depends only on the CPU count (4 in every configuration). */
const CPU_LOCKS = new System({ configuration: '1AppVM', seed: 0 }).hypervisor.layout.cpuLocks;

const seeds = fc.integer({ min: 0, max: 0x7fffffff });
/** In 1AppVM, UnixBench runs on CPU 1. */
const UNIXBENCH_CPU = 1;
const FAKE_LOCK_OWNER = 99;
/** the routines that take a CPU's schedule lock */
const SCHEDULE_LOCK_TAKERS = ['schedule', 'do_sched_op', 'vcpu_wake'];

function onlyDetection(system: System): Detection {
  expect(system.hypervisor.detections).toHaveLength(1);
  return system.hypervisor.detections[0];
}

describe('the NMI watchdog', () => {
  it('declares a hang on the CPU that spins on its held schedule lock, 3 NMIs after its watchdog stopped', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 120, max: 620 }), (seed, lockMs) => {
        const system = startedSystem({ configuration: '1AppVM', seed });
        runToQuiescence(system, lockMs * MS);
        const lockedNs = system.machine.nowNs;
        system.machine.memory.words[scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU)] = FAKE_LOCK_OWNER;
        expect(system.machine.run(lockedNs + 1_000 * MS).kind).toBe('stopped');

        const detection = onlyDetection(system);
        expect(detection.detector).toBe('hang');
        expect(detection.cpu).toBe(UNIXBENCH_CPU);
        expect(routineAt(system, detection.programCounter)).toBe('nmi_handler');
        // The watchdog tick that ran right after the first NMI past the hang is the last one:
        // the hang is declared at the third NMI after the next one, 300-400 ms after the lock
        // (plus the few ms until the CPU next schedules).
        const latencyNs = detection.timeNs - lockedNs;
        expect(latencyNs).toBeGreaterThan(3 * NMI_PERIOD_NS - 10 * MS);
        expect(latencyNs).toBeLessThanOrEqual(4 * NMI_PERIOD_NS + 10 * MS);
        expect(detection.timeNs % NMI_PERIOD_NS).toBeLessThan(1 * MS);

        // The NMI interrupted a spin on that very lock, with interrupts disabled: its frame on
        // the NMI stack holds the interrupted PC and FLAGS, under the 3 registers nmi_handler
        // saved and the frame of the panic's exception (PC, FLAGS, SP) on top.
        // Whichever path took the CPU's schedule lock first spins: schedule, sched_op(block), or
        // vcpu_wake from the guest's timer; all hold the lock address in r10.
        const cpu = system.machine.cpus[UNIXBENCH_CPU];
        const words = system.machine.memory.words;
        expect(cpu.programCounter).toBe(system.hypervisor.label('exception_entry'));
        expect(cpu.stackPointer).toBe(nmiStackBase(UNIXBENCH_CPU) + IST_STACK_WORDS - 9);
        const interruptedPc = words[cpu.stackPointer + 6];
        const interruptedFlags = words[cpu.stackPointer + 7];
        expect(SCHEDULE_LOCK_TAKERS).toContain(routineAt(system, interruptedPc));
        expect(disassemble(words[interruptedPc - 1])).toBe('pause');
        expect(cpu.registers[10]).toBe(scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU));
        expect(interruptedFlags & FLAG_INTERRUPT_ENABLE).toBe(0);

        // No CPU has stopped: the detecting one goes on into its panic path when the machine runs on.
        expect(system.machine.cpus.map((each) => each.mode === CpuMode.Stopped)).toEqual([false, false, false, false]);
      }),
      { numRuns: 4 },
    );
  });

  it('does not fire for a stall shorter than its 3 strikes: the strikes reset once the watchdog ticks again', () => {
    const system = startedSystem({ configuration: '1AppVM', seed: 11 });
    runToQuiescence(system, 330 * MS);
    const words = system.machine.memory.words;
    const strikes = perCpuAddress(UNIXBENCH_CPU) + PerCpu.offset.watchdogStrikes;
    words[scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU)] = FAKE_LOCK_OWNER;
    expect(system.machine.run(620 * MS).kind).toBe('timeReached');
    // NMIs at 400 (the counter moved since 300), 500 and 600 ms (it did not): two strikes.
    expect(words[strikes]).toBe(WATCHDOG_STRIKES - 1);
    const cpu = system.machine.cpus[UNIXBENCH_CPU];
    expect(SCHEDULE_LOCK_TAKERS).toContain(routineAt(system, cpu.programCounter));
    expect(cpu.registers[10]).toBe(scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU));
    expect(cpu.flags & FLAG_INTERRUPT_ENABLE).toBe(0);

    words[scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU)] = 0;
    expect(system.machine.run(system.runLengthNs).kind).toBe('timeReached');
    runToQuiescence(system, system.machine.nowNs);
    expect(system.hypervisor.detections).toEqual([]);
    expect(words[strikes]).toBe(0);
    expect(auditInvariants(system)).toEqual([]);
    // no hang for the watchdog, but UnixBench, held off its CPU for 290 ms, has timed out
    expect(verdictOf(system, 1)).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/^timed out: no progress for more than 100 ms/) as unknown });
  });

  it('declares a hang on a CPU looping in the hypervisor with interrupts enabled: its timer interrupts only raise the softirq', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 120, max: 620 }), (seed, loopMs) => {
        const system = startedSystem({ configuration: '1AppVM', seed });
        runToQuiescence(system, loopMs * MS);
        // UnixBench's next mmu_update, entered with interrupts enabled, jumps to itself forever
        const words = system.machine.memory.words;
        const loop = system.hypervisor.program.labels.get('do_mmu_update') ?? 0;
        words[loop] = new Assembler(loop).label('self').jmp(ref('self')).link().words[0];
        const loopedNs = system.machine.nowNs;
        const cpu = system.machine.cpus[UNIXBENCH_CPU];
        const area = perCpuAddress(UNIXBENCH_CPU);

        // A strike in, it is still looping with interrupts enabled; the local timer fired and
        // raised the timer softirq, which no softirq point runs, so the watchdog counter is stuck.
        expect(system.machine.run(loopedNs + 2 * NMI_PERIOD_NS).kind).toBe('timeReached');
        expect(system.hypervisor.detections).toEqual([]);
        expect(cpu.programCounter).toBe(loop);
        expect(cpu.flags & FLAG_INTERRUPT_ENABLE).toBe(FLAG_INTERRUPT_ENABLE);
        expect(words[area + PerCpu.offset.softirqPending] & SOFTIRQ_TIMER).toBe(SOFTIRQ_TIMER);
        const stuckCount = words[area + PerCpu.offset.watchdogCount];

        expect(system.machine.run(loopedNs + 1_000 * MS)).toEqual({ kind: 'stopped', reason: 'detected' });
        const detection = onlyDetection(system);
        expect(detection.detector).toBe('hang');
        expect(detection.cpu).toBe(UNIXBENCH_CPU);
        expect(words[area + PerCpu.offset.watchdogCount]).toBe(stuckCount);
        // 3 NMIs after the last tick, which came at most one period after UnixBench's next mmu_update
        const latencyNs = detection.timeNs - loopedNs;
        expect(latencyNs).toBeGreaterThan(3 * NMI_PERIOD_NS - 10 * MS);
        expect(latencyNs).toBeLessThanOrEqual(4 * NMI_PERIOD_NS + 10 * MS);
        // the loop's hundreds of millions of instructions were skipped, not run one by one
        expect(system.machine.skippedInstructions).toBeGreaterThan(250_000_000);
      }),
      { numRuns: 4 },
    );
  });
});

describe('the panic path', () => {
  // Unmapped addresses: past the end of the mapped address space (the null page is too small to
  // hold a frame table's worth of offsets).
  const unmappedFrameTables = fc.integer({ min: DIRECT_MAP_END, max: 0x7fff0000 });

  it('reports the page fault of an mmu_update through a corrupted frame-table pointer, in do_mmu_update', () => {
    fc.assert(
      fc.property(seeds, unmappedFrameTables, (seed, frameTable) => {
        const system = startedSystem({ configuration: '1AppVM', seed });
        runToQuiescence(system, 50 * MS);
        const corruptedNs = system.machine.nowNs;
        system.machine.memory.words[FRAME_TABLE_POINTER] = frameTable;
        const outcome = system.machine.run(system.runLengthNs);
        // The hypervisor stops the machine at a detection.
        expect(outcome).toEqual({ kind: 'stopped', reason: 'detected' });

        const detection = onlyDetection(system);
        if (detection.detector !== 'exception') throw new Error(`expected an exception, got ${detection.detector}`);
        expect(detection.exception).toBe('pageFault');
        expect(detection.cpu).toBe(UNIXBENCH_CPU);
        expect(symbolizerFor(system.hypervisor.program.labels)(detection.programCounter)).toMatch(/^do_mmu_update\+\d+$/);
        // The faulting address is a field of one of UnixBench's frame descriptors, seen through
        // the corrupted pointer.
        const offset = detection.address - frameTable;
        const frame = Math.floor(offset / FrameDescriptor.sizeWords);
        expect([FrameDescriptor.offset.owner, FrameDescriptor.offset.useCount]).toContain(offset % FrameDescriptor.sizeWords);
        expect(frame).toBeGreaterThanOrEqual(firstFrameOf(1));
        expect(frame).toBeLessThan(firstFrameOf(2));
        // UnixBench updates its page table every few hundred microseconds.
        expect(detection.timeNs - corruptedNs).toBeLessThan(10 * MS);
      }),
      { numRuns: 4 },
    );
  });

  it('reports the failed irq_count assertion in schedule, on the CPU whose count was left non-zero', () => {
    fc.assert(
      fc.property(seeds, fc.integer({ min: 0, max: 3 }), (seed, cpu) => {
        const system = startedSystem({ configuration: '1AppVM', seed });
        runToQuiescence(system, 30 * MS);
        const brokenNs = system.machine.nowNs;
        system.machine.memory.words[perCpuAddress(cpu) + PerCpu.offset.irqCount] = 1;
        expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });

        const detection = onlyDetection(system);
        expect(detection).toMatchObject({ detector: 'assertion', assertion: assertionNames[BUG_IRQ_COUNT_AT_SCHEDULE], cpu });
        expect(routineAt(system, detection.programCounter)).toBe('schedule');
        // Every CPU, idle or not, schedules at least at each 10 ms scheduler tick.
        expect(detection.timeNs - brokenNs).toBeLessThanOrEqual(10 * MS + 1 * MS);
        expect(reportOf(system).detections).toEqual([`assertion "${assertionNames[BUG_IRQ_COUNT_AT_SCHEDULE]}" at cpu ${cpu} pc 0x${detection.programCounter.toString(16)}`]);
      }),
      { numRuns: 4 },
    );
  });

  it('reports a frame use count going negative when a mapping of a frame whose count was zeroed is dropped', () => {
    const host = new GuestHost(2);
    const hypervisor = new Hypervisor({ cpuCount: 2, domains: [{ domainId: 0, cpu: 0 }, { domainId: 1, cpu: 1 }] }, host);
    const frame = firstFrameOf(1) + 3;
    const guest = new PlaylistKernel(1, [call(Hypercall.MmuUpdate, 0, frame), sleep(1_000), call(Hypercall.MmuUpdate, 0, 0)]);
    host.attach(0, new PlaylistKernel(0, []));
    host.attach(1, guest);
    hypervisor.start();
    const machine = hypervisor.machine;
    // Stop while the guest sleeps, after its map and before its unmap.
    while (guest.state.returns.length === 0 && machine.nowNs < 1 * MS) machine.run(machine.nowNs + 20_000);
    expect(guest.state.returns).toEqual([1]);
    const useCount = frameField(hypervisor.layout.frameTable, frame, 'useCount');
    expect(machine.memory.words[useCount]).toBe(1);
    machine.memory.words[useCount] = 0;

    expect(machine.run(10 * MS)).toEqual({ kind: 'stopped', reason: 'detected' });
    expect(hypervisor.detections).toHaveLength(1);
    expect(hypervisor.detections[0]).toMatchObject({ detector: 'assertion', assertion: assertionNames[BUG_FRAME_COUNT_NEGATIVE], cpu: 1 });
    const symbol = symbolizerFor(hypervisor.program.labels)(hypervisor.detections[0].programCounter);
    expect(symbol).toMatch(/^do_mmu_update/);
    expect(guest.state.returns).toEqual([1]);
  });
});
