/**
 * Assembles the whole hypervisor into one program at CODE_BASE.
 */
import { Assembler, type Program } from '../../machine/assembler.js';
import { VECTOR_DISK, VECTOR_NIC } from '../abi.js';
import { CODE_BASE, CODE_WORDS } from '../layout.js';
import { emitEntryPaths } from './entry.js';
import { emitHypercalls } from './hypercalls.js';
import { emitInterrupts } from './interrupts.js';
import { emitRecoveryEntryPaths } from './recovery-entry.js';
import { emitTimers } from './timers.js';

export const DEVICE_VECTORS: readonly number[] = [VECTOR_DISK, VECTOR_NIC];

export function assembleHypervisor(): Program {
  const asm = new Assembler(CODE_BASE);
  emitEntryPaths(asm);
  emitTimers(asm);
  emitInterrupts(asm, DEVICE_VECTORS);
  emitHypercalls(asm);
  emitRecoveryEntryPaths(asm);
  const program = asm.link();
  if (program.words.length > CODE_WORDS) throw new Error(`hypervisor code (${program.words.length} words) exceeds its segment`);
  return program;
}

let cached: Program | undefined;

/** The program never changes between runs: assemble it once per process. */
export function hypervisorProgram(): Program {
  cached ??= assembleHypervisor();
  return cached;
}

export function entryPoint(program: Program, label: string): number {
  const address = program.labels.get(label);
  if (address === undefined) throw new Error(`no label ${label} in the hypervisor`);
  return address;
}
