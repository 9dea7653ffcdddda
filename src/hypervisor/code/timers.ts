/**
 * Per-CPU timer lists (sorted by expiry, doubly linked, under the CPU's static timer lock),
 * the local-timer reprogramming, and the timer handlers: recurring hypervisor timers (scheduler
 * tick, software watchdog, time sync) and the guests' one-shot timers.
 *
 * As in Xen, the local timer's interrupt only raises the timer softirq; the expired timers run
 * in `timer_softirq`, at the next softirq point (return to guest, the idle loop). So a CPU that
 * loops in the hypervisor, even with interrupts enabled, runs no timers: its watchdog counter
 * stops and the NMI watchdog declares it hung.
 *
 * Recurring handlers set `in_handler` on entry and clear it on exit: a handler abandoned between
 * the two leaves the flag set, which is how recovery finds a timer that will never be re-armed.
 */
import { ref, r0, r1, r2, r3, r4, r6, r7, r8, r10, r14, type Assembler } from '../../machine/assembler.js';
import { PORT_TIMER } from '../abi.js';
import {
  BUG_TIMER_LIST_CORRUPT,
  IDLE_TIMER_US,
  PerCpu,
  SOFTIRQ_SCHEDULE,
  SOFTIRQ_TIMER,
  TIME_LOCK,
  Timer,
  Vcpu,
  WALLCLOCK,
} from '../layout.js';
import { addToField, cpuAreaOf, irqEnter, irqExit, routine, storeImmediate, thisCpuArea, timerLockOf } from './helpers.js';

export function emitTimers(asm: Assembler): void {
  emitTimerListInsert(asm);
  emitTimerListRemove(asm);
  emitSetTimer(asm);
  emitKillTimer(asm);
  emitTimerReprogram(asm);
  emitTimerInterrupt(asm);
  emitTimerSoftirq(asm);
  emitRecurringHandlers(asm);
  emitVcpuTimerHandler(asm);
}

/** timer_list_insert(r0 = timer, r7 = CPU area): keep the list sorted by expiry. */
function emitTimerListInsert(asm: Assembler): void {
  routine(asm, 'timer_list_insert', [r1, r2, r3, r4], () => {
    asm.ld(r1, r0, Timer.offset.expiresUs);
    asm.movi(r2, 0);
    asm.ld(r3, r7, PerCpu.offset.timerHead);
    asm.loop((exit) => {
      asm.cmpi(r3, 0);
      asm.beq(exit);
      asm.ld(r4, r3, Timer.offset.expiresUs);
      asm.cmp(r4, r1);
      asm.bgt(exit);
      asm.mov(r2, r3);
      asm.ld(r3, r3, Timer.offset.next);
    });
    asm.st(r0, Timer.offset.previous, r2);
    asm.st(r0, Timer.offset.next, r3);
    asm.ifZero(
      r2,
      () => asm.st(r7, PerCpu.offset.timerHead, r0),
      () => asm.st(r2, Timer.offset.next, r0),
    );
    asm.ifNotZero(r3, () => asm.st(r3, Timer.offset.previous, r0));
    storeImmediate(asm, r0, Timer.offset.active, 1, r4);
  });
}

/** timer_list_remove(r0 = timer, r7 = CPU area) */
function emitTimerListRemove(asm: Assembler): void {
  routine(asm, 'timer_list_remove', [r1, r2, r3], () => {
    // BUG_ON(!timer->active): only a timer on a list can be taken off it
    asm.ld(r1, r0, Timer.offset.active);
    asm.addi(r1, r1, -1);
    asm.bugOn(r1, BUG_TIMER_LIST_CORRUPT);
    asm.ld(r1, r0, Timer.offset.previous);
    asm.ld(r2, r0, Timer.offset.next);
    asm.ifZero(
      r1,
      () => asm.st(r7, PerCpu.offset.timerHead, r2),
      () => asm.st(r1, Timer.offset.next, r2),
    );
    asm.ifNotZero(r2, () => asm.st(r2, Timer.offset.previous, r1));
    asm.movi(r3, 0);
    asm.st(r0, Timer.offset.next, r3);
    asm.st(r0, Timer.offset.previous, r3);
    asm.st(r0, Timer.offset.active, r3);
  });
}

/**
 * set_timer(r0 = timer, r1 = expiry in µs): (re)arm a timer on its CPU's list; if it becomes
 * the earliest on this CPU, reprogram the local timer. Interrupts must be disabled.
 */
function emitSetTimer(asm: Assembler): void {
  routine(asm, 'set_timer', [r2, r3, r6, r7, r10], () => {
    asm.ld(r6, r0, Timer.offset.cpu);
    cpuAreaOf(asm, r7, r6);
    timerLockOf(asm, r10, r6);
    asm.withLock(r10, () => {
      asm.ld(r2, r0, Timer.offset.active);
      asm.ifNotZero(r2, () => asm.call(ref('timer_list_remove')));
      asm.st(r0, Timer.offset.expiresUs, r1);
      asm.call(ref('timer_list_insert'));
      asm.ld(r2, r7, PerCpu.offset.timerHead);
      asm.cpuid(r3);
      asm.ifEqual(r2, r0, () => {
        asm.ifEqual(r3, r6, () => asm.call(ref('timer_reprogram')));
      });
    });
  });
}

/** kill_timer(r0 = timer): take it off its CPU's list if it is on one. Interrupts disabled. */
function emitKillTimer(asm: Assembler): void {
  routine(asm, 'kill_timer', [r2, r6, r7, r10], () => {
    asm.ld(r6, r0, Timer.offset.cpu);
    cpuAreaOf(asm, r7, r6);
    timerLockOf(asm, r10, r6);
    asm.withLock(r10, () => {
      asm.ld(r2, r0, Timer.offset.active);
      asm.ifNotZero(r2, () => asm.call(ref('timer_list_remove')));
    });
  });
}

/** timer_reprogram(r7 = this CPU's area): local timer to the earliest expiry, or a default. */
function emitTimerReprogram(asm: Assembler): void {
  routine(asm, 'timer_reprogram', [r1, r2, r3], () => {
    asm.ld(r1, r7, PerCpu.offset.timerHead);
    asm.ifZero(
      r1,
      () => asm.movi(r2, IDLE_TIMER_US),
      () => {
        asm.ld(r2, r1, Timer.offset.expiresUs);
        asm.rdtime(r3);
        asm.sub(r2, r2, r3);
        asm.cmpi(r2, 0);
        asm.bge(ref('timer_reprogram.program'));
        asm.movi(r2, 0);
      },
    );
    asm.label('timer_reprogram.program');
    asm.settimer(r2);
  });
}

/** The local timer fired: raise this CPU's timer softirq (no IPI: it is this CPU) and return. */
function emitTimerInterrupt(asm: Assembler): void {
  asm.label('timer_interrupt');
  asm.push(r1);
  asm.push(r2);
  asm.push(r7);
  asm.push(r14);
  thisCpuArea(asm, r7);
  irqEnter(asm, r7, r1);
  asm.cpuid(r1);
  asm.movi(r2, SOFTIRQ_TIMER);
  asm.call(ref('raise_softirq'));
  irqExit(asm, r7, r1);
  asm.eoi();
  asm.pop(r14);
  asm.pop(r7);
  asm.pop(r2);
  asm.pop(r1);
  asm.iret();
}

/**
 * timer_softirq: run every expired timer, dropping the timer lock around each handler, then
 * reprogram the local timer. Interrupts are off while it walks the list, as under Xen's
 * spin_lock_irq; the handlers take locks that interrupt handlers take too, so they stay off.
 */
function emitTimerSoftirq(asm: Assembler): void {
  routine(asm, 'timer_softirq', [r0, r1, r2, r6, r7, r8, r10], () => {
    asm.cli();
    thisCpuArea(asm, r7);
    asm.cpuid(r6);
    timerLockOf(asm, r10, r6);
    asm.spinLock(r10);
    asm.loop((exit) => {
      asm.ld(r8, r7, PerCpu.offset.timerHead);
      asm.cmpi(r8, 0);
      asm.beq(exit);
      asm.rdtime(r1);
      asm.ld(r2, r8, Timer.offset.expiresUs);
      asm.cmp(r2, r1);
      asm.bgt(exit);
      asm.mov(r0, r8);
      asm.call(ref('timer_list_remove'));
      asm.spinUnlock(r10);
      asm.ld(r1, r8, Timer.offset.handler);
      asm.callr(r1);
      asm.spinLock(r10);
    });
    asm.call(ref('timer_reprogram'));
    asm.spinUnlock(r10);
    asm.sti();
  });
}

/**
 * A recurring handler: in_handler = 1; work; expiry += period; set_timer; in_handler = 0.
 * Called from the timer softirq with r0 = timer and interrupts disabled.
 */
function recurring(asm: Assembler, name: string, work: () => void): void {
  routine(asm, name, [r0, r1, r2, r7], () => {
    storeImmediate(asm, r0, Timer.offset.inHandler, 1, r1);
    work();
    asm.ld(r1, r0, Timer.offset.expiresUs);
    asm.ld(r2, r0, Timer.offset.periodUs);
    asm.add(r1, r1, r2);
    asm.call(ref('set_timer'));
    storeImmediate(asm, r0, Timer.offset.inHandler, 0, r1);
  });
}

function emitRecurringHandlers(asm: Assembler): void {
  recurring(asm, 'scheduler_tick_fn', () => {
    thisCpuArea(asm, r7);
    asm.ld(r1, r7, PerCpu.offset.current);
    addToField(asm, r1, Vcpu.offset.runtimeUs, 10, r2);
    asm.cpuid(r1);
    asm.movi(r2, SOFTIRQ_SCHEDULE);
    asm.call(ref('raise_softirq'));
  });
  recurring(asm, 'watchdog_fn', () => {
    thisCpuArea(asm, r7);
    addToField(asm, r7, PerCpu.offset.watchdogCount, 1, r1);
  });
  recurring(asm, 'time_sync_fn', () => {
    asm.movi(r7, TIME_LOCK);
    asm.withLock(r7, () => {
      asm.movi(r1, WALLCLOCK);
      asm.rdtime(r2);
      asm.st(r1, 0, r2);
    });
  });
}

/** A guest's one-shot timer fired: send its domain the timer event. */
function emitVcpuTimerHandler(asm: Assembler): void {
  routine(asm, 'vcpu_timer_fn', [r0, r1], () => {
    asm.ld(r0, r0, Timer.offset.data);
    asm.ld(r0, r0, Vcpu.offset.domain);
    asm.movi(r1, PORT_TIMER);
    asm.call(ref('evtchn_send'));
  });
}
