/**
 * Whole-machine state as plain data, for comparisons in tests, and its digest.
 */
import type { CpuState } from '../../src/machine/cpu.js';
import { Fingerprint, addCpuState } from '../../src/machine/digest.js';
import type { Machine } from '../../src/machine/machine.js';

export interface CpuRecord {
  readonly [field: string]: number | boolean | number[];
}

export function cpuRecord(cpu: CpuState): CpuRecord {
  return { ...cpu, registers: Array.from(cpu.registers) } as unknown as CpuRecord;
}

export interface MachineState {
  readonly words: number[];
  readonly cpus: CpuRecord[];
  readonly queue: readonly unknown[];
  readonly hypervisorInstructions: number;
  readonly codeReads: number;
  readonly writeEpoch: number;
  readonly nowNs: number;
}

export function machineState(machine: Machine): MachineState {
  return {
    words: Array.from(machine.memory.words),
    cpus: machine.cpus.map(cpuRecord),
    queue: machine.queue.toArray().map((event) => ({ ...event })),
    hypervisorInstructions: machine.hypervisorInstructions,
    codeReads: machine.codeReads,
    writeEpoch: machine.writeEpoch,
    nowNs: machine.nowNs,
  };
}

export function machineDigest(machine: Machine): string {
  const fingerprint = new Fingerprint().addWords(machine.memory.words);
  for (const cpu of machine.cpus) addCpuState(fingerprint, cpu);
  return fingerprint.addNumber(machine.nowNs).hex();
}
