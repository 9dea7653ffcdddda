/**
 * `ninelives check`: property-test recovery invariants with fast-check. Prints the (pinned) seed
 * first, a line per invariant, and for each violated one the shrunk scenario and the commands
 * that replay it; exits 1 when an invariant is violated, 2 on a wrong command line.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { ScenarioSpaceError, defaultScenarioSpace, scenarioSpace, type ScenarioSpace } from '../../check/arbitraries.js';
import { DEFAULT_RUNS, DEFAULT_SEED, MAX_RUNS, RUNS_ENVIRONMENT_VARIABLE, check, resolveInvariants, runsFromEnvironment, violationOf } from '../../check/check.js';
import { MAX_SEED } from '../../campaign/limits.js';
import { defineInvariant, type Invariant } from '../../check/invariant.js';
import { UnknownInvariantError, invariants as builtInInvariants } from '../../check/invariants.js';
import { ScenarioFormatError, parseScenario } from '../../check/replay.js';
import { formatFailure, formatHeader, formatInvariantList, formatOutcomeLine, formatVerdicts } from '../../check/report.js';
import { runScenario } from '../../check/scenario.js';
import { isFaultType, type FaultType } from '../../faults/fault.js';
import { isMechanismName, type MechanismName } from '../../recovery/mechanisms.js';
import { CommandFailure, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { parseInteger, parseList, parseRunLengthMs } from '../options.js';
import { createProgress, type Progress } from '../progress.js';
import { shellWord } from '../shell.js';

const PROGRESS_LINES_FROM_RUNS = 200;

interface CheckCommandOptions {
  readonly runs?: number;
  readonly seed?: number;
  readonly path?: string;
  readonly invariant?: readonly string[];
  readonly mechanism?: readonly MechanismName[];
  readonly disable: readonly string[];
  readonly ablate?: boolean;
  readonly config?: readonly string[];
  readonly workloadSeeds?: readonly number[];
  readonly fault?: readonly FaultType[];
  readonly maxFaults?: number;
  readonly runLengthMs?: number;
  readonly scenario?: string;
  readonly load?: string;
  readonly list?: boolean;
}

const parseMechanisms = parseList('--mechanism', (word) => (isMechanismName(word) ? word : undefined), 'microreset, microreboot or none (comma-separated)');
const parseFaultTypes = parseList('--fault', (word) => (isFaultType(word) ? word : undefined), 'failstop, register, code or memory (comma-separated)');
const parseConfigurations = parseList('--config', (word) => word, 'configuration names (comma-separated)');
const parseSeeds = parseList('--workload-seeds', (word) => (/^\d+$/.test(word) && Number(word) <= MAX_SEED ? Number(word) : undefined), `integers from 0 to ${MAX_SEED} (comma-separated)`);

function parsePath(text: string): string {
  if (!/^\d+(:\d+)*$/.test(text)) throw new UsageError('usage.invalidPath', `--path expects the path a failed check printed (numbers joined by ':'), got "${text}"`);
  return text;
}

/** `--invariant a b`, `--invariant a,b` and `--invariant a --invariant b` all work: the names gathered, at most MAX_LIST_LENGTH, none twice. */
function collectNames(text: string, previous: readonly string[] = []): string[] {
  return parseInvariantNames([...previous, text].join(','));
}

const parseInvariantNames = parseList('--invariant', (word) => word, 'invariant names (comma-separated)');

export function registerCheckCommand(program: Command, io: CliIo): void {
  program
    .command('check')
    .description('property-test recovery invariants: random fault scenarios, each a whole trial; a violation is shrunk to a minimal scenario')
    .option('--runs <n>', `scenarios per invariant (default ${DEFAULT_RUNS}; ${RUNS_ENVIRONMENT_VARIABLE} raises it)`, parseInteger('--runs', 1, MAX_RUNS))
    .option('--seed <n>', `fast-check seed (default ${DEFAULT_SEED}, pinned)`, parseInteger('--seed', -0x80000000, 0x7fffffff))
    .option('--path <path>', 'replay the counterexample at this path (printed by a failed check; needs --seed and one --invariant)', parsePath)
    .option('--invariant <names...>', 'invariants to check (default: all; see --list)', collectNames)
    .option('--mechanism <names>', 'recovery mechanisms the scenarios use (default microreset,microreboot)', parseMechanisms)
    .option('--disable <steps>', 'repair steps switched off in every scenario (comma-separated)', parseList('--disable', (word) => word, 'step names (comma-separated)'), [])
    .option('--ablate', 'let each scenario switch off any repair steps (shrinking keeps the fewest that break an invariant)')
    .option('--config <names>', `configurations (default ${defaultScenarioSpace.configurations.join(',')})`, parseConfigurations)
    .option('--workload-seeds <seeds>', `workload seeds (default ${defaultScenarioSpace.workloadSeeds.join(',')})`, parseSeeds)
    .option('--fault <types>', 'fault types (default all)', parseFaultTypes)
    .option('--max-faults <n>', `faults per scenario, at most (default ${defaultScenarioSpace.maxFaults})`, parseInteger('--max-faults', 1, 16))
    .option('--run-length-ms <ms>', `simulated run length (default ${defaultScenarioSpace.runLengthNs / 1_000_000})`, parseRunLengthMs)
    .option('--scenario <json>', 'run exactly this scenario (as a check prints it) and check the invariants on it')
    .option('--load <module>', 'an ES module exporting `invariants` (or a default export): your own invariants')
    .option('--list', 'list the invariants and what each claims')
    .action(async (options: CheckCommandOptions) => {
      const loaded = options.load === undefined ? [] : await loadInvariants(options.load);
      const known = [...builtInInvariants, ...loaded];
      if (options.list) {
        io.stdout.write(formatInvariantList(known));
        return;
      }
      const selected = selectInvariants(options.invariant, known);
      if (options.scenario !== undefined) return checkOneScenario(options.scenario, selected, io);
      runCheck(options, selected, io);
    });
}

/** How long a module given to --load may take to import (a top-level await that never settles). */
export const LOAD_TIMEOUT_MS = 30_000;

export async function loadInvariants(file: string, timeoutMs = LOAD_TIMEOUT_MS): Promise<Invariant[]> {
  let module: Record<string, unknown>;
  try {
    module = await importWithin(pathToFileURL(resolve(file)).href, timeoutMs);
  } catch (error) {
    throw new UsageError('usage.invalidModule', `--load could not import ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const exported = module.invariants ?? module.default;
  const list = Array.isArray(exported) ? exported : [exported];
  try {
    const invariants = list.map((item) => defineInvariant(item as Invariant));
    const clash = invariants.find((invariant) => builtInInvariants.some((builtIn) => builtIn.name === invariant.name));
    if (clash !== undefined) throw new RangeError(`invariant ${clash.name} is already built in`);
    return invariants;
  } catch (error) {
    throw new UsageError('usage.invalidModule', `--load ${file}: ${error instanceof Error ? error.message : 'not a list of invariants'}`);
  }
}

/**
 * import(url), or an Error once `timeoutMs` have passed: a module whose top-level await never
 * settles would otherwise end the process silently (Node's exit 13) once nothing else is pending.
 */
async function importWithin(url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`it did not finish loading within ${timeoutMs / 1000} s (a top-level await that never settles?)`)), timeoutMs);
  });
  try {
    return (await Promise.race([import(url), timeout])) as Record<string, unknown>;
  } finally {
    clearTimeout(timer);
  }
}

function selectInvariants(names: readonly string[] | undefined, known: readonly Invariant[]): Invariant[] {
  try {
    return resolveInvariants(names, known);
  } catch (error) {
    if (error instanceof UnknownInvariantError) throw new UsageError('usage.unknownInvariant', error.message);
    throw error;
  }
}

function spaceOf(options: CheckCommandOptions): ScenarioSpace {
  if (options.ablate && options.disable.length > 0) throw new UsageError('usage.invalidStep', '--ablate and --disable cannot be combined');
  const overrides: Partial<ScenarioSpace> = {
    ...(options.config === undefined ? {} : { configurations: options.config }),
    ...(options.workloadSeeds === undefined ? {} : { workloadSeeds: options.workloadSeeds }),
    ...(options.runLengthMs === undefined ? {} : { runLengthNs: options.runLengthMs }),
    ...(options.mechanism === undefined ? {} : { mechanisms: options.mechanism }),
    ...(options.fault === undefined ? {} : { faultTypes: options.fault }),
    ...(options.maxFaults === undefined ? {} : { maxFaults: options.maxFaults }),
    disabledSteps: options.ablate ? 'any' : options.disable,
  };
  try {
    return scenarioSpace(overrides);
  } catch (error) {
    if (error instanceof ScenarioSpaceError) throw new UsageError('usage.invalidScenarioSpace', error.message);
    throw error;
  }
}

function runsOf(options: CheckCommandOptions): number {
  try {
    return runsFromEnvironment(process.env, options.runs ?? DEFAULT_RUNS);
  } catch (error) {
    throw new UsageError('usage.invalidEnvironment', error instanceof Error ? error.message : String(error));
  }
}

function runCheck(options: CheckCommandOptions, selected: readonly Invariant[], io: CliIo): void {
  if (options.path !== undefined && (options.seed === undefined || selected.length !== 1)) {
    throw new UsageError('usage.invalidPath', '--path replays one counterexample: give the --seed and the one --invariant it was found with');
  }
  const space = spaceOf(options);
  const seed = options.seed ?? DEFAULT_SEED;
  const runs = runsOf(options);
  io.stdout.write(formatHeader(seed, runs, space, options.path !== undefined));
  const replayPrefix = options.load === undefined ? [] : [`--load ${shellWord(options.load)}`];
  let startMs = performance.now();
  let progress: Progress | undefined;
  let failedAt = 0;
  const result = check({
    invariants: selected,
    runs,
    seed,
    path: options.path,
    space,
    replayPrefix,
    onInvariantStart: (invariant) => {
      startMs = performance.now();
      progress = showsProgress(io, runs) ? createProgress(io, invariant) : undefined;
    },
    onProgress: ({ scenariosRun, failing }) => {
      if (!failing) failedAt = scenariosRun;
      progress?.update(failedAt, runs, failing ? `shrinking a counterexample: ${scenariosRun - failedAt} scenarios tried` : '');
    },
    onOutcome: (outcome) => {
      progress?.stop();
      io.stdout.write(formatOutcomeLine(outcome, (performance.now() - startMs) / 1000));
      if (outcome.kind === 'failed') io.stdout.write(formatFailure(outcome));
    },
  });
  const failed = result.outcomes.filter((outcome) => outcome.kind === 'failed').length;
  if (failed > 0) throw new CommandFailure('check.violated', `${failed} of ${selected.length} invariants violated (seed ${seed})`);
}

/** Live progress on a terminal; plain lines elsewhere only for long checks (a soak in CI). */
function showsProgress(io: CliIo, runs: number): boolean {
  return (io.stderr as Partial<NodeJS.WriteStream>).isTTY === true || runs >= PROGRESS_LINES_FROM_RUNS;
}

function checkOneScenario(text: string, selected: readonly Invariant[], io: CliIo): void {
  let run;
  try {
    run = runScenario(parseScenario(text));
  } catch (error) {
    if (error instanceof ScenarioFormatError) throw new UsageError('usage.invalidScenario', error.message);
    throw error;
  }
  io.stdout.write(JSON.stringify(run.record, null, 2) + '\n');
  const verdicts = selected.map((invariant) => ({ invariant: invariant.name, violation: violationOf(invariant, run) }));
  io.stdout.write(formatVerdicts(verdicts));
  const violated = verdicts.filter((verdict) => verdict.violation !== undefined).length;
  if (violated > 0) throw new CommandFailure('check.violated', `${violated} of ${verdicts.length} invariants violated by this scenario`);
}
