/**
 * Stop the CPUs: the recovery IPI goes to every other CPU and the machine runs on briefly. A CPU
 * takes it only if it can (interrupts enabled, or running a guest); the handler parks it, with
 * its irq_count incremented as by any interrupt entry. A CPU spinning with interrupts masked
 * never takes it: that is what the NMI step is for.
 */
import { CpuMode, type CpuState } from '../../machine/cpu.js';
import { NMI_EVENT } from '../../machine/event-queue.js';
import { RECOVERY_IN_PROGRESS, VECTOR_RECOVERY } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';

/** How long the recovery CPU waits for the others to arrive, in simulated time. */
export const STOP_WINDOW_NS = 50_000;
const PARK_LOOP_WORDS = 3;

export function isParked(context: RecoveryContext, cpu: CpuState): boolean {
  if (cpu.mode === CpuMode.Stopped) return true;
  const park = context.hypervisor.label('recovery_park');
  return cpu.mode === CpuMode.Halted && cpu.programCounter >= park && cpu.programCounter <= park + PARK_LOOP_WORDS;
}

export function unstoppedCpus(context: RecoveryContext): CpuState[] {
  return context.machine.cpus.filter((cpu) => !isParked(context, cpu));
}

/** Send `vector` (or an NMI) to every CPU not yet parked, then let the machine run the window. */
export function signalAndWait(context: RecoveryContext, vector: number): number {
  const machine = context.machine;
  const targets = unstoppedCpus(context);
  for (const cpu of targets) machine.raiseInterrupt(machine.nowNs, cpu.index, vector);
  const savedHandler = machine.trapHandler;
  // a CPU that traps now has stopped too: its error is part of the failure being recovered
  machine.trapHandler = () => undefined;
  machine.run(machine.nowNs + STOP_WINDOW_NS);
  machine.trapHandler = savedHandler;
  return targets.length;
}

export const stopCpus = defineStep({
  name: 'stop-cpus',
  fixes: 'brings every CPU out of hypervisor and guest execution with the recovery IPI, so that repairs run alone',
  run(context) {
    context.write(RECOVERY_IN_PROGRESS, 1);
    const signalled = signalAndWait(context, VECTOR_RECOVERY);
    return { cpusSignalled: signalled, cpusStillRunning: unstoppedCpus(context).length };
  },
});

export const nmiIpi = defineStep({
  name: 'nmi-ipi',
  fixes: 'reaches CPUs that had interrupts masked, and so never took the recovery IPI, with an NMI',
  run(context) {
    const signalled = unstoppedCpus(context).length === 0 ? 0 : signalAndWait(context, NMI_EVENT);
    return { cpusSignalled: signalled, cpusStillRunning: unstoppedCpus(context).length };
  },
});
