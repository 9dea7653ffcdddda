/**
 * The start of recovery runs as hypervisor code in the machine (exception delivery, panic(),
 * the recovery routine's entry), so corrupted state can keep recovery from ever running: a
 * stack pointer flipped into mapped memory (the panic path reads another word as its CPU's
 * cpu_info; one flipped out of mapped memory double-faults onto its own stack and panics),
 * a corrupted recovery-entry pointer (a fault inside the panic path), a corrupted online-CPU map
 * (the entry waits for a CPU that does not exist). A healthy entry parks every other CPU and
 * hands over to the repair steps.
 */
import { describe, expect, it } from 'vitest';
import { CpuMode } from '../../src/machine/cpu.js';
import { DIRECT_MAP_END, IPI_DESTINATIONS, cpuInfoAddressOf, doubleFaultStackBase, ONLINE_CPUS, PerCpu, RECOVERY_ENTRY_POINTER, RECOVERY_IN_PROGRESS, perCpuAddress } from '../../src/hypervisor/layout.js';
import { ENTRY_WINDOW_NS } from '../../src/recovery/entry.js';
import type { System } from '../../src/trial/system.js';
import {
  MS,
  ONE_APP_VM,
  UNIXBENCH_CPU,
  expectRecovered,
  expectRecoveryFailed,
  failstopAt,
  findPoint,
  recoverFrom,
  routineAt,
  stackPointerFaultAt,
  workOf,
  type MechanismChoice,
  type Point,
} from './scenario.js';

const MECHANISMS: MechanismChoice[] = ['microreset', 'microreboot'];
const CPUS = 4;

// UnixBench's CPU in the middle of a hypercall (sched_op), with hypervisor frames on its stack
const point = (): Point => findPoint({ options: ONE_APP_VM, afterNs: 100 * MS, cpu: UNIXBENCH_CPU, routines: ['do_sched_op'], at: () => true });

/** The CPUs halted in the park loop, by index. */
function parkedCpus(system: System): number[] {
  const halt = system.hypervisor.label('recovery_park.halt');
  return system.machine.cpus
    .filter((cpu) => cpu.mode === CpuMode.Halted && cpu.programCounter >= halt && cpu.programCounter <= halt + 1)
    .map((cpu) => cpu.index);
}

describe('the recovery entry', () => {
  it.each(MECHANISMS)('%s: a healthy entry claims the recovery, parks every other CPU and hands over before any step runs', (mechanism) => {
    const detected = failstopAt(point());
    const { system } = detected;
    let atFirstStep: { parked: number[]; leader: CpuMode; claim: number; flags: number[] } | undefined;
    const record = recoverFrom(detected, mechanism, [], undefined, {
      beforeStep: (step) => {
        if (atFirstStep !== undefined) return;
        const words = system.machine.memory.words;
        atFirstStep = {
          parked: parkedCpus(system),
          leader: system.machine.cpus[UNIXBENCH_CPU].mode,
          claim: words[RECOVERY_IN_PROGRESS],
          flags: [0, 1, 2, 3].map((cpu) => words[perCpuAddress(cpu) + PerCpu.offset.recoveryParked]),
        };
        expect(step).toBe('stop-cpus');
      },
    });
    expect(atFirstStep).toEqual({ parked: [0, 2, 3], leader: CpuMode.Stopped, claim: UNIXBENCH_CPU + 1, flags: [1, 0, 1, 1] });
    expectRecovered(record);
    expect(workOf(record, 'stop-cpus')).toEqual({ cpusSignalled: CPUS - 1, cpusStillRunning: 0 });
    // resume puts the entry's own bookkeeping back
    const words = system.machine.memory.words;
    expect([words[RECOVERY_IN_PROGRESS], ...[0, 1, 2, 3].map((cpu) => words[perCpuAddress(cpu) + PerCpu.offset.recoveryParked])]).toEqual([0, 0, 0, 0, 0]);
  });

  it.each(MECHANISMS)('%s: a stack pointer flipped out of mapped memory makes the exception frame unpushable: a double fault, whose handler panics on its own stack, and recovery runs', (mechanism) => {
    const at = point();
    // bit 16 moves the stack pointer from 0x82xx to 0x182xx, past the end of the mapped address space
    const detected = stackPointerFaultAt(at, 16);
    const { system, detection } = detected;
    expect(detection).toMatchObject({ detector: 'exception', exception: 'pageFault', cpu: UNIXBENCH_CPU });
    expect(detection.detector === 'exception' && detection.address).toBeGreaterThanOrEqual(DIRECT_MAP_END);
    // the frame went onto the double-fault stack, whose cpu_info names this CPU, as Xen's IST stacks do
    const stackPointer = system.machine.cpus[UNIXBENCH_CPU].stackPointer;
    expect(stackPointer).toBeGreaterThanOrEqual(doubleFaultStackBase(UNIXBENCH_CPU));
    expect(system.machine.memory.words[cpuInfoAddressOf(stackPointer)]).toBe(UNIXBENCH_CPU);
    const record = recoverFrom(detected, mechanism);
    expectRecovered(record);
    expect(record.steps.length).toBeGreaterThan(0);
  });

  it.each(MECHANISMS)('%s: a stack pointer flipped into direct-mapped memory takes another word for its cpu_info: the panic path runs as another CPU, and recovery never runs', (mechanism) => {
    const at = point();
    // bit 14 moves the stack pointer from 0x82xx to 0xc2xx: mapped, as most of Xen's direct map is
    const detected = stackPointerFaultAt(at, 14);
    expect(detected.detection.detector === 'exception' && detected.detection.exception).not.toBe('doubleFault');
    const record = recoverFrom(detected, mechanism);
    expectRecoveryFailed(record, 'recoveryNeverRan', /^cpu 1 ran its panic path on stack pointer 0xc2[0-9a-f]{2}, outside its stacks, as cpu 0; /);
    expect(record.steps).toEqual([]);

    // the same fault on a bit that keeps the stack pointer inside its stack block is recovered from
    expectRecovered(recoverFrom(stackPointerFaultAt(at, 0), mechanism));
  });

  it.each(MECHANISMS)('%s: a corrupted recovery-entry pointer faults inside the panic path: recovery never runs', (mechanism) => {
    const detected = failstopAt(point());
    detected.system.machine.memory.words[RECOVERY_ENTRY_POINTER] = 0;
    const record = recoverFrom(detected, mechanism);
    expectRecoveryFailed(record, 'recoveryNeverRan', /^fault inside the panic path: pageFault \(fetch 0x0\) at cpu 1 pc 0x0/);
    expect(routineAt(detected.system, detected.system.machine.cpus[UNIXBENCH_CPU].programCounter)).toBe('panic');
  });

  it.each(MECHANISMS)('%s: an online-CPU map that names a CPU the machine lacks keeps the entry waiting: recovery never runs', (mechanism) => {
    const detected = failstopAt(point());
    const words = detected.system.machine.memory.words;
    words[ONLINE_CPUS] |= 1 << 5;
    const record = recoverFrom(detected, mechanism);
    expectRecoveryFailed(record, 'recoveryNeverRan', /^hang waiting for CPUs to park: cpu 5 \(online map 0x2f\)$/);
    expect(record.recoveryLatencyMs).toBe(ENTRY_WINDOW_NS / 1_000_000);
    // the CPUs that exist did park
    expect(parkedCpus(detected.system)).toEqual([0, 2, 3]);
  });

  it('microreset: an IPI destination that names the leading CPU sends it its own IPI and NMI; the CPU it should have stopped never parks', () => {
    const detected = failstopAt(point());
    detected.system.machine.memory.words[IPI_DESTINATIONS + 2] = UNIXBENCH_CPU;
    const record = recoverFrom(detected, 'microreset');
    expectRecoveryFailed(record, 'recoveryNeverRan', /^hang waiting for CPUs to park: cpu 2 \(online map 0xf\)$/);
    // the leader took the NMI it sent itself and went back to waiting
    const leader = detected.system.machine.cpus[UNIXBENCH_CPU];
    expect(leader.nmiBlocked).toBe(false);
    expect(parkedCpus(detected.system)).toEqual([0, 3]);
  });
});
