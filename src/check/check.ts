/**
 * Property-checks recovery invariants: for each invariant, fast-check draws scenarios, runs each
 * one (a whole trial), checks the invariant, and on a violation shrinks the scenario to a minimal
 * one. Returns data; src/check/report.ts formats it. A scenario runs once per check: every
 * selected invariant's verdict is taken then, so the invariants share the trials.
 */
import fc from 'fast-check';
import { scenarioArbitrary, scenarioSpace, type ScenarioSpace } from './arbitraries.js';
import type { Invariant } from './invariant.js';
import { invariantNamed, invariants as builtInInvariants } from './invariants.js';
import { replayArguments } from './replay.js';
import { runScenario, scenarioKey, type Scenario, type ScenarioRun } from './scenario.js';
import type { TrialRecord } from '../trial/record.js';

/** Runs per invariant when nothing else is asked: small, so the properties fit in CI. */
export const DEFAULT_RUNS = 25;
/** The seed when none is given: pinned, so that a check is a reproducible experiment. */
export const DEFAULT_SEED = 20_180_625;
/** The most runs per invariant, asked for by --runs or the environment alike. */
export const MAX_RUNS = 1_000_000;
/** Raises the number of runs (never lowers it) for a long soak. */
export const RUNS_ENVIRONMENT_VARIABLE = 'NINELIVES_CHECK_RUNS';

export interface CheckOptions {
  /** built-in invariant names, or invariants of your own; default: every built-in one */
  readonly invariants?: readonly (Invariant | string)[];
  /** scenarios per invariant (default DEFAULT_RUNS) */
  readonly runs?: number;
  /** fast-check's seed (default DEFAULT_SEED) */
  readonly seed?: number;
  /** replay one counterexample: the path a failed check reported (needs `seed`, and one invariant) */
  readonly path?: string;
  /** which scenarios to draw (default: defaultScenarioSpace) */
  readonly space?: Partial<ScenarioSpace>;
  /** called after each scenario a property runs (shrinking included) */
  readonly onProgress?: (progress: CheckProgress) => void;
  /** called when an invariant's property is about to run, and when it is done */
  readonly onInvariantStart?: (invariant: string) => void;
  readonly onOutcome?: (outcome: InvariantOutcome) => void;
  /** extra words for the replay command (the CLI adds `--load FILE` for invariants it loaded) */
  readonly replayPrefix?: readonly string[];
}

export interface CheckProgress {
  readonly invariant: string;
  /** scenarios run so far for this invariant, shrinking included */
  readonly scenariosRun: number;
  readonly runs: number;
  readonly failing: boolean;
}

export interface InvariantPassed {
  readonly kind: 'passed';
  readonly invariant: string;
  readonly description: string;
  readonly runs: number;
  /** scenarios in which the invariant had something to check (see Invariant.appliesTo) */
  readonly applicable: number | undefined;
}

export interface InvariantFailed {
  readonly kind: 'failed';
  readonly invariant: string;
  readonly description: string;
  /** the shrunk, minimal counterexample */
  readonly counterexample: Scenario;
  readonly violation: string;
  readonly record: TrialRecord;
  /** the first failing scenario fast-check found, before shrinking */
  readonly firstFailure: Scenario;
  readonly firstViolation: string;
  /** scenarios run before the first failure */
  readonly runsBeforeFailure: number;
  readonly numShrinks: number;
  readonly seed: number;
  readonly path: string;
  /** the command that replays the shrunk counterexample through fast-check (seed and path) */
  readonly replay: string;
  /** the command that runs exactly this scenario */
  readonly scenarioReplay: string;
}

export type InvariantOutcome = InvariantPassed | InvariantFailed;

export interface CheckResult {
  readonly passed: boolean;
  readonly seed: number;
  readonly runs: number;
  readonly space: ScenarioSpace;
  readonly outcomes: readonly InvariantOutcome[];
}

/** DEFAULT_RUNS, or the environment variable's value when that is larger. */
export function runsFromEnvironment(environment: Readonly<Record<string, string | undefined>>, fallback = DEFAULT_RUNS): number {
  const text = environment[RUNS_ENVIRONMENT_VARIABLE];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || value < 1 || value > MAX_RUNS) throw new RangeError(`${RUNS_ENVIRONMENT_VARIABLE} must be an integer from 1 to ${MAX_RUNS}, got "${text}"`);
  return Math.max(fallback, value);
}

export function resolveInvariants(requested: readonly (Invariant | string)[] | undefined, known: readonly Invariant[] = builtInInvariants): Invariant[] {
  if (requested === undefined || requested.length === 0) return [...known];
  return requested.map((item) => (typeof item === 'string' ? invariantNamed(item, known) : item));
}

interface Verdict {
  readonly violation: string | undefined;
  readonly applies: boolean | undefined;
}

/**
 * Every selected invariant's verdict on each scenario run so far, computed when the scenario
 * first runs, so that the invariants checked after the first reuse its runs however many there
 * are; the most recent runs themselves are kept for the records of counterexamples.
 */
class Verdicts {
  private readonly verdicts = new Map<string, ReadonlyMap<string, Verdict>>();
  private readonly runs = new Map<string, ScenarioRun>();

  constructor(
    private readonly invariants: readonly Invariant[],
    private readonly runLimit: number,
  ) {}

  of(scenario: Scenario, invariant: Invariant): Verdict {
    const key = scenarioKey(scenario);
    let verdicts = this.verdicts.get(key);
    if (verdicts === undefined) {
      const run = this.run(scenario);
      verdicts = new Map(this.invariants.map((each) => [each.name, { violation: violationOf(each, run), applies: appliesTo(each, run) }]));
      this.verdicts.set(key, verdicts);
    }
    const verdict = verdicts.get(invariant.name);
    if (verdict === undefined) throw new Error(`invariant ${invariant.name} was not selected`);
    return verdict;
  }

  run(scenario: Scenario): ScenarioRun {
    const key = scenarioKey(scenario);
    const cached = this.runs.get(key);
    if (cached !== undefined) return cached;
    const run = runScenario(scenario);
    if (this.runs.size >= this.runLimit) this.runs.delete(this.runs.keys().next().value as string);
    this.runs.set(key, run);
    return run;
  }
}

/** The violation of `invariant` in `run`, with an exception counted as one. */
export function violationOf(invariant: Invariant, run: ScenarioRun): string | undefined {
  try {
    const violation: unknown = invariant.check(run);
    // a check must answer at once: a promise (an async check) is neither a violation nor none
    if (violation !== undefined && typeof violation !== 'string') return `the check returned ${violation instanceof Promise ? 'a promise (it must not be async)' : typeof violation}, not a violation in words or undefined`;
    return violation;
  } catch (error) {
    return `the check threw: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function appliesTo(invariant: Invariant, run: ScenarioRun): boolean | undefined {
  try {
    return invariant.appliesTo?.(run);
  } catch {
    return undefined;
  }
}

export function check(options: CheckOptions = {}): CheckResult {
  const selected = resolveInvariants(options.invariants);
  if (options.path !== undefined && (options.seed === undefined || selected.length !== 1)) {
    throw new RangeError('replaying a path needs the seed it was found with and exactly one invariant');
  }
  const space = scenarioSpace(options.space);
  const seed = options.seed ?? DEFAULT_SEED;
  const runs = options.runs ?? DEFAULT_RUNS;
  const verdicts = new Verdicts(selected, 64);
  const outcomes = selected.map((invariant) => {
    options.onInvariantStart?.(invariant.name);
    const outcome = checkInvariant(invariant, { ...options, seed, runs, space }, verdicts);
    options.onOutcome?.(outcome);
    return outcome;
  });
  return { passed: outcomes.every((outcome) => outcome.kind === 'passed'), seed, runs, space, outcomes };
}

interface Resolved extends CheckOptions {
  readonly seed: number;
  readonly runs: number;
  readonly space: ScenarioSpace;
}

function checkInvariant(invariant: Invariant, options: Resolved, verdicts: Verdicts): InvariantOutcome {
  let scenariosRun = 0;
  let applicable = 0;
  let first: { scenario: Scenario; violation: string; before: number } | undefined;
  const property = fc.property(scenarioArbitrary(options.space), (scenario) => {
    const { violation, applies } = verdicts.of(scenario, invariant);
    scenariosRun++;
    if (first === undefined && applies === true) applicable++;
    if (violation !== undefined && first === undefined) first = { scenario, violation, before: scenariosRun - 1 };
    options.onProgress?.({ invariant: invariant.name, scenariosRun, runs: options.runs, failing: first !== undefined });
    return violation === undefined;
  });
  const details = fc.check(property, { seed: options.seed, numRuns: options.runs, path: options.path });
  const common = { invariant: invariant.name, description: invariant.description };
  // a scenario that threw is no counterexample: a fault of the harness, not a pass
  if (details.failed && first === undefined) throw details.errorInstance ?? new Error(`checking ${invariant.name} failed without a violation`);
  if (!details.failed || details.counterexample === null || first === undefined) {
    return { kind: 'passed', ...common, runs: details.numRuns, applicable: invariant.appliesTo === undefined ? undefined : applicable };
  }
  const counterexample = details.counterexample[0];
  const run = verdicts.run(counterexample);
  const path = details.counterexamplePath ?? '';
  return {
    kind: 'failed',
    ...common,
    counterexample,
    violation: verdicts.of(counterexample, invariant).violation ?? first.violation,
    record: run.record,
    firstFailure: first.scenario,
    firstViolation: first.violation,
    runsBeforeFailure: first.before,
    numShrinks: details.numShrinks,
    seed: details.seed,
    path,
    replay: ['ninelives check', ...(options.replayPrefix ?? []), ...replayArguments(options.space), `--seed ${details.seed}`, `--path ${path}`, `--invariant ${invariant.name}`].join(' '),
    scenarioReplay: `${run.record.replay} --invariant ${invariant.name}`,
  };
}
