/**
 * Phase 2 of a trial: inject. Land the first fault on the CPU the trigger found, then each later
 * fault in turn; at the detection, the trial puts transient faults back.
 */
import type { CpuState } from '../machine/cpu.js';
import { injectFault, type InjectionContext } from '../faults/injector.js';
import { planFault } from '../faults/plan.js';
import type { FaultPlan, Injection } from '../faults/fault.js';
import type { Detection } from '../hypervisor/detection.js';
import { CODE_BASE, CODE_WORDS, STATIC_BASE, StaticData } from '../hypervisor/layout.js';
import type { AddressNamer } from '../hypervisor/symbols.js';
import { runToTrigger } from './fast-forward.js';
import type { LaterFault, TrialSpec } from './record.js';
import type { System } from './system.js';

export interface Injected {
  readonly first: Injection;
  readonly last: Injection;
  readonly laterFaults: LaterFault[];
  /** a detection that came before every fault had landed */
  readonly detection?: Detection;
  /** put transient faults back (at the detection: the hardware error has passed); call once */
  readonly restoreTransient: () => void;
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
 * Lands the first fault on `cpu`, then each later fault in turn, each at its trigger (or on from
 * the previous fault, if that came later), until a detection comes or the run ends.
 */
/**
 * `runBefore`, when given, runs the system up to a later fault's trigger time first (failover
 * takes its epoch checkpoints on the way) and returns a detection met there.
 */
export function injectFaults(system: System, plans: readonly FaultPlan[], cpu: CpuState, namer: AddressNamer, runBefore?: (timeNs: number) => Detection | undefined): Injected {
  const context = injectionContext(system, namer);
  const applied = [injectFault(plans[0], cpu, context)];
  let detection: Detection | undefined;
  const laterFaults = plans.slice(1).map((plan): LaterFault => {
    if (detection !== undefined) return { plan, injection: null };
    detection = runBefore?.(plan.trigger.timeNs);
    if (detection !== undefined) return { plan, injection: null };
    const stop = runToTrigger(system, plan);
    if (stop.kind === 'detected') detection = stop.detection;
    if (stop.kind !== 'landed') return { plan, injection: null };
    applied.push(injectFault(plan, stop.cpu, context));
    return { plan, injection: applied[applied.length - 1].injection };
  });
  const restoreTransient = (): void => applied.forEach((fault) => fault.restore?.());
  return { first: applied[0].injection, last: applied[applied.length - 1].injection, laterFaults, detection, restoreTransient };
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
