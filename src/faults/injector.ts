/**
 * The injector: lands a planned fault in the state of the CPU that just retired the trigger's
 * instruction, and records exactly where. Code faults are transient: `restore` puts the bit
 * back, and the trial calls it when the error is detected.
 */
import { CpuMode, type CpuState } from '../machine/cpu.js';
import { disassemble } from '../machine/disassembler.js';
import type { Machine } from '../machine/machine.js';
import type { FaultPlan, InjectedLocation, Injection, RegisterName } from './fault.js';

/** A span of hypervisor memory that memory faults may hit. */
export interface MemorySpan {
  readonly base: number;
  readonly sizeWords: number;
}

export interface InjectionContext {
  readonly machine: Machine;
  /** names an address for the record (code symbol or data field) */
  readonly nameAddress: (address: number) => string;
  /** in-use static data and heap, in order */
  readonly memorySpans: readonly MemorySpan[];
  /** the code segment, which code faults stay inside */
  readonly code: MemorySpan;
}

export interface AppliedFault {
  readonly injection: Injection;
  /** undo a transient fault (code faults); undefined for the others */
  readonly restore: (() => void) | undefined;
}

export function injectFault(plan: FaultPlan, cpu: CpuState, context: InjectionContext): AppliedFault {
  const { machine } = context;
  const programCounter = cpu.programCounter;
  const instruction = describeInstruction(context, programCounter);
  const { location, restore } = flip(plan, cpu, context);
  return {
    injection: { cpu: cpu.index, timeNs: cpu.timeNs, instructionCount: machine.hypervisorInstructions, programCounter, instruction, location },
    restore,
  };
}

function describeInstruction(context: InjectionContext, address: number): string {
  const words = context.machine.memory.words;
  if (address < 0 || address >= words.length) return `(pc outside memory)`;
  return `${disassemble(words[address])} <${context.nameAddress(address)}>`;
}

function flip(plan: FaultPlan, cpu: CpuState, context: InjectionContext): { location: InjectedLocation; restore: (() => void) | undefined } {
  const target = plan.target;
  switch (target.type) {
    case 'failstop': {
      const before = cpu.programCounter;
      cpu.programCounter = 0;
      return { location: { type: 'failstop', before, after: 0 }, restore: undefined };
    }
    case 'hostFailstop':
      return { location: stopHost(context.machine), restore: undefined };
    case 'register': {
      const before = readRegister(cpu, target.register);
      const after = (before ^ (1 << target.bit)) | 0;
      writeRegister(cpu, target.register, after);
      return { location: { type: 'register', register: target.register, bit: target.bit, before, after }, restore: undefined };
    }
    case 'code': {
      const code = context.code;
      const wanted = cpu.programCounter + target.wordOffset;
      const address = wanted >= code.base && wanted < code.base + code.sizeWords ? wanted : cpu.programCounter;
      return flipWord(context, 'code', address, target.bit, true);
    }
    case 'memory':
      return flipWord(context, 'memory', memoryAddress(context.memorySpans, target.fraction), target.bit, false);
  }
}

/**
 * The whole host stops, as on a power or board failure: every CPU ceases at once, so no handler
 * runs, no watchdog NMI is taken and nothing on this host can notice. Only another host can.
 */
function stopHost(machine: Machine): InjectedLocation {
  for (const cpu of machine.cpus) cpu.mode = CpuMode.Stopped;
  return { type: 'hostFailstop', cpus: machine.cpus.length };
}

function flipWord(
  context: InjectionContext,
  type: 'code' | 'memory',
  address: number,
  bit: number,
  transient: boolean,
): { location: InjectedLocation; restore: (() => void) | undefined } {
  const words = context.machine.memory.words;
  const before = words[address];
  const after = (before ^ (1 << bit)) | 0;
  words[address] = after;
  const restore = transient ? () => { words[address] ^= 1 << bit; } : undefined;
  return { location: { type, address, symbol: context.nameAddress(address), bit, before, after }, restore };
}

function memoryAddress(spans: readonly MemorySpan[], fraction: number): number {
  const total = spans.reduce((sum, span) => sum + span.sizeWords, 0);
  let index = Math.min(total - 1, Math.floor(fraction * total));
  for (const span of spans) {
    if (index < span.sizeWords) return span.base + index;
    index -= span.sizeWords;
  }
  throw new Error('no memory to inject into');
}

export function readRegister(cpu: CpuState, register: RegisterName): number {
  switch (register) {
    case 'sp':
      return cpu.stackPointer;
    case 'flags':
      return cpu.flags;
    case 'pc':
      return cpu.programCounter;
    default:
      return cpu.registers[Number(register.slice(1))];
  }
}

function writeRegister(cpu: CpuState, register: RegisterName, value: number): void {
  switch (register) {
    case 'sp':
      cpu.stackPointer = value;
      return;
    case 'flags':
      cpu.flags = value;
      return;
    case 'pc':
      cpu.programCounter = value;
      return;
    default:
      cpu.registers[Number(register.slice(1))] = value;
  }
}
