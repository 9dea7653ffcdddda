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
import { aliases, ref, reg, type Assembler } from '../../machine/assembler.js';
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
import { addToField, cpuAreaOf, irqEnter, irqExit, routine, routineScratch, smpProcessorId, storeImmediate, thisCpuArea, timerLockOf } from './helpers.js';

/** The timer routines' arguments: the timer (r0), its expiry (r1), the CPU area of its list (r7). */
const { timer, expiry, cpuArea } = aliases({ timer: reg.r0, expiry: reg.r1, cpuArea: reg.r7 });
/** raise_softirq(r1 = CPU, r2 = bits) */
const raise = aliases({ cpu: reg.r1, bits: reg.r2 });

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
  const { expires, previous, entry, entryExpires } = aliases({ expires: reg.r1, previous: reg.r2, entry: reg.r3, entryExpires: reg.r4 });
  routine(asm, 'timer_list_insert', [expires, previous, entry, entryExpires], () => {
    asm.ld(expires, timer, Timer.offset.expiresUs);
    asm.movi(previous, 0);
    asm.ld(entry, cpuArea, PerCpu.offset.timerHead);
    // the first entry that expires later than this timer, and the one before it
    asm.loop((exit) => {
      asm.cmpi(entry, 0);
      asm.beq(exit);
      asm.ld(entryExpires, entry, Timer.offset.expiresUs);
      asm.cmp(entryExpires, expires);
      asm.bgt(exit);
      asm.mov(previous, entry);
      asm.ld(entry, entry, Timer.offset.next);
    });
    asm.st(timer, Timer.offset.previous, previous);
    asm.st(timer, Timer.offset.next, entry);
    asm.ifZero(
      previous,
      () => asm.st(cpuArea, PerCpu.offset.timerHead, timer),
      () => asm.st(previous, Timer.offset.next, timer),
    );
    asm.ifNotZero(entry, () => asm.st(entry, Timer.offset.previous, timer));
    storeImmediate(asm, timer, Timer.offset.active, 1, entryExpires);
  });
}

/** timer_list_remove(r0 = timer, r7 = CPU area) */
function emitTimerListRemove(asm: Assembler): void {
  const { previous, next, none } = aliases({ previous: reg.r1, next: reg.r2, none: reg.r3 });
  routine(asm, 'timer_list_remove', [previous, next, none], () => {
    // BUG_ON(!timer->active): only a timer on a list can be taken off it
    const active = previous;
    asm.ld(active, timer, Timer.offset.active);
    asm.addi(active, active, -1);
    asm.bugOn(active, BUG_TIMER_LIST_CORRUPT);
    asm.ld(previous, timer, Timer.offset.previous);
    asm.ld(next, timer, Timer.offset.next);
    asm.ifZero(
      previous,
      () => asm.st(cpuArea, PerCpu.offset.timerHead, next),
      () => asm.st(previous, Timer.offset.next, next),
    );
    asm.ifNotZero(next, () => asm.st(next, Timer.offset.previous, previous));
    asm.movi(none, 0);
    asm.st(timer, Timer.offset.next, none);
    asm.st(timer, Timer.offset.previous, none);
    asm.st(timer, Timer.offset.active, none);
  });
}

/** The registers set_timer and kill_timer find the timer's list with. */
const list = aliases({ value: reg.r2, self: reg.r3, cpu: reg.r6, cpuArea, lock: reg.r10 });

/**
 * set_timer(r0 = timer, r1 = expiry in µs): (re)arm a timer on its CPU's list; if it becomes
 * the earliest on this CPU, reprogram the local timer. Interrupts must be disabled.
 */
function emitSetTimer(asm: Assembler): void {
  const { value, self, cpu, lock } = list;
  routine(asm, 'set_timer', [value, self, cpu, cpuArea, lock], () => {
    asm.ld(cpu, timer, Timer.offset.cpu);
    cpuAreaOf(asm, cpuArea, cpu);
    timerLockOf(asm, lock, cpu);
    asm.withLock(lock, () => {
      const active = value;
      asm.ld(active, timer, Timer.offset.active);
      asm.ifNotZero(active, () => asm.call(ref('timer_list_remove')));
      asm.st(timer, Timer.offset.expiresUs, expiry);
      asm.call(ref('timer_list_insert'));
      // the earliest now, on this CPU: the local timer must fire for it
      const head = value;
      asm.ld(head, cpuArea, PerCpu.offset.timerHead);
      smpProcessorId(asm, self);
      asm.ifEqual(head, timer, () => {
        asm.ifEqual(self, cpu, () => asm.call(ref('timer_reprogram')));
      });
    });
  });
}

/** kill_timer(r0 = timer): take it off its CPU's list if it is on one. Interrupts disabled. */
function emitKillTimer(asm: Assembler): void {
  const { value: active, cpu, lock } = list;
  routine(asm, 'kill_timer', [active, cpu, cpuArea, lock], () => {
    asm.ld(cpu, timer, Timer.offset.cpu);
    cpuAreaOf(asm, cpuArea, cpu);
    timerLockOf(asm, lock, cpu);
    asm.withLock(lock, () => {
      asm.ld(active, timer, Timer.offset.active);
      asm.ifNotZero(active, () => asm.call(ref('timer_list_remove')));
    });
  });
}

/** timer_reprogram(r7 = this CPU's area): local timer to the earliest expiry, or a default. */
function emitTimerReprogram(asm: Assembler): void {
  const { head, delayUs, now } = aliases({ head: reg.r1, delayUs: reg.r2, now: reg.r3 });
  routine(asm, 'timer_reprogram', [head, delayUs, now], () => {
    const program = asm.local('program');
    asm.ld(head, cpuArea, PerCpu.offset.timerHead);
    asm.ifZero(
      head,
      () => asm.movi(delayUs, IDLE_TIMER_US),
      () => {
        asm.ld(delayUs, head, Timer.offset.expiresUs);
        asm.rdtime(now);
        asm.sub(delayUs, delayUs, now);
        // already expired: fire at once
        asm.cmpi(delayUs, 0);
        asm.bge(program);
        asm.movi(delayUs, 0);
      },
    );
    asm.label(program);
    asm.settimer(delayUs);
  });
}

/**
 * The local timer fired: end the interrupt first, as Xen's apic_timer_interrupt does
 * (ack_APIC_irq() before anything else, inside do_IRQ's irq_enter), then raise this CPU's timer
 * softirq (no IPI: it is this CPU) and return.
 */
function emitTimerInterrupt(asm: Assembler): void {
  // an interrupt handler gives back every register it uses, r14 (thisCpuArea's scratch) too
  const saved = [raise.cpu, raise.bits, cpuArea, routineScratch];
  asm.func('timer_interrupt', () => {
    for (const register of saved) asm.push(register);
    thisCpuArea(asm, cpuArea);
    irqEnter(asm, cpuArea, raise.cpu);
    asm.eoi();
    smpProcessorId(asm, raise.cpu);
    asm.movi(raise.bits, SOFTIRQ_TIMER);
    asm.call(ref('raise_softirq'));
    irqExit(asm, cpuArea, raise.cpu);
    for (const register of [...saved].reverse()) asm.pop(register);
    asm.iret();
  });
}

/**
 * timer_softirq: run every expired timer, dropping the timer lock around each handler, then
 * reprogram the local timer. Interrupts are off while it walks the list, as under Xen's
 * spin_lock_irq; the handlers take locks that interrupt handlers take too, so they stay off.
 */
function emitTimerSoftirq(asm: Assembler): void {
  const { now, expires, cpu, head, lock } = aliases({ now: reg.r1, expires: reg.r2, cpu: reg.r6, head: reg.r8, lock: reg.r10 });
  routine(asm, 'timer_softirq', [timer, now, expires, cpu, cpuArea, head, lock], () => {
    asm.cli();
    thisCpuArea(asm, cpuArea);
    smpProcessorId(asm, cpu);
    timerLockOf(asm, lock, cpu);
    asm.spinLock(lock);
    asm.loop((exit) => {
      asm.ld(head, cpuArea, PerCpu.offset.timerHead);
      asm.cmpi(head, 0);
      asm.beq(exit);
      asm.rdtime(now);
      asm.ld(expires, head, Timer.offset.expiresUs);
      asm.cmp(expires, now);
      asm.bgt(exit);
      asm.mov(timer, head);
      asm.call(ref('timer_list_remove'));
      asm.spinUnlock(lock);
      const handler = now;
      asm.ld(handler, head, Timer.offset.handler);
      asm.callr(handler);
      asm.spinLock(lock);
    });
    asm.call(ref('timer_reprogram'));
    asm.spinUnlock(lock);
    asm.sti();
  });
}

/**
 * A recurring handler: in_handler = 1; work; expiry += period; set_timer; in_handler = 0.
 * Called from the timer softirq with r0 = timer and interrupts disabled.
 */
function recurring(asm: Assembler, name: string, work: () => void): void {
  const period = reg.r2;
  routine(asm, name, [timer, expiry, period, cpuArea], () => {
    storeImmediate(asm, timer, Timer.offset.inHandler, 1, expiry);
    work();
    asm.ld(expiry, timer, Timer.offset.expiresUs);
    asm.ld(period, timer, Timer.offset.periodUs);
    asm.add(expiry, expiry, period);
    asm.call(ref('set_timer'));
    storeImmediate(asm, timer, Timer.offset.inHandler, 0, expiry);
  });
}

function emitRecurringHandlers(asm: Assembler): void {
  recurring(asm, 'scheduler_tick_fn', () => {
    thisCpuArea(asm, cpuArea);
    const current = reg.r1;
    asm.ld(current, cpuArea, PerCpu.offset.current);
    addToField(asm, current, Vcpu.offset.runtimeUs, 10, reg.r2);
    smpProcessorId(asm, raise.cpu);
    asm.movi(raise.bits, SOFTIRQ_SCHEDULE);
    asm.call(ref('raise_softirq'));
  });
  recurring(asm, 'watchdog_fn', () => {
    thisCpuArea(asm, cpuArea);
    addToField(asm, cpuArea, PerCpu.offset.watchdogCount, 1, reg.r1);
  });
  recurring(asm, 'time_sync_fn', () => {
    const { lock, wallclock, now } = aliases({ lock: reg.r7, wallclock: reg.r1, now: reg.r2 });
    asm.movi(lock, TIME_LOCK);
    asm.withLock(lock, () => {
      asm.movi(wallclock, WALLCLOCK);
      asm.rdtime(now);
      asm.st(wallclock, 0, now);
    });
  });
}

/** A guest's one-shot timer fired: send its domain the timer event. */
function emitVcpuTimerHandler(asm: Assembler): void {
  const { domain, port } = aliases({ domain: reg.r0, port: reg.r1 });
  routine(asm, 'vcpu_timer_fn', [timer, port], () => {
    const vcpu = domain;
    asm.ld(vcpu, timer, Timer.offset.data);
    asm.ld(domain, vcpu, Vcpu.offset.domain);
    asm.movi(port, PORT_TIMER);
    asm.call(ref('evtchn_send'));
  });
}
