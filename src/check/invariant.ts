/**
 * What a recovery invariant is: a name, one sentence saying what it claims, and a check over a
 * scenario's run that returns the violation, or undefined when the run satisfies it.
 */
import type { ScenarioRun } from './scenario.js';

export interface Invariant {
  /** whole words joined by dashes, e.g. `recovered-audit-clean` */
  readonly name: string;
  /** one sentence: what holds in every run */
  readonly description: string;
  /** the violation, in words, or undefined */
  check(run: ScenarioRun): string | undefined;
  /**
   * Whether the run says anything about the invariant (a recovery happened, a hypercall was
   * rewound, ...); only counted, to show how often a property was really exercised.
   */
  appliesTo?(run: ScenarioRun): boolean;
}

const NAME_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Checks the shape of an invariant (for users' own), and returns it. */
export function defineInvariant(invariant: Invariant): Invariant {
  const shape = (typeof invariant === 'object' && invariant !== null ? invariant : {}) as Partial<Invariant>;
  if (typeof shape.name !== 'string' || typeof shape.description !== 'string' || typeof shape.check !== 'function') {
    throw new RangeError(`an invariant is an object with a name, a description and a check function, not ${describeValue(invariant)}`);
  }
  if (!NAME_PATTERN.test(invariant.name)) throw new RangeError(`invariant name "${invariant.name}" must be lower-case words joined by dashes`);
  if (invariant.description.trim() === '') throw new RangeError(`invariant ${invariant.name} needs a one-sentence description`);
  return invariant;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value !== 'object') return `${typeof value} ${JSON.stringify(value)}`;
  return `an object with ${Object.keys(value).join(', ') || 'no keys'}`;
}
