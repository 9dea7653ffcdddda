/**
 * Hypercall handlers. Called from the VM-exit path with interrupts enabled, r2..r4 = arguments,
 * r7 = this CPU's area, r8 = the calling vCPU; return the result in r0. Each handler disables
 * interrupts around the locks it takes, as Xen's spin_lock_irq does.
 */
import { aliases, ref, reg, type Assembler, type LabelReference, type Register } from '../../machine/assembler.js';
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
  PHYSDEVOP_EOI,
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
  FRAME_TYPE_PAGE_TABLE,
  FRAME_TYPE_WRITABLE,
  FrameDescriptor,
  IRQ_DOMAIN_TABLE,
  IRQ_EOI_CPU_TABLE,
  IRQ_EOI_READY_TABLE,
  MMU_LOG_GET_NEW,
  MMU_LOG_IDLE,
  MMU_LOG_PUT_OLD,
  MMU_LOG_WRITE_ENTRY,
  BUG_RUN_STATE,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNING,
  SOFTIRQ_SCHEDULE,
  Timer,
  VECTOR_COUNT,
  VECTOR_EVENT_CHECK,
  Vcpu,
} from '../layout.js';
import { addToField, routine, scheduleLockOf, smpProcessorId, storeImmediate, tableEntry } from './helpers.js';

export const hypercallHandlers: Readonly<Record<Hypercall, string>> = {
  [Hypercall.MmuUpdate]: 'do_mmu_update',
  [Hypercall.Multicall]: 'do_multicall',
  [Hypercall.SchedOp]: 'do_sched_op',
  [Hypercall.SetTimerOp]: 'do_set_timer_op',
  [Hypercall.EventChannelOp]: 'do_event_channel_op',
  [Hypercall.Domctl]: 'do_domctl',
  [Hypercall.PhysdevOp]: 'do_physdev_op',
};

/** The handlers' convention: the result (r0), the calling vCPU (r8); a register for one value at a time (r1). */
const { result, caller, value } = aliases({ result: reg.r0, caller: reg.r8, value: reg.r1 });
/** a scratch register of the handlers' own, clobbered by frameDescriptor */
const frameTable = reg.r13;

export function emitHypercalls(asm: Assembler): void {
  emitMmuUpdate(asm);
  emitMulticall(asm);
  emitSchedOp(asm);
  emitSetTimerOp(asm);
  emitEventChannelOp(asm);
  emitDomctl(asm);
  emitPhysdevOp(asm);
}

/** if (register < 0 || register >= limit) goto failure */
function checkRange(asm: Assembler, register: Register, limit: number, failure: LabelReference): void {
  asm.cmpi(register, 0);
  asm.blt(failure);
  asm.cmpi(register, limit);
  asm.bge(failure);
}

/** label: result = code; goto exit */
function errorExit(asm: Assembler, label: LabelReference, code: number, exit: LabelReference): void {
  asm.label(label);
  asm.movi(result, code);
  asm.jmp(exit);
}

/** destination = &frame_table[frame] */
function frameDescriptor(asm: Assembler, destination: Register, frame: Register): void {
  asm.movi(destination, FrameDescriptor.sizeWords);
  asm.mul(destination, frame, destination);
  asm.movi(frameTable, FRAME_TABLE_POINTER);
  asm.ld(frameTable, frameTable, 0);
  asm.add(destination, destination, frameTable);
}

/**
 * mmu_update(r2 = slot, r3 = frame): validate the new entry as Xen's get_page_from_l1e does
 * (the entry it replaces was validated when it was written), then under the domain's big lock
 * take a reference to the page holding the entries and lock it (get_page, page_lock), and
 * get_page(new), write the entry, put_page(old), in that order, as Xen does. The update takes
 * several steps and is not idempotent, so each step is logged with the value it changes before it
 * runs (ReHype: log changes to critical variables, undone before a retry). As Xen's LOCK_BIGLOCK,
 * the lock is taken with interrupts enabled: an interrupt, or the recovery IPI, can stop the CPU
 * while it holds the lock, and leave the page locked and referenced. Returns the new use count of
 * `frame` (0 when unmapping), or an error that a Linux PV guest answers with BUG().
 */
function emitMmuUpdate(asm: Assembler): void {
  const { slot, frame, domainId, table, oldFrame, domain, lock, newDescriptor, entry } = aliases({
    slot: reg.r2, frame: reg.r3, domainId: reg.r4, table: reg.r5, oldFrame: reg.r6, domain: reg.r9, lock: reg.r10, newDescriptor: reg.r11, entry: reg.r12,
  });
  routine(asm, 'do_mmu_update', [table, oldFrame, domain, lock, newDescriptor, entry], (exit) => {
    const invalid = asm.local('invalid');
    const permission = asm.local('permission');
    const negative = asm.local('negative');
    const noTable = asm.local('no_table');
    const notTable = asm.local('not_table');
    checkRange(asm, slot, PAGE_TABLE_SLOTS, invalid);
    checkRange(asm, frame, FRAME_COUNT, invalid);
    asm.ld(domain, caller, Vcpu.offset.domain);
    asm.ld(domainId, domain, Domain.offset.id);
    asm.ifNotZero(frame, () => {
      frameDescriptor(asm, newDescriptor, frame);
      validateFrame(asm, newDescriptor, domainId, invalid, permission);
    });
    asm.addi(lock, domain, Domain.offset.lock);
    asm.spinLock(lock);
    getPageTable(asm, table, domain, domainId, noTable);
    pageLock(asm, table, notTable);
    // entry = &domain->page_table[slot]
    asm.add(entry, domain, slot);
    asm.ld(oldFrame, entry, Domain.offset.pageTable);
    // log the update, then each step with the value it changes before taking it (write-ahead),
    // so that recovery can put a half-done update back before a retry
    asm.st(caller, Vcpu.offset.mmuLogSlot, slot);
    asm.st(caller, Vcpu.offset.mmuLogOld, oldFrame);
    asm.st(caller, Vcpu.offset.mmuLogNew, frame);
    asm.ifNotZero(frame, () => getNewFrame(asm, newDescriptor));
    storeImmediate(asm, caller, Vcpu.offset.mmuLogStage, MMU_LOG_WRITE_ENTRY, value);
    asm.st(entry, Domain.offset.pageTable, frame);
    asm.ifNotZero(oldFrame, () => putOldFrame(asm, oldFrame, negative));
    asm.movi(result, 0);
    asm.ifNotZero(frame, () => asm.ld(result, newDescriptor, FrameDescriptor.offset.useCount));
    storeImmediate(asm, caller, Vcpu.offset.mmuLogStage, MMU_LOG_IDLE, value);
    putPageTable(asm, table);
    asm.spinUnlock(lock);
    asm.jmp(exit);
    asm.label(negative);
    const always = domainId;
    asm.movi(always, 1);
    asm.bugOn(always, BUG_FRAME_COUNT_NEGATIVE);
    // the page holding the entries is not a validated page table: unlock and drop it, then fail
    asm.label(notTable);
    putPageTable(asm, table);
    asm.label(noTable);
    asm.spinUnlock(lock);
    errorExit(asm, invalid, ERROR_INVALID, exit);
    errorExit(asm, permission, ERROR_PERMISSION, exit);
  });
}

/**
 * descriptor = &frame_table[domain->page_table_frame], referenced (Xen's get_page_from_mfn on the
 * page that holds the entries): the frame must exist and belong to the domain, else `noTable`.
 */
function getPageTable(asm: Assembler, descriptor: Register, domain: Register, domainId: Register, noTable: LabelReference): void {
  const pageTableFrame = value;
  asm.ld(pageTableFrame, domain, Domain.offset.pageTableFrame);
  checkRange(asm, pageTableFrame, FRAME_COUNT, noTable);
  frameDescriptor(asm, descriptor, pageTableFrame);
  const owner = value;
  asm.ld(owner, descriptor, FrameDescriptor.offset.owner);
  asm.cmp(owner, domainId);
  asm.bne(noTable);
  addToField(asm, descriptor, FrameDescriptor.offset.useCount, 1, value);
}

/**
 * Xen's page_lock: spin while another CPU holds the page's lock bit, then take it with a
 * compare-and-swap. The page must be a validated page table, else `notTable` (lock taken).
 * Nothing but the holder clears the bit: a holder that never finishes leaves every later update
 * of this page spinning here.
 */
function pageLock(asm: Assembler, descriptor: Register, notTable: LabelReference): void {
  const { address, expected, locked } = aliases({ address: frameTable, expected: reg.r14, locked: reg.r15 });
  // a label of its own (as spinLock's), so that the code after it keeps do_mmu_update's offsets
  const retry = ref(asm.unique('page_lock'));
  asm.label(retry);
  asm.ld(value, descriptor, FrameDescriptor.offset.locked);
  asm.ifNotZero(value, () => {
    asm.pause();
    asm.jmp(retry);
  });
  asm.addi(address, descriptor, FrameDescriptor.offset.locked);
  asm.movi(expected, 0);
  asm.movi(locked, 1);
  asm.cas(expected, address, locked);
  asm.bne(retry);
  asm.ld(value, descriptor, FrameDescriptor.offset.validated);
  asm.cmpi(value, 1);
  asm.bne(notTable);
  asm.ld(value, descriptor, FrameDescriptor.offset.type);
  asm.cmpi(value, FRAME_TYPE_PAGE_TABLE);
  asm.bne(notTable);
}

/** page_unlock, then put_page on the page that holds the entries */
function putPageTable(asm: Assembler, descriptor: Register): void {
  storeImmediate(asm, descriptor, FrameDescriptor.offset.locked, 0, value);
  addToField(asm, descriptor, FrameDescriptor.offset.useCount, -1, value);
}

/** get_page(new), get_page_type(new, writable): the use count up, logged first */
function getNewFrame(asm: Assembler, descriptor: Register): void {
  logUseCount(asm, descriptor, Vcpu.offset.mmuLogNewCount, MMU_LOG_GET_NEW);
  const useCount = value;
  asm.ld(useCount, descriptor, FrameDescriptor.offset.useCount);
  asm.addi(useCount, useCount, 1);
  asm.st(descriptor, FrameDescriptor.offset.useCount, useCount);
  storeImmediate(asm, descriptor, FrameDescriptor.offset.type, FRAME_TYPE_WRITABLE, value);
  storeImmediate(asm, descriptor, FrameDescriptor.offset.validated, 1, value);
}

/** put_page(old): the use count down, logged first; at zero the frame loses its type; below zero, `negative` */
function putOldFrame(asm: Assembler, oldFrame: Register, negative: LabelReference): void {
  const descriptor = reg.r12;
  const putDone = asm.local('put_done');
  frameDescriptor(asm, descriptor, oldFrame);
  logUseCount(asm, descriptor, Vcpu.offset.mmuLogOldCount, MMU_LOG_PUT_OLD);
  const useCount = value;
  asm.ld(useCount, descriptor, FrameDescriptor.offset.useCount);
  asm.addi(useCount, useCount, -1);
  asm.st(descriptor, FrameDescriptor.offset.useCount, useCount);
  asm.cmpi(useCount, 0);
  asm.blt(negative);
  asm.bne(putDone);
  storeImmediate(asm, descriptor, FrameDescriptor.offset.type, FRAME_TYPE_NONE, value);
  storeImmediate(asm, descriptor, FrameDescriptor.offset.validated, 0, value);
  asm.label(putDone);
}

/** caller->mmu_log.<countField> = descriptor->use_count; caller->mmu_log.stage = stage */
function logUseCount(asm: Assembler, descriptor: Register, countField: number, stage: number): void {
  asm.ld(value, descriptor, FrameDescriptor.offset.useCount);
  asm.st(caller, countField, value);
  storeImmediate(asm, caller, Vcpu.offset.mmuLogStage, stage, value);
}

/**
 * get_page_from_l1e's checks on a frame descriptor (`descriptor`) for domain id `domainId`: the
 * domain owns it, its use count is within what a page table can hold (get_page), and it can be
 * typed writable (get_page_type: untyped, or writable and validated).
 */
function validateFrame(asm: Assembler, descriptor: Register, domainId: Register, invalid: LabelReference, permission: LabelReference): void {
  const owner = value;
  asm.ld(owner, descriptor, FrameDescriptor.offset.owner);
  asm.cmp(owner, domainId);
  asm.bne(permission);
  const useCount = value;
  asm.ld(useCount, descriptor, FrameDescriptor.offset.useCount);
  asm.cmpi(useCount, 0);
  asm.blt(invalid);
  // the slot being rewritten may hold the frame too: the count reaches PAGE_TABLE_SLOTS + 1 at most
  asm.cmpi(useCount, PAGE_TABLE_SLOTS + 1);
  asm.bge(invalid);
  const type = value;
  asm.ld(type, descriptor, FrameDescriptor.offset.type);
  asm.ifEqualImmediate(type, FRAME_TYPE_WRITABLE, () => {
    const validated = value;
    asm.ld(validated, descriptor, FrameDescriptor.offset.validated);
    asm.cmpi(validated, 1);
    asm.bne(invalid);
    // writable and validated: as good as untyped
    asm.movi(type, FRAME_TYPE_NONE);
  });
  asm.cmpi(type, FRAME_TYPE_NONE);
  asm.bne(invalid);
}

/**
 * multicall(r2 = count): check the whole batch first (every entry a call that may be batched),
 * as Xen checks the guest's list before running it; then run the sub-calls, skipping those whose
 * completion is already logged, logging each as it completes. Only mmu_update may be batched.
 */
function emitMulticall(asm: Assembler): void {
  const { count, index, buffer, completed, entry } = aliases({ count: reg.r2, index: reg.r6, buffer: reg.r9, completed: reg.r10, entry: reg.r11 });
  routine(asm, 'do_multicall', [index, buffer, completed, entry], (exit) => {
    const invalid = asm.local('invalid');
    asm.cmpi(count, 0);
    asm.blt(invalid);
    asm.cmpi(count, MULTICALL_MAX_ENTRIES + 1);
    asm.bge(invalid);
    asm.ld(buffer, caller, Vcpu.offset.multicallBuffer);
    asm.movi(index, 0);
    asm.loop((done) => {
      asm.cmp(index, count);
      asm.bge(done);
      multicallEntry(asm, entry, index, buffer);
      const operation = value;
      asm.ld(operation, entry, MulticallEntry.operation);
      asm.cmpi(operation, Hypercall.MmuUpdate);
      asm.bne(invalid);
      asm.addi(index, index, 1);
    });
    asm.movi(index, 0);
    asm.movi(completed, 0);
    asm.loop((done, next) => {
      asm.cmp(index, count);
      asm.bge(done);
      multicallEntry(asm, entry, index, buffer);
      asm.addi(index, index, 1);
      const entryDone = value;
      asm.ld(entryDone, entry, MulticallEntry.done);
      asm.ifNotZero(entryDone, () => {
        asm.addi(completed, completed, 1);
        asm.jmp(next);
      });
      asm.movi(result, ERROR_NO_SYSTEM_CALL);
      const operation = value;
      asm.ld(operation, entry, MulticallEntry.operation);
      asm.ifEqualImmediate(operation, Hypercall.MmuUpdate, () => {
        const mmu = aliases({ slot: reg.r2, frame: reg.r3 });
        asm.push(count);
        asm.ld(mmu.slot, entry, MulticallEntry.argument0);
        asm.ld(mmu.frame, entry, MulticallEntry.argument1);
        asm.call(ref('do_mmu_update'));
        asm.pop(count);
      });
      asm.st(entry, MulticallEntry.result, result);
      storeImmediate(asm, entry, MulticallEntry.done, 1, value);
      asm.addi(completed, completed, 1);
    });
    asm.mov(result, completed);
    asm.jmp(exit);
    errorExit(asm, invalid, ERROR_INVALID, exit);
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
  const { operation, cpu, domain, scheduleLock, domainLock } = aliases({
    operation: reg.r2, cpu: reg.r6, domain: reg.r9, scheduleLock: reg.r10, domainLock: reg.r11,
  });
  routine(asm, 'do_sched_op', [cpu, domain, scheduleLock, domainLock], (exit) => {
    const invalid = asm.local('invalid');
    asm.ifEqualImmediate(operation, SCHEDOP_YIELD, () => {
      asm.cli();
      raiseScheduleHere(asm);
      asm.sti();
      asm.movi(result, 0);
      asm.jmp(exit);
    });
    asm.cmpi(operation, SCHEDOP_BLOCK);
    asm.bne(invalid);
    asm.cli();
    smpProcessorId(asm, cpu);
    scheduleLockOf(asm, scheduleLock, cpu);
    asm.ld(domain, caller, Vcpu.offset.domain);
    asm.addi(domainLock, domain, Domain.offset.eventLock);
    asm.withLock(scheduleLock, () => {
      // ASSERT(v->runstate == running && v->is_running): only a running vCPU blocks
      asm.ld(value, caller, Vcpu.offset.runState);
      asm.addi(value, value, -RUN_STATE_RUNNING);
      asm.bugOn(value, BUG_RUN_STATE);
      asm.ld(value, caller, Vcpu.offset.isRunning);
      asm.addi(value, value, -1);
      asm.bugOn(value, BUG_RUN_STATE);
      asm.withLock(domainLock, () => {
        const pending = value;
        asm.ld(pending, domain, Domain.offset.pendingEvents);
        asm.ifZero(pending, () => storeImmediate(asm, caller, Vcpu.offset.runState, RUN_STATE_BLOCKED, value));
      });
    });
    raiseScheduleHere(asm);
    asm.sti();
    asm.movi(result, 0);
    asm.jmp(exit);
    errorExit(asm, invalid, ERROR_INVALID, exit);
  });
}

/** raise_softirq(this CPU, SOFTIRQ_SCHEDULE), keeping the argument register r2 */
function raiseScheduleHere(asm: Assembler): void {
  const raise = aliases({ cpu: reg.r1, bits: reg.r2 });
  asm.push(raise.bits);
  smpProcessorId(asm, raise.cpu);
  asm.movi(raise.bits, SOFTIRQ_SCHEDULE);
  asm.call(ref('raise_softirq'));
  asm.pop(raise.bits);
}

/** set_timer_op(r2 = microseconds from now): arm the vCPU's one-shot timer. */
function emitSetTimerOp(asm: Assembler): void {
  const { timer, expiry, delayUs } = aliases({ timer: reg.r0, expiry: reg.r1, delayUs: reg.r2 });
  routine(asm, 'do_set_timer_op', [], (exit) => {
    const invalid = asm.local('invalid');
    asm.cmpi(delayUs, 0);
    asm.blt(invalid);
    // set_timer(&caller->timer, now + delay)
    asm.rdtime(expiry);
    asm.add(expiry, expiry, delayUs);
    asm.addi(timer, caller, Vcpu.offset.timer);
    asm.cli();
    asm.call(ref('set_timer'));
    asm.sti();
    asm.movi(result, 0);
    asm.jmp(exit);
    errorExit(asm, invalid, ERROR_INVALID, exit);
  });
}

/** event_channel_op(r2 = domain id, r3 = port) */
function emitEventChannelOp(asm: Assembler): void {
  const { domain, port, domainId, portArgument } = aliases({ domain: reg.r0, port: reg.r1, domainId: reg.r2, portArgument: reg.r3 });
  routine(asm, 'do_event_channel_op', [], (exit) => {
    const invalid = asm.local('invalid');
    const noDomain = asm.local('no_domain');
    checkRange(asm, domainId, MAX_DOMAINS, invalid);
    checkRange(asm, portArgument, EVENT_PORT_COUNT, invalid);
    // evtchn_send(domain_table[domain id], port)
    tableEntry(asm, domain, DOMAIN_TABLE, domainId);
    asm.ld(domain, domain, 0);
    asm.cmpi(domain, 0);
    asm.beq(noDomain);
    asm.mov(port, portArgument);
    asm.cli();
    asm.call(ref('evtchn_send'));
    asm.sti();
    asm.movi(result, 0);
    asm.jmp(exit);
    errorExit(asm, invalid, ERROR_INVALID, exit);
    errorExit(asm, noDomain, ERROR_NO_DOMAIN, exit);
  });
}

/** The registers domctl works in: its operation and argument, and the domain it acts on. */
const domctl = aliases({
  operation: reg.r2, argument: reg.r3, domainId: reg.r6, caller, domain: reg.r9, lock: reg.r10, target: reg.r11, vcpu: reg.r12,
});

/**
 * domctl(r2 = create | destroy, r3 = CPU for create, domain id for destroy). Privileged only.
 * Create takes a free domain structure from the pool, resets it, publishes it in the domain
 * table and wakes its vCPU; returns the new domain id.
 */
function emitDomctl(asm: Assembler): void {
  const { operation, domainId, domain, lock, target, vcpu } = domctl;
  routine(asm, 'do_domctl', [domainId, domain, lock, target, vcpu], (exit) => {
    const invalid = asm.local('invalid');
    const permission = asm.local('permission');
    asm.ld(domain, caller, Vcpu.offset.domain);
    const privileged = value;
    asm.ld(privileged, domain, Domain.offset.privileged);
    asm.cmpi(privileged, 0);
    asm.beq(permission);
    asm.cli();
    asm.movi(lock, DOMAIN_LIST_LOCK);
    asm.ifEqualImmediate(operation, DOMCTL_CREATE, () => emitDomainCreate(asm, exit));
    asm.ifEqualImmediate(operation, DOMCTL_DESTROY, () => emitDomainDestroy(asm, exit));
    asm.sti();
    errorExit(asm, invalid, ERROR_INVALID, exit);
    errorExit(asm, permission, ERROR_PERMISSION, exit);
  });
}

/** r3 = CPU; r10 = domain-list lock; interrupts disabled. */
function emitDomainCreate(asm: Assembler, exit: LabelReference): void {
  const { argument: cpu, domainId, lock, target } = domctl;
  const full = asm.local('full');
  asm.spinLock(lock);
  // the first free id (0 is the PrivVM's)
  asm.movi(domainId, 1);
  asm.loop((found) => {
    asm.cmpi(domainId, MAX_DOMAINS);
    asm.bge(full);
    const published = value;
    tableEntry(asm, published, DOMAIN_TABLE, domainId);
    asm.ld(published, published, 0);
    asm.cmpi(published, 0);
    asm.beq(found);
    asm.addi(domainId, domainId, 1);
  });
  // target = domain_pool[id], reset and published
  tableEntry(asm, target, DOMAIN_POOL, domainId);
  asm.ld(target, target, 0);
  resetDomain(asm, target, cpu);
  const slot = value;
  tableEntry(asm, slot, DOMAIN_TABLE, domainId);
  asm.st(slot, 0, target);
  asm.spinUnlock(lock);
  const wakeVcpu = result;
  asm.ld(wakeVcpu, target, Domain.offset.vcpu);
  asm.call(ref('vcpu_wake'));
  asm.sti();
  asm.mov(result, domainId);
  asm.jmp(exit);
  asm.label(full);
  asm.spinUnlock(lock);
  asm.sti();
  asm.movi(result, ERROR_NO_MEMORY);
  asm.jmp(exit);
}

/** Fresh state for a pooled domain (r11) whose vCPU will run on CPU r3. */
function resetDomain(asm: Assembler, domain: Register, cpu: Register): void {
  const { vcpu } = domctl;
  // inUse = 1; pendingEvents = 0, which leaves `value` 0 to clear the page-table entries with
  storeImmediate(asm, domain, Domain.offset.inUse, 1, value);
  storeImmediate(asm, domain, Domain.offset.pendingEvents, 0, value);
  for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) asm.st(domain, Domain.offset.pageTable + slot, value);
  asm.ld(vcpu, domain, Domain.offset.vcpu);
  asm.st(vcpu, Vcpu.offset.processor, cpu);
  asm.st(vcpu, Vcpu.offset.timer + Timer.offset.cpu, cpu);
  asm.movi(value, 0);
  for (const field of ['isRunning', 'resumeToken', 'returnValue', 'hypercallInProgress', 'runtimeUs'] as const) {
    asm.st(vcpu, Vcpu.offset[field], value);
  }
  storeImmediate(asm, vcpu, Vcpu.offset.runState, RUN_STATE_BLOCKED, value);
  pinPageTable(asm, domain, vcpu, true);
}

/**
 * Under the domain's big lock, its page-table page pinned (referenced and typed as a validated
 * page table, its entries being empty: Xen's MMUEXT_PIN_L1_TABLE) or unpinned (reference and type
 * dropped), through `descriptor`.
 */
function pinPageTable(asm: Assembler, domain: Register, descriptor: Register, pin: boolean): void {
  const lock = reg.r4;
  asm.addi(lock, domain, Domain.offset.lock);
  asm.withLock(lock, () => {
    asm.ld(value, domain, Domain.offset.pageTableFrame);
    frameDescriptor(asm, descriptor, value);
    addToField(asm, descriptor, FrameDescriptor.offset.useCount, pin ? 1 : -1, value);
    storeImmediate(asm, descriptor, FrameDescriptor.offset.type, pin ? FRAME_TYPE_PAGE_TABLE : FRAME_TYPE_NONE, value);
    storeImmediate(asm, descriptor, FrameDescriptor.offset.validated, pin ? 1 : 0, value);
  });
}

/**
 * Destroy domain r3 if its vCPU is blocked and not running: unpublish it, cancel its timer,
 * drop its page-table references and then its page-table page's type. Returns 0, or an error.
 */
function emitDomainDestroy(asm: Assembler, exit: LabelReference): void {
  const { argument: domainId, lock, target, vcpu } = domctl;
  const busy = asm.local('destroy_busy');
  const invalid = asm.local('destroy_invalid');
  const missing = asm.local('destroy_missing');
  const enableInterrupts = asm.local('destroy_sti');
  checkRange(asm, domainId, MAX_DOMAINS, invalid);
  asm.spinLock(lock);
  const slot = value;
  tableEntry(asm, slot, DOMAIN_TABLE, domainId);
  asm.ld(target, slot, 0);
  asm.cmpi(target, 0);
  asm.beq(missing);
  asm.ld(vcpu, target, Domain.offset.vcpu);
  const runState = domctl.domainId;
  asm.ld(runState, vcpu, Vcpu.offset.runState);
  asm.cmpi(runState, RUN_STATE_BLOCKED);
  asm.bne(busy);
  // unpublish: domain_table[id] = 0, target->in_use = 0
  const zero = domctl.domainId;
  asm.movi(zero, 0);
  asm.st(slot, 0, zero);
  asm.st(target, Domain.offset.inUse, zero);
  asm.spinUnlock(lock);
  const timer = result;
  asm.addi(timer, vcpu, Vcpu.offset.timer);
  asm.call(ref('kill_timer'));
  // every page-table slot unmapped, as the destroyed domain's vCPU
  asm.push(caller);
  asm.mov(caller, vcpu);
  const mmu = aliases({ slot: reg.r2, frame: reg.r3 });
  for (let index = 0; index < PAGE_TABLE_SLOTS; index++) {
    asm.movi(mmu.slot, index);
    asm.movi(mmu.frame, 0);
    asm.call(ref('do_mmu_update'));
  }
  asm.pop(caller);
  pinPageTable(asm, target, vcpu, false);
  asm.cli();
  asm.movi(result, 0);
  asm.jmp(exit);
  asm.label(busy);
  asm.spinUnlock(lock);
  errorExit(asm, invalid, ERROR_INVALID, enableInterrupts);
  asm.label(missing);
  asm.spinUnlock(lock);
  asm.movi(result, ERROR_NO_DOMAIN);
  asm.label(enableInterrupts);
  asm.sti();
  asm.jmp(exit);
}

/**
 * physdev_op(r2 = command, r3 = vector), Xen's PHYSDEVOP_eoi (pirq_guest_eoi, desc_guest_eoi):
 * the caller has handled a device interrupt routed to it. Mark the vector ready and end what is
 * ready at the interrupt controller that holds it: here, or by an event-check IPI to that CPU,
 * whose handler flushes. A vector not in flight (a new instance after a reboot knows of none) is
 * left alone: nothing records that it is still in service.
 */
function emitPhysdevOp(asm: Assembler): void {
  const { command, vector, cpu, slot, self } = aliases({ command: reg.r2, vector: reg.r3, cpu: reg.r4, slot: reg.r5, self: reg.r6 });
  routine(asm, 'do_physdev_op', [cpu, slot, self], (exit) => {
    const invalid = asm.local('invalid');
    const unknown = asm.local('unknown');
    asm.cmpi(command, PHYSDEVOP_EOI);
    asm.bne(unknown);
    checkRange(asm, vector, VECTOR_COUNT, invalid);
    // the interrupt must be routed to the caller's domain
    tableEntry(asm, slot, IRQ_DOMAIN_TABLE, vector);
    asm.ld(slot, slot, 0);
    const domain = cpu;
    asm.ld(domain, caller, Vcpu.offset.domain);
    asm.ld(domain, domain, Domain.offset.id);
    asm.cmp(slot, domain);
    asm.bne(invalid);
    asm.cli();
    tableEntry(asm, slot, IRQ_EOI_CPU_TABLE, vector);
    asm.ld(cpu, slot, 0);
    asm.ifNotZero(cpu, () => {
      // irq_eoi_ready[vector] = 1
      tableEntry(asm, slot, IRQ_EOI_READY_TABLE, vector);
      storeImmediate(asm, slot, 0, 1, self);
      asm.addi(cpu, cpu, -1);
      smpProcessorId(asm, self);
      asm.ifEqual(
        cpu,
        self,
        () => asm.call(ref('flush_ready_eoi')),
        () => {
          asm.movi(self, VECTOR_EVENT_CHECK);
          asm.ipi(cpu, self);
        },
      );
    });
    asm.sti();
    asm.movi(result, 0);
    asm.jmp(exit);
    errorExit(asm, invalid, ERROR_INVALID, exit);
    errorExit(asm, unknown, ERROR_NO_SYSTEM_CALL, exit);
  });
}
