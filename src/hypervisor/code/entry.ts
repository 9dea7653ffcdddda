/**
 * Entry and exit paths: VM exit, hypercall dispatch, return to guest, the idle loop, softirqs,
 * the scheduler and its runqueues. As in Xen, a hypervisor thread never outlives one VM exit:
 * `schedule` resets the stack and jumps to `return_to_guest`.
 */
import { ref, r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, type Assembler } from '../../machine/assembler.js';
import { EXIT_HYPERCALL, ERROR_NO_SYSTEM_CALL, HYPERCALL_COUNT } from '../abi.js';
import {
  BUG_CURRENT_NOT_RUNNING,
  BUG_IRQ_COUNT_AT_SCHEDULE,
  BUG_RUNQUEUE_CORRUPT,
  Domain,
  HYPERCALL_TABLE,
  PerCpu,
  RUN_STATE_RUNNABLE,
  RUN_STATE_RUNNING,
  SOFTIRQ_SCHEDULE,
  SOFTIRQ_TIMER,
  VECTOR_EVENT_CHECK,
  Vcpu,
} from '../layout.js';
import { addToField, cpuAreaOf, routine, scheduleLockOf, storeImmediate, thisCpuArea } from './helpers.js';

export function emitEntryPaths(asm: Assembler): void {
  emitStartCpu(asm);
  emitVmExit(asm);
  emitReturnToGuest(asm);
  emitIdleLoop(asm);
  emitDoSoftirq(asm);
  emitSchedule(asm);
  emitRunqueue(asm);
  emitRaiseSoftirq(asm);
}

/** Where each CPU starts: its stack, its local timer, then whatever `current` is. */
function emitStartCpu(asm: Assembler): void {
  asm.label('start_cpu');
  thisCpuArea(asm, r7);
  asm.ld(r1, r7, PerCpu.offset.stackTop);
  asm.wrsp(r1);
  asm.call(ref('timer_reprogram'));
  asm.jmp(ref('return_to_guest'));
}

/**
 * The hardware lands here on every VM exit, on a fresh host stack with interrupts disabled.
 * r0 = exit reason, r1 = hypercall number, r2..r4 = arguments, r5 = the guest's resume token.
 */
function emitVmExit(asm: Assembler): void {
  asm.label('vmexit_entry');
  thisCpuArea(asm, r7);
  asm.ld(r8, r7, PerCpu.offset.current);
  asm.st(r8, Vcpu.offset.resumeToken, r5);
  asm.cmpi(r0, EXIT_HYPERCALL);
  asm.bne(ref('vmexit_interrupt'));

  // Record the hypercall in the vCPU, so that an abandoned one can be retried.
  asm.st(r8, Vcpu.offset.hypercallNumber, r1);
  asm.st(r8, Vcpu.offset.hypercallArguments, r2);
  asm.st(r8, Vcpu.offset.hypercallArguments + 1, r3);
  asm.st(r8, Vcpu.offset.hypercallArguments + 2, r4);
  // the guest frame's return register holds the hypercall number until the call completes
  asm.st(r8, Vcpu.offset.returnValue, r1);
  storeImmediate(asm, r8, Vcpu.offset.hypercallInProgress, 1, r9);
  asm.movi(r0, ERROR_NO_SYSTEM_CALL);
  asm.cmpi(r1, 0);
  asm.blt(ref('vmexit_hypercall_done'));
  asm.cmpi(r1, HYPERCALL_COUNT);
  asm.bge(ref('vmexit_hypercall_done'));
  asm.movi(r9, HYPERCALL_TABLE);
  asm.add(r9, r9, r1);
  asm.ld(r9, r9, 0);
  asm.sti();
  asm.callr(r9);
  asm.cli();
  asm.label('vmexit_hypercall_done');
  thisCpuArea(asm, r7);
  asm.ld(r8, r7, PerCpu.offset.current);
  asm.st(r8, Vcpu.offset.returnValue, r0);
  storeImmediate(asm, r8, Vcpu.offset.hypercallInProgress, 0, r9);
  asm.jmp(ref('return_to_guest'));

  // An interrupt forced the exit: open the window so it is delivered, then go back.
  asm.label('vmexit_interrupt');
  asm.sti();
  asm.nop();
  asm.cli();
  asm.jmp(ref('return_to_guest'));
}

/**
 * Run pending softirqs, then enter `current` (or idle). Delivers the domain's pending events
 * in r2 and the saved return value and resume token in r0 and r5.
 */
function emitReturnToGuest(asm: Assembler): void {
  asm.label('return_to_guest');
  asm.cli();
  thisCpuArea(asm, r7);
  asm.ld(r1, r7, PerCpu.offset.softirqPending);
  asm.ifNotZero(r1, () => {
    asm.sti();
    asm.call(ref('do_softirq'));
    asm.jmp(ref('return_to_guest'));
  });
  asm.ld(r8, r7, PerCpu.offset.current);
  asm.ld(r1, r7, PerCpu.offset.idleVcpu);
  asm.cmp(r8, r1);
  asm.beq(ref('idle_loop'));

  asm.ld(r9, r8, Vcpu.offset.domain);
  asm.addi(r10, r9, Domain.offset.lock);
  asm.withLock(r10, () => {
    asm.ld(r2, r9, Domain.offset.pendingEvents);
    storeImmediate(asm, r9, Domain.offset.pendingEvents, 0, r1);
  });
  asm.ld(r0, r8, Vcpu.offset.returnValue);
  asm.ld(r3, r8, Vcpu.offset.restartHypercall);
  storeImmediate(asm, r8, Vcpu.offset.restartHypercall, 0, r1);
  asm.ld(r5, r8, Vcpu.offset.resumeToken);
  asm.ld(r1, r8, Vcpu.offset.id);
  asm.vmenter(r1);
}

/** The idle vCPU: sleep until an interrupt, run softirqs, repeat. */
function emitIdleLoop(asm: Assembler): void {
  asm.label('idle_loop');
  thisCpuArea(asm, r7);
  asm.ld(r1, r7, PerCpu.offset.stackTop);
  asm.wrsp(r1);
  asm.loop(() => {
    asm.cli();
    asm.ld(r1, r7, PerCpu.offset.softirqPending);
    asm.ifNotZero(
      r1,
      () => {
        asm.sti();
        asm.call(ref('do_softirq'));
      },
      () => {
        asm.sti();
        asm.hlt();
      },
    );
  });
}

/**
 * Take and clear this CPU's pending softirqs atomically, then run them lowest bit first as Xen
 * does: expired timers, then the scheduler (which never returns). Called with interrupts enabled.
 */
function emitDoSoftirq(asm: Assembler): void {
  routine(asm, 'do_softirq', [r1, r2, r3, r4, r7], () => {
    thisCpuArea(asm, r7);
    asm.addi(r3, r7, PerCpu.offset.softirqPending);
    asm.label('do_softirq.retry');
    asm.ld(r1, r3, 0);
    asm.mov(r4, r1);
    asm.movi(r2, 0);
    asm.cas(r4, r3, r2);
    asm.bne(ref('do_softirq.retry'));
    asm.andi(r2, r1, SOFTIRQ_TIMER);
    asm.ifNotZero(r2, () => asm.call(ref('timer_softirq')));
    asm.andi(r2, r1, SOFTIRQ_SCHEDULE);
    asm.ifNotZero(r2, () => asm.jmp(ref('schedule')));
  });
}

/**
 * Pick the next vCPU for this CPU. The running vCPU, if still runnable, goes to the tail of the
 * runqueue; the head runs next, or the idle vCPU. Keeps per-CPU `current`, `is_running` and
 * runqueue membership in step, then resets the stack and returns to the new context.
 */
function emitSchedule(asm: Assembler): void {
  asm.label('schedule');
  asm.cli();
  thisCpuArea(asm, r7);
  asm.ld(r1, r7, PerCpu.offset.irqCount);
  asm.bugOn(r1, BUG_IRQ_COUNT_AT_SCHEDULE);
  asm.cpuid(r6);
  scheduleLockOf(asm, r10, r6);
  asm.spinLock(r10);
  asm.ld(r8, r7, PerCpu.offset.current);
  // BUG_ON(!prev->is_running): the CPU's current vCPU must know it is running
  asm.ld(r1, r8, Vcpu.offset.isRunning);
  asm.addi(r1, r1, -1);
  asm.bugOn(r1, BUG_CURRENT_NOT_RUNNING);
  asm.ld(r9, r7, PerCpu.offset.idleVcpu);
  asm.cmp(r8, r9);
  asm.beq(ref('schedule.pick'));
  asm.ld(r1, r8, Vcpu.offset.runState);
  asm.ifEqualImmediate(r1, RUN_STATE_RUNNING, () => {
    storeImmediate(asm, r8, Vcpu.offset.runState, RUN_STATE_RUNNABLE, r1);
    asm.mov(r0, r8);
    asm.call(ref('runqueue_append'));
  });
  asm.label('schedule.pick');
  asm.call(ref('runqueue_pop'));
  asm.ifZero(
    r0,
    () => asm.mov(r0, r9),
    () => storeImmediate(asm, r0, Vcpu.offset.runState, RUN_STATE_RUNNING, r1),
  );
  asm.ifEqual(r0, r8, () => undefined, () => {
    storeImmediate(asm, r8, Vcpu.offset.isRunning, 0, r1);
    addToField(asm, r7, PerCpu.offset.contextSwitches, 1, r1);
  });
  storeImmediate(asm, r0, Vcpu.offset.isRunning, 1, r1);
  asm.st(r7, PerCpu.offset.current, r0);
  asm.spinUnlock(r10);
  asm.ld(r1, r7, PerCpu.offset.stackTop);
  asm.wrsp(r1);
  asm.jmp(ref('return_to_guest'));
}

/**
 * runqueue_append(r0 = vCPU, r7 = CPU area of the runqueue); runqueue_pop(r7) -> r0 (0 if empty).
 * Doubly linked through the vCPUs; the caller holds that CPU's schedule lock.
 */
function emitRunqueue(asm: Assembler): void {
  routine(asm, 'runqueue_append', [r1, r2], () => {
    storeImmediate(asm, r0, Vcpu.offset.runqueueNext, 0, r2);
    asm.ld(r1, r7, PerCpu.offset.runqueueTail);
    asm.st(r0, Vcpu.offset.runqueuePrevious, r1);
    asm.ifZero(
      r1,
      () => asm.st(r7, PerCpu.offset.runqueueHead, r0),
      () => asm.st(r1, Vcpu.offset.runqueueNext, r0),
    );
    asm.st(r7, PerCpu.offset.runqueueTail, r0);
  });

  routine(asm, 'runqueue_pop', [r1, r2], (exit) => {
    asm.ld(r0, r7, PerCpu.offset.runqueueHead);
    asm.cmpi(r0, 0);
    asm.beq(ref(exit));
    // BUG_ON(!vcpu_runnable(next)): only runnable vCPUs are queued
    asm.ld(r1, r0, Vcpu.offset.runState);
    asm.addi(r1, r1, -RUN_STATE_RUNNABLE);
    asm.bugOn(r1, BUG_RUNQUEUE_CORRUPT);
    asm.ld(r1, r0, Vcpu.offset.runqueueNext);
    asm.st(r7, PerCpu.offset.runqueueHead, r1);
    asm.movi(r2, 0);
    asm.ifZero(
      r1,
      () => asm.st(r7, PerCpu.offset.runqueueTail, r2),
      () => asm.st(r1, Vcpu.offset.runqueuePrevious, r2),
    );
    asm.st(r0, Vcpu.offset.runqueueNext, r2);
    asm.st(r0, Vcpu.offset.runqueuePrevious, r2);
  });
}

/**
 * raise_softirq(r1 = CPU, r2 = bits): set the bits atomically; kick that CPU with an event-check
 * IPI only when one of them was newly set and it is another CPU, as Xen's cpu_raise_softirq does.
 * A CPU raising its own softirq runs it at its next softirq point without being interrupted.
 */
function emitRaiseSoftirq(asm: Assembler): void {
  routine(asm, 'raise_softirq', [r3, r4, r5, r6, r11], (exit) => {
    cpuAreaOf(asm, r3, r1);
    asm.addi(r3, r3, PerCpu.offset.softirqPending);
    asm.label('raise_softirq.retry');
    asm.ld(r4, r3, 0);
    asm.or(r5, r4, r2);
    asm.mov(r6, r4);
    asm.cas(r6, r3, r5);
    asm.bne(ref('raise_softirq.retry'));
    // nothing newly set: the CPU has already been told
    asm.cmp(r5, r4);
    asm.beq(ref(exit));
    asm.cpuid(r5);
    asm.cmp(r5, r1);
    asm.beq(ref(exit));
    asm.movi(r11, VECTOR_EVENT_CHECK);
    asm.ipi(r1, r11);
  });
}
