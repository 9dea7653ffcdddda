/**
 * Stop the CPUs. The recovery routine's entry does it in the machine before any step runs
 * (code/recovery-entry.ts, run by ../entry.ts): the recovery IPI to every other online CPU, whose
 * handler parks it with its irq_count incremented as by any interrupt entry; then, if the routine
 * is built with the NMI IPI, an NMI to the CPUs that had interrupts masked and so never took the
 * IPI. These steps report what the entry achieved; switching off `nmi-ipi` builds the entry
 * without the NMI.
 */
import { CpuMode, type CpuState } from '../../machine/cpu.js';
import type { RecoveryContext } from '../context.js';
import type { RecoveryStep } from '../step.js';

/** The park loop is `hlt; jmp`: a parked CPU sleeps on its `hlt` or just after it. */
const PARK_LOOP_WORDS = 1;

export function isParked(context: RecoveryContext, cpu: CpuState): boolean {
  if (cpu.mode === CpuMode.Stopped) return true;
  const park = context.hypervisor.label('recovery_park.halt');
  return cpu.mode === CpuMode.Halted && cpu.programCounter >= park && cpu.programCounter <= park + PARK_LOOP_WORDS;
}

export function unstoppedCpus(context: RecoveryContext): CpuState[] {
  return context.machine.cpus.filter((cpu) => !isParked(context, cpu));
}

function parkedOthers(context: RecoveryContext): number {
  return context.machine.cpus.filter((cpu) => cpu.index !== context.recoveryCpu && isParked(context, cpu)).length;
}

export const stopCpus: RecoveryStep = {
  name: 'stop-cpus',
  fixes: 'brings every CPU out of hypervisor and guest execution with the recovery IPI, so that repairs run alone',
  run(context) {
    return { cpusParked: parkedOthers(context), cpusStillRunning: unstoppedCpus(context).length };
  },
};

export const nmiIpi: RecoveryStep = {
  name: 'nmi-ipi',
  fixes: 'reaches CPUs that had interrupts masked, and so never took the recovery IPI, with an NMI',
  run(context) {
    return { cpusStillRunning: unstoppedCpus(context).length };
  },
};
