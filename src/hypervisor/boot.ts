/**
 * Boot: lay the hypervisor out in a fresh machine's memory for a set of domains. Writes code,
 * the interrupt and hypercall tables, per-CPU areas, the heap structures (frame table, the pool
 * of domain and vCPU structures, rings, multicall buffers, timers) and the recurring timers.
 */
import type { Program } from '../machine/assembler.js';
import type { Memory } from '../machine/memory.js';
import {
  FRAMES_OWNED_PER_DOMAIN,
  FRAME_COUNT,
  HYPERCALL_COUNT,
  MAX_DOMAINS,
  PORT_DISK,
  PORT_NIC,
  PRIVILEGED_DOMAIN_ID,
  VECTOR_DISK,
  VECTOR_NIC,
  firstFrameOf,
  pageTableFrameOf,
} from './abi.js';
import { entryPoint } from './code/program.js';
import { frameField } from './frames.js';
import { appendRunqueue, insertTimer, rawWords } from './lists.js';
import { hypercallHandlers } from './code/hypercalls.js';
import {
  DOMAIN_POOL,
  DOMAIN_TABLE,
  Domain,
  CPU_LOCKS_POINTER,
  CpuLocks,
  EXCEPTION_TABLE,
  IPI_DESTINATIONS,
  MAX_CPUS,
  ONLINE_CPUS,
  RECOVERY_ENTRY_POINTER,
  FRAME_TABLE_POINTER,
  FRAME_TABLE_WORDS,
  FrameDescriptor,
  frameStateFor,
  HEAP_BASE,
  HEAP_WORDS,
  HYPERCALL_TABLE,
  IDLE_VCPU_ID_BASE,
  INTERRUPT_TABLE,
  VECTOR_COUNT,
  IRQ_DOMAIN_TABLE,
  IRQ_PORT_TABLE,
  MULTICALL_BUFFER_WORDS,
  PerCpu,
  RING_WORDS,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNABLE,
  RUN_STATE_RUNNING,
  SCHEDULER_TICK_US,
  STATIC_BASE,
  StaticData,
  TIME_SYNC_TIMER_POINTER,
  TIME_SYNC_US,
  WALLCLOCK,
  Timer,
  VECTOR_EVENT_CHECK,
  VECTOR_RECOVERY,
  VECTOR_TIMER,
  Vcpu,
  WATCHDOG_TICK_US,
  cpuInfoAddresses,
  perCpuAddress,
  stackTop,
} from './layout.js';

export interface BootDomain {
  readonly domainId: number;
  readonly cpu: number;
}

export interface BootConfig {
  readonly cpuCount: number;
  /** domains running from boot; the PrivVM must be among them */
  readonly domains: readonly BootDomain[];
  /** the intended-sharing policy enforced with protection keys (PUSh); off by default */
  readonly protectionKeys?: boolean;
}

/** Where boot put each heap structure; the audit, the guests' shared pages and recovery use it. */
export interface HeapLayout {
  readonly frameTable: number;
  /** by domain id, for every id in the pool */
  readonly domains: readonly number[];
  readonly vcpus: readonly number[];
  readonly rings: readonly number[];
  readonly multicallBuffers: readonly number[];
  /** by CPU */
  readonly idleVcpus: readonly number[];
  readonly schedulerTickTimers: readonly number[];
  readonly watchdogTimers: readonly number[];
  readonly timeSyncTimer: number;
  /** CpuLocks for every CPU, one after the other */
  readonly cpuLocks: number;
  /** first heap word not allocated at boot */
  readonly heapEnd: number;
}

class HeapAllocator {
  private next = HEAP_BASE;

  allocate(words: number): number {
    const address = this.next;
    this.next += words;
    if (this.next > HEAP_BASE + HEAP_WORDS) throw new Error('hypervisor heap exhausted at boot');
    return address;
  }

  get end(): number {
    return this.next;
  }
}

export function bootHypervisor(memory: Memory, program: Program, config: BootConfig): HeapLayout {
  if (!config.domains.some((domain) => domain.domainId === PRIVILEGED_DOMAIN_ID)) throw new Error('boot needs the PrivVM');
  const words = memory.words;
  words.set(program.words, program.base);
  writeInterruptTable(words, program);
  writeHypercallTable(words, program);
  const layout = allocateHeap(config.cpuCount);
  writeFrameTable(words, layout);
  writeDomainPool(words, layout, program);
  writeIrqRouting(words);
  writePanicStatics(words, program, config.cpuCount);
  writePerCpuAreas(words, layout, program, config.cpuCount, 0);
  for (const domain of config.domains) startDomain(words, layout, domain);
  scheduleBootVcpus(words, layout, config);
  return layout;
}

function writeInterruptTable(words: Int32Array, program: Program): void {
  const spurious = entryPoint(program, 'spurious_interrupt');
  for (let vector = 1; vector < VECTOR_COUNT; vector++) words[INTERRUPT_TABLE + vector] = spurious;
  words[INTERRUPT_TABLE] = entryPoint(program, 'nmi_handler');
  words[INTERRUPT_TABLE + VECTOR_TIMER] = entryPoint(program, 'timer_interrupt');
  words[INTERRUPT_TABLE + VECTOR_EVENT_CHECK] = entryPoint(program, 'event_check_interrupt');
  words[INTERRUPT_TABLE + VECTOR_RECOVERY] = entryPoint(program, 'recovery_interrupt');
  for (const vector of [VECTOR_DISK, VECTOR_NIC]) {
    words[INTERRUPT_TABLE + vector] = entryPoint(program, `device_interrupt_${vector}`);
  }
}

function writeHypercallTable(words: Int32Array, program: Program): void {
  for (let number = 0; number < HYPERCALL_COUNT; number++) {
    words[HYPERCALL_TABLE + number] = entryPoint(program, hypercallHandlers[number as keyof typeof hypercallHandlers]);
  }
}

function allocateHeap(cpuCount: number): HeapLayout {
  const heap = new HeapAllocator();
  const frameTable = heap.allocate(FRAME_TABLE_WORDS);
  const perDomain = (words: number): number[] => Array.from({ length: MAX_DOMAINS }, () => heap.allocate(words));
  const perCpu = (words: number): number[] => Array.from({ length: cpuCount }, () => heap.allocate(words));
  const domains = perDomain(Domain.sizeWords);
  const vcpus = perDomain(Vcpu.sizeWords);
  const rings = perDomain(RING_WORDS);
  const multicallBuffers = perDomain(MULTICALL_BUFFER_WORDS);
  const idleVcpus = perCpu(Vcpu.sizeWords);
  const schedulerTickTimers = perCpu(Timer.sizeWords);
  const watchdogTimers = perCpu(Timer.sizeWords);
  const timeSyncTimer = heap.allocate(Timer.sizeWords);
  const cpuLocks = heap.allocate(cpuCount * CpuLocks.sizeWords);
  return {
    frameTable, domains, vcpus, rings, multicallBuffers, idleVcpus,
    schedulerTickTimers, watchdogTimers, timeSyncTimer, cpuLocks, heapEnd: heap.end,
  };
}

function writeFrameTable(words: Int32Array, layout: HeapLayout): void {
  words[FRAME_TABLE_POINTER] = layout.frameTable;
  words[CPU_LOCKS_POINTER] = layout.cpuLocks;
  for (let domainId = 0; domainId < MAX_DOMAINS; domainId++) {
    for (let index = 0; index < FRAMES_OWNED_PER_DOMAIN; index++) {
      const frame = firstFrameOf(domainId) + index;
      words[frameField(layout.frameTable, frame, 'owner')] = domainId;
    }
  }
  // frame 0 means "unmapped" and belongs to nobody
  words[layout.frameTable + FrameDescriptor.offset.owner] = -1;
  if (firstFrameOf(MAX_DOMAINS) !== FRAME_COUNT) throw new Error('frame numbering out of step with FRAME_COUNT');
}

/**
 * The static part of a fresh boot over a preserved heap (ReHype's microreboot): every static
 * table, per-CPU area and static lock is initialised anew, and the idle vCPUs and recurring
 * timers are recreated, armed from `nowUs`. The domain table and the wall clock are preserved
 * static data: the new instance takes them over as they are.
 */
export function rebootStaticData(words: Int32Array, program: Program, layout: HeapLayout, cpuCount: number, nowUs: number): void {
  const domainTable = words.slice(DOMAIN_TABLE, DOMAIN_TABLE + MAX_DOMAINS);
  const wallclock = words[WALLCLOCK];
  words.fill(0, STATIC_BASE, STATIC_BASE + StaticData.sizeWords);
  writeInterruptTable(words, program);
  writeHypercallTable(words, program);
  words[FRAME_TABLE_POINTER] = layout.frameTable;
  // the preserved heap keeps the CPUs' locks, held or not: only the pointer to them is rewritten
  words[CPU_LOCKS_POINTER] = layout.cpuLocks;
  for (let domainId = 0; domainId < MAX_DOMAINS; domainId++) words[DOMAIN_POOL + domainId] = layout.domains[domainId];
  writeIrqRouting(words);
  writePanicStatics(words, program, cpuCount);
  for (const timer of [...layout.schedulerTickTimers, ...layout.watchdogTimers, layout.timeSyncTimer]) words.fill(0, timer, timer + Timer.sizeWords);
  for (const idle of layout.idleVcpus) words.fill(0, idle, idle + Vcpu.sizeWords);
  writePerCpuAreas(words, layout, program, cpuCount, nowUs);
  words.set(domainTable, DOMAIN_TABLE);
  words[WALLCLOCK] = wallclock;
}

/** Every domain id gets a domain and vCPU structure at boot; domctl create takes one from the pool. */
function writeDomainPool(words: Int32Array, layout: HeapLayout, program: Program): void {
  for (let domainId = 0; domainId < MAX_DOMAINS; domainId++) {
    const domain = layout.domains[domainId];
    const vcpu = layout.vcpus[domainId];
    words[DOMAIN_POOL + domainId] = domain;
    words[domain + Domain.offset.id] = domainId;
    words[domain + Domain.offset.privileged] = domainId === PRIVILEGED_DOMAIN_ID ? 1 : 0;
    words[domain + Domain.offset.vcpu] = vcpu;
    words[domain + Domain.offset.ring] = layout.rings[domainId];
    words[domain + Domain.offset.pageTableFrame] = pageTableFrameOf(domainId);
    words[vcpu + Vcpu.offset.id] = domainId;
    words[vcpu + Vcpu.offset.domain] = domain;
    words[vcpu + Vcpu.offset.runState] = RUN_STATE_BLOCKED;
    words[vcpu + Vcpu.offset.multicallBuffer] = layout.multicallBuffers[domainId];
    const timer = vcpu + Vcpu.offset.timer;
    words[timer + Timer.offset.handler] = entryPoint(program, 'vcpu_timer_fn');
    words[timer + Timer.offset.data] = vcpu;
  }
}

/** What the exception entry, panic() and the recovery entry read: the IDT, the routine, the online CPUs, the IPI destinations. */
function writePanicStatics(words: Int32Array, program: Program, cpuCount: number): void {
  words[EXCEPTION_TABLE] = entryPoint(program, 'exception_entry');
  words[EXCEPTION_TABLE + 1] = entryPoint(program, 'double_fault');
  words[RECOVERY_ENTRY_POINTER] = entryPoint(program, 'recovery_entry');
  words[ONLINE_CPUS] = (1 << cpuCount) - 1;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) words[IPI_DESTINATIONS + cpu] = cpu;
}

function writeIrqRouting(words: Int32Array): void {
  words[IRQ_DOMAIN_TABLE + VECTOR_DISK] = PRIVILEGED_DOMAIN_ID;
  words[IRQ_PORT_TABLE + VECTOR_DISK] = PORT_DISK;
  words[IRQ_DOMAIN_TABLE + VECTOR_NIC] = PRIVILEGED_DOMAIN_ID;
  words[IRQ_PORT_TABLE + VECTOR_NIC] = PORT_NIC;
}

function writePerCpuAreas(words: Int32Array, layout: HeapLayout, program: Program, cpuCount: number, startUs: number): void {
  words[STATIC_BASE + StaticData.offset.cpuCount] = cpuCount;
  words[TIME_SYNC_TIMER_POINTER] = layout.timeSyncTimer;
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    const area = perCpuAddress(cpu);
    const idle = layout.idleVcpus[cpu];
    words[idle + Vcpu.offset.id] = IDLE_VCPU_ID_BASE + cpu;
    words[idle + Vcpu.offset.processor] = cpu;
    words[idle + Vcpu.offset.isRunning] = 1;
    words[idle + Vcpu.offset.runState] = RUN_STATE_RUNNING;
    words[area + PerCpu.offset.idleVcpu] = idle;
    words[area + PerCpu.offset.current] = idle;
    words[area + PerCpu.offset.stackTop] = stackTop(cpu);
    for (const address of cpuInfoAddresses(cpu)) words[address] = cpu;
    words[area + PerCpu.offset.schedulerTickTimer] = layout.schedulerTickTimers[cpu];
    words[area + PerCpu.offset.watchdogTimer] = layout.watchdogTimers[cpu];
    armRecurring(words, layout.schedulerTickTimers[cpu], cpu, SCHEDULER_TICK_US, entryPoint(program, 'scheduler_tick_fn'), startUs);
    armRecurring(words, layout.watchdogTimers[cpu], cpu, WATCHDOG_TICK_US, entryPoint(program, 'watchdog_fn'), startUs);
  }
  armRecurring(words, layout.timeSyncTimer, 0, TIME_SYNC_US, entryPoint(program, 'time_sync_fn'), startUs);
}

function armRecurring(words: Int32Array, timer: number, cpu: number, periodUs: number, handler: number, startUs: number): void {
  words[timer + Timer.offset.cpu] = cpu;
  words[timer + Timer.offset.periodUs] = periodUs;
  words[timer + Timer.offset.handler] = handler;
  words[timer + Timer.offset.data] = timer;
  words[timer + Timer.offset.expiresUs] = startUs + periodUs;
  insertTimer(rawWords(words), perCpuAddress(cpu), timer);
}

function startDomain(words: Int32Array, layout: HeapLayout, domain: BootDomain): void {
  const address = layout.domains[domain.domainId];
  const vcpu = layout.vcpus[domain.domainId];
  words[DOMAIN_TABLE + domain.domainId] = address;
  words[address + Domain.offset.inUse] = 1;
  words[vcpu + Vcpu.offset.processor] = domain.cpu;
  words[vcpu + Vcpu.offset.timer + Timer.offset.cpu] = domain.cpu;
  typePageTable(words, layout, domain.domainId);
}

/** The domain's page-table page referenced once, by the domain, and typed as a validated page table (its entries all empty). */
function typePageTable(words: Int32Array, layout: HeapLayout, domainId: number): void {
  const frame = pageTableFrameOf(domainId);
  const useCount = 1;
  const { type, validated } = frameStateFor(useCount, true);
  words[frameField(layout.frameTable, frame, 'useCount')] = useCount;
  words[frameField(layout.frameTable, frame, 'type')] = type;
  words[frameField(layout.frameTable, frame, 'validated')] = validated;
}

/** Each CPU starts running the first domain placed on it; later ones wait on its runqueue. */
function scheduleBootVcpus(words: Int32Array, layout: HeapLayout, config: BootConfig): void {
  for (const domain of config.domains) {
    const vcpu = layout.vcpus[domain.domainId];
    const area = perCpuAddress(domain.cpu);
    const idle = layout.idleVcpus[domain.cpu];
    if (words[area + PerCpu.offset.current] === idle) {
      words[idle + Vcpu.offset.isRunning] = 0;
      words[area + PerCpu.offset.current] = vcpu;
      words[vcpu + Vcpu.offset.isRunning] = 1;
      words[vcpu + Vcpu.offset.runState] = RUN_STATE_RUNNING;
    } else {
      words[vcpu + Vcpu.offset.runState] = RUN_STATE_RUNNABLE;
      appendRunqueue(rawWords(words), area, vcpu);
    }
  }
  // as the credit scheduler's, the idle vCPU of a CPU running another waits last on its runqueue
  for (const [cpu, idle] of layout.idleVcpus.entries()) {
    const area = perCpuAddress(cpu);
    if (words[area + PerCpu.offset.current] === idle) continue;
    words[idle + Vcpu.offset.runState] = RUN_STATE_RUNNABLE;
    appendRunqueue(rawWords(words), area, idle);
  }
}
