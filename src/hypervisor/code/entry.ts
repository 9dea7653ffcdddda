/**
 * Entry and exit paths: VM exit, hypercall dispatch, return to guest, the idle loop, softirqs,
 * the scheduler and its runqueues. As in Xen, a hypervisor thread never outlives one VM exit:
 * `schedule` resets the stack and jumps to `return_to_guest`.
 */
import { aliases, ref, reg, type Assembler, type LabelReference } from '../../machine/assembler.js';
import { EXIT_HYPERCALL, ERROR_NO_SYSTEM_CALL, HYPERCALL_COUNT } from '../abi.js';
import {
  BUG_CURRENT_NOT_RUNNING,
  BUG_IRQ_COUNT_AT_SCHEDULE,
  BUG_NEXT_ALREADY_RUNNING,
  BUG_NEXT_OTHER_CPU,
  BUG_RUN_STATE,
  BUG_RUNQUEUE_CORRUPT,
  BUG_RUNQUEUE_EMPTY,
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
import { addToField, atomicOr, cpuAreaOf, exchangeWithZero, routine, scheduleLockOf, storeImmediate, smpProcessorId, tableEntry, thisCpuArea } from './helpers.js';

/**
 * What the entry paths keep in their callee-saved registers, and every routine they call relies
 * on: this CPU's per-CPU area and the vCPU it is running (prev, in the scheduler).
 */
const { cpuArea, current } = aliases({ cpuArea: reg.r7, current: reg.r8 });
/** a register used for one value at a time: a field loaded, tested and forgotten */
const temporary = reg.r1;

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
  asm.func('start_cpu', () => {
    thisCpuArea(asm, cpuArea);
    const stackTop = temporary;
    asm.ld(stackTop, cpuArea, PerCpu.offset.stackTop);
    asm.wrsp(stackTop);
    asm.call(ref('timer_reprogram'));
    asm.jmp(ref('return_to_guest'));
  });
}

/**
 * The hardware lands here on every VM exit, on a fresh host stack with interrupts disabled.
 * r0 = exit reason, r1 = hypercall number, r2..r4 = arguments, r5 = the guest's resume token.
 */
function emitVmExit(asm: Assembler): void {
  const exit = aliases({
    reason: reg.r0, hypercall: reg.r1, argument0: reg.r2, argument1: reg.r3, argument2: reg.r4, resumeToken: reg.r5,
  });
  const result = reg.r0;
  const handler = reg.r9;
  asm.func('vmexit_entry', () => {
    thisCpuArea(asm, cpuArea);
    asm.ld(current, cpuArea, PerCpu.offset.current);
    asm.st(current, Vcpu.offset.resumeToken, exit.resumeToken);
    asm.cmpi(exit.reason, EXIT_HYPERCALL);
    asm.bne(ref('vmexit_interrupt'));

    // Record the hypercall in the vCPU, so that an abandoned one can be retried.
    asm.st(current, Vcpu.offset.hypercallNumber, exit.hypercall);
    asm.st(current, Vcpu.offset.hypercallArguments, exit.argument0);
    asm.st(current, Vcpu.offset.hypercallArguments + 1, exit.argument1);
    asm.st(current, Vcpu.offset.hypercallArguments + 2, exit.argument2);
    // the guest frame's return register holds the hypercall number until the call completes
    asm.st(current, Vcpu.offset.returnValue, exit.hypercall);
    storeImmediate(asm, current, Vcpu.offset.hypercallInProgress, 1, handler);
    asm.movi(result, ERROR_NO_SYSTEM_CALL);
    asm.cmpi(exit.hypercall, 0);
    asm.blt(ref('vmexit_hypercall_done'));
    asm.cmpi(exit.hypercall, HYPERCALL_COUNT);
    asm.bge(ref('vmexit_hypercall_done'));
    // handler = hypercall_table[hypercall]
    tableEntry(asm, handler, HYPERCALL_TABLE, exit.hypercall);
    asm.ld(handler, handler, 0);
    asm.sti();
    asm.callr(handler);
    asm.cli();
    asm.label('vmexit_hypercall_done');
    thisCpuArea(asm, cpuArea);
    asm.ld(current, cpuArea, PerCpu.offset.current);
    asm.st(current, Vcpu.offset.returnValue, result);
    storeImmediate(asm, current, Vcpu.offset.hypercallInProgress, 0, handler);
    asm.jmp(ref('return_to_guest'));

    // An interrupt forced the exit: open the window so it is delivered, then go back.
    asm.label('vmexit_interrupt');
    asm.sti();
    asm.nop();
    asm.cli();
    asm.jmp(ref('return_to_guest'));
  });
}

/**
 * Run pending softirqs, then enter `current` (or idle). Delivers the domain's pending events
 * in r2 and the saved return value and resume token in r0 and r5. The events are taken without
 * a lock, as Xen's test_all_events reads the guest's pending bits: their senders set them
 * atomically.
 */
function emitReturnToGuest(asm: Assembler): void {
  const { domain, pendingAddress, expected, zero } = aliases({ domain: reg.r9, pendingAddress: reg.r10, expected: reg.r11, zero: reg.r12 });
  const entry = aliases({ returnValue: reg.r0, events: reg.r2, restartHypercall: reg.r3, resumeToken: reg.r5 });
  asm.func('return_to_guest', () => {
    asm.cli();
    thisCpuArea(asm, cpuArea);
    asm.ld(temporary, cpuArea, PerCpu.offset.softirqPending);
    asm.ifNotZero(temporary, () => {
      asm.sti();
      asm.call(ref('do_softirq'));
      asm.jmp(ref('return_to_guest'));
    });
    asm.ld(current, cpuArea, PerCpu.offset.current);
    const idle = temporary;
    asm.ld(idle, cpuArea, PerCpu.offset.idleVcpu);
    asm.cmp(current, idle);
    asm.beq(ref('idle_loop'));

    asm.ld(domain, current, Vcpu.offset.domain);
    // events = xchg(&domain->pending_events, 0)
    asm.addi(pendingAddress, domain, Domain.offset.pendingEvents);
    exchangeWithZero(asm, pendingAddress, { old: entry.events, expected, zero }, 'take_events');
    asm.ld(entry.returnValue, current, Vcpu.offset.returnValue);
    asm.ld(entry.restartHypercall, current, Vcpu.offset.restartHypercall);
    storeImmediate(asm, current, Vcpu.offset.restartHypercall, 0, temporary);
    asm.ld(entry.resumeToken, current, Vcpu.offset.resumeToken);
    const vcpuId = temporary;
    asm.ld(vcpuId, current, Vcpu.offset.id);
    asm.vmenter(vcpuId);
  });
}

/** The idle vCPU: sleep until an interrupt, run softirqs, repeat. */
function emitIdleLoop(asm: Assembler): void {
  asm.func('idle_loop', () => {
    thisCpuArea(asm, cpuArea);
    const stackTop = temporary;
    asm.ld(stackTop, cpuArea, PerCpu.offset.stackTop);
    asm.wrsp(stackTop);
    asm.loop(() => idleOnce(asm));
  });
}

/** run the softirqs pending, or sleep until an interrupt */
function idleOnce(asm: Assembler): void {
  const pending = temporary;
  asm.cli();
  asm.ld(pending, cpuArea, PerCpu.offset.softirqPending);
  asm.ifNotZero(
    pending,
    () => {
      asm.sti();
      asm.call(ref('do_softirq'));
    },
    () => {
      asm.sti();
      asm.hlt();
    },
  );
}

/**
 * Take and clear this CPU's pending softirqs atomically, then run them lowest bit first as Xen
 * does: expired timers, then the scheduler (which never returns). Called with interrupts enabled.
 */
function emitDoSoftirq(asm: Assembler): void {
  const { pending, bit, pendingAddress, expected } = aliases({ pending: reg.r1, bit: reg.r2, pendingAddress: reg.r3, expected: reg.r4 });
  routine(asm, 'do_softirq', [pending, bit, pendingAddress, expected, cpuArea], () => {
    thisCpuArea(asm, cpuArea);
    asm.addi(pendingAddress, cpuArea, PerCpu.offset.softirqPending);
    // pending = xchg(&softirq_pending, 0)
    exchangeWithZero(asm, pendingAddress, { old: pending, expected, zero: bit });
    asm.andi(bit, pending, SOFTIRQ_TIMER);
    asm.ifNotZero(bit, () => asm.call(ref('timer_softirq')));
    asm.andi(bit, pending, SOFTIRQ_SCHEDULE);
    asm.ifNotZero(bit, () => asm.jmp(ref('schedule')));
  });
}

/** What the scheduler holds while it decides: prev is `current` (r8), in this CPU's area (r7). */
const schedule = aliases({ next: reg.r0, cpu: reg.r6, prev: current, idle: reg.r9, lock: reg.r10 });

/**
 * Pick the next vCPU for this CPU. As the credit scheduler's (sched_credit.c), the runqueue
 * holds every runnable vCPU of this CPU but the running one, the idle vCPU included, last: the
 * running vCPU, if still runnable (idle always is), goes back on it in priority order, and the
 * head runs next; an empty runqueue is a BUG. Keeps per-CPU `current`, `is_running` and
 * runqueue membership in step, then resets the stack and returns to the new context. As Xen's
 * schedule() and csched_schedule(), it checks the views it touches instead of trusting them: not
 * in interrupt context, the previous vCPU running, the next one neither running elsewhere nor
 * another CPU's.
 */
function emitSchedule(asm: Assembler): void {
  asm.func('schedule', () => {
    asm.cli();
    thisCpuArea(asm, cpuArea);
    // ASSERT(!in_irq())
    asm.ld(temporary, cpuArea, PerCpu.offset.irqCount);
    asm.bugOn(temporary, BUG_IRQ_COUNT_AT_SCHEDULE);
    smpProcessorId(asm, schedule.cpu);
    scheduleLockOf(asm, schedule.lock, schedule.cpu);
    asm.spinLock(schedule.lock);
    asm.ld(schedule.prev, cpuArea, PerCpu.offset.current);
    // BUG_ON(!prev->is_running): the CPU's current vCPU must know it is running
    asm.ld(temporary, schedule.prev, Vcpu.offset.isRunning);
    asm.addi(temporary, temporary, -1);
    asm.bugOn(temporary, BUG_CURRENT_NOT_RUNNING);
    asm.ld(schedule.idle, cpuArea, PerCpu.offset.idleVcpu);
    const pick = asm.local('pick');
    requeuePrevious(asm, pick);
    asm.label(pick);
    pickNext(asm);
    asm.st(cpuArea, PerCpu.offset.current, schedule.next);
    // spin_unlock_irq: as Xen's, the switch runs with interrupts enabled
    asm.spinUnlock(schedule.lock);
    asm.sti();
    asm.ifEqual(schedule.next, schedule.prev, () => undefined, () => asm.call(ref('context_switch')));
    const stackTop = temporary;
    asm.ld(stackTop, cpuArea, PerCpu.offset.stackTop);
    asm.wrsp(stackTop);
    asm.jmp(ref('return_to_guest'));
  });
}

/** next = the runqueue's head (an empty runqueue is a BUG); checked and marked running */
function pickNext(asm: Assembler): void {
  const { next, prev, cpu } = schedule;
  // BUG_ON(list_empty(runq)): the idle vCPU waits there whenever another runs
  asm.call(ref('runqueue_pop'));
  asm.ifZero(next, () => {
    asm.movi(temporary, 1);
    asm.bugOn(temporary, BUG_RUNQUEUE_EMPTY);
  });
  storeImmediate(asm, next, Vcpu.offset.runState, RUN_STATE_RUNNING, temporary);
  asm.ifEqual(next, prev, () => undefined, () => {
    // BUG_ON(next->is_running): a vCPU runs on one CPU at a time
    asm.ld(temporary, next, Vcpu.offset.isRunning);
    asm.bugOn(temporary, BUG_NEXT_ALREADY_RUNNING);
    // BUG_ON(next->processor != cpu): this CPU's runqueue holds only its own vCPUs
    asm.ld(temporary, next, Vcpu.offset.processor);
    asm.sub(temporary, temporary, cpu);
    asm.bugOn(temporary, BUG_NEXT_OTHER_CPU);
  });
  storeImmediate(asm, next, Vcpu.offset.isRunning, 1, temporary);
}

/**
 * context_switch(r8 = prev, r0 = next, r7 = this CPU's area), after the schedule lock is dropped,
 * as Xen's (xen/arch/x86/domain.c): entered with interrupts enabled, it accounts the time prev ran
 * (update_runstate_area), switches with interrupts disabled, enables them again, and only then
 * context_saved(prev) clears prev's is_running, now that prev's state is saved. Until then both
 * vCPUs are marked running: a thread abandoned in between (a fail-stop, or the recovery IPI
 * taken in either window with interrupts enabled) leaves the scheduler's views disagreeing.
 */
function emitContextSwitch(asm: Assembler): void {
  const { prev, next } = schedule;
  const { now, ran, runningUs } = aliases({ now: reg.r1, ran: reg.r2, runningUs: reg.r3 });
  routine(asm, 'context_switch', [now, ran, runningUs], () => {
    asm.rdtime(now);
    asm.ld(ran, prev, Vcpu.offset.runstateEntryUs);
    asm.sub(ran, now, ran);
    asm.ld(runningUs, prev, Vcpu.offset.runningUs);
    asm.add(runningUs, runningUs, ran);
    asm.st(prev, Vcpu.offset.runningUs, runningUs);
    asm.cli();
    asm.st(next, Vcpu.offset.runstateEntryUs, now);
    addToField(asm, cpuArea, PerCpu.offset.contextSwitches, 1, temporary);
    asm.sti();
    // context_saved(prev)
    storeImmediate(asm, prev, Vcpu.offset.isRunning, 0, temporary);
  });
}

/**
 * The previous vCPU (r8, idle too): still running, it is preempted; woken while it was blocking
 * (vcpu_wake leaves the current vCPU off the runqueue), it is runnable; either way it goes on the
 * runqueue, whose BUG_ON catches one already there. Blocked, it leaves. Any other state is an
 * inconsistent view, and Xen's runstate ASSERTs stop there.
 */
function requeuePrevious(asm: Assembler, pick: LabelReference): void {
  const { prev } = schedule;
  const runState = temporary;
  asm.ld(runState, prev, Vcpu.offset.runState);
  asm.ifEqualImmediate(runState, RUN_STATE_BLOCKED, () => asm.jmp(pick));
  asm.ifEqualImmediate(runState, RUN_STATE_RUNNING, () => storeImmediate(asm, prev, Vcpu.offset.runState, RUN_STATE_RUNNABLE, temporary));
  asm.ld(runState, prev, Vcpu.offset.runState);
  asm.addi(runState, runState, -RUN_STATE_RUNNABLE);
  asm.bugOn(runState, BUG_RUN_STATE);
  const vcpu = reg.r0;
  asm.mov(vcpu, prev);
  asm.call(ref('runqueue_insert'));
}

/**
 * runqueue_insert(r0 = vCPU, r7 = CPU area of the runqueue), in priority order (the idle vCPU
 * last); runqueue_pop(r7) -> r0 (0 if empty); vcpu_on_runqueue(r0 = vCPU, r7) -> r1 (1 or 0).
 * Doubly linked through the vCPUs (the idle one included), 0-terminated;
 * the caller holds that CPU's schedule lock. As Xen's __runq_insert and __runq_remove, they
 * BUG_ON a vCPU already queued and on links that do not hold together.
 */
function emitRunqueue(asm: Assembler): void {
  const queue = cpuArea;
  const { vcpu, onQueue, link } = aliases({ vcpu: reg.r0, onQueue: reg.r1, link: reg.r2 });
  routine(asm, 'vcpu_on_runqueue', [link], (exit) => {
    asm.movi(onQueue, 1);
    asm.ld(link, vcpu, Vcpu.offset.runqueuePrevious);
    asm.cmpi(link, 0);
    asm.bne(exit);
    asm.ld(link, queue, PerCpu.offset.runqueueHead);
    asm.cmp(link, vcpu);
    asm.beq(exit);
    asm.movi(onQueue, 0);
  });
  emitRunqueueInsert(asm);
  emitRunqueuePop(asm);
}

/**
 * runqueue_insert(r0 = vCPU, r7): as Xen's __runq_insert, in priority order: the idle vCPU,
 * lowest, goes to the tail; any other goes before the first entry of lower priority (the idle
 * vCPU, if queued), after the others.
 */
function emitRunqueueInsert(asm: Assembler): void {
  const queue = cpuArea;
  const { vcpu, before, link, idle } = aliases({ vcpu: reg.r0, before: reg.r1, link: reg.r2, idle: reg.r3 });
  routine(asm, 'runqueue_insert', [before, link, idle], () => {
    // BUG_ON(__vcpu_on_runq(svc)): a vCPU is queued once
    const onQueue = reg.r1;
    asm.call(ref('vcpu_on_runqueue'));
    asm.bugOn(onQueue, BUG_RUNQUEUE_INSERT_QUEUED);
    asm.ld(temporary, vcpu, Vcpu.offset.runqueueNext);
    asm.bugOn(temporary, BUG_RUNQUEUE_INSERT_QUEUED);
    // before = the first entry of lower priority than vcpu: the idle vCPU, unless vcpu is it
    asm.ld(idle, queue, PerCpu.offset.idleVcpu);
    asm.ld(before, queue, PerCpu.offset.runqueueHead);
    asm.ifEqual(vcpu, idle, () => asm.movi(before, 0), () => undefined);
    asm.loop((exit) => {
      asm.cmpi(before, 0);
      asm.beq(exit);
      asm.cmp(before, idle);
      asm.beq(exit);
      asm.ld(before, before, Vcpu.offset.runqueueNext);
    });
    asm.st(vcpu, Vcpu.offset.runqueueNext, before);
    asm.ifZero(
      before,
      () => {
        // at the tail
        asm.ld(link, queue, PerCpu.offset.runqueueTail);
        asm.st(vcpu, Vcpu.offset.runqueuePrevious, link);
        asm.st(queue, PerCpu.offset.runqueueTail, vcpu);
      },
      () => {
        asm.ld(link, before, Vcpu.offset.runqueuePrevious);
        asm.st(vcpu, Vcpu.offset.runqueuePrevious, link);
        asm.st(before, Vcpu.offset.runqueuePrevious, vcpu);
      },
    );
    // link = the entry vcpu follows; an empty queue has neither head nor tail
    asm.ifZero(
      link,
      () => asm.st(queue, PerCpu.offset.runqueueHead, vcpu),
      () => {
        // it pointed at before: the links hold together
        const followed = idle;
        asm.ld(followed, link, Vcpu.offset.runqueueNext);
        asm.sub(followed, followed, before);
        asm.bugOn(followed, BUG_RUNQUEUE_LINKS);
        asm.st(link, Vcpu.offset.runqueueNext, vcpu);
      },
    );
  });
}

function emitRunqueuePop(asm: Assembler): void {
  const queue = cpuArea;
  const { head, next, link } = aliases({ head: reg.r0, next: reg.r1, link: reg.r2 });
  routine(asm, 'runqueue_pop', [next, link], (exit) => {
    asm.ld(head, queue, PerCpu.offset.runqueueHead);
    asm.ifZero(head, () => {
      asm.ld(temporary, queue, PerCpu.offset.runqueueTail);
      asm.bugOn(temporary, BUG_RUNQUEUE_LINKS);
      asm.jmp(exit);
    });
    // BUG_ON(!__vcpu_on_runq(svc)): the head has nothing before it
    asm.ld(temporary, head, Vcpu.offset.runqueuePrevious);
    asm.bugOn(temporary, BUG_RUNQUEUE_LINKS);
    // ASSERT(next->runstate != running), BUG_ON(!vcpu_runnable(next)): only runnable vCPUs are queued
    asm.ld(temporary, head, Vcpu.offset.runState);
    asm.addi(temporary, temporary, -RUN_STATE_RUNNABLE);
    asm.bugOn(temporary, BUG_RUNQUEUE_CORRUPT);
    asm.ld(next, head, Vcpu.offset.runqueueNext);
    asm.st(queue, PerCpu.offset.runqueueHead, next);
    asm.ifZero(
      next,
      () => {
        // the last entry is the tail
        asm.ld(link, queue, PerCpu.offset.runqueueTail);
        asm.sub(link, link, head);
        asm.bugOn(link, BUG_RUNQUEUE_LINKS);
        asm.st(queue, PerCpu.offset.runqueueTail, next);
      },
      () => {
        // the next entry points back at the head
        asm.ld(link, next, Vcpu.offset.runqueuePrevious);
        asm.sub(link, link, head);
        asm.bugOn(link, BUG_RUNQUEUE_LINKS);
        asm.movi(link, 0);
        asm.st(next, Vcpu.offset.runqueuePrevious, link);
      },
    );
    const none = link;
    asm.movi(none, 0);
    asm.st(head, Vcpu.offset.runqueueNext, none);
    asm.st(head, Vcpu.offset.runqueuePrevious, none);
  });
}

/**
 * raise_softirq(r1 = CPU, r2 = bits): set the bits atomically; kick that CPU with an event-check
 * IPI only when one of them was newly set and it is another CPU, as Xen's cpu_raise_softirq does.
 * A CPU raising its own softirq runs it at its next softirq point without being interrupted.
 */
function emitRaiseSoftirq(asm: Assembler): void {
  const { cpu, bits, pendingAddress, before, after, expected, vector } = aliases({
    cpu: reg.r1, bits: reg.r2, pendingAddress: reg.r3, before: reg.r4, after: reg.r5, expected: reg.r6, vector: reg.r11,
  });
  routine(asm, 'raise_softirq', [pendingAddress, before, after, expected, vector], (exit) => {
    cpuAreaOf(asm, pendingAddress, cpu);
    asm.addi(pendingAddress, pendingAddress, PerCpu.offset.softirqPending);
    atomicOr(asm, pendingAddress, bits, { old: before, updated: after, expected });
    // nothing newly set: the CPU has already been told
    asm.cmp(after, before);
    asm.beq(exit);
    const self = after;
    smpProcessorId(asm, self);
    asm.cmp(self, cpu);
    asm.beq(exit);
    asm.movi(vector, VECTOR_EVENT_CHECK);
    asm.ipi(cpu, vector);
  });
}
