/**
 * The repairs for per-CPU and static state that a microreset keeps and a microreboot's boot
 * re-initialises: irq_count, interrupts left in service, scheduler metadata, the local timer,
 * static locks and recurring timers. Each test stops a CPU at the point where an abandoned thread
 * leaves the inconsistency, lands a failstop there, and recovers with and without the step; the
 * microreset-only repairs are also shown to be unnecessary after a microreboot's boot.
 */
import { describe, expect, it } from 'vitest';
import { FLAG_INTERRUPT_ENABLE } from '../../src/machine/isa.js';
import { NO_DEADLINE, type CpuState } from '../../src/machine/cpu.js';
import { microreboot } from '../../src/recovery/microreboot.js';
import { IRQ_EOI_CPU_TABLE, RUN_STATE_RUNNABLE, Timer, VECTOR_TIMER, Vcpu, scheduleLockAddress, timerLockAddress } from '../../src/hypervisor/layout.js';
import { VECTOR_DISK } from '../../src/hypervisor/abi.js';
import {
  IDLE_CPU,
  MS,
  ONE_APP_VM,
  UNIXBENCH_CPU,
  auditInvariants,
  expectRecovered,
  expectRecoveryFailed,
  failstopAt,
  findPoint,
  guestVcpus,
  perCpuWord,
  recoverFrom,
  workOf,
  type Point,
} from './scenario.js';

import { System } from '../../src/trial/system.js';
import { runTrial } from '../../src/trial/trial.js';
import type { RecoveryRecord, TrialRecord } from '../../src/trial/record.js';
import { functionOfSymbol, symbolizerFor } from '../../src/machine/disassembler.js';

function recordOf(record: TrialRecord): RecoveryRecord {
  if (record.outcome !== 'detected' || record.recovery === undefined) throw new Error(`no recovery: ${record.outcome}`);
  return record.recovery;
}
/** Where boot puts the CPUs' locks: the heap layout depends only on the CPU count (4 in every configuration). */
const CPU_LOCKS = new System({ configuration: '1AppVM', seed: 0 }).hypervisor.layout.cpuLocks;

function expectMicrorebootNeedsNoSuchStep(step: string, at: Point): void {
  expect(microreboot.steps.map(({ step: each }) => each.name)).not.toContain(step);
  expectRecovered(recoverFrom(failstopAt(at), 'microreboot'));
}

/**
 * A timer interrupt handler on `cpu` has entered (irq_count raised) and not yet ended its interrupt:
 * the instruction before its EOI, which, as Xen's apic_timer_interrupt, comes first thing.
 */
function inTimerInterrupt(cpu: number): Point {
  return findPoint({
    options: ONE_APP_VM,
    afterNs: 100 * MS,
    cpu,
    routines: ['timer_interrupt'],
    at: ({ cpu: state, words }) =>
      (state.inServiceVectors & (1 << VECTOR_TIMER)) !== 0 &&
      state.timerDeadlineNs === NO_DEADLINE &&
      perCpuWord(words, cpu, 'irqCount') === 1 &&
      words[timerLockAddress(CPU_LOCKS, cpu)] === 0,
  });
}

describe('clear-irq-count', () => {
  it('without it the irq_count the recovery IPI raised on every other CPU trips the scheduler\'s assertion', () => {
    // UnixBench's CPU fails in a hypercall: its own irq_count is 0, the others take the IPI.
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['do_sched_op'],
      at: ({ words }) => perCpuWord(words, UNIXBENCH_CPU, 'irqCount') === 0,
    });
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['clear-irq-count']), 'secondFailure', /^assertion "irq_count non-zero at context switch" at cpu [023] /);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'stop-cpus')).toEqual({ cpusSignalled: 3, cpusStillRunning: 0 });
    expect(workOf(withIt, 'clear-irq-count')).toEqual({ countsCleared: 3 });
    expectMicrorebootNeedsNoSuchStep('clear-irq-count', at);
  });
});

describe('acknowledge-interrupts', () => {
  it.each(['microreset', 'microreboot'] as const)('%s: without it the abandoned timer interrupt stays in service, the CPU takes no more timer interrupts and hangs', (mechanism) => {
    const at = inTimerInterrupt(UNIXBENCH_CPU);
    const without = failstopAt(at);
    expectRecoveryFailed(recoverFrom(without, mechanism, ['acknowledge-interrupts']), 'secondFailure', /^watchdog hang on cpu 1$/);
    expect(without.system.machine.cpus[UNIXBENCH_CPU].inServiceVectors & (1 << VECTOR_TIMER)).not.toBe(0);
    const withIt = recoverFrom(failstopAt(at), mechanism);
    expectRecovered(withIt);
    expect(workOf(withIt, 'acknowledge-interrupts')).toEqual({ vectorsAcknowledged: 1, nmisUnblocked: 0 });
  });
});

describe('acknowledge-interrupts: what the local timer leaves in service', () => {
  it('nothing once its handler has ended the interrupt: a fail-stop in the timer softirq\'s raise, inside the handler, is recovered by microreboot without the step', () => {
    // raise_softirq inside the timer interrupt handler (1AppVM has no device interrupts: in
    // interrupt context on UnixBench's CPU, only the local timer's handler calls it)
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['raise_softirq'],
      at: ({ cpu: state, words }) => perCpuWord(words, UNIXBENCH_CPU, 'irqCount') === 1 && state.timerDeadlineNs === NO_DEADLINE,
    });
    const detected = failstopAt(at);
    expect(detected.system.machine.cpus[UNIXBENCH_CPU].inServiceVectors).toBe(0);
    const withoutStep = recoverFrom(detected, 'microreboot', ['acknowledge-interrupts']);
    expectRecovered(withoutStep);
  });
});

describe('acknowledge-interrupts: device interrupts whose EOI waits for the PrivVM', () => {
  // 1AppVM-blk: the disk interrupts the PrivVM's CPU (0); BlkBench runs on CPU 1.
  const BLK = { configuration: '1AppVM-blk', seed: 5, runLengthNs: 600 * MS } as const;
  const PRIVVM_CPU = 0;
  const diskInFlight = (cpu: CpuState, words: Int32Array): boolean =>
    (cpu.inServiceVectors & (1 << VECTOR_DISK)) !== 0 && words[IRQ_EOI_CPU_TABLE + VECTOR_DISK] === PRIVVM_CPU + 1;

  it('the device interrupt\'s handler leaves the disk vector in service, recorded on its CPU\'s pending-EOI stack, while it wakes the PrivVM', () => {
    // the device interrupt's handler is waking the PrivVM: the vector is in service and recorded
    const at = findPoint({
      options: BLK,
      afterNs: 1 * MS,
      cpu: PRIVVM_CPU,
      routines: ['vcpu_wake'],
      at: ({ system, words }) => diskInFlight(system.machine.cpus[PRIVVM_CPU], words) && perCpuWord(words, PRIVVM_CPU, 'pendingEoiCount') === 1,
    });
    expect(perCpuWord(at.snapshot.machine.words, PRIVVM_CPU, 'pendingEoi')).toBe(VECTOR_DISK);
  });

  it('microreboot: the new instance forgets the deferred EOI; without the step the disk vector stays in service, the PrivVM never hears from its disk again and BlkBench stalls', () => {
    // the PrivVM has handled its disk's completion and entered physdev_op(EOI); it fails there
    const at = findPoint({
      options: BLK,
      afterNs: 1 * MS,
      cpu: PRIVVM_CPU,
      routines: ['do_physdev_op'],
      at: ({ system, words }) => diskInFlight(system.machine.cpus[PRIVVM_CPU], words),
    });
    const without = failstopAt(at);
    expectRecoveryFailed(recoverFrom(without, 'microreboot', ['acknowledge-interrupts']), 'appVmFailed', /^blkbench: timed out: no progress/);
    // the PrivVM's retried EOI found nothing in flight in the new instance: the vector is still in service
    expect(without.system.machine.cpus[PRIVVM_CPU].inServiceVectors & (1 << VECTOR_DISK)).not.toBe(0);
    const withIt = recoverFrom(failstopAt(at), 'microreboot');
    expectRecovered(withIt);
    expect(workOf(withIt, 'acknowledge-interrupts')).toMatchObject({ vectorsAcknowledged: 1 });
  });
});

describe('scheduler-consistency', () => {
  it('without it a context switch abandoned before context_saved leaves the old vCPU marked running, and switching back to it trips the BUG_ON', () => {
    // schedule() has made idle current and dropped the lock; context_switch has not yet cleared
    // UnixBench's is_running.
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['context_switch'],
      at: ({ system, words }) => {
        const unixBench = system.hypervisor.layout.vcpus[1];
        return perCpuWord(words, UNIXBENCH_CPU, 'current') === system.hypervisor.layout.idleVcpus[UNIXBENCH_CPU] && words[unixBench + Vcpu.offset.isRunning] === 1;
      },
    });
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['scheduler-consistency']), 'secondFailure', /^assertion "switching to a vCPU already running" at cpu 1 /);
    expectRecovered(recoverFrom(failstopAt(at), 'microreset'));
    expectMicrorebootNeedsNoSuchStep('scheduler-consistency', at);
  });

  it('without it a vCPU taken off the runqueue but never made current leaves the idle vCPU both current and queued: inserted again, it trips __runq_insert\'s BUG_ON', () => {
    // runqueue_pop has just returned UnixBench's vCPU, still marked runnable, on no runqueue,
    // after the idle vCPU it was to replace went back on the runqueue.
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['schedule'],
      at: ({ system, cpu, words }) =>
        cpu.programCounter > system.hypervisor.label('schedule.pick') &&
        guestVcpus(system).includes(cpu.registers[0]) &&
        words[cpu.registers[0] + Vcpu.offset.runState] === RUN_STATE_RUNNABLE,
    });
    const without = failstopAt(at);
    expectRecoveryFailed(recoverFrom(without, 'microreset', ['scheduler-consistency']), 'secondFailure', /^assertion "inserting a vCPU already on a runqueue" at cpu 1 /);
    expect(auditInvariants(without.system)).toContain('schedulerViewsDisagree');
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'scheduler-consistency')).toMatchObject({ vcpusQueued: 1 });
    expectMicrorebootNeedsNoSuchStep('scheduler-consistency', at);
  });
});

describe('scheduler-consistency: a CPU the recovery IPI caught mid-switch', () => {
  // 3AppVM, seed 7, trial 87 (the ablation campaign's): CPU 2 fail-stops while CPU 0 is
  // switching vCPUs when the recovery IPI arrives. As in Xen, schedule()
  // drops the lock with spin_unlock_irq and context_switch clears prev's is_running only after
  // interrupts are enabled again, so the IPI parks CPU 0 with both vCPUs marked running.
  const trial = { configuration: '3AppVM', seed: 7, trialIndex: 87, faultType: 'failstop', mechanism: 'microreset' } as const;
  const PRIVVM_CPU = 0;

  /** Where the recovery IPI interrupted CPU 0, and the vCPUs of CPU 0 marked running, as the repairs begin. */
  function parkedMidSwitch(system: System): { routine: string; running: number } {
    const cpu = system.machine.cpus[PRIVVM_CPU];
    const words = system.machine.memory.words;
    // recovery_interrupt pushed one register over the frame (its PC lowest)
    const interrupted = words[cpu.stackPointer + 1];
    const routine = functionOfSymbol(symbolizerFor(system.hypervisor.program.labels)(interrupted) ?? '?');
    const vcpus = [...system.hypervisor.layout.vcpus, ...system.hypervisor.layout.idleVcpus];
    const running = vcpus.filter((vcpu) => words[vcpu + Vcpu.offset.processor] === PRIVVM_CPU && words[vcpu + Vcpu.offset.isRunning] === 1).length;
    return { routine, running };
  }

  it('without it, switching back to the vCPU still marked running trips the BUG_ON on that CPU; with it, recovered', () => {
    let seen: ReturnType<typeof parkedMidSwitch> | undefined;
    const onRecoveryStep = (step: string, system: System): void => {
      if (step === 'discard-threads') seen = parkedMidSwitch(system);
    };
    const without = runTrial({ ...trial, disabledSteps: ['scheduler-consistency'] }, { onRecoveryStep }).record;
    expect(without.outcome === 'detected' && without.injection.cpu).toBe(2);
    expect(seen).toEqual({ routine: expect.stringMatching(/^(schedule|context_switch)$/), running: 2 });
    expectRecoveryFailed(recordOf(without), 'secondFailure', /^assertion "switching to a vCPU already running" at cpu 0 /);
    const withIt = recordOf(runTrial(trial).record);
    expectRecovered(withIt);
    expect(workOf(withIt, 'discard-threads')).toEqual({ threadsDiscarded: 2 });
  });
});

describe('reprogram-timers', () => {
  it('without it an idle CPU whose local timer fired before its handler was abandoned never takes a timer interrupt again', () => {
    // An idle CPU: no guest there calls set_timer_op, which would re-arm the local timer.
    const at = inTimerInterrupt(IDLE_CPU);
    // CPU 2, idle too, took its own timer interrupt at the same time and was stopped before its
    // timer softirq reprogrammed the local timer: it hangs as well, and its NMI comes first.
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['reprogram-timers']), 'secondFailure', /^watchdog hang on cpu [23]$/);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    // CPUs parked by the recovery IPI while their own timer interrupt was still pending are
    // disarmed too, but that pending interrupt runs (and reprograms) once they are released.
    expect(workOf(withIt, 'reprogram-timers')).toMatchObject({ timersReprogrammed: 4 });
    expect(workOf(withIt, 'reprogram-timers')?.wereDisarmed).toBeGreaterThanOrEqual(1);
    expectMicrorebootNeedsNoSuchStep('reprogram-timers', at);
  });
});

describe('release-heap-locks, for the per-CPU schedule lock', () => {
  const point = (): Point =>
    findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['schedule'],
      at: ({ words }) => words[scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU)] === UNIXBENCH_CPU + 1,
    });

  it('microreset: without it the schedule lock held by the abandoned scheduler hangs that CPU when it next schedules', () => {
    const at = point();
    const without = failstopAt(at);
    expectRecoveryFailed(recoverFrom(without, 'microreset', ['release-heap-locks']), 'secondFailure', /^watchdog hang on cpu 1$/);
    // it hung spinning for the lock with interrupts masked: under the panic's exception frame
    // (3 words) and the 3 registers nmi_handler saved, the NMI's frame holds the spin's flags
    const spinning = without.system.machine.cpus[UNIXBENCH_CPU];
    expect(spinning.registers[10]).toBe(scheduleLockAddress(CPU_LOCKS, UNIXBENCH_CPU));
    expect(without.system.machine.memory.words[spinning.stackPointer + 7] & FLAG_INTERRUPT_ENABLE).toBe(0);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'release-heap-locks')).toEqual({ locksReleased: 1 });
    // it is no static lock: the static-lock repair has nothing to release
    expect(workOf(withIt, 'release-static-locks')).toEqual({ locksReleased: 0 });
  });

  it('microreboot: the boot keeps the per-CPU locks with the heap, so the lock stays held without it', () => {
    const at = point();
    const without = recoverFrom(failstopAt(at), 'microreboot', ['release-heap-locks']);
    expect(without.result).toBe('recoveryFailed');
    const withIt = recoverFrom(failstopAt(at), 'microreboot');
    expectRecovered(withIt);
    expect(workOf(withIt, 'release-heap-locks')).toEqual({ locksReleased: 1 });
  });
});

describe('reactivate-recurring-timers', () => {
  it('without it the watchdog timer whose handler was abandoned is gone, the watchdog counter stops and the NMI watchdog declares a hang', () => {
    // watchdog_fn has set in_handler; timer_interrupt took the timer off its list before calling it.
    const at = findPoint({
      options: ONE_APP_VM,
      afterNs: 100 * MS,
      cpu: UNIXBENCH_CPU,
      routines: ['watchdog_fn'],
      at: ({ cpu, words }) => words[cpu.registers[0] + Timer.offset.inHandler] === 1 && words[cpu.registers[0] + Timer.offset.active] === 0,
    });
    expectRecoveryFailed(recoverFrom(failstopAt(at), 'microreset', ['reactivate-recurring-timers']), 'secondFailure', /^watchdog hang on cpu 1$/);
    const withIt = recoverFrom(failstopAt(at), 'microreset');
    expectRecovered(withIt);
    expect(workOf(withIt, 'reactivate-recurring-timers')).toEqual({ timersReactivated: 1 });
    expectMicrorebootNeedsNoSuchStep('reactivate-recurring-timers', at);
  });
});
