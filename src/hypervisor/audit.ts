/**
 * The audit: structural invariants of the hypervisor's state, checked from outside the machine
 * in plain TypeScript. It is how tests and property checks see consistency; the hypervisor
 * itself has no such detector. Meaningful at a quiescent point (every CPU in a guest or idle).
 */
import { CpuMode, NO_DEADLINE } from '../machine/cpu.js';
import type { Machine } from '../machine/machine.js';
import { MAX_DOMAINS, PAGE_TABLE_SLOTS, FRAME_COUNT } from './abi.js';
import type { HeapLayout } from './boot.js';
import { expectedFrames, frameField, type CheckedFrameField } from './frames.js';
import {
  DOMAIN_TABLE,
  Domain,
  IRQ_EOI_CPU_TABLE,
  PENDING_EOI_DEPTH,
  LOCKS_BASE,
  LOCKS_WORDS,
  PerCpu,
  RUN_STATE_BLOCKED,
  RUN_STATE_RUNNABLE,
  RUN_STATE_RUNNING,
  Timer,
  VECTOR_COUNT,
  Vcpu,
  cpuHeapLocks,
  domainHeapLocks,
  perCpuAddress,
} from './layout.js';

export type AuditInvariant =
  | 'lockHeld'
  | 'irqCountNonZero'
  | 'interruptStuck'
  | 'runqueueMalformed'
  | 'schedulerViewsDisagree'
  | 'timerListMalformed'
  | 'timerNotArmed'
  | 'recurringTimerLost'
  | 'frameCountMismatch'
  | 'domainTableCorrupt';

export interface AuditFinding {
  readonly invariant: AuditInvariant;
  readonly detail: string;
}

export type AuditResult = { readonly clean: true } | { readonly clean: false; readonly findings: readonly AuditFinding[] };

class Findings {
  readonly list: AuditFinding[] = [];
  add(invariant: AuditInvariant, detail: string): void {
    this.list.push({ invariant, detail });
  }
}

export function audit(machine: Machine, layout: HeapLayout): AuditResult {
  const words = machine.memory.words;
  const findings = new Findings();
  const domains = inUseDomains(words, layout, findings);
  checkLocks(words, layout, machine.cpus.length, domains, findings);
  checkInterruptState(machine, findings);
  const queued = checkRunqueues(machine, layout, findings);
  checkSchedulerViews(machine, layout, domains, queued, findings);
  checkTimers(machine, layout, domains, findings);
  checkFrames(words, layout, domains, findings);
  return findings.list.length === 0 ? { clean: true } : { clean: false, findings: findings.list };
}

/** Domain ids whose table entry is set; the entry must point at that id's pooled structure. */
function inUseDomains(words: Int32Array, layout: HeapLayout, findings: Findings): number[] {
  const inUse: number[] = [];
  for (let id = 0; id < MAX_DOMAINS; id++) {
    const entry = words[DOMAIN_TABLE + id];
    if (entry === 0) continue;
    if (entry !== layout.domains[id]) {
      findings.add('domainTableCorrupt', `domain table[${id}] = ${entry}, expected ${layout.domains[id]}`);
      continue;
    }
    if (words[entry + Domain.offset.id] !== id || words[entry + Domain.offset.vcpu] !== layout.vcpus[id]) {
      findings.add('domainTableCorrupt', `domain ${id} structure does not name itself or its vCPU`);
    }
    inUse.push(id);
  }
  return inUse;
}

function checkLocks(words: Int32Array, layout: HeapLayout, cpuCount: number, domains: readonly number[], findings: Findings): void {
  for (let offset = 0; offset < LOCKS_WORDS; offset++) {
    const owner = words[LOCKS_BASE + offset];
    if (owner !== 0) findings.add('lockHeld', `static lock ${offset} held by ${owner}`);
  }
  const heapLocks = [...cpuHeapLocks(layout.cpuLocks, cpuCount), ...domainHeapLocks(domains.map((id) => ({ id, domain: words[DOMAIN_TABLE + id] })))];
  for (const { address, name } of heapLocks) {
    const owner = words[address];
    if (owner !== 0) findings.add('lockHeld', `${name} held by ${owner}`);
  }
}

function checkInterruptState(machine: Machine, findings: Findings): void {
  for (const cpu of machine.cpus) {
    const irqCount = machine.memory.words[perCpuAddress(cpu.index) + PerCpu.offset.irqCount];
    if (irqCount !== 0) findings.add('irqCountNonZero', `cpu ${cpu.index} irq_count = ${irqCount}`);
    const stuck = cpu.inServiceVectors & ~awaitingGuestEoi(machine.memory.words, cpu.index);
    if (stuck !== 0) findings.add('interruptStuck', `cpu ${cpu.index} vectors in service ${stuck.toString(2)}`);
    if (cpu.nmiBlocked) findings.add('interruptStuck', `cpu ${cpu.index} NMIs blocked`);
  }
}

/**
 * The vectors `cpu` legitimately holds in service: guest-bound interrupts on its pending-EOI stack
 * that the per-vector table says are in flight there, waiting for their guest's EOI.
 */
function awaitingGuestEoi(words: Int32Array, cpu: number): number {
  const area = perCpuAddress(cpu);
  const count = words[area + PerCpu.offset.pendingEoiCount];
  let vectors = 0;
  for (let index = 0; index < Math.min(count, PENDING_EOI_DEPTH); index++) {
    const vector = words[area + PerCpu.offset.pendingEoi + index];
    if (vector >= 0 && vector < VECTOR_COUNT && words[IRQ_EOI_CPU_TABLE + vector] === cpu + 1) vectors |= 1 << vector;
  }
  return vectors;
}

/** Walk each runqueue; returns, per vCPU address, the CPU whose queue holds it. */
function checkRunqueues(machine: Machine, layout: HeapLayout, findings: Findings): Map<number, number> {
  const words = machine.memory.words;
  const knownVcpus = new Set([...layout.vcpus, ...layout.idleVcpus]);
  const queued = new Map<number, number>();
  for (const cpu of machine.cpus) {
    const area = perCpuAddress(cpu.index);
    let previous = 0;
    let node = words[area + PerCpu.offset.runqueueHead];
    for (let steps = 0; node !== 0; steps++) {
      if (!knownVcpus.has(node) || steps > MAX_DOMAINS + 1 || queued.has(node)) {
        findings.add('runqueueMalformed', `cpu ${cpu.index} runqueue reaches ${node}`);
        break;
      }
      if (words[node + Vcpu.offset.runqueuePrevious] !== previous) {
        findings.add('runqueueMalformed', `cpu ${cpu.index} runqueue back link of ${node} is wrong`);
      }
      queued.set(node, cpu.index);
      previous = node;
      node = words[node + Vcpu.offset.runqueueNext];
    }
    if (words[area + PerCpu.offset.runqueueTail] !== previous) {
      findings.add('runqueueMalformed', `cpu ${cpu.index} runqueue tail is not its last entry`);
    }
  }
  return queued;
}

/** `current`, `is_running`, run state and runqueue membership must tell one story. */
function checkSchedulerViews(
  machine: Machine,
  layout: HeapLayout,
  domains: readonly number[],
  queued: ReadonlyMap<number, number>,
  findings: Findings,
): void {
  const words = machine.memory.words;
  const currentOf = new Map<number, number>();
  for (const cpu of machine.cpus) {
    const area = perCpuAddress(cpu.index);
    const current = words[area + PerCpu.offset.current];
    const idle = layout.idleVcpus[cpu.index];
    if (current !== idle && !domains.some((id) => layout.vcpus[id] === current)) {
      findings.add('schedulerViewsDisagree', `cpu ${cpu.index} current ${current} is neither idle nor a live vCPU`);
      continue;
    }
    currentOf.set(current, cpu.index);
    if (words[current + Vcpu.offset.isRunning] !== 1) findings.add('schedulerViewsDisagree', `cpu ${cpu.index} current not marked running`);
  }
  for (const id of domains) {
    const vcpu = layout.vcpus[id];
    const state = words[vcpu + Vcpu.offset.runState];
    const processor = words[vcpu + Vcpu.offset.processor];
    const runningOn = currentOf.get(vcpu);
    const queuedOn = queued.get(vcpu);
    const isRunning = words[vcpu + Vcpu.offset.isRunning];
    const story = describeVcpu(state, runningOn, queuedOn, processor, isRunning);
    if (story !== undefined) findings.add('schedulerViewsDisagree', `domain ${id}: ${story}`);
  }
  for (const cpu of machine.cpus) {
    const story = describeIdle(words, layout.idleVcpus[cpu.index], cpu.index, currentOf, queued);
    if (story !== undefined) findings.add('schedulerViewsDisagree', `cpu ${cpu.index} idle vCPU ${story}`);
  }
}

/** As the credit scheduler keeps it, a CPU's idle vCPU is its current one, or waits last on its runqueue. */
function describeIdle(words: Int32Array, idle: number, cpu: number, currentOf: ReadonlyMap<number, number>, queued: ReadonlyMap<number, number>): string | undefined {
  const queuedOn = queued.get(idle);
  if (currentOf.get(idle) === cpu) return queuedOn === undefined ? undefined : 'current and queued';
  if (queuedOn !== cpu) return `not current and queued on ${queuedOn ?? 'no cpu'}`;
  if (words[idle + Vcpu.offset.runqueueNext] !== 0) return 'queued before another vCPU';
  return undefined;
}

function describeVcpu(
  state: number,
  runningOn: number | undefined,
  queuedOn: number | undefined,
  processor: number,
  isRunning: number,
): string | undefined {
  if (isRunning !== (runningOn === undefined ? 0 : 1)) return `is_running ${isRunning} but current on ${runningOn ?? 'no cpu'}`;
  switch (state) {
    case RUN_STATE_RUNNING:
      if (runningOn !== processor) return `running but current on ${runningOn ?? 'no cpu'}, processor ${processor}`;
      if (queuedOn !== undefined) return 'running and queued';
      return undefined;
    case RUN_STATE_RUNNABLE:
      if (queuedOn !== processor) return `runnable but queued on ${queuedOn ?? 'no cpu'}, processor ${processor}`;
      if (runningOn !== undefined) return 'runnable and current';
      return undefined;
    case RUN_STATE_BLOCKED:
      if (queuedOn !== undefined || runningOn !== undefined) return 'blocked but queued or current';
      return undefined;
    default:
      return `invalid run state ${state}`;
  }
}

function checkTimers(machine: Machine, layout: HeapLayout, domains: readonly number[], findings: Findings): void {
  const words = machine.memory.words;
  const guestTimers = domains.map((id) => layout.vcpus[id] + Vcpu.offset.timer);
  const recurring = [...layout.schedulerTickTimers, ...layout.watchdogTimers, layout.timeSyncTimer];
  const known = new Set([...guestTimers, ...recurring]);
  const listed = new Set<number>();
  for (const cpu of machine.cpus) {
    walkTimerList(words, cpu.index, known, listed, findings);
    if (cpu.mode !== CpuMode.Stopped && cpu.timerDeadlineNs === NO_DEADLINE) {
      findings.add('timerNotArmed', `cpu ${cpu.index} local timer not armed`);
    }
  }
  for (const timer of known) {
    const active = words[timer + Timer.offset.active] === 1;
    if (active !== listed.has(timer)) findings.add('timerListMalformed', `timer ${timer} active=${active} but listed=${listed.has(timer)}`);
  }
  for (const timer of recurring) {
    if (!listed.has(timer)) findings.add('recurringTimerLost', `recurring timer ${timer} is not on its list`);
    if (words[timer + Timer.offset.inHandler] !== 0) findings.add('recurringTimerLost', `recurring timer ${timer} still in its handler`);
  }
}

function walkTimerList(words: Int32Array, cpu: number, known: ReadonlySet<number>, listed: Set<number>, findings: Findings): void {
  let previous = 0;
  let expires = Number.NEGATIVE_INFINITY;
  let node = words[perCpuAddress(cpu) + PerCpu.offset.timerHead];
  while (node !== 0) {
    if (!known.has(node) || listed.has(node)) {
      findings.add('timerListMalformed', `cpu ${cpu} timer list reaches ${node}`);
      return;
    }
    if (words[node + Timer.offset.previous] !== previous) findings.add('timerListMalformed', `cpu ${cpu} timer ${node} back link wrong`);
    if (words[node + Timer.offset.cpu] !== cpu) findings.add('timerListMalformed', `timer ${node} on cpu ${cpu}'s list names another cpu`);
    if (words[node + Timer.offset.expiresUs] < expires) findings.add('timerListMalformed', `cpu ${cpu} timer list out of order`);
    expires = words[node + Timer.offset.expiresUs];
    listed.add(node);
    previous = node;
    node = words[node + Timer.offset.next];
  }
}

/** Every frame's descriptor says what the page tables imply: its references, its type, and no page lock held. */
function checkFrames(words: Int32Array, layout: HeapLayout, domains: readonly number[], findings: Findings): void {
  for (const id of domains) {
    for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) {
      const frame = words[layout.domains[id] + Domain.offset.pageTable + slot];
      if (frame < 0 || frame >= FRAME_COUNT) findings.add('frameCountMismatch', `domain ${id} slot ${slot} names frame ${frame}`);
    }
  }
  const expected = expectedFrames((address) => words[address], domains.map((id) => layout.domains[id]));
  for (let frame = 1; frame < FRAME_COUNT; frame++) {
    const actual = (field: CheckedFrameField): number => words[frameField(layout.frameTable, frame, field)];
    const { useCount, type, validated, locked } = expected[frame];
    if (actual('useCount') !== useCount) findings.add('frameCountMismatch', `frame ${frame} use count ${actual('useCount')}, referenced ${useCount} times`);
    if (actual('type') !== type || actual('validated') !== validated) {
      findings.add('frameCountMismatch', `frame ${frame} type/validated do not match its ${useCount} references`);
    }
    if (actual('locked') !== locked) findings.add('frameCountMismatch', `frame ${frame} left page-locked`);
  }
}

export function describeAudit(result: AuditResult): string {
  if (result.clean) return 'clean';
  return result.findings.map((finding) => `${finding.invariant}: ${finding.detail}`).join('; ');
}
