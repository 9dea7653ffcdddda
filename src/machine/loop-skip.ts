/**
 * Skipping ahead through a loop, exactly. A CPU that loops in the hypervisor (a corrupted branch,
 * a wait that can never end) would cost one host step per simulated nanosecond until the NMI
 * watchdog fires, hundreds of milliseconds later. When it is the only CPU running and its whole
 * state repeats (registers, PC, SP, FLAGS, interrupt controller, and every word it writes holds
 * again what it held) after N instructions in which nothing outside it can act (no event before
 * the horizon, no other CPU running, no instruction that reads the clock, arms the timer, sends
 * an IPI or sleeps), every N more instructions leave the machine in that same state. So k whole
 * periods can be added to the clock and the counters at once; what follows is what running them
 * would have given.
 *
 * LoopRecorder watches the instructions of one window (as the machine's tracer) and finds the
 * period; `periodsToSkip` says how many whole periods fit before the horizon.
 */
import { CpuMode, type CpuState } from './cpu.js';
import { Opcode, decode } from './isa.js';

/** What a found loop does in one period. */
export interface LoopPeriod {
  readonly instructions: number;
  readonly stores: number;
  readonly codeReads: number;
}

/** The machine counters a period changes, as the recorder reads them. */
export interface LoopCounters {
  readonly writeEpoch: number;
  readonly codeReads: number;
}

/** Instructions whose effect depends on the clock or reaches outside the CPU: no loop through them is skipped. */
const UNSKIPPABLE: ReadonlySet<number> = new Set([
  Opcode.ReadTime,
  Opcode.SetTimer,
  Opcode.SendIpi,
  Opcode.Halt,
  Opcode.Pause,
  Opcode.VmEnter,
  Opcode.Panic,
  // longer than one nanosecond: a period's instructions would no longer be its duration
  Opcode.WritePkru,
]);

export class LoopRecorder {
  /** the state before the first instruction of the window, taken when it is about to run */
  private start: StartState | undefined;
  /** per address written in the window: its value before the first write */
  private readonly written = new Map<number, number>();
  private seen = 0;
  private spoiled = false;
  private found: LoopPeriod | undefined;

  constructor(
    private readonly cpu: CpuState,
    private readonly words: Int32Array,
    private readonly counters: LoopCounters,
  ) {}

  /** The period, once the state came back; undefined if it did not or the loop cannot be skipped. */
  get period(): LoopPeriod | undefined {
    return this.spoiled ? undefined : this.found;
  }

  /** Called before each instruction of the CPU runs (as the machine's tracer). */
  observe(word: number): void {
    if (this.spoiled || this.found !== undefined) return;
    const cpu = this.cpu;
    const start = (this.start ??= startState(cpu, this.counters));
    if (this.seen > 0 && cpu.programCounter === start.programCounter && this.stateRepeats(start)) {
      this.found = { instructions: this.seen, stores: this.counters.writeEpoch - start.writeEpoch, codeReads: this.counters.codeReads - start.codeReads };
      return;
    }
    this.seen++;
    const instruction = decode(word);
    if (UNSKIPPABLE.has(instruction.opcode)) {
      this.spoiled = true;
      return;
    }
    const target = writtenAddress(instruction, cpu);
    if (target !== undefined && target >= 0 && target < this.words.length && !this.written.has(target)) this.written.set(target, this.words[target]);
  }

  private stateRepeats(start: StartState): boolean {
    const cpu = this.cpu;
    if (cpu.stackPointer !== start.stackPointer || cpu.flags !== start.flags) return false;
    for (let index = 0; index < start.registers.length; index++) if (cpu.registers[index] !== start.registers[index]) return false;
    const controller = controllerState(cpu);
    if (controller.some((value, index) => value !== start.controller[index])) return false;
    for (const [address, value] of this.written) if (this.words[address] !== value) return false;
    return true;
  }
}

interface StartState {
  readonly registers: Int32Array;
  readonly stackPointer: number;
  readonly flags: number;
  readonly programCounter: number;
  readonly controller: readonly unknown[];
  readonly writeEpoch: number;
  readonly codeReads: number;
}

function startState(cpu: CpuState, counters: LoopCounters): StartState {
  return {
    registers: cpu.registers.slice(),
    stackPointer: cpu.stackPointer,
    flags: cpu.flags,
    programCounter: cpu.programCounter,
    controller: controllerState(cpu),
    writeEpoch: counters.writeEpoch,
    codeReads: counters.codeReads,
  };
}

/** The address an instruction will store to, from the registers before it runs. */
function writtenAddress(instruction: ReturnType<typeof decode>, cpu: CpuState): number | undefined {
  switch (instruction.opcode) {
    case Opcode.Store:
      return cpu.registers[instruction.a] + instruction.immediate;
    case Opcode.Push:
    case Opcode.Call:
    case Opcode.CallRegister:
      return cpu.stackPointer - 1;
    case Opcode.CompareAndSwap:
      return cpu.registers[instruction.b];
    default:
      return undefined;
  }
}

/** Everything of the CPU besides registers, SP, FLAGS, PC and the clock that an instruction may change. */
function controllerState(cpu: CpuState): unknown[] {
  return [cpu.mode, cpu.pendingVectors, cpu.inServiceVectors, cpu.nmiPending, cpu.nmiBlocked, cpu.interruptShadow, cpu.timerDeadlineNs];
}

/**
 * Whole periods that fit between `nowNs` and the horizon (strictly before it: what happens there
 * is left to the machine) and before the instruction stop.
 */
export function periodsToSkip(period: LoopPeriod, nowNs: number, horizonNs: number, instructionsLeft: number): number {
  const byTime = Math.floor((horizonNs - 1 - nowNs) / period.instructions);
  const byStop = Math.floor((instructionsLeft - 1) / period.instructions);
  return Math.max(0, Math.min(byTime, byStop));
}

/** The machine as a watch of all its CPUs reads it. */
export interface WatchedMachine extends LoopCounters {
  readonly cpus: readonly CpuState[];
  readonly hypervisorInstructions: number;
  readonly interruptsDelivered: number;
}

/** What the whole machine does in one period of a loop of several CPUs. */
export interface MachinePeriod {
  /** simulated time of one period */
  readonly durationNs: number;
  /** how far past the period's start its slices reached */
  readonly reachNs: number;
  readonly instructions: number;
  readonly retired: readonly number[];
  readonly stores: number;
  readonly codeReads: number;
  readonly interrupts: number;
}

/**
 * A watch of every CPU at once, for loops that several CPUs run together (a corrupted routine
 * every CPU calls). At each point where the machine plans a slice, the state of every CPU (the
 * running ones' clocks taken relative to the one about to run) and the words written since the
 * watch began are compared with those at its start: when they are all the same, the machine is
 * in the same state, shifted in time, and whatever it did since repeats until something from
 * outside (an event) intervenes. Slices cut short by an event, and instructions that read the
 * clock or sleep, spoil the watch.
 */
export class MachineLoopWatch {
  private readonly written = new Map<number, number>();
  private readonly start: readonly number[];
  private readonly startNs: number;
  private readonly startInstructions: number;
  private readonly startRetired: readonly number[];
  private readonly startEpoch: number;
  private readonly startCodeReads: number;
  private readonly startInterrupts: number;
  private furthestLimitNs: number;
  private spoiledBy = false;
  private cutByEvent = false;

  constructor(
    private readonly machine: WatchedMachine,
    private readonly words: Int32Array,
    chosenNs: number,
  ) {
    this.start = fingerprintOf(machine.cpus, chosenNs);
    this.startNs = chosenNs;
    this.furthestLimitNs = chosenNs;
    this.startInstructions = machine.hypervisorInstructions;
    this.startRetired = machine.cpus.map((cpu) => cpu.instructionsRetired);
    this.startEpoch = machine.writeEpoch;
    this.startCodeReads = machine.codeReads;
    this.startInterrupts = machine.interruptsDelivered;
  }

  get spoiled(): boolean {
    return this.spoiledBy;
  }

  /** a slice was cut short by the next event: the watch could not run its course */
  get interrupted(): boolean {
    return this.cutByEvent;
  }

  /** hypervisor instructions run since the watch began */
  get instructions(): number {
    return this.machine.hypervisorInstructions - this.startInstructions;
  }

  /** Called before each instruction any CPU runs (as the machine's tracer). */
  observe(cpu: CpuState, word: number): void {
    if (this.spoiledBy) return;
    const instruction = decode(word);
    if (UNSKIPPABLE.has(instruction.opcode)) {
      this.spoiledBy = true;
      return;
    }
    const target = writtenAddress(instruction, cpu);
    if (target !== undefined && target >= 0 && target < this.words.length && !this.written.has(target)) this.written.set(target, this.words[target]);
  }

  /** A slice was planned up to `limitNs`; one cut short by the next event ends the watch. */
  noteSlice(limitNs: number, eventNs: number): void {
    if (limitNs >= eventNs) this.cutByEvent = true;
    if (limitNs > this.furthestLimitNs) this.furthestLimitNs = limitNs;
  }

  /** At a planning point, with `chosenNs` the clock of the CPU about to run: the period, if the state came back. */
  repeatsAt(chosenNs: number): MachinePeriod | undefined {
    if (this.spoiledBy || this.cutByEvent || chosenNs <= this.startNs) return undefined;
    const now = fingerprintOf(this.machine.cpus, chosenNs);
    if (now.some((value, index) => value !== this.start[index])) return undefined;
    for (const [address, value] of this.written) if (this.words[address] !== value) return undefined;
    const machine = this.machine;
    return {
      durationNs: chosenNs - this.startNs,
      reachNs: this.furthestLimitNs - this.startNs,
      instructions: machine.hypervisorInstructions - this.startInstructions,
      retired: machine.cpus.map((cpu, index) => cpu.instructionsRetired - this.startRetired[index]),
      stores: machine.writeEpoch - this.startEpoch,
      codeReads: machine.codeReads - this.startCodeReads,
      interrupts: machine.interruptsDelivered - this.startInterrupts,
    };
  }
}

/** Every CPU's state, the running ones' clocks relative to `chosenNs`. */
function fingerprintOf(cpus: readonly CpuState[], chosenNs: number): number[] {
  const values: number[] = [];
  for (const cpu of cpus) {
    values.push(cpu.mode, cpu.programCounter, cpu.stackPointer, cpu.flags, cpu.pendingVectors, cpu.inServiceVectors);
    values.push(cpu.nmiPending ? 1 : 0, cpu.nmiBlocked ? 1 : 0, cpu.interruptShadow ? 1 : 0, cpu.timerDeadlineNs, cpu.nextNmiNs, cpu.guestExitNs);
    values.push(cpu.mode === CpuMode.Running ? cpu.timeNs - chosenNs : cpu.timeNs);
    for (const register of cpu.registers) values.push(register);
  }
  return values;
}

/**
 * Whole periods to skip from a planning point at `chosenNs`: every slice of the skipped periods
 * ends before the horizon, and the instruction stop is not reached.
 */
export function machinePeriodsToSkip(period: MachinePeriod, chosenNs: number, horizonNs: number, instructionsLeft: number): number {
  const byTime = Math.floor((horizonNs - chosenNs - period.reachNs) / period.durationNs);
  const byStop = period.instructions === 0 ? Number.POSITIVE_INFINITY : Math.floor((instructionsLeft - 1) / period.instructions);
  return Math.max(0, Math.min(byTime, byStop));
}
