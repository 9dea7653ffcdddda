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
import type { CpuState } from './cpu.js';
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
