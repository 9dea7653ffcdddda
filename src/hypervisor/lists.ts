/**
 * The hypervisor's two kinds of list, as TypeScript sees them from outside the machine: boot
 * builds them in fresh memory, recovery rebuilds them through the hypervisor's own (possibly
 * corrupted) pointers. The same code does both, over a word accessor; the assembly versions
 * (timer_list_insert, runqueue_insert) do the same inside the machine.
 */
import { PerCpu, Timer, Vcpu } from './layout.js';

export interface WordAccess {
  read(address: number): number;
  write(address: number, value: number): void;
  /** called before each step of a list walk; recovery bounds the walk here */
  step?(steps: number): void;
}

/** Unchecked access to fresh memory, for boot. */
export function rawWords(words: Int32Array): WordAccess {
  return {
    read: (address) => words[address],
    write: (address, value) => {
      words[address] = value;
    },
  };
}

/** Insert `timer` into the timer list of the CPU whose area is `cpuArea`, sorted by expiry. */
export function insertTimer(memory: WordAccess, cpuArea: number, timer: number): void {
  const head = cpuArea + PerCpu.offset.timerHead;
  const expires = memory.read(timer + Timer.offset.expiresUs);
  let previous = 0;
  let current = memory.read(head);
  for (let steps = 0; current !== 0; steps++) {
    memory.step?.(steps);
    if (memory.read(current + Timer.offset.expiresUs) > expires) break;
    previous = current;
    current = memory.read(current + Timer.offset.next);
  }
  memory.write(timer + Timer.offset.previous, previous);
  memory.write(timer + Timer.offset.next, current);
  memory.write(previous === 0 ? head : previous + Timer.offset.next, timer);
  if (current !== 0) memory.write(current + Timer.offset.previous, timer);
  memory.write(timer + Timer.offset.active, 1);
}

/** Append `vcpu` to the runqueue of the CPU whose area is `cpuArea`. */
export function appendRunqueue(memory: WordAccess, cpuArea: number, vcpu: number): void {
  const tail = memory.read(cpuArea + PerCpu.offset.runqueueTail);
  memory.write(vcpu + Vcpu.offset.runqueuePrevious, tail);
  memory.write(vcpu + Vcpu.offset.runqueueNext, 0);
  memory.write(tail === 0 ? cpuArea + PerCpu.offset.runqueueHead : tail + Vcpu.offset.runqueueNext, vcpu);
  memory.write(cpuArea + PerCpu.offset.runqueueTail, vcpu);
}
