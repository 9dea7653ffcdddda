/**
 * Stop the CPUs. The recovery routine's entry does it in the machine before any step runs
 * (code/recovery-entry.ts, run by ../entry.ts): the recovery IPI to every other online CPU, whose
 * handler parks it with its irq_count incremented as by any interrupt entry; then, if the routine
 * is built with the NMI IPI, an NMI to the CPUs that had interrupts masked and so never took the
 * IPI. These steps report what the entry achieved; switching off `nmi-ipi` builds the entry
 * without the NMI.
 */
import { CpuMode, type CpuState } from '../../machine/cpu.js';
import { ONLINE_CPUS, nmiStackBase, nmiStackTop } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';

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

/** The other CPUs the entry sent the recovery IPI to: those online in the map it read. */
function onlineOthers(context: RecoveryContext): number {
  const online = context.machine.memory.words[ONLINE_CPUS];
  return context.machine.cpus.filter((cpu) => cpu.index !== context.recoveryCpu && ((online >>> cpu.index) & 1) !== 0).length;
}

/** CPUs parked from an NMI: the park loop runs on their NMI stack. */
function parkedByNmi(context: RecoveryContext): number {
  return context.machine.cpus.filter((cpu) => {
    const base = nmiStackBase(cpu.index);
    return cpu.index !== context.recoveryCpu && isParked(context, cpu) && cpu.stackPointer >= base && cpu.stackPointer < nmiStackTop(cpu.index);
  }).length;
}

export const stopCpus = defineStep({
  name: 'stop-cpus',
  fixes: 'brings every CPU out of hypervisor and guest execution with the recovery IPI, so that repairs run alone',
  run(context) {
    return { cpusSignalled: onlineOthers(context), cpusStillRunning: unstoppedCpus(context).length + parkedByNmi(context) };
  },
});

export const nmiIpi = defineStep({
  name: 'nmi-ipi',
  fixes: 'reaches CPUs that had interrupts masked, and so never took the recovery IPI, with an NMI',
  run(context) {
    return { cpusSignalled: parkedByNmi(context), cpusStillRunning: unstoppedCpus(context).length };
  },
});
