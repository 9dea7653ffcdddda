/**
 * Where the hypervisor lives in machine memory, and the shape of its structures.
 *
 * Word addresses. As on Xen, whose direct map covers all of the host's RAM, nearly every address
 * below DIRECT_MAP_END is mapped: the hypervisor's segments, and between them direct-mapped memory
 * that holds none of its state. Only the null page and one guard page below each stack are left
 * unmapped (a stack overflow faults), and nothing at or above DIRECT_MAP_END. So a pointer or
 * stack pointer with a flipped bit faults about as often as on Xen (a low bit keeps it mapped, a
 * high one does not), and otherwise reads or writes somewhere silently.
 */
import { struct } from '../machine/assembler.js';
import { PAGE_WORDS, type Segment } from '../machine/memory.js';
import { FRAME_COUNT, HYPERCALL_COUNT, MAX_DOMAINS, MULTICALL_ENTRY_WORDS, MULTICALL_MAX_ENTRIES, PAGE_TABLE_SLOTS, RING_WORDS } from './abi.js';

export const MAX_CPUS = 8;

export const CODE_BASE = 0x1000;
export const CODE_WORDS = 0x1000;
export const STATIC_BASE = 0x3000;
export const STATIC_WORDS = 0x400;
export const HEAP_BASE = 0x4000;
export const HEAP_WORDS = 0x2000;
export const STACK_REGION_BASE = 0x8000;
/**
 * Each CPU's stack has an unmapped guard page below it. As on Xen (`get_cpu_info()`), a stack
 * is a block of STACK_WORDS words aligned to its size that ends with the CPU's `cpu_info`: the
 * hypervisor finds which CPU it runs on from its stack pointer alone (rounded down to the block,
 * then the block's last word, its index), so a stack pointer flipped to elsewhere in mapped
 * memory reads some other word as its CPU. As in Xen's, the index sits above a guest register
 * frame's worth of words (Xen's `guest_cpu_user_regs`; the toy keeps guest contexts in the vCPU
 * and leaves them unused), so a stack that unwinds a few words too far does not reach it.
 */
export const STACK_WORDS = 0x100;
export const STACK_STRIDE = 0x200;
/** the words of a block's `cpu_info`: the guest frame's 25, then the CPU's index */
export const CPU_INFO_WORDS = 26;
/** the offset of the CPU's index in a stack block: its last word */
export const CPU_INFO_OFFSET = STACK_WORDS - 1;

export function stackBase(cpu: number): number {
  return STACK_REGION_BASE + cpu * STACK_STRIDE;
}
/** where the stack starts (pushes go below it): just under the block's `cpu_info` */
export function stackTop(cpu: number): number {
  return stackBase(cpu) + STACK_WORDS - CPU_INFO_WORDS;
}

/**
 * Each CPU's NMI and double-fault stacks (x86's IST): an NMI, and a double fault, run there
 * whatever the stack pointer was, so a corrupted one cannot keep the watchdog or the
 * double-fault handler from running. Each has an unmapped guard page below it; the two share
 * one STACK_WORDS block that ends, above the double-fault stack, with the CPU's `cpu_info` (as
 * Xen's IST stacks lie in the CPU's stack block).
 */
export const IST_REGION_BASE = STACK_REGION_BASE + MAX_CPUS * STACK_STRIDE;
export const IST_STACK_WORDS = 0x40;
const IST_STRIDE = STACK_WORDS;

export function nmiStackBase(cpu: number): number {
  return istBlock(cpu) + IST_STACK_WORDS;
}
export function nmiStackTop(cpu: number): number {
  return nmiStackBase(cpu) + IST_STACK_WORDS;
}
export function doubleFaultStackBase(cpu: number): number {
  return nmiStackBase(cpu) + 2 * IST_STACK_WORDS;
}
function istBlock(cpu: number): number {
  return IST_REGION_BASE + cpu * IST_STRIDE;
}
export function doubleFaultStackTop(cpu: number): number {
  return istBlock(cpu) + STACK_WORDS - CPU_INFO_WORDS;
}

/** The word a CPU with this stack pointer reads as its index: its block's last word. */
export function cpuInfoAddressOf(stackPointer: number): number {
  return (stackPointer & -STACK_WORDS) + CPU_INFO_OFFSET;
}

/** The words that hold `cpu`'s index: in the `cpu_info` of its stack block and of its IST block. */
export function cpuInfoAddresses(cpu: number): number[] {
  return [stackBase(cpu) + CPU_INFO_OFFSET, istBlock(cpu) + CPU_INFO_OFFSET];
}

/** The end of the mapped address space: half the bits of a word address select mapped memory. */
export const DIRECT_MAP_END = 0x10000;

export function segmentsFor(cpuCount: number): Segment[] {
  const hypervisor = hypervisorSegments(cpuCount);
  return [...hypervisor, ...directMapSegments(hypervisor)];
}

/** The pages left unmapped below DIRECT_MAP_END: the null page and one guard page below each stack. */
function unmappedPages(stacks: readonly Segment[]): number[] {
  return [0, ...stacks.map((stack) => stack.base - PAGE_WORDS)];
}

/** Direct-mapped memory: every page below DIRECT_MAP_END that is neither a segment nor unmapped. */
function directMapSegments(hypervisor: readonly Segment[]): Segment[] {
  const taken = new Set(unmappedPages(hypervisor.filter((segment) => segment.kind === 'stack')));
  for (const segment of hypervisor) {
    for (let page = segment.base; page < segment.base + segment.sizeWords; page += PAGE_WORDS) taken.add(page);
  }
  const free: Segment[] = [];
  for (let page = 0; page < DIRECT_MAP_END; page += PAGE_WORDS) {
    if (taken.has(page)) continue;
    const last = free.at(-1);
    if (last !== undefined && last.base + last.sizeWords === page) free[free.length - 1] = { ...last, sizeWords: last.sizeWords + PAGE_WORDS };
    else free.push({ name: `directMap@${page.toString(16)}`, kind: 'directMap', base: page, sizeWords: PAGE_WORDS });
  }
  return free;
}

function hypervisorSegments(cpuCount: number): Segment[] {
  const segments: Segment[] = [
    { name: 'code', kind: 'code', base: CODE_BASE, sizeWords: CODE_WORDS },
    { name: 'static', kind: 'static', base: STATIC_BASE, sizeWords: STATIC_WORDS },
    { name: 'heap', kind: 'heap', base: HEAP_BASE, sizeWords: HEAP_WORDS },
  ];
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    segments.push({ name: `stack${cpu}`, kind: 'stack', base: stackBase(cpu), sizeWords: STACK_WORDS });
  }
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    segments.push({ name: `nmiStack${cpu}`, kind: 'stack', base: nmiStackBase(cpu), sizeWords: IST_STACK_WORDS });
    segments.push({ name: `doubleFaultStack${cpu}`, kind: 'stack', base: doubleFaultStackBase(cpu), sizeWords: IST_STACK_WORDS });
  }
  return segments;
}

// --- interrupt vectors ------------------------------------------------------------------------

export const VECTOR_TIMER = 20;
export const VECTOR_EVENT_CHECK = 24;
/** raised by the recovery mechanism to stop CPUs (used by later layers) */
export const VECTOR_RECOVERY = 28;

// --- structures ----------------------------------------------------------------------------------

export const RUN_STATE_RUNNING = 0;
export const RUN_STATE_RUNNABLE = 1;
export const RUN_STATE_BLOCKED = 2;

export const FRAME_TYPE_NONE = 0;
export const FRAME_TYPE_WRITABLE = 1;
/** Xen's PGT_l1_page_table: a live domain's page-table page, validated when typed */
export const FRAME_TYPE_PAGE_TABLE = 2;

/**
 * A frame's type and validated bit when no update is in flight: a live domain's page-table page
 * is a validated page table; any other frame referenced by page-table entries is writable.
 */
export function frameStateFor(useCount: number, pageTable = false): { readonly type: number; readonly validated: number } {
  if (pageTable) return { type: FRAME_TYPE_PAGE_TABLE, validated: 1 };
  return useCount > 0 ? { type: FRAME_TYPE_WRITABLE, validated: 1 } : { type: FRAME_TYPE_NONE, validated: 0 };
}

export const SOFTIRQ_SCHEDULE = 1;
/** run expired timers: raised by the local timer interrupt, run at the next softirq point, as in Xen */
export const SOFTIRQ_TIMER = 2;

/**
 * mmu_update's undo log: the step the update has begun. Each is logged, with the value the step
 * changes, before the step runs (a write-ahead log), so undo restores old values and never
 * misses a step that ran but was not yet logged.
 */
export const MMU_LOG_IDLE = 0;
export const MMU_LOG_GET_NEW = 1;
export const MMU_LOG_WRITE_ENTRY = 2;
export const MMU_LOG_PUT_OLD = 3;

export const Timer = struct('timer', {
  expiresUs: 1,
  next: 1,
  previous: 1,
  handler: 1,
  data: 1,
  cpu: 1,
  active: 1,
  inHandler: 1,
  periodUs: 1,
});

export const Vcpu = struct('vcpu', {
  id: 1,
  domain: 1,
  processor: 1,
  runState: 1,
  isRunning: 1,
  runqueueNext: 1,
  runqueuePrevious: 1,
  resumeToken: 1,
  returnValue: 1,
  hypercallNumber: 1,
  hypercallArguments: 3,
  hypercallInProgress: 1,
  /** set by recovery: the abandoned hypercall is to be re-executed by the guest */
  restartHypercall: 1,
  /** undo log of mmu_update (MMU_LOG_*): the step begun, the slot, its old and new frames, their use counts before the update */
  mmuLogStage: 1,
  mmuLogSlot: 1,
  mmuLogOld: 1,
  mmuLogNew: 1,
  mmuLogOldCount: 1,
  mmuLogNewCount: 1,
  multicallBuffer: 1,
  runtimeUs: 1,
  /** runstate accounting, as Xen's: when the vCPU last started running, and its time running */
  runstateEntryUs: 1,
  runningUs: 1,
  timer: Timer.sizeWords,
});

export const Domain = struct('domain', {
  id: 1,
  inUse: 1,
  privileged: 1,
  vcpu: 1,
  /**
   * The domain's big lock (Xen's domain_lock, spin_lock_recursive): page-table updates take it
   * with interrupts enabled, so an interrupt or IPI can stop a CPU that holds it.
   */
  lock: 1,
  /**
   * Serialises the event senders and sched_op(block)'s check of pendingEvents; taken with
   * interrupts disabled, as it is also taken in interrupt context. The exit path takes the
   * pending bits without it (senders set them atomically).
   */
  eventLock: 1,
  pendingEvents: 1,
  ring: 1,
  /** the frame of the page holding pageTable's entries (its descriptor is typed, referenced and page-locked per update) */
  pageTableFrame: 1,
  pageTable: PAGE_TABLE_SLOTS,
});

export const FrameDescriptor = struct('frame', {
  owner: 1,
  type: 1,
  validated: 1,
  useCount: 1,
  /**
   * Xen's PGT_locked (page_lock): set while a CPU updates the entries of this page-table page;
   * a CPU that finds it set spins until it clears.
   */
  locked: 1,
});

/** Interrupt vectors 0 (the NMI) to 31: the interrupt table and every per-vector table has this many entries. */
export const VECTOR_COUNT = 32;

/** Device vectors a CPU can hold in service awaiting their guests' EOI (Xen: NR_DYNAMIC_VECTORS). */
export const PENDING_EOI_DEPTH = 4;

export const PerCpu = struct('percpu', {
  current: 1,
  idleVcpu: 1,
  runqueueHead: 1,
  runqueueTail: 1,
  timerHead: 1,
  irqCount: 1,
  softirqPending: 1,
  watchdogCount: 1,
  watchdogLastSeen: 1,
  watchdogStrikes: 1,
  contextSwitches: 1,
  stackTop: 1,
  schedulerTickTimer: 1,
  watchdogTimer: 1,
  /** set by a CPU as it parks for a recovery; the recovery entry waits for every online CPU's */
  recoveryParked: 1,
  reserved: 1,
  /**
   * Xen's pending-EOI stack (irq.c's `pending_eoi`): the vectors of guest-bound interrupts this
   * CPU took and has not acknowledged at its interrupt controller, newest last. The controller's
   * end-of-interrupt always ends the highest-priority vector in service, so they are acknowledged
   * from the top, each once its guest has said it is done (ready).
   */
  pendingEoiCount: 1,
  pendingEoi: PENDING_EOI_DEPTH,
});

// --- static data -----------------------------------------------------------------------------

/** All static locks sit in one region, so that recovery can find and release them. */
export const StaticLocks = struct('static-locks', {
  domainList: 1,
  time: 1,
});

/**
 * Each CPU's scheduler and timer locks. As in Xen, whose per-CPU areas (schedule_data, the timer
 * heap) are allocated from the heap at boot, they live in the heap: a reboot keeps them, and the
 * heap-lock repair, not the static-lock one, releases them.
 */
export const CpuLocks = struct('cpu-locks', {
  schedule: 1,
  timers: 1,
});

export const StaticData = struct('static', {
  interruptTable: VECTOR_COUNT,
  hypercallTable: HYPERCALL_COUNT,
  locks: StaticLocks.sizeWords,
  perCpu: PerCpu.sizeWords * MAX_CPUS,
  domainTable: MAX_DOMAINS,
  /** preallocated domain structures, one per domain id, in use or not */
  domainPool: MAX_DOMAINS,
  irqDomain: VECTOR_COUNT,
  irqPort: VECTOR_COUNT,
  /**
   * Per vector, Xen's irq_desc state for a guest-bound interrupt in flight: the CPU whose
   * interrupt controller holds it in service (1 + CPU; 0 = none), and whether its guest has
   * signalled EOI (`ready`). Static: a reboot re-initialises them.
   */
  irqEoiCpu: VECTOR_COUNT,
  irqEoiReady: VECTOR_COUNT,
  frameTable: 1,
  /** the heap array of CpuLocks, one per CPU */
  cpuLocks: 1,
  wallclockUs: 1,
  timeSyncTimer: 1,
  cpuCount: 1,
  /**
   * while a recovery runs: 1 + the CPU leading it (the first to reach the panic path's claim);
   * other CPUs' NMI and panic paths park instead
   */
  recoveryInProgress: 1,
  /** word 0: the exception handler; word 1: the double-fault handler (an IDT) */
  exceptionTable: 2,
  /** the recovery routine panic() jumps to */
  recoveryEntry: 1,
  /** bit c set: CPU c is online (cpu_online_map) */
  onlineCpus: 1,
  /** per CPU: the destination an IPI to it is sent to (its APIC id) */
  ipiDestination: MAX_CPUS,
  /** non-zero: the recovery entry sends an NMI to CPUs the recovery IPI did not stop */
  recoveryNmi: 1,
});

export function staticAddress(field: keyof typeof StaticData.offset): number {
  return STATIC_BASE + StaticData.offset[field];
}

export const INTERRUPT_TABLE = staticAddress('interruptTable');
export const HYPERCALL_TABLE = staticAddress('hypercallTable');
export const LOCKS_BASE = staticAddress('locks');
export const LOCKS_WORDS = StaticLocks.sizeWords;
export const PER_CPU_BASE = staticAddress('perCpu');
export const DOMAIN_TABLE = staticAddress('domainTable');
export const DOMAIN_POOL = staticAddress('domainPool');
export const IRQ_DOMAIN_TABLE = staticAddress('irqDomain');
export const IRQ_PORT_TABLE = staticAddress('irqPort');
export const IRQ_EOI_CPU_TABLE = staticAddress('irqEoiCpu');
export const IRQ_EOI_READY_TABLE = staticAddress('irqEoiReady');
export const FRAME_TABLE_POINTER = staticAddress('frameTable');
export const WALLCLOCK = staticAddress('wallclockUs');
export const TIME_SYNC_TIMER_POINTER = staticAddress('timeSyncTimer');
export const RECOVERY_IN_PROGRESS = staticAddress('recoveryInProgress');
export const EXCEPTION_TABLE = staticAddress('exceptionTable');
export const RECOVERY_ENTRY_POINTER = staticAddress('recoveryEntry');
export const ONLINE_CPUS = staticAddress('onlineCpus');
export const IPI_DESTINATIONS = staticAddress('ipiDestination');
export const RECOVERY_NMI = staticAddress('recoveryNmi');
export const CPU_LOCKS_POINTER = staticAddress('cpuLocks');
export const DOMAIN_LIST_LOCK = LOCKS_BASE + StaticLocks.offset.domainList;
export const TIME_LOCK = LOCKS_BASE + StaticLocks.offset.time;

/** The address of CPU `cpu`'s schedule lock, given the heap array boot put the CPU locks in. */
export function scheduleLockAddress(cpuLocks: number, cpu: number): number {
  return cpuLocks + cpu * CpuLocks.sizeWords + CpuLocks.offset.schedule;
}

export function timerLockAddress(cpuLocks: number, cpu: number): number {
  return cpuLocks + cpu * CpuLocks.sizeWords + CpuLocks.offset.timers;
}

/** A lock in a heap structure: its address, and its name as the audit reports it. */
export interface HeapLock {
  readonly address: number;
  readonly name: string;
}

/** Each CPU's schedule and timer locks (Xen allocates them with its per-CPU areas). */
export function cpuHeapLocks(cpuLocks: number, cpuCount: number): HeapLock[] {
  return Array.from({ length: cpuCount }, (_, cpu) => [
    { address: scheduleLockAddress(cpuLocks, cpu), name: `schedule lock of cpu ${cpu}` },
    { address: timerLockAddress(cpuLocks, cpu), name: `timer lock of cpu ${cpu}` },
  ]).flat();
}

/** Each given domain's big lock and event lock (`domain`: the address of domain `id`'s structure). */
export function domainHeapLocks(domains: readonly { readonly id: number; readonly domain: number }[]): HeapLock[] {
  return domains.flatMap(({ id, domain }) => [
    { address: domain + Domain.offset.lock, name: `lock of domain ${id}` },
    { address: domain + Domain.offset.eventLock, name: `event lock of domain ${id}` },
  ]);
}

export function perCpuAddress(cpu: number): number {
  return PER_CPU_BASE + cpu * PerCpu.sizeWords;
}

// --- heap ----------------------------------------------------------------------------------------

export const MULTICALL_BUFFER_WORDS = MULTICALL_MAX_ENTRIES * MULTICALL_ENTRY_WORDS;
export const FRAME_TABLE_WORDS = FRAME_COUNT * FrameDescriptor.sizeWords;
export { RING_WORDS };

/** Recurring hypervisor timers, in microseconds. */
export const SCHEDULER_TICK_US = 10_000;
export const WATCHDOG_TICK_US = 100_000;
export const TIME_SYNC_US = 50_000;
/** consecutive watchdog NMIs without the counter moving before a hang is declared */
export const WATCHDOG_STRIKES = 3;
/** when no timer is pending, the local timer is still programmed this far ahead */
export const IDLE_TIMER_US = 10_000;

/** Assertion codes (`bug_on`) and panic codes, so a detection names its cause. */
export const BUG_IRQ_COUNT_AT_SCHEDULE = 1;
export const BUG_CURRENT_NOT_RUNNING = 2;
export const BUG_RUNQUEUE_CORRUPT = 3;
export const BUG_TIMER_LIST_CORRUPT = 4;
export const BUG_FRAME_COUNT_NEGATIVE = 5;
/** The credit scheduler's checks, where Xen has them (BUG_ON and ASSERT in schedule.c, sched_credit.c). */
export const BUG_RUNQUEUE_INSERT_QUEUED = 6;
export const BUG_RUNQUEUE_LINKS = 7;
export const BUG_NEXT_ALREADY_RUNNING = 8;
export const BUG_NEXT_OTHER_CPU = 9;
export const BUG_RUN_STATE = 10;
/** irq.c: ASSERT(sp < NR_DYNAMIC_VECTORS - 1) on pushing a pending EOI */
export const BUG_PENDING_EOI_OVERFLOW = 11;
/** sched_credit.c: BUG_ON(is_idle_vcpu(current) || list_empty(runq)) when the current vCPU blocks */
export const BUG_RUNQUEUE_EMPTY = 12;
export const PANIC_WATCHDOG_HANG = 100;

export const assertionNames: Readonly<Record<number, string>> = {
  [BUG_IRQ_COUNT_AT_SCHEDULE]: 'irq_count non-zero at context switch',
  [BUG_CURRENT_NOT_RUNNING]: 'current vCPU not marked running',
  [BUG_RUNQUEUE_CORRUPT]: 'runqueue entry not runnable',
  [BUG_TIMER_LIST_CORRUPT]: 'timer list corrupt',
  [BUG_FRAME_COUNT_NEGATIVE]: 'frame use count went negative',
  [BUG_RUNQUEUE_INSERT_QUEUED]: 'inserting a vCPU already on a runqueue',
  [BUG_RUNQUEUE_LINKS]: 'runqueue links inconsistent',
  [BUG_NEXT_ALREADY_RUNNING]: 'switching to a vCPU already running',
  [BUG_NEXT_OTHER_CPU]: 'switching to a vCPU of another CPU',
  [BUG_RUN_STATE]: 'vCPU run state inconsistent',
  [BUG_PENDING_EOI_OVERFLOW]: 'pending-EOI stack overflow',
  [BUG_RUNQUEUE_EMPTY]: 'runqueue empty (its idle vCPU lost)',
};

/** Idle vCPUs have ids from here, outside the domain id space. */
export const IDLE_VCPU_ID_BASE = 64;
