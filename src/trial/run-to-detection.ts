/**
 * Phase 3 of a trial: run to detection. After the injection the trial runs on, checkpoint by
 * checkpoint of the golden run, until a detection, a runaway, a state equal to the golden run's,
 * or the end of the run.
 */
import type { Detection } from '../hypervisor/detection.js';
import { RunawayBudget } from './budget.js';
import { finalStateIfFollowing } from './follow.js';
import { settle } from './golden.js';
import type { GoldenRun } from './golden-cache.js';
import type { System } from './system.js';

/** A trial's instruction budget is this many times the golden run's hypervisor instructions (see budget.ts). */
const BUDGET_FACTOR = 3;
const BUDGET_MINIMUM = 2_000_000;

export type Ending =
  | { readonly kind: 'detected'; readonly detection: Detection }
  | { readonly kind: 'runaway'; readonly cause: string }
  | { readonly kind: 'matchedGolden'; readonly timeNs: number }
  /** ran to the end; `final` is the state there when it was derived by following the golden run */
  | { readonly kind: 'endOfRun'; readonly final?: System; readonly fromNs?: number };

/** The hypervisor instructions a trial may retire after its injection, and after its recovery. */
export function instructionBudget(golden: GoldenRun): number {
  return Math.max(BUDGET_MINIMUM, BUDGET_FACTOR * golden.report.hypervisorInstructions);
}

/**
 * Run on from the injection (`instructionCount` hypervisor instructions, and a detection that
 * came already, if one did) until detection, a runaway, a golden match, or the end. With
 * `follow`, a trial found to be following the golden run (see follow.ts) ends there, with the
 * state it would have reached at the end.
 */
export function runToDetection(system: System, golden: GoldenRun, injected: { instructionCount: number; detection?: Detection }, follow: boolean): Ending {
  if (injected.detection !== undefined) return { kind: 'detected', detection: injected.detection };
  const instructionLimit = injected.instructionCount + instructionBudget(golden);
  const budget = new RunawayBudget(system.hypervisor, instructionLimit);
  for (const checkpoint of golden.checkpoints) {
    if (checkpoint.timeNs <= system.machine.nowNs) continue;
    const stop = budget.run(checkpoint.timeNs);
    if (stop === 'runaway') return { kind: 'runaway', cause: budget.runawayCause };
    if (stop.kind === 'detected') return { kind: 'detected', detection: stop.detection };
    if (system.isInStateOf(checkpoint.snapshot, checkpoint.stateBesidesMemory)) return { kind: 'matchedGolden', timeNs: checkpoint.timeNs };
    const final = follow ? finalStateIfFollowing(system, golden, checkpoint, instructionLimit) : undefined;
    if (final !== undefined) return { kind: 'endOfRun', final, fromNs: checkpoint.timeNs };
  }
  const detection = settle(system, budget.bounds());
  return detection === undefined ? { kind: 'endOfRun' } : { kind: 'detected', detection };
}

/** The system as the trial leaves it: the derived end state when it followed the golden run. */
export function finalSystem(system: System, ending: Ending): System {
  return ending.kind === 'endOfRun' ? (ending.final ?? system) : system;
}
