/**
 * Phase 2 of a trial: inject. Land the first fault on the CPU the trigger found, arm the
 * detection hook that puts transient faults back, then land each later fault in turn.
 */
import type { CpuState } from '../machine/cpu.js';
import { injectFault, type AppliedFault, type InjectionContext } from '../faults/injector.js';
import { planFault } from '../faults/plan.js';
import type { FaultPlan, Injection } from '../faults/fault.js';
import { CODE_BASE, CODE_WORDS, STATIC_BASE, StaticData } from '../hypervisor/layout.js';
import type { AddressNamer } from '../hypervisor/symbols.js';
import { runToTrigger } from './fast-forward.js';
import type { LaterFault, TrialSpec } from './record.js';
import type { System } from './system.js';

export interface Injected {
  readonly first: Injection;
  readonly last: Injection;
  readonly laterFaults: LaterFault[];
}

/** The spec's explicit faults (checked), or the one fault drawn from the trial seed. */
export function faultPlansOf(spec: TrialSpec, seedOfTrial: number, runLengthNs: number): readonly FaultPlan[] {
  if (spec.faults === undefined) return [planFault(seedOfTrial, spec.faultType, runLengthNs)];
  if (spec.faults.length === 0) throw new RangeError('a trial with explicit faults needs at least one');
  if (spec.faults[0].target.type !== spec.faultType) {
    throw new RangeError(`the first explicit fault is a ${spec.faults[0].target.type} fault, the spec says ${spec.faultType}`);
  }
  spec.faults.forEach((fault, index) => {
    const previous = spec.faults?.[index - 1];
    if (previous !== undefined && fault.trigger.timeNs < previous.trigger.timeNs) throw new RangeError('explicit faults must be in trigger-time order');
  });
  return spec.faults;
}

/**
 * Lands the first fault on `cpu`, arms the detection hook (which puts transient faults back),
 * then lands each later fault in turn. Returns the first and the last injection.
 */
export function injectFaults(system: System, plans: readonly FaultPlan[], cpu: CpuState, namer: AddressNamer): Injected {
  const context = injectionContext(system, namer);
  const applied = [injectFault(plans[0], cpu, context)];
  system.hypervisor.recoveryHook = (_detection, hypervisor) => {
    for (const fault of applied) fault.restore?.();
    hypervisor.machine.stop('detected');
  };
  const laterFaults = plans.slice(1).map((later) => ({ plan: later, injection: injectLaterFault(system, later, context, applied) }));
  return { first: applied[0].injection, last: applied[applied.length - 1].injection, laterFaults };
}

/**
 * Lands a later fault: runs to its trigger (or on from the previous fault, if that came later),
 * unless a detection comes first or the run ends. Returns its injection, or null.
 */
function injectLaterFault(system: System, plan: FaultPlan, context: InjectionContext, applied: AppliedFault[]): Injection | null {
  if (system.hypervisor.detections.length > 0) return null;
  const cpu = runToTrigger(system, plan);
  if (cpu === undefined || system.hypervisor.detections.length > 0) return null;
  const fault = injectFault(plan, cpu, context);
  applied.push(fault);
  return fault.injection;
}

function injectionContext(system: System, namer: AddressNamer): InjectionContext {
  return {
    machine: system.machine,
    nameAddress: (address) => namer.name(address),
    memorySpans: [
      { base: STATIC_BASE, sizeWords: StaticData.sizeWords },
      { base: system.hypervisor.layout.frameTable, sizeWords: system.hypervisor.layout.heapEnd - system.hypervisor.layout.frameTable },
    ],
    code: { base: CODE_BASE, sizeWords: Math.min(CODE_WORDS, system.hypervisor.program.words.length) },
  };
}
