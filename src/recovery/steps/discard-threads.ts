/**
 * Discard every CPU's hypervisor thread: whatever each was doing is abandoned, its stack pointer
 * reset. All threads go, not only the failing one: a survivor could wait forever on an abandoned
 * one, or trip over state the repairs change under it.
 */
import { CpuMode } from '../../machine/cpu.js';
import { nmiStackBase, nmiStackTop, stackTop } from '../../hypervisor/layout.js';
import { RecoveryHang } from '../context.js';
import { defineStep } from '../step.js';
import { isParked, unstoppedCpus } from './stop-cpus.js';

export const discardThreads = defineStep({
  name: 'discard-threads',
  fixes: 'abandons every in-flight hypervisor thread by resetting each CPU\'s stack pointer',
  run(context) {
    const running = unstoppedCpus(context);
    if (running.length > 0) {
      throw new RecoveryHang(`cpu ${running.map((cpu) => cpu.index).join(', ')} never entered recovery (interrupts masked)`);
    }
    let abandoned = 0;
    for (const cpu of context.machine.cpus) {
      if (cpu.index === context.recoveryCpu || !isParkedIdle(context, cpu.index)) abandoned++;
      cpu.mode = CpuMode.Stopped;
      cpu.stackPointer = stackTop(cpu.index);
    }
    return { threadsDiscarded: abandoned };
  },
});

/** True when the CPU was parked straight from guest mode or idle, with nothing in flight. */
function isParkedIdle(context: Parameters<typeof isParked>[0], cpu: number): boolean {
  return isParked(context, context.machine.cpus[cpu]) && interruptedStackPointer(context, cpu) >= stackTop(cpu) - 8;
}

/** The stack pointer of the thread the park interrupted: an NMI's frame on its own stack holds it. */
function interruptedStackPointer(context: Parameters<typeof isParked>[0], cpu: number): number {
  const stackPointer = context.machine.cpus[cpu].stackPointer;
  const nmiTop = nmiStackTop(cpu);
  return stackPointer >= nmiStackBase(cpu) && stackPointer < nmiTop ? context.machine.memory.words[nmiTop - 1] : stackPointer;
}
