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
  BUG_NEXT_ALREADY_RUNNING,
  BUG_NEXT_OTHER_CPU,
  BUG_RUN_STATE,
  BUG_RUNQUEUE_CORRUPT,
  BUG_RUNQUEUE_INSERT_QUEUED,
  BUG_RUNQUEUE_LINKS,
  Domain,
  HYPERCALL_TABLE,
  PerCpu,
  RUN_STATE_BLOCKED,
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
  emitContextSwitch(asm);
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
 * runqueue membership in step, then resets the stack and returns to the new context. As Xen's
 * schedule() and csched_schedule(), it checks the views it touches instead of trusting them: not
 * in interrupt context, the previous vCPU running, the next one neither running elsewhere nor
 * another CPU's.
 */
function emitSchedule(asm: Assembler): void {
  asm.label('schedule');
  asm.cli();
  thisCpuArea(asm, r7);
  // ASSERT(!in_irq())
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
  requeuePrevious(asm);
  asm.label('schedule.pick');
  asm.call(ref('runqueue_pop'));
  asm.ifZero(
    r0,
    () => asm.mov(r0, r9),
    () => storeImmediate(asm, r0, Vcpu.offset.runState, RUN_STATE_RUNNING, r1),
  );
  asm.ifEqual(r0, r8, () => undefined, () => {
    // BUG_ON(next->is_running): a vCPU runs on one CPU at a time
    asm.ld(r1, r0, Vcpu.offset.isRunning);
    asm.bugOn(r1, BUG_NEXT_ALREADY_RUNNING);
    // BUG_ON(next->processor != cpu): this CPU's runqueue holds only its own vCPUs
    asm.ld(r1, r0, Vcpu.offset.processor);
    asm.sub(r1, r1, r6);
    asm.bugOn(r1, BUG_NEXT_OTHER_CPU);
  });
  storeImmediate(asm, r0, Vcpu.offset.isRunning, 1, r1);
  asm.st(r7, PerCpu.offset.current, r0);
  asm.spinUnlock(r10);
  asm.ifEqual(r0, r8, () => undefined, () => asm.call(ref('context_switch')));
  asm.ld(r1, r7, PerCpu.offset.stackTop);
  asm.wrsp(r1);
  asm.jmp(ref('return_to_guest'));
}

/**
 * context_switch(r8 = prev, r0 = next, r7 = this CPU's area), after the schedule lock is dropped,
 * as Xen's: account the time prev ran and start next's, then context_saved(prev) clears prev's
 * is_running, only now that prev's state is saved. Until then both vCPUs are marked running: a
 * thread abandoned in between leaves the scheduler's views disagreeing.
 */
function emitContextSwitch(asm: Assembler): void {
  routine(asm, 'context_switch', [r1, r2, r3], () => {
    asm.rdtime(r1);
    asm.ld(r2, r8, Vcpu.offset.runstateEntryUs);
    asm.sub(r2, r1, r2);
    asm.ld(r3, r8, Vcpu.offset.runningUs);
    asm.add(r3, r3, r2);
    asm.st(r8, Vcpu.offset.runningUs, r3);
    asm.st(r0, Vcpu.offset.runstateEntryUs, r1);
    addToField(asm, r7, PerCpu.offset.contextSwitches, 1, r1);
    // context_saved(prev)
    storeImmediate(asm, r8, Vcpu.offset.isRunning, 0, r1);
  });
}

/**
 * The previous vCPU (r8, not idle): still running, it is preempted; woken while it was blocking
 * (vcpu_wake leaves the current vCPU off the runqueue), it is runnable; either way it goes on the
 * runqueue, whose BUG_ON catches one already there. Blocked, it leaves. Any other state is an
 * inconsistent view, and Xen's runstate ASSERTs stop there.
 */
function requeuePrevious(asm: Assembler): void {
  asm.ld(r1, r8, Vcpu.offset.runState);
  asm.ifEqualImmediate(r1, RUN_STATE_BLOCKED, () => asm.jmp(ref('schedule.pick')));
  asm.ifEqualImmediate(r1, RUN_STATE_RUNNING, () => storeImmediate(asm, r8, Vcpu.offset.runState, RUN_STATE_RUNNABLE, r1));
  asm.ld(r1, r8, Vcpu.offset.runState);
  asm.addi(r1, r1, -RUN_STATE_RUNNABLE);
  asm.bugOn(r1, BUG_RUN_STATE);
  asm.mov(r0, r8);
  asm.call(ref('runqueue_append'));
}

/**
 * runqueue_append(r0 = vCPU, r7 = CPU area of the runqueue); runqueue_pop(r7) -> r0 (0 if empty);
 * vcpu_on_runqueue(r0 = vCPU, r7) -> r1 (1 or 0). Doubly linked through the vCPUs, 0-terminated;
 * the caller holds that CPU's schedule lock. As Xen's __runq_insert and __runq_remove, they
 * BUG_ON a vCPU already queued and on links that do not hold together.
 */
function emitRunqueue(asm: Assembler): void {
  routine(asm, 'vcpu_on_runqueue', [r2], (exit) => {
    asm.movi(r1, 1);
    asm.ld(r2, r0, Vcpu.offset.runqueuePrevious);
    asm.cmpi(r2, 0);
    asm.bne(ref(exit));
    asm.ld(r2, r7, PerCpu.offset.runqueueHead);
    asm.cmp(r2, r0);
    asm.beq(ref(exit));
    asm.movi(r1, 0);
  });

  routine(asm, 'runqueue_append', [r1, r2], () => {
    // BUG_ON(__vcpu_on_runq(svc)): a vCPU is queued once
    asm.call(ref('vcpu_on_runqueue'));
    asm.bugOn(r1, BUG_RUNQUEUE_INSERT_QUEUED);
    asm.ld(r1, r0, Vcpu.offset.runqueueNext);
    asm.bugOn(r1, BUG_RUNQUEUE_INSERT_QUEUED);
    asm.ld(r1, r7, PerCpu.offset.runqueueTail);
    asm.st(r0, Vcpu.offset.runqueuePrevious, r1);
    asm.ifZero(
      r1,
      () => {
        // an empty queue has neither head nor tail
        asm.ld(r2, r7, PerCpu.offset.runqueueHead);
        asm.bugOn(r2, BUG_RUNQUEUE_LINKS);
        asm.st(r7, PerCpu.offset.runqueueHead, r0);
      },
      () => {
        asm.ld(r2, r1, Vcpu.offset.runqueueNext);
        asm.bugOn(r2, BUG_RUNQUEUE_LINKS);
        asm.st(r1, Vcpu.offset.runqueueNext, r0);
      },
    );
    asm.st(r7, PerCpu.offset.runqueueTail, r0);
  });

  routine(asm, 'runqueue_pop', [r1, r2], (exit) => {
    asm.ld(r0, r7, PerCpu.offset.runqueueHead);
    asm.ifZero(r0, () => {
      asm.ld(r1, r7, PerCpu.offset.runqueueTail);
      asm.bugOn(r1, BUG_RUNQUEUE_LINKS);
      asm.jmp(ref(exit));
    });
    // BUG_ON(!__vcpu_on_runq(svc)): the head has nothing before it
    asm.ld(r1, r0, Vcpu.offset.runqueuePrevious);
    asm.bugOn(r1, BUG_RUNQUEUE_LINKS);
    // ASSERT(next->runstate != running), BUG_ON(!vcpu_runnable(next)): only runnable vCPUs are queued
    asm.ld(r1, r0, Vcpu.offset.runState);
    asm.addi(r1, r1, -RUN_STATE_RUNNABLE);
    asm.bugOn(r1, BUG_RUNQUEUE_CORRUPT);
    asm.ld(r1, r0, Vcpu.offset.runqueueNext);
    asm.st(r7, PerCpu.offset.runqueueHead, r1);
    asm.ifZero(
      r1,
      () => {
        // the last entry is the tail
        asm.ld(r2, r7, PerCpu.offset.runqueueTail);
        asm.sub(r2, r2, r0);
        asm.bugOn(r2, BUG_RUNQUEUE_LINKS);
        asm.st(r7, PerCpu.offset.runqueueTail, r1);
      },
      () => {
        // the next entry points back at the head
        asm.ld(r2, r1, Vcpu.offset.runqueuePrevious);
        asm.sub(r2, r2, r0);
        asm.bugOn(r2, BUG_RUNQUEUE_LINKS);
        asm.movi(r2, 0);
        asm.st(r1, Vcpu.offset.runqueuePrevious, r2);
      },
    );
    asm.movi(r2, 0);
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
