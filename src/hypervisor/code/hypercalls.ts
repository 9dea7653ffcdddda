/**
 * Hypercall handlers. Called from the VM-exit path with interrupts enabled, r2..r4 = arguments,
 * r7 = this CPU's area, r8 = the calling vCPU; return the result in r0. Each handler disables
 * interrupts around the locks it takes, as Xen's spin_lock_irq does.
 */
import { ref, r0, r1, r2, r3, r4, r6, r8, r9, r10, r11, r12, r13, type Assembler, type LabelReference, type Register } from '../../machine/assembler.js';
import {
  DOMCTL_CREATE,
  DOMCTL_DESTROY,
  ERROR_INVALID,
  ERROR_NO_DOMAIN,
  ERROR_NO_MEMORY,
  ERROR_NO_SYSTEM_CALL,
  ERROR_PERMISSION,
  EVENT_PORT_COUNT,
  FRAME_COUNT,
  Hypercall,
  MAX_DOMAINS,
  MULTICALL_ENTRY_WORDS,
  MULTICALL_MAX_ENTRIES,
  MulticallEntry,
  PAGE_TABLE_SLOTS,
  SCHEDOP_BLOCK,
  SCHEDOP_YIELD,
} from '../abi.js';
import {
  BUG_FRAME_COUNT_NEGATIVE,
  DOMAIN_LIST_LOCK,
  DOMAIN_POOL,
  DOMAIN_TABLE,
  Domain,
  FRAME_TABLE_POINTER,
  FRAME_TYPE_NONE,
  FRAME_TYPE_WRITABLE,
  FrameDescriptor,
  MMU_LOG_GOT_NEW,
  MMU_LOG_IDLE,
  MMU_LOG_PUT_OLD,
  MMU_LOG_WROTE_ENTRY,
  BUG_RUN_STATE,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNING,
  SOFTIRQ_SCHEDULE,
  Timer,
  Vcpu,
} from '../layout.js';
import { routine, scheduleLockOf, storeImmediate } from './helpers.js';

export const hypercallHandlers: Readonly<Record<Hypercall, string>> = {
  [Hypercall.MmuUpdate]: 'do_mmu_update',
  [Hypercall.Multicall]: 'do_multicall',
  [Hypercall.SchedOp]: 'do_sched_op',
  [Hypercall.SetTimerOp]: 'do_set_timer_op',
  [Hypercall.EventChannelOp]: 'do_event_channel_op',
  [Hypercall.Domctl]: 'do_domctl',
};

export function emitHypercalls(asm: Assembler): void {
  emitMmuUpdate(asm);
  emitMulticall(asm);
  emitSchedOp(asm);
  emitSetTimerOp(asm);
  emitEventChannelOp(asm);
  emitDomctl(asm);
}

/** if (register < 0 || register >= limit) { r0 = error; return } */
function checkRange(asm: Assembler, register: Register, limit: number, failure: string): void {
  asm.cmpi(register, 0);
  asm.blt(ref(failure));
  asm.cmpi(register, limit);
  asm.bge(ref(failure));
}

function errorExit(asm: Assembler, label: string, code: number, exit: string | LabelReference): void {
  asm.label(label);
  asm.movi(r0, code);
  asm.jmp(ref(exit));
}

/** destination = &frame_table[frame] */
function frameDescriptor(asm: Assembler, destination: Register, frame: Register): void {
  asm.movi(destination, FrameDescriptor.sizeWords);
  asm.mul(destination, frame, destination);
  asm.movi(r13, FRAME_TABLE_POINTER);
  asm.ld(r13, r13, 0);
  asm.add(destination, destination, r13);
}

/**
 * mmu_update(r2 = slot, r3 = frame): validate the new entry as Xen's get_page_from_l1e does
 * (the entry it replaces was validated when it was written), then under the domain's lock
 * get_page(new), write the entry, put_page(old), in that order, as Xen does: the update takes several steps and is not
 * idempotent. Returns the new use count of `frame` (0 when unmapping), or an error that a Linux
 * PV guest answers with BUG().
 */
function emitMmuUpdate(asm: Assembler): void {
  routine(asm, 'do_mmu_update', [r6, r9, r10, r11, r12], (exit) => {
    checkRange(asm, r2, PAGE_TABLE_SLOTS, 'do_mmu_update.invalid');
    checkRange(asm, r3, FRAME_COUNT, 'do_mmu_update.invalid');
    asm.ld(r9, r8, Vcpu.offset.domain);
    asm.ld(r4, r9, Domain.offset.id);
    asm.ifNotZero(r3, () => {
      frameDescriptor(asm, r11, r3);
      validateFrame(asm, r11, r4, 'do_mmu_update.invalid', 'do_mmu_update.permission');
    });
    asm.cli();
    asm.addi(r10, r9, Domain.offset.lock);
    asm.spinLock(r10);
    asm.add(r12, r9, r2);
    asm.ld(r6, r12, Domain.offset.pageTable);
    // log each step, so that recovery can undo a half-done update before a retry
    asm.st(r8, Vcpu.offset.mmuLogSlot, r2);
    asm.st(r8, Vcpu.offset.mmuLogOld, r6);
    asm.st(r8, Vcpu.offset.mmuLogNew, r3);
    asm.ifNotZero(r3, () => {
      asm.ld(r1, r11, FrameDescriptor.offset.useCount);
      asm.addi(r1, r1, 1);
      asm.st(r11, FrameDescriptor.offset.useCount, r1);
      storeImmediate(asm, r11, FrameDescriptor.offset.type, FRAME_TYPE_WRITABLE, r1);
      storeImmediate(asm, r11, FrameDescriptor.offset.validated, 1, r1);
    });
    storeImmediate(asm, r8, Vcpu.offset.mmuLogStage, MMU_LOG_GOT_NEW, r1);
    asm.st(r12, Domain.offset.pageTable, r3);
    storeImmediate(asm, r8, Vcpu.offset.mmuLogStage, MMU_LOG_WROTE_ENTRY, r1);
    asm.ifNotZero(r6, () => {
      frameDescriptor(asm, r12, r6);
      asm.ld(r1, r12, FrameDescriptor.offset.useCount);
      asm.addi(r1, r1, -1);
      asm.st(r12, FrameDescriptor.offset.useCount, r1);
      asm.cmpi(r1, 0);
      asm.blt(ref('do_mmu_update.negative'));
      asm.bne(ref('do_mmu_update.put_done'));
      storeImmediate(asm, r12, FrameDescriptor.offset.type, FRAME_TYPE_NONE, r1);
      storeImmediate(asm, r12, FrameDescriptor.offset.validated, 0, r1);
      asm.label('do_mmu_update.put_done');
    });
    storeImmediate(asm, r8, Vcpu.offset.mmuLogStage, MMU_LOG_PUT_OLD, r1);
    asm.movi(r0, 0);
    asm.ifNotZero(r3, () => asm.ld(r0, r11, FrameDescriptor.offset.useCount));
    storeImmediate(asm, r8, Vcpu.offset.mmuLogStage, MMU_LOG_IDLE, r1);
    asm.spinUnlock(r10);
    asm.sti();
    asm.jmp(ref(exit));
    asm.label('do_mmu_update.negative');
    asm.movi(r4, 1);
    asm.bugOn(r4, BUG_FRAME_COUNT_NEGATIVE);
    errorExit(asm, 'do_mmu_update.invalid', ERROR_INVALID, exit);
    errorExit(asm, 'do_mmu_update.permission', ERROR_PERMISSION, exit);
  });
}

/**
 * get_page_from_l1e's checks on a frame descriptor (`descriptor`) for domain id `domainId`: the
 * domain owns it, its use count is within what a page table can hold (get_page), and it can be
 * typed writable (get_page_type: untyped, or writable and validated).
 */
function validateFrame(asm: Assembler, descriptor: Register, domainId: Register, invalid: string, permission: string): void {
  asm.ld(r1, descriptor, FrameDescriptor.offset.owner);
  asm.cmp(r1, domainId);
  asm.bne(ref(permission));
  asm.ld(r1, descriptor, FrameDescriptor.offset.useCount);
  asm.cmpi(r1, 0);
  asm.blt(ref(invalid));
  // the slot being rewritten may hold the frame too: the count reaches PAGE_TABLE_SLOTS + 1 at most
  asm.cmpi(r1, PAGE_TABLE_SLOTS + 1);
  asm.bge(ref(invalid));
  asm.ld(r1, descriptor, FrameDescriptor.offset.type);
  asm.ifEqualImmediate(r1, FRAME_TYPE_WRITABLE, () => {
    asm.ld(r1, descriptor, FrameDescriptor.offset.validated);
    asm.cmpi(r1, 1);
    asm.bne(ref(invalid));
    asm.movi(r1, FRAME_TYPE_NONE);
  });
  asm.cmpi(r1, FRAME_TYPE_NONE);
  asm.bne(ref(invalid));
}

/**
 * multicall(r2 = count): check the whole batch first (every entry a call that may be batched),
 * as Xen checks the guest's list before running it; then run the sub-calls, skipping those whose
 * completion is already logged, logging each as it completes. Only mmu_update may be batched.
 */
function emitMulticall(asm: Assembler): void {
  routine(asm, 'do_multicall', [r6, r9, r10, r11], (exit) => {
    asm.cmpi(r2, 0);
    asm.blt(ref('do_multicall.invalid'));
    asm.cmpi(r2, MULTICALL_MAX_ENTRIES + 1);
    asm.bge(ref('do_multicall.invalid'));
    asm.ld(r9, r8, Vcpu.offset.multicallBuffer);
    asm.movi(r6, 0);
    asm.loop((done) => {
      asm.cmp(r6, r2);
      asm.bge(done);
      multicallEntry(asm, r11, r6, r9);
      asm.ld(r1, r11, MulticallEntry.operation);
      asm.cmpi(r1, Hypercall.MmuUpdate);
      asm.bne(ref('do_multicall.invalid'));
      asm.addi(r6, r6, 1);
    });
    asm.movi(r6, 0);
    asm.movi(r10, 0);
    asm.loop((done, next) => {
      asm.cmp(r6, r2);
      asm.bge(done);
      multicallEntry(asm, r11, r6, r9);
      asm.addi(r6, r6, 1);
      asm.ld(r1, r11, MulticallEntry.done);
      asm.ifNotZero(r1, () => {
        asm.addi(r10, r10, 1);
        asm.jmp(next);
      });
      asm.movi(r0, ERROR_NO_SYSTEM_CALL);
      asm.ld(r1, r11, MulticallEntry.operation);
      asm.ifEqualImmediate(r1, Hypercall.MmuUpdate, () => {
        asm.push(r2);
        asm.ld(r2, r11, MulticallEntry.argument0);
        asm.ld(r3, r11, MulticallEntry.argument1);
        asm.call(ref('do_mmu_update'));
        asm.pop(r2);
      });
      asm.st(r11, MulticallEntry.result, r0);
      storeImmediate(asm, r11, MulticallEntry.done, 1, r1);
      asm.addi(r10, r10, 1);
    });
    asm.mov(r0, r10);
    asm.jmp(ref(exit));
    errorExit(asm, 'do_multicall.invalid', ERROR_INVALID, exit);
  });
}

/** destination = &buffer[index], a multicall entry */
function multicallEntry(asm: Assembler, destination: Register, index: Register, buffer: Register): void {
  asm.movi(destination, MULTICALL_ENTRY_WORDS);
  asm.mul(destination, index, destination);
  asm.add(destination, destination, buffer);
}

/** sched_op(r2 = yield | block). Block does not block if an event is already pending. */
function emitSchedOp(asm: Assembler): void {
  routine(asm, 'do_sched_op', [r6, r9, r10, r11], (exit) => {
    asm.ifEqualImmediate(r2, SCHEDOP_YIELD, () => {
      asm.cli();
      raiseScheduleHere(asm);
      asm.sti();
      asm.movi(r0, 0);
      asm.jmp(ref(exit));
    });
    asm.cmpi(r2, SCHEDOP_BLOCK);
    asm.bne(ref('do_sched_op.invalid'));
    asm.cli();
    asm.cpuid(r6);
    scheduleLockOf(asm, r10, r6);
    asm.ld(r9, r8, Vcpu.offset.domain);
    asm.addi(r11, r9, Domain.offset.lock);
    asm.withLock(r10, () => {
      // ASSERT(v->runstate == running && v->is_running): only a running vCPU blocks
      asm.ld(r1, r8, Vcpu.offset.runState);
      asm.addi(r1, r1, -RUN_STATE_RUNNING);
      asm.bugOn(r1, BUG_RUN_STATE);
      asm.ld(r1, r8, Vcpu.offset.isRunning);
      asm.addi(r1, r1, -1);
      asm.bugOn(r1, BUG_RUN_STATE);
      asm.withLock(r11, () => {
        asm.ld(r1, r9, Domain.offset.pendingEvents);
        asm.ifZero(r1, () => storeImmediate(asm, r8, Vcpu.offset.runState, RUN_STATE_BLOCKED, r1));
      });
    });
    raiseScheduleHere(asm);
    asm.sti();
    asm.movi(r0, 0);
    asm.jmp(ref(exit));
    errorExit(asm, 'do_sched_op.invalid', ERROR_INVALID, exit);
  });
}

function raiseScheduleHere(asm: Assembler): void {
  asm.push(r2);
  asm.cpuid(r1);
  asm.movi(r2, SOFTIRQ_SCHEDULE);
  asm.call(ref('raise_softirq'));
  asm.pop(r2);
}

/** set_timer_op(r2 = microseconds from now): arm the vCPU's one-shot timer. */
function emitSetTimerOp(asm: Assembler): void {
  routine(asm, 'do_set_timer_op', [], (exit) => {
    asm.cmpi(r2, 0);
    asm.blt(ref('do_set_timer_op.invalid'));
    asm.rdtime(r1);
    asm.add(r1, r1, r2);
    asm.addi(r0, r8, Vcpu.offset.timer);
    asm.cli();
    asm.call(ref('set_timer'));
    asm.sti();
    asm.movi(r0, 0);
    asm.jmp(ref(exit));
    errorExit(asm, 'do_set_timer_op.invalid', ERROR_INVALID, exit);
  });
}

/** event_channel_op(r2 = domain id, r3 = port) */
function emitEventChannelOp(asm: Assembler): void {
  routine(asm, 'do_event_channel_op', [], (exit) => {
    checkRange(asm, r2, MAX_DOMAINS, 'do_event_channel_op.invalid');
    checkRange(asm, r3, EVENT_PORT_COUNT, 'do_event_channel_op.invalid');
    asm.movi(r0, DOMAIN_TABLE);
    asm.add(r0, r0, r2);
    asm.ld(r0, r0, 0);
    asm.cmpi(r0, 0);
    asm.beq(ref('do_event_channel_op.no_domain'));
    asm.mov(r1, r3);
    asm.cli();
    asm.call(ref('evtchn_send'));
    asm.sti();
    asm.movi(r0, 0);
    asm.jmp(ref(exit));
    errorExit(asm, 'do_event_channel_op.invalid', ERROR_INVALID, exit);
    errorExit(asm, 'do_event_channel_op.no_domain', ERROR_NO_DOMAIN, exit);
  });
}

/**
 * domctl(r2 = create | destroy, r3 = CPU for create, domain id for destroy). Privileged only.
 * Create takes a free domain structure from the pool, resets it, publishes it in the domain
 * table and wakes its vCPU; returns the new domain id.
 */
function emitDomctl(asm: Assembler): void {
  routine(asm, 'do_domctl', [r6, r9, r10, r11, r12], (exit) => {
    asm.ld(r9, r8, Vcpu.offset.domain);
    asm.ld(r1, r9, Domain.offset.privileged);
    asm.cmpi(r1, 0);
    asm.beq(ref('do_domctl.permission'));
    asm.cli();
    asm.movi(r10, DOMAIN_LIST_LOCK);
    asm.ifEqualImmediate(r2, DOMCTL_CREATE, () => emitDomainCreate(asm, exit));
    asm.ifEqualImmediate(r2, DOMCTL_DESTROY, () => emitDomainDestroy(asm, exit));
    asm.sti();
    errorExit(asm, 'do_domctl.invalid', ERROR_INVALID, exit);
    errorExit(asm, 'do_domctl.permission', ERROR_PERMISSION, exit);
  });
}

/** r3 = CPU; r10 = domain-list lock; interrupts disabled. */
function emitDomainCreate(asm: Assembler, exit: LabelReference): void {
  asm.spinLock(r10);
  asm.movi(r6, 1);
  asm.loop((found) => {
    asm.cmpi(r6, MAX_DOMAINS);
    asm.bge(ref('do_domctl.full'));
    asm.movi(r1, DOMAIN_TABLE);
    asm.add(r1, r1, r6);
    asm.ld(r1, r1, 0);
    asm.cmpi(r1, 0);
    asm.beq(found);
    asm.addi(r6, r6, 1);
  });
  asm.movi(r11, DOMAIN_POOL);
  asm.add(r11, r11, r6);
  asm.ld(r11, r11, 0);
  resetDomain(asm, r11, r3);
  asm.movi(r1, DOMAIN_TABLE);
  asm.add(r1, r1, r6);
  asm.st(r1, 0, r11);
  asm.spinUnlock(r10);
  asm.ld(r0, r11, Domain.offset.vcpu);
  asm.call(ref('vcpu_wake'));
  asm.sti();
  asm.mov(r0, r6);
  asm.jmp(ref(exit));
  asm.label('do_domctl.full');
  asm.spinUnlock(r10);
  asm.sti();
  asm.movi(r0, ERROR_NO_MEMORY);
  asm.jmp(ref(exit));
}

/** Fresh state for a pooled domain (r11) whose vCPU will run on CPU r3. */
function resetDomain(asm: Assembler, domain: Register, cpu: Register): void {
  storeImmediate(asm, domain, Domain.offset.inUse, 1, r1);
  storeImmediate(asm, domain, Domain.offset.pendingEvents, 0, r1);
  for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) asm.st(domain, Domain.offset.pageTable + slot, r1);
  asm.ld(r12, domain, Domain.offset.vcpu);
  asm.st(r12, Vcpu.offset.processor, cpu);
  asm.st(r12, Vcpu.offset.timer + Timer.offset.cpu, cpu);
  asm.movi(r1, 0);
  for (const field of ['isRunning', 'resumeToken', 'returnValue', 'hypercallInProgress', 'runtimeUs'] as const) {
    asm.st(r12, Vcpu.offset[field], r1);
  }
  storeImmediate(asm, r12, Vcpu.offset.runState, RUN_STATE_BLOCKED, r1);
}

/**
 * Destroy domain r3 if its vCPU is blocked and not running: unpublish it, cancel its timer,
 * drop its page-table references. Returns 0, or an error.
 */
function emitDomainDestroy(asm: Assembler, exit: LabelReference): void {
  checkRange(asm, r3, MAX_DOMAINS, 'do_domctl.destroy_invalid');
  asm.spinLock(r10);
  asm.movi(r1, DOMAIN_TABLE);
  asm.add(r1, r1, r3);
  asm.ld(r11, r1, 0);
  asm.cmpi(r11, 0);
  asm.beq(ref('do_domctl.destroy_missing'));
  asm.ld(r12, r11, Domain.offset.vcpu);
  asm.ld(r6, r12, Vcpu.offset.runState);
  asm.cmpi(r6, RUN_STATE_BLOCKED);
  asm.bne(ref('do_domctl.destroy_busy'));
  asm.movi(r6, 0);
  asm.st(r1, 0, r6);
  asm.st(r11, Domain.offset.inUse, r6);
  asm.spinUnlock(r10);
  asm.addi(r0, r12, Vcpu.offset.timer);
  asm.call(ref('kill_timer'));
  asm.push(r8);
  asm.mov(r8, r12);
  for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) {
    asm.movi(r2, slot);
    asm.movi(r3, 0);
    asm.call(ref('do_mmu_update'));
  }
  asm.pop(r8);
  asm.cli();
  asm.movi(r0, 0);
  asm.jmp(ref(exit));
  asm.label('do_domctl.destroy_busy');
  asm.spinUnlock(r10);
  errorExit(asm, 'do_domctl.destroy_invalid', ERROR_INVALID, 'do_domctl.destroy_sti');
  asm.label('do_domctl.destroy_missing');
  asm.spinUnlock(r10);
  asm.movi(r0, ERROR_NO_DOMAIN);
  asm.label('do_domctl.destroy_sti');
  asm.sti();
  asm.jmp(ref(exit));
}
