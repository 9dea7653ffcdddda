/**
 * Shrinking works: with a repair step switched off, the check finds a counterexample for the
 * invariant that step protects and shrinks it to a smaller scenario; the printed seed and path
 * replay exactly that scenario; and when the check may switch any repairs off, shrinking keeps
 * only the step whose absence breaks the invariant; the README's example of it is this model's
 * output. (Through the built package: many trials.)
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ScenarioSpace } from '../../src/check/arbitraries.js';
import { DEFAULT_SEED, type InvariantFailed, type InvariantOutcome } from '../../src/check/check.js';
import type { Scenario } from '../../src/check/scenario.js';
import { faultTypes } from '../../src/faults/fault.js';
import { builtApi } from './built.js';

/** How big a scenario is, most significant first: fewer faults, fewer steps off, earlier, fewer instructions, simpler faults. */
function size(scenario: Scenario): number[] {
  const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);
  return [
    scenario.faults.length,
    scenario.disabledSteps.length,
    sum(scenario.faults.map((fault) => fault.trigger.timeNs)),
    sum(scenario.faults.map((fault) => fault.trigger.instructionsAfter)),
    sum(scenario.faults.map((fault) => faultTypes.indexOf(fault.target.type))),
    sum(scenario.faults.map((fault) => ('bit' in fault.target ? fault.target.bit : 0))),
    scenario.seed,
  ];
}

function smaller(first: number[], second: number[]): boolean {
  const index = first.findIndex((value, position) => value !== second[position]);
  return index >= 0 && first[index] < second[index];
}

function failed(outcome: InvariantOutcome): InvariantFailed {
  if (outcome.kind !== 'failed') throw new Error(`expected ${outcome.invariant} to be violated`);
  return outcome;
}

describe('shrinking a counterexample', () => {
  const space: Partial<ScenarioSpace> = { mechanisms: ['microreset'], disabledSteps: ['scheduler-consistency'] };

  it('finds, without scheduler-consistency, a "successful" recovery that hands back disagreeing scheduler views, and shrinks it', async () => {
    const { check } = await builtApi();
    const outcome = failed(check({ invariants: ['recovered-audit-clean'], runs: 100, space }).outcomes[0]);
    expect(outcome.violation).toMatch(/when the mechanism released the CPUs the audit found: schedulerViewsDisagree/);
    expect(outcome.numShrinks).toBeGreaterThan(0);
    expect(smaller(size(outcome.counterexample), size(outcome.firstFailure))).toBe(true);
    expect(outcome.seed).toBe(DEFAULT_SEED);
    expect(outcome.replay).toBe(
      `ninelives check --mechanism microreset --disable scheduler-consistency --seed ${DEFAULT_SEED} --path ${outcome.path} --invariant recovered-audit-clean`,
    );
    expect(outcome.scenarioReplay).toBe(`ninelives check --scenario '${JSON.stringify(outcome.counterexample)}' --invariant recovered-audit-clean`);

    // the README shows this very run ("Shrinking, shown"): its quoted lines are this model's output
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(`$ ninelives check --mechanism microreset --disable scheduler-consistency --invariant recovered-audit-clean --runs 100\n`);
    expect(readme).toContain(`FAIL  recovered-audit-clean: violated after ${outcome.runsBeforeFailure + 1} scenarios, shrunk ${outcome.numShrinks} times (`);
    expect(readme).toContain(`\nviolation: ${outcome.violation}\n`);
    expect(readme).toContain(`\nreplay (fast-check seed and path): ${outcome.replay}\n`);

    // the seed and path replay exactly the shrunk scenario, with nothing left to shrink
    const replayed = failed(check({ invariants: ['recovered-audit-clean'], seed: outcome.seed, path: outcome.path, space }).outcomes[0]);
    expect(replayed.counterexample).toEqual(outcome.counterexample);
    expect(replayed.violation).toBe(outcome.violation);
    expect(replayed.numShrinks).toBe(0);
  });

  it('keeps only the repair step whose absence breaks the invariant when any may be switched off', async () => {
    const { check, recoveredAuditClean, runScenario } = await builtApi();
    // fail-stops only: a bit flip can corrupt what no repair rebuilds (a code fault that leaves
    // every CPU's timer list out of order before its hang is detected, say), which no step explains
    const space = { mechanisms: ['microreset'], disabledSteps: 'any', faultTypes: ['failstop'] } as const;
    const outcome = failed(check({ invariants: ['recovered-audit-clean'], runs: 150, space }).outcomes[0]);
    expect(outcome.firstFailure.disabledSteps.length).toBeGreaterThan(1);
    expect(outcome.counterexample.disabledSteps).toHaveLength(1);
    expect(outcome.firstFailure.disabledSteps).toContain(outcome.counterexample.disabledSteps[0]);
    expect(outcome.replay).toContain('--ablate');
    // and that step is the one: switched back on, the very same scenario satisfies the invariant
    const repaired = runScenario({ ...outcome.counterexample, disabledSteps: [] });
    expect(recoveredAuditClean.check(repaired)).toBeUndefined();
  });
});
