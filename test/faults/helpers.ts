/**
 * Independent re-runs for checking trial records: boot a fresh system (never fast-forwarded) and
 * drive the bare machine to the point a record says its fault landed, so that the record's
 * claims can be compared with the machine state found there.
 */
import { expect } from 'vitest';
import { CpuMode, type CpuState } from '../../src/machine/cpu.js';
import { Opcode, decode, isValidWord } from '../../src/machine/isa.js';
import type { RegisterName } from '../../src/faults/fault.js';
import type { TrialRecord, TrialSpec } from '../../src/trial/record.js';
import { System, type SystemOptions } from '../../src/trial/system.js';

export const MS = 1_000_000;

export type InjectedRecord = Exclude<TrialRecord, { outcome: 'notInjected' }>;

export function injectedRecord(record: TrialRecord): InjectedRecord {
  if (record.outcome === 'notInjected') throw new Error(`trial ${record.trialIndex} was not injected`);
  return record;
}

export function systemOptionsOf(spec: TrialSpec): SystemOptions {
  return { configuration: spec.configuration, seed: spec.seed, runLengthNs: spec.runLengthNs, strictNetBench: spec.strictNetBench };
}

export function bootedSystem(spec: TrialSpec): System {
  const system = new System(systemOptionsOf(spec));
  system.start();
  return system;
}

export interface Landing {
  readonly system: System;
  /** the CPU that retired the instruction after which the fault landed, in the state found there */
  readonly cpu: CpuState;
  /** hypervisor instructions retired by all CPUs at the trigger time */
  readonly countAtTrigger: number;
  /** the last instruction each CPU executed before the stop: [program counter, time] */
  readonly lastExecuted: readonly ([number, number] | undefined)[];
}

/**
 * Boot a fresh system, run it to the record's trigger time, then step instruction limit by
 * instruction limit up to the record's instruction count, checking on the way that every stop
 * before it was skipped for the reason the injector gives (its CPU had left hypervisor
 * execution) and that the one at the count leaves a CPU running hypervisor code.
 */
export function landingOf(spec: TrialSpec, record: InjectedRecord): Landing {
  const system = bootedSystem(spec);
  const machine = system.machine;
  const lastExecuted: ([number, number] | undefined)[] = machine.cpus.map(() => undefined);
  machine.tracer = (cpu, programCounter, _word, timeNs) => {
    lastExecuted[cpu] = [programCounter, timeNs];
  };
  const { trigger } = record.plan;
  expect(machine.run(trigger.timeNs).kind).toBe('timeReached');
  const countAtTrigger = machine.hypervisorInstructions;
  const first = countAtTrigger + trigger.instructionsAfter + 1;
  const target = record.injection.instructionCount;
  expect(target).toBeGreaterThanOrEqual(first);
  for (let stop = first; ; stop++) {
    const outcome = machine.run({ untilNs: system.runLengthNs, instructionLimit: stop });
    if (outcome.kind !== 'instructionLimit') throw new Error(`instruction ${stop} was never reached (${outcome.kind})`);
    expect(machine.hypervisorInstructions).toBe(stop);
    const cpu = machine.cpus[outcome.cpu];
    if (stop === target) {
      machine.tracer = undefined;
      expect(cpu.mode).toBe(CpuMode.Running);
      return { system, cpu, countAtTrigger, lastExecuted };
    }
    // a stop the trial passed over: its CPU must have left hypervisor execution
    expect(cpu.mode).not.toBe(CpuMode.Running);
  }
}

function gpr(index: number): RegisterName {
  return `r${index}` as RegisterName;
}

/**
 * The registers an instruction word overwrites without reading them first (so a flip in one of
 * them just before the instruction is dead), from the ISA's semantics in src/machine/machine.ts.
 */
export function overwrittenUnread(word: number): RegisterName[] {
  if (!isValidWord(word)) return [];
  const { opcode, a, b, c } = decode(word);
  const unless = (written: RegisterName, ...read: RegisterName[]): RegisterName[] => (read.includes(written) ? [] : [written]);
  switch (opcode) {
    case Opcode.MoveImmediate:
    case Opcode.ReadTime:
    case Opcode.CpuIndex:
    case Opcode.ReadStackPointer:
      return [gpr(a)];
    case Opcode.Move:
    case Opcode.Load:
    case Opcode.AddImmediate:
    case Opcode.AndImmediate:
      return unless(gpr(a), gpr(b));
    case Opcode.Add:
    case Opcode.Subtract:
    case Opcode.And:
    case Opcode.Or:
    case Opcode.Xor:
    case Opcode.ShiftLeft:
    case Opcode.ShiftRight:
    case Opcode.Multiply:
      return unless(gpr(a), gpr(b), gpr(c));
    case Opcode.Pop:
      return [gpr(a)];
    case Opcode.WriteStackPointer:
      return ['sp'];
    case Opcode.InterruptReturn:
      return ['flags'];
    default:
      return [];
  }
}

/** Number of set bits in a 32-bit value. */
export function popcount(value: number): number {
  let bits = value >>> 0;
  let count = 0;
  while (bits !== 0) {
    bits &= bits - 1;
    count++;
  }
  return count;
}
