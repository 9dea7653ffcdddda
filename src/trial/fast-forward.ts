/**
 * Phase 1 of a trial: fast-forward. Restore the golden run's latest checkpoint before the
 * trigger (or boot, to check that the shortcut changes nothing), then run to the trigger: the
 * moment and the CPU the fault lands on.
 */
import { CpuMode, type CpuState } from '../machine/cpu.js';
import type { FaultPlan } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';
import { checkpointBefore, type GoldenRun } from './golden-cache.js';
import type { System } from './system.js';

/** Where running to a trigger ended: on the fault's CPU, at a detection, or at the end of the run. */
export type TriggerStop =
  | { readonly kind: 'landed'; readonly cpu: CpuState }
  | { readonly kind: 'detected'; readonly detection: Detection }
  | { readonly kind: 'ended' };

export function startFrom(system: System, golden: GoldenRun, plan: FaultPlan, fromBoot: boolean): void {
  if (fromBoot) system.start();
  else system.restore(checkpointBefore(golden, plan.trigger.timeNs).snapshot);
}

/**
 * Run to the trigger time, then until `instructionsAfter` more hypervisor instructions have
 * retired: the CPU that retired the last one is the fault's. A detection (an earlier fault's)
 * or the end of the run may come first. A CPU that just left hypervisor execution (into a guest,
 * or asleep) is not hypervisor execution: the fault moves on to the next hypervisor instruction.
 */
export function runToTrigger(system: System, plan: FaultPlan): TriggerStop {
  const { hypervisor, machine } = system;
  if (machine.nowNs < plan.trigger.timeNs) {
    const stop = hypervisor.run({ untilNs: plan.trigger.timeNs });
    if (stop.kind === 'detected') return stop;
  }
  let instructionLimit = machine.hypervisorInstructions + plan.trigger.instructionsAfter + 1;
  for (;;) {
    const stop = hypervisor.run({ untilNs: system.runLengthNs, instructionLimit });
    if (stop.kind === 'detected') return stop;
    if (stop.kind !== 'instructionLimit') return { kind: 'ended' };
    const cpu = machine.cpus[stop.cpu];
    if (cpu.mode === CpuMode.Running) return { kind: 'landed', cpu };
    instructionLimit = machine.hypervisorInstructions + 1;
  }
}
