/**
 * The simulated multi-CPU machine: memory, CPUs with local interrupt controllers, the watchdog
 * NMI source, the event queue and the clock, and the interpreter that runs hypervisor code.
 *
 * Scheduling is deterministic discrete-event simulation. Events (timers, NMIs, guest exits,
 * queued interrupts) fire in time order once every running CPU has reached their time; between
 * events the CPU with the smallest local time runs for at most one quantum, ties to the lowest
 * index. Sleeping CPUs (`hlt`, `pause`, guest mode) cost no host time until something wakes them.
 *
 * The machine knows nothing of hypervisors: code runs where the layer above put it, guests run
 * through a GuestPort, and traps are reported to a TrapHandler, then delivered to the handler
 * the layer above put in memory (see ExceptionDelivery) or, without one, stop their CPU.
 */
import { CpuMode, CpuState, NO_DEADLINE, hasUnblockedVector, highestVector, keyDenies } from './cpu.js';
import { DOUBLE_FIELD } from './double-field.js';
import { EventQueue, NMI_EVENT, type InterruptEvent } from './event-queue.js';
import { EXTENSION_MASKS, FLAG_INTERRUPT_ENABLE, FLAG_LESS, FLAG_ZERO, Opcode, operationOf, signExtendImmediate } from './isa.js';
import { Memory, PAGE_SHIFT, PERMISSION_EXECUTE, PERMISSION_READ, PERMISSION_WRITE, type Segment } from './memory.js';
import type { AccessKind, ExceptionKind, Trap } from './trap.js';
import { translationFor, type BlockHost, type Translation } from './translator.js';
import { LoopRecorder, MachineLoopWatch, machinePeriodsToSkip, periodsToSkip } from './loop-skip.js';

export interface MachineConfig {
  readonly cpuCount: number;
  readonly segments: readonly Segment[];
  /** word 0: NMI handler address; word v (1..31): handler address of vector v */
  readonly interruptTableBase: number;
  /** vector the local timer raises */
  readonly timerVector: number;
  /** per CPU: the stack pointer loaded on every VM exit (the host stack) */
  readonly hostStackTops: readonly number[];
  /** program counter loaded on every VM exit */
  readonly vmExitEntry: number;
  /** watchdog NMI period; 100 ms as on the real systems */
  readonly nmiPeriodNs?: number;
  /** longest run of one CPU before the others catch up */
  readonly quantumNs?: number;
  readonly ipiLatencyNs?: number;
  /** run straight code as translated blocks (the default); false interprets every instruction */
  readonly translate?: boolean;
  /** how exceptions reach hypervisor code; without it, a trap stops its CPU */
  readonly exceptions?: ExceptionDelivery;
  /** skip whole periods of a loop whose state repeats (the default; see loop-skip.ts); false runs them */
  readonly skipLoops?: boolean;
  /**
   * protection keys (x86 MPK): each data access is checked against the page's key and the CPU's
   * PKRU, and `wrpkru` runs; off (the default), `wrpkru` is an invalid opcode and no key is looked at
   */
  readonly protectionKeys?: boolean;
  /**
   * log2 of the words one protection key covers: a page (PAGE_SHIFT) as on x86 by default. A
   * finer granule stands for a layout that gives every object its own pages (as PUSh's allocator
   * does) without moving the objects of a packed one.
   */
  readonly protectionKeyShift?: number;
}

/**
 * Exception delivery as on x86: a trap pushes a frame on the current stack and enters the
 * handler named in memory (an IDT); if that push or the table read fails, the CPU raises a
 * double fault, delivered on its own per-CPU stack; if that fails too, the CPU shuts down
 * (stops). NMIs switch to their own per-CPU stack before pushing (x86's IST).
 */
export interface ExceptionDelivery {
  /** word 0: the handler of every exception; word 1: the double-fault handler */
  readonly tableBase: number;
  readonly nmiStackTops: readonly number[];
  readonly doubleFaultStackTops: readonly number[];
}

/** How guests run on a CPU in guest mode. Supplied by the layers above. */
export interface GuestPort {
  /**
   * `vmenter`: run the guest context `context` on `cpu`. Returns how long the guest runs before it
   * exits on its own, or undefined when the context is not valid (the entry fails).
   */
  enter(cpu: number, context: number, registers: Int32Array, nowNs: number): number | undefined;
  /** The guest leaves the CPU, on its own or because of an interrupt; it writes the exit registers. */
  exit(cpu: number, registers: Int32Array, nowNs: number, interrupted: boolean): void;
}

export type TrapHandler = (trap: Trap) => void;
export type Tracer = (cpu: number, programCounter: number, word: number, timeNs: number) => void;

/**
 * How far a run may go: until simulated time `untilNs`, and, with `instructionLimit`, no further
 * than the moment the machine's count of hypervisor instructions reaches it (skipped loop periods
 * count: the run stops where running every instruction would stop it). With
 * `executedInstructionLimit` instead, no further than the moment the count of instructions
 * actually executed (retired less skipped) reaches it: a bound on host time. Each run states its
 * own bounds; nothing carries over from one run to the next.
 */
export interface RunBounds {
  readonly untilNs: number;
  readonly instructionLimit?: number;
  readonly executedInstructionLimit?: number;
}

/** Why a run returned. */
export type RunOutcome =
  | { readonly kind: 'timeReached'; readonly timeNs: number }
  | { readonly kind: 'stopped'; readonly reason: string }
  | { readonly kind: 'instructionLimit'; readonly cpu: number };

export interface MachineSnapshot {
  readonly words: Int32Array;
  /** the pages' protection keys */
  readonly pageKeys: Uint8Array;
  readonly cpus: readonly CpuState[];
  readonly queue: ReturnType<EventQueue['save']>;
  readonly hypervisorInstructions: number;
  readonly interruptsDelivered: number;
  readonly codeReads: number;
  readonly writeEpoch: number;
  readonly lastWriteNs: number;
  readonly nowNs: number;
  readonly slice: Slice | undefined;
}

/**
 * The quantum in progress: which CPU runs, and until when. It outlives a run that stops inside
 * it, so that where a run stops (a time, an instruction limit) never changes what happens next.
 */
export interface Slice {
  readonly cpu: number;
  limitNs: number;
}

export const NMI_PERIOD_NS = 100_000_000;
const DEFAULT_QUANTUM_NS = 1_000;
const DEFAULT_IPI_LATENCY_NS = 200;
const NS_PER_US = 1_000;
/** `wrpkru` takes about 13 ns on x86 (PUSh's measurement); an instruction is 1 ns, so 12 more */
export const WRPKRU_EXTRA_NS = 12;
/** a CPU running alone this many instructions without leaving the hypervisor is checked for a loop */
const LOOP_FIRST_CHECK = 50_000;
/** instructions watched for a repeating state, at most */
const LOOP_WINDOW = 4_000;
/** instructions of all CPUs watched for a repeating machine state, at most */
const MACHINE_LOOP_WINDOW = 100_000;
/** after a failed check, the next one waits an eighth of the streak, but never longer than this */
const LOOP_LONGEST_WAIT = 4_000_000;

export class Machine implements BlockHost {
  readonly config: MachineConfig;
  readonly memory: Memory;
  readonly cpus: CpuState[];
  readonly queue = new EventQueue();
  /** per page: its protection key (the memory's), for translated blocks */
  readonly pageKeys: Uint8Array;
  /** whether accesses are checked against protection keys (the config's) */
  readonly protectionKeys: boolean;
  guestPort: GuestPort = rejectingGuestPort;
  trapHandler: TrapHandler;
  tracer: Tracer | undefined;
  /** `handover` hands the machine to the layer above only while this is set (the recovery entry runs) */
  handoverArmed = false;
  nowNs = DOUBLE_FIELD;
  /** hypervisor instructions retired by all CPUs */
  hypervisorInstructions = 0;
  /** interrupts and NMIs delivered to hypervisor code, all CPUs */
  interruptsDelivered = 0;
  /** the run in progress stops right after this many hypervisor instructions (its bounds') */
  private limit = Number.POSITIVE_INFINITY;
  /**
   * data reads (loads, pops) from executable pages. A golden run that makes none from some point
   * on never looks at its code except to run it: a trial that differs from it only in code words
   * that are the same instructions behaves as it does.
   */
  codeReads = 0;
  /** counts stores to memory; a paused CPU wakes when it changes */
  writeEpoch = 0;
  lastWriteNs = DOUBLE_FIELD;
  /**
   * hypervisor instructions accounted by skipping loop periods instead of running them (host
   * accounting, not machine state: hypervisorInstructions counts them as retired)
   */
  skippedInstructions = 0;
  /** `wrpkru` executed, all CPUs (accounting for the policy's cost, not machine state: snapshots leave it alone) */
  pkruWrites = 0;
  /** hypervisor instructions actually executed: retired less skipped (host work, for bounds on it) */
  get executedInstructions(): number {
    return this.hypervisorInstructions - this.skippedInstructions;
  }

  /** the run's limit counts skipped instructions (instructionLimit), or not (executedInstructionLimit) */
  private skipsCountTowardLimit = true;
  /** per CPU: instructionsRetired when it was last seen not running, and when to next check for a loop */
  private readonly runningSince: Float64Array;
  private readonly nextLoopCheck: Float64Array;
  /** a watch of every CPU for a loop they run together, while one is on */
  private watch: MachineLoopWatch | undefined;
  private stopReason: string | undefined;
  private slice: Slice | undefined;
  private readonly nmiPeriodNs: number;
  private readonly quantumNs: number;
  private readonly ipiLatencyNs: number;
  /**
   * per CPU: how much later than programmed or raised its timer and device interrupts arrive, a
   * host's own interrupt timing (none by default; a replay backup's is perturbed). Not part of a
   * snapshot: it belongs to the host, not to the state it runs.
   */
  private interruptDelaysNs: readonly number[] = [];
  private readonly translation: Translation | undefined;
  /** set by nextCpu */
  private secondRunningNs = DOUBLE_FIELD;

  constructor(config: MachineConfig) {
    this.config = config;
    this.nowNs = 0;
    this.lastWriteNs = 0;
    this.secondRunningNs = 0;
    this.memory = new Memory(config.segments, config.protectionKeyShift);
    this.pageKeys = this.memory.pageKeys;
    this.protectionKeys = config.protectionKeys === true;
    this.cpus = Array.from({ length: config.cpuCount }, (_, index) => new CpuState(index));
    this.nmiPeriodNs = config.nmiPeriodNs ?? NMI_PERIOD_NS;
    this.quantumNs = config.quantumNs ?? DEFAULT_QUANTUM_NS;
    this.ipiLatencyNs = config.ipiLatencyNs ?? DEFAULT_IPI_LATENCY_NS;
    this.translation = config.translate === false ? undefined : translationFor(this.memory, this.protectionKeys);
    this.trapHandler = (trap) => this.stop(`trap: ${trap.kind}`);
    for (const cpu of this.cpus) cpu.nextNmiNs = this.nmiPeriodNs;
    this.runningSince = new Float64Array(config.cpuCount);
    this.nextLoopCheck = new Float64Array(config.cpuCount).fill(config.skipLoops === false ? Number.POSITIVE_INFINITY : LOOP_FIRST_CHECK);
  }

  /** Start `cpu` executing hypervisor code at `programCounter`, interrupts disabled. */
  startCpu(index: number, programCounter: number, stackPointer: number): void {
    const cpu = this.cpus[index];
    cpu.mode = CpuMode.Running;
    cpu.programCounter = programCounter;
    cpu.stackPointer = stackPointer;
    cpu.flags = 0;
    cpu.interruptShadow = false;
    cpu.timeNs = Math.max(cpu.timeNs, this.nowNs);
    this.slice = undefined;
  }

  /** Ask the run loop to return at the next opportunity (from a trap handler, say). */
  stop(reason: string): void {
    this.stopReason ??= reason;
  }

  /**
   * End the run in progress right after the hypervisor instruction count reaches
   * `instructionCount`, if that is sooner than its bounds say: how a tracer stops a run at an
   * instruction it sees. The next run has only its own bounds.
   */
  endRunAt(instructionCount: number): void {
    this.limit = Math.min(this.limit, instructionCount);
  }

  /**
   * Deliver each CPU's timer interrupts and raised device interrupts this many nanoseconds late
   * from now on (index: CPU; a missing one: on time). Negative delays are refused: an interrupt
   * never arrives before its cause.
   */
  setInterruptDelays(delaysNs: readonly number[]): void {
    if (delaysNs.some((delayNs) => !Number.isSafeInteger(delayNs) || delayNs < 0)) throw new RangeError(`interrupt delays must be whole nanoseconds, not negative: ${delaysNs.join(', ')}`);
    this.interruptDelaysNs = [...delaysNs];
  }

  /** Queue a maskable interrupt (vector 1..31) or an NMI (NMI_EVENT) for `cpu` at `timeNs` (plus its CPU's delay). */
  raiseInterrupt(timeNs: number, cpu: number, vector: number): void {
    const atNs = Math.max(timeNs + (this.interruptDelaysNs[cpu] ?? 0), this.nowNs);
    this.queue.push(atNs, cpu, vector);
    if (this.slice !== undefined && atNs < this.slice.limitNs) this.slice.limitNs = atNs;
  }

  /** Runs within `bounds` (a time alone: no instruction limit) and says why it returned. */
  run(bounds: RunBounds | number): RunOutcome {
    const { untilNs, instructionLimit, executedInstructionLimit } = typeof bounds === 'number' ? { untilNs: bounds, instructionLimit: undefined, executedInstructionLimit: undefined } : bounds;
    if (instructionLimit !== undefined && executedInstructionLimit !== undefined) throw new RangeError('a run takes one instruction limit, retired or executed');
    // skipped instructions count toward a limit on retired instructions, not toward one on executed instructions
    this.skipsCountTowardLimit = executedInstructionLimit === undefined;
    this.limit = instructionLimit ?? (executedInstructionLimit === undefined ? Number.POSITIVE_INFINITY : this.hypervisorInstructions + Math.max(0, executedInstructionLimit - this.executedInstructions));
    try {
      return this.runUntil(untilNs);
    } finally {
      // a watch never outlives a run: the tracer is the caller's again
      if (this.watch !== undefined) this.endWatch('interrupted');
    }
  }

  private runUntil(untilNs: number): RunOutcome {
    this.stopReason = undefined;
    for (;;) {
      if (this.stopReason !== undefined) return { kind: 'stopped', reason: this.stopReason };
      if (this.slice !== undefined && this.cpus[this.slice.cpu].mode !== CpuMode.Running) this.slice = undefined;
      if (this.slice === undefined) {
        const eventNs = this.nextEventNs();
        const cpu = this.nextCpu();
        const cpuNs = cpu === undefined ? Number.POSITIVE_INFINITY : cpu.timeNs;
        if (eventNs <= cpuNs) {
          if (eventNs > untilNs) return this.reach(untilNs);
          if (this.watch !== undefined) this.endWatch('interrupted');
          this.nowNs = eventNs;
          this.fireEvents(eventNs);
          continue;
        }
        if (cpu === undefined || cpuNs >= untilNs) return this.reach(untilNs);
        if (this.watchPoint(cpu, Math.min(eventNs, untilNs))) continue;
        this.nowNs = cpuNs;
        this.slice = newSlice(cpu.index, Math.min(eventNs, Math.max(this.secondRunningNs, cpuNs) + this.quantumNs));
        this.watch?.noteSlice(this.slice.limitNs, eventNs);
      }
      const slice = this.slice;
      const cpu = this.cpus[slice.cpu];
      if (cpu.timeNs >= untilNs) return this.reach(untilNs);
      const reached = this.loopCheckDue(cpu) ? this.skipLoop(cpu, untilNs) : this.execute(cpu, slice, untilNs);
      // skipLoop may have gone on into later slices
      if (cpu.mode !== CpuMode.Running || cpu.timeNs >= (this.slice ?? slice).limitNs) this.slice = undefined;
      if (reached) return { kind: 'instructionLimit', cpu: cpu.index };
    }
  }

  snapshot(): MachineSnapshot {
    return {
      words: this.memory.words.slice(),
      pageKeys: this.memory.pageKeys.slice(),
      cpus: this.cpus.map((cpu) => cpu.clone()),
      queue: this.queue.save(),
      hypervisorInstructions: this.hypervisorInstructions,
      interruptsDelivered: this.interruptsDelivered,
      codeReads: this.codeReads,
      writeEpoch: this.writeEpoch,
      lastWriteNs: this.lastWriteNs,
      nowNs: this.nowNs,
      slice: this.sliceInProgress(),
    };
  }

  /** A copy of the slice in progress, if there is one. */
  sliceInProgress(): Slice | undefined {
    return this.slice === undefined ? undefined : newSlice(this.slice.cpu, this.slice.limitNs);
  }

  restore(snapshot: MachineSnapshot): void {
    this.memory.words.set(snapshot.words);
    this.memory.pageKeys.set(snapshot.pageKeys);
    snapshot.cpus.forEach((saved, index) => this.cpus[index].copyFrom(saved));
    this.queue.restore(snapshot.queue);
    this.hypervisorInstructions = snapshot.hypervisorInstructions;
    this.interruptsDelivered = snapshot.interruptsDelivered;
    this.codeReads = snapshot.codeReads;
    this.writeEpoch = snapshot.writeEpoch;
    this.lastWriteNs = snapshot.lastWriteNs;
    this.nowNs = snapshot.nowNs;
    this.slice = snapshot.slice === undefined ? undefined : newSlice(snapshot.slice.cpu, snapshot.slice.limitNs);
    this.stopReason = undefined;
    for (const cpu of this.cpus) {
      this.runningSince[cpu.index] = cpu.instructionsRetired;
      if (this.nextLoopCheck[cpu.index] !== Number.POSITIVE_INFINITY) this.nextLoopCheck[cpu.index] = LOOP_FIRST_CHECK;
    }
  }

  /** True when `cpu` would take an interrupt now if it were running. */
  canTakeInterrupt(cpu: CpuState): boolean {
    if (cpu.nmiPending && !cpu.nmiBlocked) return true;
    return (cpu.flags & FLAG_INTERRUPT_ENABLE) !== 0 && hasUnblockedVector(cpu);
  }

  /** Force `cpu` out of guest mode now, as an interrupt would. */
  leaveGuest(cpu: CpuState, nowNs: number): void {
    const interrupted = nowNs < cpu.guestExitNs;
    cpu.guestExitNs = NO_DEADLINE;
    cpu.timeNs = Math.max(cpu.timeNs, nowNs);
    this.guestPort.exit(cpu.index, cpu.registers, cpu.timeNs, interrupted);
    cpu.mode = CpuMode.Running;
    cpu.stackPointer = this.config.hostStackTops[cpu.index];
    cpu.programCounter = this.config.vmExitEntry;
    cpu.flags = 0;
    cpu.interruptShadow = false;
  }

  /** For translated blocks: `retired` instructions ran, the last at `programCounter` faulted on `address`. */
  blockAccessFault(cpu: CpuState, programCounter: number, retired: number, address: number, access: 'read' | 'write'): void {
    this.retire(cpu, programCounter, retired);
    this.accessFault(cpu, address, access);
  }

  /** For translated blocks: `retired` instructions ran, the last a `bug_on` at `programCounter` that fired. */
  blockAssertion(cpu: CpuState, programCounter: number, retired: number, code: number): void {
    this.retire(cpu, programCounter, retired);
    this.raise(cpu, { kind: 'assertion', cpu: cpu.index, programCounter, code });
  }

  private retire(cpu: CpuState, programCounter: number, retired: number): void {
    cpu.programCounter = programCounter;
    cpu.timeNs += retired;
    cpu.instructionsRetired += retired;
    this.hypervisorInstructions += retired;
  }

  /**
   * At a planning point (`cpu` about to get a slice): go on with a watch of every CPU, or skip the
   * periods it found, or begin one when every running CPU has run long enough in the hypervisor
   * (several of them: one alone is skipLoop's). True when periods were skipped: plan again.
   */
  private watchPoint(cpu: CpuState, horizonNs: number): boolean {
    const watch = this.watch;
    if (watch === undefined) {
      if (this.tracer !== undefined || !this.machineLoopCheckDue()) return false;
      const started = new MachineLoopWatch(this, this.memory.words, cpu.timeNs);
      this.watch = started;
      this.tracer = (index, _programCounter, word) => started.observe(this.cpus[index], word);
      return false;
    }
    const period = watch.repeatsAt(cpu.timeNs);
    if (period === undefined) {
      if (watch.interrupted) this.endWatch('interrupted');
      else if (watch.spoiled || watch.instructions > MACHINE_LOOP_WINDOW) this.endWatch('failed');
      return false;
    }
    this.endWatch('found');
    const periods = machinePeriodsToSkip(period, cpu.timeNs, horizonNs, this.instructionsLeft());
    if (periods === 0) return false;
    const skippedNs = periods * period.durationNs;
    for (const each of this.cpus) {
      if (each.mode !== CpuMode.Running) continue;
      each.timeNs += skippedNs;
      each.instructionsRetired += periods * period.retired[each.index];
    }
    this.accountSkipped(periods * period.instructions);
    this.codeReads += periods * period.codeReads;
    this.writeEpoch += periods * period.stores;
    this.interruptsDelivered += periods * period.interrupts;
    if (period.stores > 0) this.lastWriteNs += skippedNs;
    return true;
  }

  /** Instructions that may be skipped before the run's limit (any number when skips do not count toward it). */
  private instructionsLeft(): number {
    return this.skipsCountTowardLimit ? this.limit - this.hypervisorInstructions : Number.POSITIVE_INFINITY;
  }

  private accountSkipped(instructions: number): void {
    this.hypervisorInstructions += instructions;
    this.skippedInstructions += instructions;
    if (!this.skipsCountTowardLimit) this.limit += instructions;
  }

  /** Several CPUs run, and each has run in the hypervisor long enough to check for a loop. */
  private machineLoopCheckDue(): boolean {
    let running = 0;
    for (const cpu of this.cpus) {
      if (cpu.mode !== CpuMode.Running) continue;
      if (cpu.instructionsRetired - this.runningSince[cpu.index] < this.nextLoopCheck[cpu.index]) return false;
      running++;
    }
    return running > 1;
  }

  /**
   * Stop watching. The running CPUs are checked again soon after a success or a watch an event
   * or the end of the run cut short, later and later after failures.
   */
  private endWatch(ending: 'found' | 'interrupted' | 'failed'): void {
    this.watch = undefined;
    this.tracer = undefined;
    for (const cpu of this.cpus) {
      if (cpu.mode !== CpuMode.Running) continue;
      const streak = cpu.instructionsRetired - this.runningSince[cpu.index];
      this.nextLoopCheck[cpu.index] = streak + (ending === 'failed' ? Math.max(MACHINE_LOOP_WINDOW, Math.min(streak / 8, LOOP_LONGEST_WAIT)) : MACHINE_LOOP_WINDOW);
    }
  }

  /** True when `cpu` has run alone, without leaving the hypervisor, long enough to check for a loop. */
  private loopCheckDue(cpu: CpuState): boolean {
    if (cpu.instructionsRetired - this.runningSince[cpu.index] < this.nextLoopCheck[cpu.index] || this.tracer !== undefined) return false;
    return this.cpus.every((other) => other === cpu || other.mode !== CpuMode.Running);
  }

  /**
   * Run `cpu`, alone, through a window watched for a repeating state, then skip the whole periods
   * that fit before the next event (see loop-skip.ts). Returns true when the instruction stop was
   * reached. The window runs slice by slice exactly as the run loop would plan them (their
   * starts are the machine's `nowNs`), and it ends where the run loop would do anything else.
   */
  private skipLoop(cpu: CpuState, untilNs: number): boolean {
    const windowEndNs = cpu.timeNs + LOOP_WINDOW;
    const recorder = new LoopRecorder(cpu, this.memory.words, this);
    const others = this.cpus.map((other) => (other === cpu ? 0 : other.instructionsRetired));
    const anyPaused = this.cpus.some((other) => other.mode === CpuMode.Paused);
    const epoch = this.writeEpoch;
    let slice = this.slice as Slice;
    let reached = false;
    this.tracer = (index, _programCounter, word) => {
      if (index === cpu.index) recorder.observe(word);
    };
    try {
      for (;;) {
        reached = this.execute(cpu, slice, untilNs);
        if (reached || this.stopReason !== undefined || cpu.mode !== CpuMode.Running || cpu.timeNs < slice.limitNs) break;
        if (recorder.period !== undefined || cpu.timeNs >= windowEndNs || cpu.timeNs >= untilNs) break;
        // the run loop would now fire an event or wake a paused CPU: leave that to it
        const eventNs = this.nextEventNs();
        if (eventNs <= cpu.timeNs || (anyPaused && this.writeEpoch !== epoch)) break;
        this.nowNs = cpu.timeNs;
        slice = this.slice = newSlice(cpu.index, Math.min(eventNs, cpu.timeNs + this.quantumNs));
      }
    } finally {
      this.tracer = undefined;
    }
    const period = recorder.period;
    const alone = this.cpus.every((other) => other === cpu || other.instructionsRetired === others[other.index]);
    const atSliceEnd = !reached && this.stopReason === undefined && cpu.mode === CpuMode.Running && cpu.timeNs === slice.limitNs;
    const skippable = period !== undefined && alone && atSliceEnd && (period.stores === 0 || !anyPaused);
    const streak = (): number => cpu.instructionsRetired - this.runningSince[cpu.index];
    if (!skippable) {
      // a window cut short (an event, the end of the run) is tried again soon; a loop that does
      // not repeat, or cannot be skipped, is looked at less and less often
      const cutShort = cpu.timeNs < windowEndNs && recorder.period === undefined;
      this.nextLoopCheck[cpu.index] = streak() + (cutShort ? LOOP_WINDOW : Math.max(LOOP_WINDOW, Math.min(streak() / 8, LOOP_LONGEST_WAIT)));
      return reached;
    }
    // whole periods that are also whole quanta, so that the slices after the skip start where they would have
    const horizonNs = Math.min(this.nextEventNs(), untilNs);
    const stride = leastCommonMultiple(period.instructions, this.quantumNs);
    const strides = periodsToSkip({ ...period, instructions: stride }, cpu.timeNs, horizonNs, this.instructionsLeft());
    const periods = (strides * stride) / period.instructions;
    const skipped = strides * stride;
    cpu.timeNs += skipped;
    cpu.instructionsRetired += skipped;
    this.accountSkipped(skipped);
    this.codeReads += periods * period.codeReads;
    this.writeEpoch += periods * period.stores;
    if (period.stores > 0) this.lastWriteNs += skipped;
    this.nextLoopCheck[cpu.index] = streak() + LOOP_WINDOW;
    return false;
  }

  private reach(untilNs: number): RunOutcome {
    this.nowNs = untilNs;
    return { kind: 'timeReached', timeNs: untilNs };
  }

  private nextEventNs(): number {
    let earliest = this.queue.peekTimeNs();
    for (const cpu of this.cpus) {
      if (cpu.mode === CpuMode.Stopped) continue;
      if (cpu.nextNmiNs < earliest) earliest = cpu.nextNmiNs;
      if (cpu.timerDeadlineNs !== NO_DEADLINE && cpu.timerDeadlineNs < earliest) earliest = cpu.timerDeadlineNs;
      if (cpu.guestExitNs !== NO_DEADLINE && cpu.guestExitNs < earliest) earliest = cpu.guestExitNs;
    }
    return earliest;
  }

  /**
   * The running CPU with the smallest local time (the lowest index on a tie); wakes paused CPUs
   * whose memory changed. Leaves the smallest local time of the other running CPUs (the chosen
   * one's own when it runs alone) in `secondRunningNs`, for the length of its slice.
   */
  private nextCpu(): CpuState | undefined {
    let chosen: CpuState | undefined;
    let secondNs = Number.POSITIVE_INFINITY;
    for (const cpu of this.cpus) {
      if (cpu.mode === CpuMode.Paused && cpu.pausedWriteEpoch !== this.writeEpoch) {
        cpu.mode = CpuMode.Running;
        cpu.timeNs = Math.max(cpu.timeNs, this.lastWriteNs);
      }
      if (cpu.mode !== CpuMode.Running) {
        this.noteNotRunning(cpu);
        continue;
      }
      if (chosen === undefined || cpu.timeNs < chosen.timeNs) {
        if (chosen !== undefined) secondNs = Math.min(secondNs, chosen.timeNs);
        chosen = cpu;
      } else {
        secondNs = Math.min(secondNs, cpu.timeNs);
      }
    }
    this.secondRunningNs = chosen === undefined || secondNs === Number.POSITIVE_INFINITY ? (chosen?.timeNs ?? 0) : secondNs;
    return chosen;
  }

  /** A CPU out of the hypervisor starts a new streak: its next loop check is a full streak away. */
  private noteNotRunning(cpu: CpuState): void {
    if (this.runningSince[cpu.index] === cpu.instructionsRetired) return;
    this.runningSince[cpu.index] = cpu.instructionsRetired;
    if (this.nextLoopCheck[cpu.index] !== Number.POSITIVE_INFINITY) this.nextLoopCheck[cpu.index] = LOOP_FIRST_CHECK;
  }

  private fireEvents(nowNs: number): void {
    for (const cpu of this.cpus) {
      if (cpu.mode === CpuMode.Stopped) continue;
      if (cpu.guestExitNs !== NO_DEADLINE && cpu.guestExitNs <= nowNs) this.leaveGuest(cpu, nowNs);
      if (cpu.nextNmiNs <= nowNs) {
        cpu.nmiPending = true;
        cpu.nextNmiNs += this.nmiPeriodNs;
      }
      if (cpu.timerDeadlineNs !== NO_DEADLINE && cpu.timerDeadlineNs <= nowNs) {
        cpu.timerDeadlineNs = NO_DEADLINE;
        cpu.pendingVectors |= 1 << this.config.timerVector;
      }
    }
    while (this.queue.peekTimeNs() <= nowNs) this.deliverQueued(this.queue.shift() as InterruptEvent);
    for (const cpu of this.cpus) this.wake(cpu, nowNs);
  }

  private deliverQueued(event: InterruptEvent): void {
    const cpu = this.cpus[event.cpu];
    if (cpu === undefined) return;
    if (event.vector === NMI_EVENT) cpu.nmiPending = true;
    else if (event.vector >= 1 && event.vector <= 31) cpu.pendingVectors |= 1 << event.vector;
  }

  private wake(cpu: CpuState, nowNs: number): void {
    switch (cpu.mode) {
      case CpuMode.Halted:
      case CpuMode.Paused:
        if (this.canTakeInterrupt(cpu)) {
          cpu.mode = CpuMode.Running;
          cpu.timeNs = Math.max(cpu.timeNs, nowNs);
        }
        return;
      case CpuMode.Guest:
        if (cpu.nmiPending || hasUnblockedVector(cpu)) this.leaveGuest(cpu, nowNs);
        return;
      default:
        return;
    }
  }

  /** Deliver the best interrupt `cpu` can take now. Returns true if it was delivered or trapped. */
  private deliverInterrupt(cpu: CpuState): boolean {
    let slot: number;
    if (cpu.nmiPending && !cpu.nmiBlocked) {
      cpu.nmiPending = false;
      cpu.nmiBlocked = true;
      slot = 0;
    } else if ((cpu.flags & FLAG_INTERRUPT_ENABLE) !== 0 && hasUnblockedVector(cpu)) {
      slot = highestVector(cpu.pendingVectors);
      cpu.pendingVectors &= ~(1 << slot);
      cpu.inServiceVectors |= 1 << slot;
    } else {
      return false;
    }
    this.interruptsDelivered++;
    const interruptedStackPointer = cpu.stackPointer;
    if (slot === 0 && this.config.exceptions !== undefined) cpu.stackPointer = this.config.exceptions.nmiStackTops[cpu.index];
    const failed = this.enterHandler(cpu, interruptedStackPointer, this.config.interruptTableBase + slot);
    if (failed !== undefined) this.accessFault(cpu, failed.address, failed.access);
    return true;
  }

  /**
   * Push the frame `iret` pops (the interrupted stack pointer, the flags, the program counter),
   * clear IF and jump to the handler in table word `entry`. On failure nothing changes and the
   * access that failed is returned.
   */
  private enterHandler(cpu: CpuState, interruptedStackPointer: number, entry: number): { address: number; access: AccessKind } | undefined {
    const start = cpu.stackPointer;
    for (const value of [interruptedStackPointer, cpu.flags, cpu.programCounter]) {
      const address = cpu.stackPointer - 1;
      if (!this.writable(cpu, address)) {
        cpu.stackPointer = start;
        return { address, access: 'write' };
      }
      this.memory.words[address] = value;
      cpu.stackPointer = address;
    }
    if ((this.memory.permissionAt(entry) & PERMISSION_READ) === 0 || this.keyDenied(cpu, entry, false)) {
      cpu.stackPointer = start;
      return { address: entry, access: 'read' };
    }
    cpu.flags &= ~FLAG_INTERRUPT_ENABLE;
    cpu.interruptShadow = false;
    cpu.programCounter = this.memory.words[entry];
    return undefined;
  }

  /**
   * Deliver an exception to `cpuIndex` as raise() does after reporting the trap: for a
   * counterfactual re-run that rewinds the CPU to the moment of its trap and lets the machine
   * deliver the exception again (from other register values, say).
   */
  redeliverException(cpuIndex: number): void {
    const exceptions = this.config.exceptions;
    if (exceptions === undefined) throw new Error('this machine has no exception delivery');
    this.deliverException(this.cpus[cpuIndex], exceptions);
  }

  /** Enter the exception handler on the current stack; if that fails, the double-fault handler on its own. */
  private deliverException(cpu: CpuState, exceptions: ExceptionDelivery): void {
    const failed = this.enterHandler(cpu, cpu.stackPointer, exceptions.tableBase);
    if (failed === undefined) return;
    const { programCounter } = cpu;
    this.trapHandler({ kind: 'exception', exception: 'doubleFault', cpu: cpu.index, programCounter, address: failed.address, access: failed.access });
    const interruptedStackPointer = cpu.stackPointer;
    cpu.stackPointer = exceptions.doubleFaultStackTops[cpu.index];
    // a fault while delivering the double fault shuts the CPU down
    if (this.enterHandler(cpu, interruptedStackPointer, exceptions.tableBase + 1) !== undefined) cpu.mode = CpuMode.Stopped;
  }

  /** True when `cpu` may write `address`: mapped writable, and its key open for writing. */
  private writable(cpu: CpuState, address: number): boolean {
    return (this.memory.permissionAt(address) & PERMISSION_WRITE) !== 0 && !this.keyDenied(cpu, address, true);
  }

  /** True when the CPU's PKRU closes the key of `address`'s page to this access (never without protection keys: PKRU stays 0). */
  private keyDenied(cpu: CpuState, address: number, write: boolean): boolean {
    return cpu.pkru !== 0 && keyDenies(cpu.pkru, this.memory.keyAt(address), write);
  }

  private push(cpu: CpuState, value: number): boolean {
    const address = cpu.stackPointer - 1;
    if (!this.writable(cpu, address)) {
      this.accessFault(cpu, address, 'write');
      return false;
    }
    this.memory.words[address] = value;
    cpu.stackPointer = address;
    return true;
  }

  private pop(cpu: CpuState): number | undefined {
    const address = cpu.stackPointer;
    const permission = this.memory.permissionAt(address);
    if ((permission & PERMISSION_READ) === 0 || this.keyDenied(cpu, address, false)) {
      this.accessFault(cpu, address, 'read');
      return undefined;
    }
    if ((permission & PERMISSION_EXECUTE) !== 0) this.codeReads++;
    cpu.stackPointer = address + 1;
    return this.memory.words[address];
  }

  /** The fault an access that failed raises: unmapped, against the page's permission, or against its protection key. */
  private accessFault(cpu: CpuState, address: number, access: AccessKind): void {
    const permission = this.memory.permissionAt(address);
    const exception: ExceptionKind = permission === 0 ? 'pageFault' : (permission & ACCESS_PERMISSION[access]) === 0 ? 'protectionFault' : 'protectionKey';
    this.raise(cpu, { kind: 'exception', exception, cpu: cpu.index, programCounter: cpu.programCounter, address, access });
  }

  private exception(cpu: CpuState, exception: ExceptionKind): void {
    this.raise(cpu, { kind: 'exception', exception, cpu: cpu.index, programCounter: cpu.programCounter, address: 0, access: 'none' });
  }

  /** Report `trap`, then deliver it to the hypervisor's handler, or stop the CPU when there is none. */
  private raise(cpu: CpuState, trap: Trap): void {
    const exceptions = this.config.exceptions;
    if (exceptions === undefined || trap.kind === 'handover') {
      cpu.mode = CpuMode.Stopped;
      this.trapHandler(trap);
      return;
    }
    this.trapHandler(trap);
    this.deliverException(cpu, exceptions);
  }

  private markWrite(cpu: CpuState): void {
    this.writeEpoch++;
    this.lastWriteNs = cpu.timeNs;
  }

  /**
   * Run `cpu` until it sleeps, traps, or reaches the end of its slice or `untilNs`. Returns true
   * when the run's instruction limit was reached. One instruction takes one nanosecond. An event the
   * CPU schedules itself (timer, IPI) ends the slice at its time, so it is not delivered late.
   */
  private execute(cpu: CpuState, slice: Slice, untilNs: number): boolean {
    let limitNs = Math.min(slice.limitNs, untilNs);
    const words = this.memory.words;
    const permissions = this.memory.pagePermissions;
    const keys = this.memory.pageKeys;
    const keyShift = this.memory.keyShift;
    const size = words.length;
    const r = cpu.registers;
    const translation = this.tracer === undefined ? this.translation : undefined;
    // a stop asked for by a trap's handler takes effect at once, not at the end of the slice
    while (cpu.mode === CpuMode.Running && cpu.timeNs < limitNs && this.stopReason === undefined) {
      // an instruction that left through `continue` (vmenter, say) may have reached the stop
      if (this.hypervisorInstructions === this.limit) return true;
      const pending = cpu.pendingVectors !== 0 || cpu.nmiPending;
      // the shadow lives in the CPU state so that it survives the end of a quantum or a run
      if (cpu.interruptShadow) {
        cpu.interruptShadow = false;
        // nothing pending: nothing can be delivered after the shadowed instruction either (only
        // the CPU's own untranslated instructions raise its interrupts within a slice), so blocks may run
        if (!pending && translation !== undefined && translation.run(this, cpu, words, limitNs, this.limit)) continue;
      } else {
        if (pending && this.deliverInterrupt(cpu)) continue;
        if (translation !== undefined && translation.run(this, cpu, words, limitNs, this.limit)) continue;
      }
      const pc = cpu.programCounter;
      if (pc < 0 || pc >= size || (permissions[pc >>> PAGE_SHIFT] & PERMISSION_EXECUTE) === 0) {
        this.accessFault(cpu, pc, 'fetch');
        continue;
      }
      const word = words[pc];
      if (this.tracer !== undefined) this.tracer(cpu.index, pc, word, cpu.timeNs);
      cpu.timeNs += 1;
      cpu.instructionsRetired++;
      this.hypervisorInstructions++;
      const a = (word >>> 22) & 15;
      const b = (word >>> 18) & 15;
      const immediate = signExtendImmediate(word);
      let next = pc + 1;
      // the operation: the primary opcode, unless extension bits select another of its shape
      const operation = (word & EXTENSION_MASKS[word >>> 26]) === 0 ? word >>> 26 : operationOf(word);
      switch (operation) {
        case Opcode.Nop:
          break;
        case Opcode.MoveImmediate:
          r[a] = immediate;
          break;
        case Opcode.Move:
          r[a] = r[b];
          break;
        case Opcode.Load: {
          const address = r[b] + immediate;
          const permission = address < 0 || address >= size ? 0 : permissions[address >>> PAGE_SHIFT];
          if ((permission & PERMISSION_READ) === 0 || (cpu.pkru !== 0 && keyDenies(cpu.pkru, keys[address >>> keyShift], false))) {
            this.accessFault(cpu, address, 'read');
            continue;
          }
          if ((permission & PERMISSION_EXECUTE) !== 0) this.codeReads++;
          r[a] = words[address];
          break;
        }
        case Opcode.Store: {
          const address = r[a] + immediate;
          if (address < 0 || address >= size || (permissions[address >>> PAGE_SHIFT] & PERMISSION_WRITE) === 0 || (cpu.pkru !== 0 && keyDenies(cpu.pkru, keys[address >>> keyShift], true))) {
            this.accessFault(cpu, address, 'write');
            continue;
          }
          words[address] = r[b];
          this.markWrite(cpu);
          break;
        }
        case Opcode.Add:
        case Opcode.Subtract:
        case Opcode.And:
        case Opcode.Or:
        case Opcode.Xor:
        case Opcode.ShiftLeft:
        case Opcode.ShiftRight:
        case Opcode.Multiply:
          r[a] = arithmetic(operation, r[b], r[word & 15]);
          break;
        case Opcode.AddImmediate:
          r[a] = (r[b] + immediate) | 0;
          break;
        case Opcode.AndImmediate:
          r[a] = r[b] & immediate;
          break;
        case Opcode.Compare:
          cpu.flags = compareFlags(cpu.flags, r[a], r[b]);
          break;
        case Opcode.CompareImmediate:
          cpu.flags = compareFlags(cpu.flags, r[a], immediate);
          break;
        case Opcode.Jump:
          next = immediate;
          break;
        case Opcode.BranchEqual:
        case Opcode.BranchNotEqual:
        case Opcode.BranchLess:
        case Opcode.BranchGreaterEqual:
        case Opcode.BranchGreater:
        case Opcode.BranchLessEqual:
          if (branchTaken(operation, cpu.flags)) next = immediate;
          break;
        case Opcode.JumpRegister:
          next = r[a];
          break;
        case Opcode.Call:
          if (!this.push(cpu, next)) continue;
          next = immediate;
          break;
        case Opcode.CallRegister:
          if (!this.push(cpu, next)) continue;
          next = r[a];
          break;
        case Opcode.Return: {
          const target = this.pop(cpu);
          if (target === undefined) continue;
          next = target;
          break;
        }
        case Opcode.Push:
          if (!this.push(cpu, r[a])) continue;
          break;
        case Opcode.Pop: {
          const value = this.pop(cpu);
          if (value === undefined) continue;
          r[a] = value;
          break;
        }
        case Opcode.CompareAndSwap: {
          const address = r[b];
          if (!this.writable(cpu, address)) {
            this.accessFault(cpu, address, 'write');
            continue;
          }
          if (words[address] === r[a]) {
            words[address] = r[word & 15];
            this.markWrite(cpu);
            cpu.flags |= FLAG_ZERO;
          } else {
            r[a] = words[address];
            cpu.flags &= ~FLAG_ZERO;
          }
          break;
        }
        case Opcode.Pause:
          cpu.mode = CpuMode.Paused;
          cpu.pausedWriteEpoch = this.writeEpoch;
          break;
        case Opcode.DisableInterrupts:
          cpu.flags &= ~FLAG_INTERRUPT_ENABLE;
          break;
        case Opcode.EnableInterrupts:
          // one-instruction interrupt shadow, so that `sti; hlt` cannot lose a wake-up
          cpu.interruptShadow = (cpu.flags & FLAG_INTERRUPT_ENABLE) === 0;
          cpu.flags |= FLAG_INTERRUPT_ENABLE;
          break;
        case Opcode.InterruptReturn: {
          const target = this.pop(cpu);
          if (target === undefined) continue;
          const flags = this.pop(cpu);
          if (flags === undefined) continue;
          const stackPointer = this.pop(cpu);
          if (stackPointer === undefined) continue;
          next = target;
          cpu.flags = flags;
          cpu.stackPointer = stackPointer;
          cpu.nmiBlocked = false;
          break;
        }
        case Opcode.Halt:
          if (!this.canTakeInterrupt(cpu)) cpu.mode = CpuMode.Halted;
          break;
        case Opcode.BugOn:
          if (r[a] !== 0) {
            this.raise(cpu, { kind: 'assertion', cpu: cpu.index, programCounter: pc, code: immediate });
            continue;
          }
          break;
        case Opcode.Panic:
          this.raise(cpu, { kind: 'panic', cpu: cpu.index, programCounter: pc, code: immediate });
          continue;
        case Opcode.SetTimer:
          cpu.timerDeadlineNs = r[a] < 0 ? NO_DEADLINE : cpu.timeNs + r[a] * NS_PER_US + (this.interruptDelaysNs[cpu.index] ?? 0);
          if (cpu.timerDeadlineNs !== NO_DEADLINE) limitNs = shortenSlice(slice, cpu.timerDeadlineNs, untilNs);
          break;
        case Opcode.EndOfInterrupt:
          if (cpu.inServiceVectors !== 0) cpu.inServiceVectors &= ~(1 << highestVector(cpu.inServiceVectors));
          break;
        case Opcode.SendIpi:
          if (this.sendIpi(cpu, r[a], r[b])) limitNs = shortenSlice(slice, cpu.timeNs + this.ipiLatencyNs, untilNs);
          break;
        case Opcode.ReadTime:
          r[a] = Math.floor(cpu.timeNs / NS_PER_US) | 0;
          break;
        case Opcode.CpuIndex:
          r[a] = cpu.index;
          break;
        case Opcode.VmEnter:
          cpu.programCounter = next;
          this.enterGuest(cpu, r[a]);
          continue;
        case Opcode.ReadStackPointer:
          r[a] = cpu.stackPointer;
          break;
        case Opcode.WriteStackPointer:
          cpu.stackPointer = r[a];
          break;
        case Opcode.HandOver:
          // the layer above listens only while it runs a recovery entry; anywhere else the word is
          // no instruction (a code fault can make one)
          if (this.handoverArmed) this.raise(cpu, { kind: 'handover', cpu: cpu.index, programCounter: pc });
          else this.exception(cpu, 'invalidOpcode');
          continue;
        case Opcode.WritePkru:
          if (!this.protectionKeys) {
            this.exception(cpu, 'invalidOpcode');
            continue;
          }
          cpu.pkru = (r[a] + immediate) | 0;
          cpu.timeNs += WRPKRU_EXTRA_NS;
          this.pkruWrites++;
          break;
        default:
          this.exception(cpu, 'invalidOpcode');
          continue;
      }
      cpu.programCounter = next;
      if (this.hypervisorInstructions === this.limit) return true;
    }
    return cpu.mode !== CpuMode.Stopped && this.hypervisorInstructions === this.limit;
  }

  /** Returns true when the IPI was queued. */
  private sendIpi(cpu: CpuState, target: number, vector: number): boolean {
    if (target < 0 || target >= this.cpus.length) return false;
    if (vector !== 0 && (vector < 1 || vector > 31)) return false;
    this.queue.push(cpu.timeNs + this.ipiLatencyNs, target, vector === 0 ? NMI_EVENT : vector);
    return true;
  }

  private enterGuest(cpu: CpuState, context: number): void {
    const runNs = this.guestPort.enter(cpu.index, context, cpu.registers, cpu.timeNs);
    if (runNs === undefined) {
      cpu.programCounter -= 1;
      this.exception(cpu, 'vmEntryFailure');
      return;
    }
    cpu.mode = CpuMode.Guest;
    cpu.guestExitNs = cpu.timeNs + Math.max(1, Math.round(runNs));
    if (cpu.nmiPending || hasUnblockedVector(cpu)) this.leaveGuest(cpu, cpu.timeNs);
  }
}

/** The page permission each kind of access needs. */
const ACCESS_PERMISSION: Readonly<Record<AccessKind, number>> = { read: PERMISSION_READ, write: PERMISSION_WRITE, fetch: PERMISSION_EXECUTE };

function leastCommonMultiple(x: number, y: number): number {
  let a = x;
  let b = y;
  while (b !== 0) [a, b] = [b, a % b];
  return (x / a) * y;
}

function newSlice(cpu: number, limitNs: number): Slice {
  const slice = { cpu, limitNs: DOUBLE_FIELD };
  slice.limitNs = limitNs;
  return slice;
}

/** End `slice` no later than `eventNs`; returns the new limit for this run. */
function shortenSlice(slice: Slice, eventNs: number, untilNs: number): number {
  if (eventNs < slice.limitNs) slice.limitNs = eventNs;
  return Math.min(slice.limitNs, untilNs);
}

function arithmetic(opcode: number, left: number, right: number): number {
  switch (opcode) {
    case Opcode.Add:
      return (left + right) | 0;
    case Opcode.Subtract:
      return (left - right) | 0;
    case Opcode.And:
      return left & right;
    case Opcode.Or:
      return left | right;
    case Opcode.Xor:
      return left ^ right;
    case Opcode.ShiftLeft:
      return left << (right & 31);
    case Opcode.ShiftRight:
      return (left >>> (right & 31)) | 0;
    default:
      return Math.imul(left, right);
  }
}

function compareFlags(flags: number, left: number, right: number): number {
  const cleared = flags & ~(FLAG_ZERO | FLAG_LESS);
  return cleared | (left === right ? FLAG_ZERO : 0) | (left < right ? FLAG_LESS : 0);
}

function branchTaken(opcode: number, flags: number): boolean {
  const zero = (flags & FLAG_ZERO) !== 0;
  const less = (flags & FLAG_LESS) !== 0;
  switch (opcode) {
    case Opcode.BranchEqual:
      return zero;
    case Opcode.BranchNotEqual:
      return !zero;
    case Opcode.BranchLess:
      return less;
    case Opcode.BranchGreaterEqual:
      return !less;
    case Opcode.BranchGreater:
      return !less && !zero;
    default:
      return less || zero;
  }
}

const rejectingGuestPort: GuestPort = {
  enter: () => undefined,
  exit: () => undefined,
};
