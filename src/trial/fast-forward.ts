/**
 * Phase 1 of a trial: fast-forward. Restore the golden run's latest checkpoint before the
 * trigger (or boot, to check that the shortcut changes nothing), then run to the trigger: the
 * moment and the CPU the fault lands on.
 */
import { CpuMode, type CpuState } from '../machine/cpu.js';
import type { FaultPlan } from '../faults/fault.js';
import { checkpointBefore, type GoldenRun } from './golden-cache.js';
import type { System } from './system.js';

export function startFrom(system: System, golden: GoldenRun, plan: FaultPlan, fromBoot: boolean): void {
  if (fromBoot) system.start();
  else system.restore(checkpointBefore(golden, plan.trigger.timeNs).snapshot);
}

/**
 * Run to the trigger time, then until `instructionsAfter` more hypervisor instructions have
 * retired. Returns the CPU that retired the last one (the fault's CPU), or undefined when the
 * run ends (or an earlier fault's detection stops it) first. A CPU that just left hypervisor
 * execution (into a guest, or asleep) is not hypervisor execution: the fault moves on to the next
 * hypervisor instruction.
 */
export function runToTrigger(system: System, plan: FaultPlan): CpuState | undefined {
  const machine = system.machine;
  // no instruction stop on the way to the trigger time (an earlier fault's has been reached)
  machine.instructionStop = Number.POSITIVE_INFINITY;
  if (machine.nowNs < plan.trigger.timeNs && machine.run(plan.trigger.timeNs).kind === 'stopped') return undefined;
  machine.instructionStop = machine.hypervisorInstructions + plan.trigger.instructionsAfter + 1;
  for (;;) {
    const outcome = machine.run(system.runLengthNs);
    if (outcome.kind !== 'instructionReached') return undefined;
    const cpu = machine.cpus[outcome.cpu];
    if (cpu.mode === CpuMode.Running) return cpu;
    machine.instructionStop = machine.hypervisorInstructions + 1;
  }
}
