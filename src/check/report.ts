/**
 * Text for people: what a check is about to do, one line per invariant, and a failure with its
 * shrunk scenario and the commands that replay it. The runner (check.ts) returns data; this
 * only formats it.
 */
import type { ScenarioSpace } from './arbitraries.js';
import { RUNS_ENVIRONMENT_VARIABLE, type InvariantFailed, type InvariantOutcome } from './check.js';
import type { Invariant } from './invariant.js';

export function describeSpace(space: ScenarioSpace): string {
  const repairs =
    space.disabledSteps === 'any' ? 'any repairs switched off (shrinking keeps the fewest)' : space.disabledSteps.length === 0 ? 'all repairs on' : `${space.disabledSteps.join(', ')} switched off`;
  const faults = space.maxFaults === 1 ? '1 fault' : `1-${space.maxFaults} faults`;
  return [
    `${space.configurations.join(' or ')} (workload seeds ${space.workloadSeeds.join(', ')})`,
    `${space.runLengthNs / 1_000_000} ms runs`,
    space.mechanisms.join(' or '),
    repairs,
    `${faults} (${space.faultTypes.join(', ')})`,
  ].join(', ');
}

export function formatHeader(seed: number, runs: number, space: ScenarioSpace, replaying: boolean): string {
  const runsText = replaying ? 'replaying one counterexample' : `${runs} scenarios per invariant (${RUNS_ENVIRONMENT_VARIABLE} raises it)`;
  return `ninelives check: seed ${seed}, ${runsText}\nscenarios: ${describeSpace(space)}\n`;
}

export function formatOutcomeLine(outcome: InvariantOutcome, seconds: number): string {
  const time = `${seconds.toFixed(1)} s`;
  if (outcome.kind === 'passed') {
    const applicable = outcome.applicable === undefined ? '' : `, ${outcome.applicable} where it applies`;
    return `ok    ${outcome.invariant}: ${outcome.runs} scenarios${applicable} (${time})\n`;
  }
  const scenarios = plural(outcome.runsBeforeFailure + 1, 'scenario');
  return `FAIL  ${outcome.invariant}: violated after ${scenarios}, shrunk ${plural(outcome.numShrinks, 'time')} (${time})\n`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function formatFailure(outcome: InvariantFailed): string {
  return [
    '',
    `${outcome.invariant}: ${outcome.description}`,
    `violation: ${outcome.violation}`,
    'shrunk counterexample (minimal scenario):',
    JSON.stringify(outcome.counterexample, null, 2),
    `first failing scenario, before shrinking: ${JSON.stringify(outcome.firstFailure)}`,
    `  its violation: ${outcome.firstViolation}`,
    `replay (fast-check seed and path): ${outcome.replay}`,
    `run this scenario alone: ${outcome.scenarioReplay}`,
    '',
  ].join('\n');
}

export function formatInvariantList(known: readonly Invariant[]): string {
  const width = Math.max(...known.map((invariant) => invariant.name.length));
  return known.map((invariant) => `${invariant.name.padEnd(width)}  ${invariant.description}\n`).join('');
}

/** One line per invariant for a single scenario: ok, or the violation. */
export function formatVerdicts(verdicts: readonly { readonly invariant: string; readonly violation: string | undefined }[]): string {
  return verdicts.map(({ invariant, violation }) => (violation === undefined ? `ok    ${invariant}\n` : `FAIL  ${invariant}: ${violation}\n`)).join('');
}
