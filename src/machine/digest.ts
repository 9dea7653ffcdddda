/**
 * A stable fingerprint of machine state: FNV-1a over memory words and architectural CPU state.
 */
import type { CpuState } from './cpu.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export class Fingerprint {
  private hash = FNV_OFFSET;
  private hash2 = 0x9e3779b9;

  addWord(value: number): this {
    this.hash = Math.imul(this.hash ^ (value & 0xff), FNV_PRIME);
    this.hash = Math.imul(this.hash ^ ((value >>> 8) & 0xff), FNV_PRIME);
    this.hash = Math.imul(this.hash ^ ((value >>> 16) & 0xff), FNV_PRIME);
    this.hash = Math.imul(this.hash ^ (value >>> 24), FNV_PRIME);
    this.hash2 = Math.imul(this.hash2 ^ value, 0x85ebca6b) ^ (this.hash2 >>> 13);
    return this;
  }

  addWords(values: ArrayLike<number>): this {
    for (let index = 0; index < values.length; index++) this.addWord(values[index]);
    return this;
  }

  addNumber(value: number): this {
    // simulated times exceed 32 bits: fold the high part in separately
    return this.addWord(value % 0x1_0000_0000).addWord(Math.floor(value / 0x1_0000_0000));
  }

  addString(text: string): this {
    for (let index = 0; index < text.length; index++) this.addWord(text.charCodeAt(index));
    return this;
  }

  hex(): string {
    return (this.hash >>> 0).toString(16).padStart(8, '0') + (this.hash2 >>> 0).toString(16).padStart(8, '0');
  }
}

export function addCpuState(fingerprint: Fingerprint, cpu: CpuState): Fingerprint {
  fingerprint.addWords(cpu.registers);
  for (const value of [cpu.stackPointer, cpu.flags, cpu.programCounter, cpu.mode, cpu.pendingVectors, cpu.inServiceVectors]) {
    fingerprint.addWord(value);
  }
  fingerprint.addWord(cpu.nmiPending ? 1 : 0).addWord(cpu.nmiBlocked ? 1 : 0);
  // only a machine with protection keys ever has a PKRU other than 0: the others' digests stay as they were
  if (cpu.pkru !== 0) fingerprint.addWord(cpu.pkru);
  return fingerprint.addNumber(cpu.timerDeadlineNs).addNumber(cpu.instructionsRetired);
}
