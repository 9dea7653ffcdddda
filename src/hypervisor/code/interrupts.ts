/**
 * Event channels and vCPU wake-up, and the interrupt handlers: event-check IPI,
 * device interrupts routed to the PrivVM as events, spurious vectors, and the NMI watchdog.
 * The local timer's interrupt is in timers.ts.
 */
import { aliases, ref, reg, type Assembler } from '../../machine/assembler.js';
import {
  DOMAIN_TABLE,
  Domain,
  BUG_PENDING_EOI_OVERFLOW,
  IRQ_DOMAIN_TABLE,
  IRQ_EOI_CPU_TABLE,
  IRQ_EOI_READY_TABLE,
  IRQ_PORT_TABLE,
  PENDING_EOI_DEPTH,
  PANIC_WATCHDOG_HANG,
  PerCpu,
  RECOVERY_IN_PROGRESS,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNABLE,
  SOFTIRQ_SCHEDULE,
  Vcpu,
  WATCHDOG_STRIKES,
} from '../layout.js';
import { atomicOr, cpuAreaOf, irqEnter, tableEntry, irqExit, restoreAll, routine, saveAll, scheduleLockOf, smpProcessorId, storeImmediate, thisCpuArea } from './helpers.js';

/** Where the handlers keep this CPU's per-CPU area, as the routines they call expect it. */
const cpuArea = reg.r7;

export function emitInterrupts(asm: Assembler, deviceVectors: readonly number[]): void {
  emitEventSend(asm);
  emitVcpuWake(asm);
  emitEventCheckInterrupt(asm);
  emitDeviceInterrupts(asm, deviceVectors);
  emitPendingEoiPush(asm);
  emitFlushReadyEoi(asm);
  emitSpuriousInterrupt(asm);
  emitNmi(asm);
}

/**
 * evtchn_send(r0 = domain, r1 = port): under the domain's event lock, mark the port pending with
 * an atomic set_bit (the exit path takes the bits without the lock), then wake the domain's vCPU. IF=0.
 */
function emitEventSend(asm: Assembler): void {
  const { domain, port, pending, bit, lock, pendingAddress, updated, expected } = aliases({
    domain: reg.r0, port: reg.r1, pending: reg.r2, bit: reg.r3, lock: reg.r10, pendingAddress: reg.r11, updated: reg.r12, expected: reg.r13,
  });
  routine(asm, 'evtchn_send', [domain, pending, bit, lock, pendingAddress, updated, expected], () => {
    asm.addi(lock, domain, Domain.offset.eventLock);
    asm.withLock(lock, () => {
      // set_bit(port, &pending_events)
      asm.movi(bit, 1);
      asm.shl(bit, bit, port);
      asm.addi(pendingAddress, domain, Domain.offset.pendingEvents);
      atomicOr(asm, pendingAddress, bit, { old: pending, updated, expected });
    });
    const vcpu = domain;
    asm.ld(vcpu, domain, Domain.offset.vcpu);
    asm.call(ref('vcpu_wake'));
  });
}

/**
 * vcpu_wake(r0 = vCPU), IF=0, as Xen's vcpu_wake and csched_vcpu_wake: a blocked vCPU becomes
 * runnable; one that is its processor's current vCPU stays there (schedule requeues it), one
 * already queued stays queued, any other goes on the runqueue, and its processor is kicked once
 * the lock is dropped (Xen's batched softirq raising). Whatever state it was queued in, the
 * scheduler's checks judge it when it is picked.
 */
function emitVcpuWake(asm: Assembler): void {
  const { vcpu, value, bits, processor, lock } = aliases({ vcpu: reg.r0, value: reg.r1, bits: reg.r2, processor: reg.r6, lock: reg.r10 });
  routine(asm, 'vcpu_wake', [value, bits, processor, cpuArea, lock], (exit) => {
    const unlock = asm.local('unlock');
    asm.ld(processor, vcpu, Vcpu.offset.processor);
    cpuAreaOf(asm, cpuArea, processor);
    scheduleLockOf(asm, lock, processor);
    asm.spinLock(lock);
    const runState = value;
    asm.ld(runState, vcpu, Vcpu.offset.runState);
    asm.ifEqualImmediate(runState, RUN_STATE_BLOCKED, () => storeImmediate(asm, vcpu, Vcpu.offset.runState, RUN_STATE_RUNNABLE, value));
    // if (curr_on_cpu(v->processor) == v) return;
    const current = value;
    asm.ld(current, cpuArea, PerCpu.offset.current);
    asm.cmp(current, vcpu);
    asm.beq(unlock);
    // if (__vcpu_on_runq(svc)) return;
    const onQueue = value;
    asm.call(ref('vcpu_on_runqueue'));
    asm.ifNotZero(onQueue, () => asm.jmp(unlock));
    asm.call(ref('runqueue_insert'));
    asm.spinUnlock(lock);
    // raise_softirq(processor, SOFTIRQ_SCHEDULE)
    asm.mov(value, processor);
    asm.movi(bits, SOFTIRQ_SCHEDULE);
    asm.call(ref('raise_softirq'));
    asm.jmp(exit);
    asm.label(unlock);
    asm.spinUnlock(lock);
  });
}

/**
 * The event-check IPI only interrupts: softirqs run on the way back to the guest or idle. As Xen's
 * event_check_interrupt, it ends the interrupt first thing.
 */
function emitEventCheckInterrupt(asm: Assembler): void {
  // the scratch register is one this handler saves, so that the interrupted code keeps its r14
  const scratch = reg.r1;
  asm.func('event_check_interrupt', () => {
    asm.push(scratch);
    asm.push(cpuArea);
    thisCpuArea(asm, cpuArea, scratch);
    irqEnter(asm, cpuArea, scratch);
    asm.eoi();
    irqExit(asm, cpuArea, scratch);
    // another CPU's physdev_op(EOI) marked one of this CPU's in-flight device vectors ready
    const pending = scratch;
    asm.ld(pending, cpuArea, PerCpu.offset.pendingEoiCount);
    asm.ifNotZero(pending, () => asm.call(ref('flush_ready_eoi')));
    asm.pop(cpuArea);
    asm.pop(scratch);
    asm.iret();
  });
}

/**
 * Device interrupts become events for the domain the vector is routed to (the PrivVM). As Xen's
 * __do_IRQ_guest does for an interrupt it must not end before its guest has (ACKTYPE_EOI), the
 * vector stays in service at this CPU's interrupt controller, blocking it and every lower one,
 * until the guest's physdev_op(EOI); an unrouted vector is ended at once.
 */
function emitDeviceInterrupts(asm: Assembler, deviceVectors: readonly number[]): void {
  const { domain, port, vector } = aliases({ domain: reg.r0, port: reg.r1, vector: reg.r6 });
  for (const number of deviceVectors) {
    asm.func(`device_interrupt_${number}`, () => {
      saveAll(asm);
      asm.movi(vector, number);
      asm.jmp(ref('device_interrupt_common'));
    });
  }
  asm.func('device_interrupt_common', () => {
    thisCpuArea(asm, cpuArea);
    irqEnter(asm, cpuArea, port);
    // domain = domain_table[irq_domain_table[vector]]
    const domainId = port;
    tableEntry(asm, domainId, IRQ_DOMAIN_TABLE, vector);
    asm.ld(domainId, domainId, 0);
    tableEntry(asm, domain, DOMAIN_TABLE, domainId);
    asm.ld(domain, domain, 0);
    // port = irq_port_table[vector]
    tableEntry(asm, port, IRQ_PORT_TABLE, vector);
    asm.ld(port, port, 0);
    asm.ifNotZero(
      domain,
      () => {
        asm.call(ref('pending_eoi_push'));
        asm.call(ref('evtchn_send'));
      },
      () => asm.eoi(),
    );
    irqExit(asm, cpuArea, port);
    restoreAll(asm);
    asm.iret();
  });
}

/** pending_eoi_push(r6 = vector, r7 = this CPU's area), IF=0: remember a guest-bound vector left in service. */
function emitPendingEoiPush(asm: Assembler): void {
  const { vector, count, slot, value } = aliases({ vector: reg.r6, count: reg.r2, slot: reg.r3, value: reg.r4 });
  routine(asm, 'pending_eoi_push', [count, slot, value], () => {
    asm.ld(count, cpuArea, PerCpu.offset.pendingEoiCount);
    // ASSERT(sp < NR_DYNAMIC_VECTORS - 1): a count at or past the depth, or negative, has bits outside it
    const overflow = value;
    asm.andi(overflow, count, -PENDING_EOI_DEPTH);
    asm.bugOn(overflow, BUG_PENDING_EOI_OVERFLOW);
    // peoi[sp++] = vector
    asm.add(slot, cpuArea, count);
    asm.st(slot, PerCpu.offset.pendingEoi, vector);
    asm.addi(count, count, 1);
    asm.st(cpuArea, PerCpu.offset.pendingEoiCount, count);
    // irq_eoi_cpu[vector] = this CPU + 1; irq_eoi_ready[vector] = 0
    tableEntry(asm, slot, IRQ_EOI_CPU_TABLE, vector);
    smpProcessorId(asm, value);
    asm.addi(value, value, 1);
    asm.st(slot, 0, value);
    tableEntry(asm, slot, IRQ_EOI_READY_TABLE, vector);
    storeImmediate(asm, slot, 0, 0, value);
  });
}

/**
 * flush_ready_eoi(r7 = this CPU's area), IF=0, as Xen's: end the in-service vectors from the top
 * of the pending-EOI stack down, while the top one's guest has signalled EOI. Saves every
 * register it uses (the event-check handler calls it).
 */
function emitFlushReadyEoi(asm: Assembler): void {
  const { count, vector, slot, ready } = aliases({ count: reg.r2, vector: reg.r3, slot: reg.r4, ready: reg.r5 });
  routine(asm, 'flush_ready_eoi', [count, vector, slot, ready], (exit) => {
    asm.loop(() => {
      asm.ld(count, cpuArea, PerCpu.offset.pendingEoiCount);
      asm.cmpi(count, 0);
      asm.ble(exit);
      // vector = peoi[sp - 1]; stop at the first one whose guest has not signalled
      asm.add(slot, cpuArea, count);
      asm.ld(vector, slot, PerCpu.offset.pendingEoi - 1);
      tableEntry(asm, ready, IRQ_EOI_READY_TABLE, vector);
      asm.ld(ready, ready, 0);
      asm.cmpi(ready, 0);
      asm.beq(exit);
      asm.addi(count, count, -1);
      asm.st(cpuArea, PerCpu.offset.pendingEoiCount, count);
      tableEntry(asm, slot, IRQ_EOI_CPU_TABLE, vector);
      storeImmediate(asm, slot, 0, 0, ready);
      tableEntry(asm, slot, IRQ_EOI_READY_TABLE, vector);
      asm.st(slot, 0, ready);
      asm.eoi();
    });
  });
}

function emitSpuriousInterrupt(asm: Assembler): void {
  asm.func('spurious_interrupt', () => {
    asm.eoi();
    asm.iret();
  });
}

/**
 * The NMI watchdog: a hang is declared when this CPU's software watchdog counter has not moved
 * for WATCHDOG_STRIKES consecutive NMIs.
 */
function emitNmi(asm: Assembler): void {
  const { count, lastSeen } = aliases({ count: reg.r1, lastSeen: reg.r2 });
  asm.func('nmi_handler', () => {
    const done = asm.local('done');
    asm.push(count);
    asm.push(lastSeen);
    // while a recovery runs every CPU but the one leading it parks
    const { leader, self } = aliases({ leader: reg.r1, self: reg.r2 });
    asm.movi(leader, RECOVERY_IN_PROGRESS);
    asm.ld(leader, leader, 0);
    smpProcessorId(asm, self);
    asm.addi(self, self, 1);
    asm.ifNotZero(leader, () => {
      asm.cmp(leader, self);
      asm.bne(ref('recovery_park'));
    });
    asm.push(cpuArea);
    // lastSeen (saved) is the scratch register, so that the interrupted code keeps its r14
    thisCpuArea(asm, cpuArea, lastSeen);
    asm.ld(count, cpuArea, PerCpu.offset.watchdogCount);
    asm.ld(lastSeen, cpuArea, PerCpu.offset.watchdogLastSeen);
    asm.ifEqual(
      count,
      lastSeen,
      () => {
        const strikes = lastSeen;
        asm.ld(strikes, cpuArea, PerCpu.offset.watchdogStrikes);
        asm.addi(strikes, strikes, 1);
        asm.st(cpuArea, PerCpu.offset.watchdogStrikes, strikes);
        asm.cmpi(strikes, WATCHDOG_STRIKES);
        asm.blt(done);
        asm.panic(PANIC_WATCHDOG_HANG);
      },
      () => {
        asm.st(cpuArea, PerCpu.offset.watchdogLastSeen, count);
        storeImmediate(asm, cpuArea, PerCpu.offset.watchdogStrikes, 0, lastSeen);
      },
    );
    asm.label(done);
    asm.pop(cpuArea);
    asm.pop(lastSeen);
    asm.pop(count);
    asm.iret();
  });
}
