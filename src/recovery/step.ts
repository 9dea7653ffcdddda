/**
 * A repair step: one function over the stopped machine, and what it fixes. Mechanisms are
 * ordered lists of steps; every step can be switched off by name.
 */
import type { CalibratedCost } from './cost-model.js';
import type { RecoveryContext } from './context.js';
import type { StepName } from './steps/index.js';

/** What a step did in the simulated machine: counts by kind (locks released, frames fixed, ...). */
export type StepWork = Readonly<Record<string, number>>;

export interface RecoveryStep<Name extends string = string> {
  readonly name: Name;
  /** one sentence: the inconsistency this step fixes, or the job it does */
  readonly fixes: string;
  /**
   * The kinds of state this step sets right, as triage names them: a region of hypervisor memory
   * by the AddressNamer's name without indices (`percpu.irqCount`; a prefix such as `locks`
   * covers `locks.time`), or `cpu.<field>` for a CPU's own state. Triage checks a failure's
   * restoring set against these; tests check that switching the step off leaves exactly such state.
   */
  readonly repairs?: readonly string[];
  /** whether the step has anything to do in this hypervisor (a build option's step); absent: always. A step that does not apply neither runs nor is reported. */
  readonly appliesTo?: (context: RecoveryContext) => boolean;
  run(context: RecoveryContext): StepWork;
}

/** A step definition, its name kept as a literal type (StepName is derived from the names). */
export function defineStep<const Name extends string>(step: RecoveryStep<Name>): RecoveryStep<Name> {
  return step;
}

/** A step's place in a mechanism: part of the mechanism itself, or a repair (ablation stage). */
export interface MechanismStep {
  readonly step: RecoveryStep;
  readonly role: 'mechanism' | 'repair';
  readonly costs: readonly CalibratedCost[];
}

export interface Mechanism {
  readonly name: 'microreset' | 'microreboot' | 'failover' | 'replay-failover';
  readonly description: string;
  /** in execution order */
  readonly steps: readonly MechanismStep[];
  /** repair step names in the order they were added to the real system: the ablation stages */
  readonly repairOrder: readonly StepName[];
}
