/**
 * Assembles the whole hypervisor into one program at CODE_BASE.
 */
import { Assembler, type Program } from '../../machine/assembler.js';
import { VECTOR_DISK, VECTOR_NIC } from '../abi.js';
import { CODE_BASE, CODE_WORDS } from '../layout.js';
import { emitEntryPaths } from './entry.js';
import { emitHypercalls } from './hypercalls.js';
import { emitInterrupts } from './interrupts.js';
import { protectionKeyHooks } from './protection-keys.js';
import { emitRecoveryEntryPaths } from './recovery-entry.js';
import { emitTimers } from './timers.js';

export const DEVICE_VECTORS: readonly number[] = [VECTOR_DISK, VECTOR_NIC];

/** How the hypervisor is built: with the intended-sharing policy's lock code (protection keys) or without. */
export interface BuildOptions {
  readonly protectionKeys?: boolean;
}

export function assembleHypervisor(options: BuildOptions = {}): Program {
  const asm = new Assembler(CODE_BASE);
  if (options.protectionKeys === true) asm.lockHooks = protectionKeyHooks;
  emitEntryPaths(asm);
  emitTimers(asm);
  emitInterrupts(asm, DEVICE_VECTORS);
  emitHypercalls(asm);
  emitRecoveryEntryPaths(asm);
  const program = asm.link();
  if (program.words.length > CODE_WORDS) throw new Error(`hypervisor code (${program.words.length} words) exceeds its segment`);
  return program;
}

const cached = new Map<boolean, Program>();

/** The program never changes between runs: assemble each build once per process. */
export function hypervisorProgram(options: BuildOptions = {}): Program {
  const keyed = options.protectionKeys === true;
  let program = cached.get(keyed);
  if (program === undefined) {
    program = assembleHypervisor(options);
    cached.set(keyed, program);
  }
  return program;
}

export function entryPoint(program: Program, label: string): number {
  const address = program.labels.get(label);
  if (address === undefined) throw new Error(`no label ${label} in the hypervisor`);
  return address;
}
