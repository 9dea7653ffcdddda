/**
 * Release the CPUs: each resumes on a fresh stack at `recovery_resume`, which reschedules and
 * returns to a guest or idle. Watchdog NMIs restart from the resume time.
 */
import { NMI_PERIOD_NS } from '../../machine/machine.js';
import { PerCpu, RECOVERY_IN_PROGRESS, perCpuAddress, stackTop } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';

export const resumeCpus = defineStep({
  name: 'resume-cpus',
  fixes: 'releases every CPU into the scheduler on a fresh stack',
  run(context) {
    const machine = context.machine;
    context.write(RECOVERY_IN_PROGRESS, 0);
    for (const cpu of machine.cpus) context.write(perCpuAddress(cpu.index) + PerCpu.offset.recoveryParked, 0);
    const resume = context.hypervisor.label('recovery_resume');
    for (const cpu of machine.cpus) {
      machine.startCpu(cpu.index, resume, stackTop(cpu.index));
      while (cpu.nextNmiNs <= machine.nowNs) cpu.nextNmiNs += NMI_PERIOD_NS;
    }
    return { cpusReleased: machine.cpus.length };
  },
});
