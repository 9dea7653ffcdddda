/**
 * Equality of machine states, for deciding that a run is in the state another run was in: the
 * machine besides its memory (CPUs, clock, counters, queued interrupts, the slice in progress),
 * memory word for word, and the code words that differ but decode to the same instruction.
 */
import type { CpuState } from './cpu.js';
import { sameInstruction } from './isa.js';
import type { Machine, MachineSnapshot } from './machine.js';
import { PAGE_SHIFT, PERMISSION_EXECUTE } from './memory.js';

/**
 * Everything in the machine but memory: the CPUs (compared first: they nearly always tell a
 * diverged run apart), the clock, the counters, the queued interrupts and the slice.
 */
export function sameMachineBesidesMemory(machine: Machine, saved: MachineSnapshot): boolean {
  if (!machine.cpus.every((cpu, index) => sameCpu(cpu, saved.cpus[index]))) return false;
  const sameCounters =
    machine.nowNs === saved.nowNs &&
    machine.hypervisorInstructions === saved.hypervisorInstructions &&
    machine.interruptsDelivered === saved.interruptsDelivered &&
    machine.codeReads === saved.codeReads &&
    machine.writeEpoch === saved.writeEpoch &&
    machine.lastWriteNs === saved.lastWriteNs;
  if (!sameCounters || !samePageKeys(machine.memory.pageKeys, saved.pageKeys)) return false;
  return JSON.stringify(machine.sliceInProgress()) === JSON.stringify(saved.slice) && JSON.stringify(machine.queue.save()) === JSON.stringify(saved.queue);
}

function sameCpu(x: CpuState, y: CpuState): boolean {
  return JSON.stringify({ ...x, registers: Array.from(x.registers) }) === JSON.stringify({ ...y, registers: Array.from(y.registers) });
}

/**
 * The addresses where memory differs from `other`, if each is a code word holding the same
 * instruction or one that `fetchedLater` says is never fetched again; undefined if any other
 * word differs.
 */
export function changedCodeWords(words: Int32Array, other: Int32Array, permissions: Uint8Array, fetchedLater: (address: number) => boolean): number[] | undefined {
  const changed: number[] = [];
  for (let address = 0; address < words.length; address++) {
    if (words[address] === other[address]) continue;
    const executable = (permissions[address >>> PAGE_SHIFT] & PERMISSION_EXECUTE) !== 0;
    if (!executable || (fetchedLater(address) && !sameInstruction(words[address], other[address]))) return undefined;
    changed.push(address);
  }
  return changed;
}

/** Memory word for word: far cheaper than hashing it, and it stops at the first difference. */
export function sameWords(words: Int32Array, others: Int32Array): boolean {
  if (words.length !== others.length) return false;
  for (let index = 0; index < words.length; index++) {
    if (words[index] !== others[index]) return false;
  }
  return true;
}

/** The pages' protection keys, key for key. */
export function samePageKeys(keys: Uint8Array, others: Uint8Array): boolean {
  if (keys.length !== others.length) return false;
  for (let page = 0; page < keys.length; page++) {
    if (keys[page] !== others[page]) return false;
  }
  return true;
}
