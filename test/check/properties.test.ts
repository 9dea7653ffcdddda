/**
 * The recovery invariants as CI runs them: the pinned seed (printed), every repair on, both
 * mechanisms, one or two faults of every type, through the built package. NINELIVES_CHECK_RUNS
 * raises the number of scenarios for a long soak
 * (`npm run build && NINELIVES_CHECK_RUNS=2000 npx vitest run test/check/properties.test.ts`).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SEED, runsFromEnvironment } from '../../src/check/check.js';
import { builtApi } from './built.js';

const runs = runsFromEnvironment(process.env);

describe(`recovery invariants (seed ${DEFAULT_SEED}, ${runs} scenarios each)`, () => {
  it('hold on honest scenarios, and each is exercised', async () => {
    console.info(`ninelives check: seed ${DEFAULT_SEED}, ${runs} scenarios per invariant`);
    const { check, formatFailure } = await builtApi();
    const result = check({ seed: DEFAULT_SEED, runs });
    const failures = result.outcomes.flatMap((outcome) => (outcome.kind === 'failed' ? [formatFailure(outcome)] : []));
    expect(failures.join('\n')).toBe('');
    for (const outcome of result.outcomes) {
      if (outcome.kind === 'passed' && outcome.applicable !== undefined) expect({ invariant: outcome.invariant, exercised: outcome.applicable > 0 }).toEqual({ invariant: outcome.invariant, exercised: true });
    }
  }, 600_000);
});
