/**
 * Event channels and vCPU wake-up, and the interrupt handlers: event-check IPI,
 * device interrupts routed to the PrivVM as events, spurious vectors, and the NMI watchdog.
 * The local timer's interrupt is in timers.ts.
 */
import { ref, r0, r1, r2, r3, r6, r7, r10, type Assembler } from '../../machine/assembler.js';
import {
  DOMAIN_TABLE,
  Domain,
  IRQ_DOMAIN_TABLE,
  IRQ_PORT_TABLE,
  PANIC_WATCHDOG_HANG,
  PerCpu,
  RECOVERY_IN_PROGRESS,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNABLE,
  SOFTIRQ_SCHEDULE,
  Vcpu,
  WATCHDOG_STRIKES,
} from '../layout.js';
import { cpuAreaOf, irqEnter, irqExit, restoreAll, routine, saveAll, scheduleLockOf, storeImmediate, thisCpuArea } from './helpers.js';

export function emitInterrupts(asm: Assembler, deviceVectors: readonly number[]): void {
  emitEventSend(asm);
  emitVcpuWake(asm);
  emitEventCheckInterrupt(asm);
  emitDeviceInterrupts(asm, deviceVectors);
  emitSpuriousInterrupt(asm);
  emitNmi(asm);
}

/** evtchn_send(r0 = domain, r1 = port): mark the port pending, wake the domain's vCPU. IF=0. */
function emitEventSend(asm: Assembler): void {
  routine(asm, 'evtchn_send', [r0, r2, r3, r10], () => {
    asm.addi(r10, r0, Domain.offset.lock);
    asm.withLock(r10, () => {
      asm.ld(r2, r0, Domain.offset.pendingEvents);
      asm.movi(r3, 1);
      asm.shl(r3, r3, r1);
      asm.or(r2, r2, r3);
      asm.st(r0, Domain.offset.pendingEvents, r2);
    });
    asm.ld(r0, r0, Domain.offset.vcpu);
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
  routine(asm, 'vcpu_wake', [r1, r2, r6, r7, r10], (exit) => {
    asm.ld(r6, r0, Vcpu.offset.processor);
    cpuAreaOf(asm, r7, r6);
    scheduleLockOf(asm, r10, r6);
    asm.spinLock(r10);
    asm.ld(r1, r0, Vcpu.offset.runState);
    asm.ifEqualImmediate(r1, RUN_STATE_BLOCKED, () => storeImmediate(asm, r0, Vcpu.offset.runState, RUN_STATE_RUNNABLE, r1));
    // if (curr_on_cpu(v->processor) == v) return;
    asm.ld(r1, r7, PerCpu.offset.current);
    asm.cmp(r1, r0);
    asm.beq(ref('vcpu_wake.unlock'));
    // if (__vcpu_on_runq(svc)) return;
    asm.call(ref('vcpu_on_runqueue'));
    asm.ifNotZero(r1, () => asm.jmp(ref('vcpu_wake.unlock')));
    asm.call(ref('runqueue_append'));
    asm.spinUnlock(r10);
    asm.mov(r1, r6);
    asm.movi(r2, SOFTIRQ_SCHEDULE);
    asm.call(ref('raise_softirq'));
    asm.jmp(ref(exit));
    asm.label('vcpu_wake.unlock');
    asm.spinUnlock(r10);
  });
}

/** The event-check IPI only interrupts: softirqs run on the way back to the guest or idle. */
function emitEventCheckInterrupt(asm: Assembler): void {
  asm.label('event_check_interrupt');
  asm.push(r1);
  asm.push(r7);
  // r1 is saved: the scratch register, so that the interrupted code keeps its r14
  thisCpuArea(asm, r7, r1);
  irqEnter(asm, r7, r1);
  irqExit(asm, r7, r1);
  asm.eoi();
  asm.pop(r7);
  asm.pop(r1);
  asm.iret();
}

/** Device interrupts become events for the domain the vector is routed to (the PrivVM). */
function emitDeviceInterrupts(asm: Assembler, deviceVectors: readonly number[]): void {
  for (const vector of deviceVectors) {
    asm.label(`device_interrupt_${vector}`);
    saveAll(asm);
    asm.movi(r6, vector);
    asm.jmp(ref('device_interrupt_common'));
  }
  asm.label('device_interrupt_common');
  thisCpuArea(asm, r7);
  irqEnter(asm, r7, r1);
  asm.movi(r1, IRQ_DOMAIN_TABLE);
  asm.add(r1, r1, r6);
  asm.ld(r1, r1, 0);
  asm.movi(r0, DOMAIN_TABLE);
  asm.add(r0, r0, r1);
  asm.ld(r0, r0, 0);
  asm.movi(r1, IRQ_PORT_TABLE);
  asm.add(r1, r1, r6);
  asm.ld(r1, r1, 0);
  asm.ifNotZero(r0, () => asm.call(ref('evtchn_send')));
  irqExit(asm, r7, r1);
  asm.eoi();
  restoreAll(asm);
  asm.iret();
}

function emitSpuriousInterrupt(asm: Assembler): void {
  asm.label('spurious_interrupt');
  asm.eoi();
  asm.iret();
}

/**
 * The NMI watchdog: a hang is declared when this CPU's software watchdog counter has not moved
 * for WATCHDOG_STRIKES consecutive NMIs.
 */
function emitNmi(asm: Assembler): void {
  asm.label('nmi_handler');
  asm.push(r1);
  asm.push(r2);
  // while a recovery runs every CPU but the one leading it parks
  asm.movi(r1, RECOVERY_IN_PROGRESS);
  asm.ld(r1, r1, 0);
  asm.cpuid(r2);
  asm.addi(r2, r2, 1);
  asm.ifNotZero(r1, () => {
    asm.cmp(r1, r2);
    asm.bne(ref('recovery_park'));
  });
  asm.push(r7);
  // r2 is saved: the scratch register, so that the interrupted code keeps its r14
  thisCpuArea(asm, r7, r2);
  asm.ld(r1, r7, PerCpu.offset.watchdogCount);
  asm.ld(r2, r7, PerCpu.offset.watchdogLastSeen);
  asm.ifEqual(
    r1,
    r2,
    () => {
      asm.ld(r2, r7, PerCpu.offset.watchdogStrikes);
      asm.addi(r2, r2, 1);
      asm.st(r7, PerCpu.offset.watchdogStrikes, r2);
      asm.cmpi(r2, WATCHDOG_STRIKES);
      asm.blt(ref('nmi_handler.done'));
      asm.panic(PANIC_WATCHDOG_HANG);
    },
    () => {
      asm.st(r7, PerCpu.offset.watchdogLastSeen, r1);
      storeImmediate(asm, r7, PerCpu.offset.watchdogStrikes, 0, r2);
    },
  );
  asm.label('nmi_handler.done');
  asm.pop(r7);
  asm.pop(r2);
  asm.pop(r1);
  asm.iret();
}
