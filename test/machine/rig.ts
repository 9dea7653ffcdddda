/**
 * A small machine for tests: code at 0x100, static data (interrupt table, then data) at 0x400,
 * an unmapped hole, and one stack per CPU. Programs are built with the Assembler and traps are
 * collected instead of handled.
 */
import { Assembler, type Program } from '../../src/machine/assembler.js';
import { Machine, type MachineConfig, type RunOutcome } from '../../src/machine/machine.js';
import type { Segment } from '../../src/machine/memory.js';
import type { Trap } from '../../src/machine/trap.js';

export const CODE_BASE = 0x100;
export const CODE_WORDS = 0x300;
export const STATIC_BASE = 0x400;
export const TABLE_BASE = STATIC_BASE;
export const DATA_BASE = 0x440;
/** first word of a run of counters/log entries the test handlers write */
export const LOG_COUNT = DATA_BASE + 0x20;
export const LOG_BASE = LOG_COUNT + 1;
export const UNMAPPED = 0x600;
export const STACK_BASE = 0x800;
export const STACK_WORDS_PER_CPU = 0x80;
export const TIMER_VECTOR = 4;
export const MAX_CPUS = 4;

export const segments: readonly Segment[] = [
  { name: 'code', kind: 'code', base: CODE_BASE, sizeWords: CODE_WORDS },
  { name: 'static', kind: 'static', base: STATIC_BASE, sizeWords: 0x100 },
  { name: 'stack', kind: 'stack', base: STACK_BASE, sizeWords: STACK_WORDS_PER_CPU * MAX_CPUS },
];

export function stackTop(cpu: number): number {
  return STACK_BASE + STACK_WORDS_PER_CPU * (cpu + 1);
}

export interface RigOptions {
  readonly cpuCount?: number;
  /** cpu index -> label where it starts; default: CPU 0 at the first instruction */
  readonly entries?: Readonly<Record<number, string>>;
  /** interrupt table slot (0 = NMI, 1..31 = vector) -> handler label */
  readonly handlers?: Readonly<Record<number, string>>;
  /** label loaded on every VM exit; default: the code base */
  readonly vmExitEntry?: string;
  readonly config?: Partial<MachineConfig>;
}

export interface Rig {
  readonly machine: Machine;
  readonly program: Program;
  readonly traps: Trap[];
  address(label: string): number;
}

export function rig(build: (asm: Assembler) => void, options: RigOptions = {}): Rig {
  const asm = new Assembler(CODE_BASE);
  build(asm);
  const program = asm.link();
  const address = (label: string): number => {
    const found = program.labels.get(label);
    if (found === undefined) throw new Error(`no label ${label}`);
    return found;
  };
  const cpuCount = options.cpuCount ?? 1;
  const machine = new Machine({
    cpuCount,
    segments,
    interruptTableBase: TABLE_BASE,
    timerVector: TIMER_VECTOR,
    hostStackTops: Array.from({ length: cpuCount }, (_, cpu) => stackTop(cpu)),
    vmExitEntry: options.vmExitEntry === undefined ? CODE_BASE : address(options.vmExitEntry),
    ...options.config,
  });
  machine.memory.words.set(program.words, program.base);
  for (const [slot, label] of Object.entries(options.handlers ?? {})) {
    machine.memory.words[TABLE_BASE + Number(slot)] = address(label);
  }
  const traps: Trap[] = [];
  machine.trapHandler = (trap) => {
    traps.push(trap);
    machine.stop(`trap: ${trap.kind}`);
  };
  const entries = options.entries ?? { 0: undefined };
  for (const [cpu, label] of Object.entries(entries)) {
    machine.startCpu(Number(cpu), label === undefined ? CODE_BASE : address(label), stackTop(Number(cpu)));
  }
  return { machine, program, traps, address };
}

export interface Ran extends Rig {
  readonly outcome: RunOutcome;
}

/** Build, start and run until `untilNs` (default 1 ms, well before the first watchdog NMI). */
export function runProgram(build: (asm: Assembler) => void, options: RigOptions = {}, untilNs = 1_000_000): Ran {
  const built = rig(build, options);
  const outcome = built.machine.run(untilNs);
  return { ...built, outcome };
}

/** Registers of CPU 0 after running `build` (which should end in `hlt` with interrupts off). */
export function registersAfter(build: (asm: Assembler) => void): Int32Array {
  const ran = runProgram(build);
  if (ran.traps.length > 0) throw new Error(`unexpected trap ${JSON.stringify(ran.traps[0])}`);
  return ran.machine.cpus[0].registers;
}

/**
 * Append `value` to the log at LOG_BASE (count at LOG_COUNT). Preserves every register but r14,
 * which it saves on the stack too; flags are clobbered.
 */
export function emitLog(asm: Assembler, value: number): void {
  asm.push(12).push(13).push(14);
  asm.movi(12, LOG_COUNT).ld(13, 12, 0).addi(14, 13, 1).st(12, 0, 14);
  asm.movi(14, value).st(13, LOG_BASE, 14);
  asm.pop(14).pop(13).pop(12);
}

export function readLog(machine: Machine): number[] {
  const count = machine.memory.words[LOG_COUNT];
  return Array.from(machine.memory.words.subarray(LOG_BASE, LOG_BASE + count));
}

/** Busy-loop `iterations` times using r13 (three instructions per iteration). */
export function emitSpin(asm: Assembler, iterations: number): void {
  const top = asm.unique('spin');
  asm.movi(13, iterations);
  asm.label(top).addi(13, 13, -1).cmpi(13, 0).bne({ label: top });
}
