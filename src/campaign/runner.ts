/**
 * Runs a campaign: plans its trials, skips those already in trials.jsonl (resume; never mixing
 * results of another ninelives version), writes the directory's manifest, runs the rest in
 * worker threads (piscina) or in this thread (a fault whose run fails in the harness is retried
 * once, trial by trial, then recorded as a harness error), streams each record with its
 * provenance to trials.jsonl as it completes, runs a seeded sample again to check determinism,
 * and at the end rewrites the results in canonical order and writes the summary. The reports
 * are its caller's to render (the report layer sits above this one). Memory stays flat: records
 * go to disk, not into a list.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { inShard, planTrials, type Shard, type TrialJob } from './plan.js';
import { compareRuns, DEFAULT_SELF_CHECK_EVERY, inSample, type Mismatch, type SelfCheckResult } from './self-check.js';
import type { Campaign } from './spec.js';
import { finishResults, trialsPath } from '../results/directory.js';
import { harnessErrorRecord, isHarnessError } from '../results/harness-error.js';
import { writeManifest, type Manifest } from '../results/manifest.js';
import { currentProvenance, describeProvenance, sameProvenance, type Provenance } from '../results/provenance.js';
import { ResultsFileError, ResultsStore, readRecords } from '../results/store.js';
import type { CampaignRecord, Summary } from '../results/summary.js';
import runJobs from './worker.js';
import { shardingRefusal, StoppingRounds, stopRuleOf } from './stopping.js';
import { STOP_RULE_FILE, stopRuleText } from '../results/stopping.js';
import { NinelivesError } from '../errors.js';

export interface RunOptions {
  readonly outDirectory: string;
  readonly workers: number;
  readonly trials?: number;
  readonly resume: boolean;
  readonly shard?: Shard;
  readonly onProgress?: (progress: RunProgress) => void;
  /** aborting stops new trials; those in flight finish and are kept */
  readonly signal?: AbortSignal;
  /** run about one fault in this many a second time, in another thread, and compare; 0: never */
  readonly selfCheckEvery?: number;
  /** written to the directory once the stored results are known to be this campaign's */
  readonly manifest?: Omit<Manifest, 'tool'>;
}

export interface RunProgress {
  readonly done: number;
  readonly total: number;
  /** running recovery counts per mechanism */
  readonly recovery: Readonly<Record<string, { readonly recovered: number; readonly attempted: number }>>;
}

export type RunResult =
  | { readonly kind: 'completed'; readonly total: number; readonly ran: number; readonly summary: Summary; readonly selfCheck: SelfCheckResult }
  | { readonly kind: 'interrupted'; readonly total: number; readonly done: number };

export class ResultsExistError extends NinelivesError {
  constructor(message: string) {
    super('usage.resultsExist', message);
  }
}

export async function runCampaign(campaign: Campaign, options: RunOptions): Promise<RunResult> {
  mkdirSync(options.outDirectory, { recursive: true });
  const store = new ResultsStore(trialsPath(options.outDirectory));
  if (!options.resume && existsSync(store.path)) {
    throw new ResultsExistError(`${store.path} already exists: resume it with --resume, or choose another --out`);
  }
  const jobs = planTrials(campaign, options.trials).filter((job) => inShard(job, options.shard));
  const provenance = currentProvenance();
  const { done, foreign, firstForeign, otherVersion } = storedTrials(store.path, new Map(jobs.map((job) => [job.id, job])), provenance);
  if (foreign > 0) {
    throw new ResultsExistError(`${store.path} holds ${foreign} trials this campaign does not plan (e.g. ${firstForeign}): it is another campaign's or another setting's; choose another --out`);
  }
  const missing = jobs.filter((job) => !done.has(job));
  const rule = stopRuleOf(campaign);
  const sharding = shardingRefusal(campaign, options.shard);
  if (sharding !== undefined) throw new ResultsExistError(sharding);
  const mixingRefused = (): ResultsExistError | undefined =>
    otherVersion === undefined ? undefined : new ResultsExistError(`${store.path} was made by ${describeProvenance(otherVersion.value)}, and this is ${describeProvenance(provenance)}: results of different versions are not mixed; finish it with that version, or choose another --out`);
  // complete results of another version are only reported again: nothing is mixed (with a stop
  // rule, whether anything is left to run is known round by round, below)
  if (rule === undefined && missing.length > 0) {
    const refused = mixingRefused();
    if (refused !== undefined) throw refused;
  }
  const manifest = options.manifest === undefined ? undefined : otherVersion === undefined ? options.manifest : { ...options.manifest, ninelives: otherVersion.value ?? options.manifest.ninelives };
  // unfinished until every trial is in: a run killed or interrupted on the way says so
  if (manifest !== undefined) writeManifest(options.outDirectory, { ...manifest, unfinished: true });
  if (rule !== undefined) writeFileSync(join(options.outDirectory, STOP_RULE_FILE), stopRuleText(rule));
  const rounds = new StoppingRounds(jobs, rule);
  if (rule !== undefined) for (const record of readRecords(store.path)) rounds.add(record);
  const tally = new Tally(jobs.length, done.size, options.onProgress);
  const sample = new SampleKeeper(options.selfCheckEvery ?? DEFAULT_SELF_CHECK_EVERY);
  let ran = 0;
  let finished = true;
  let ranInWorkers = false;
  const nextGroups = (): TrialJob[][] | undefined => {
    const round = rounds.next();
    if (round === undefined) return undefined;
    const toRun = round.filter((job) => !done.has(job));
    if (toRun.length > 0) {
      const refused = mixingRefused();
      if (refused !== undefined) throw refused;
    }
    ran += toRun.length;
    return groupByFault(toRun);
  };
  try {
    ranInWorkers = await execute(nextGroups, options, (group, records) => {
      sample.keep(group, records);
      for (const record of records) {
        // provenance is the campaign layer's: the trial's own record stays what runTrial returns
        store.append({ ...record, ninelives: provenance });
        tally.add(record);
        rounds.add(record);
      }
    });
    finished = !options.signal?.aborted;
  } finally {
    store.close();
  }
  if (!finished || (rule === undefined && tally.done < jobs.length)) return { kind: 'interrupted', total: jobs.length, done: tally.done };
  if (manifest !== undefined) writeManifest(options.outDirectory, finishedManifest(manifest));
  const selfCheck = await sample.check(ranInWorkers, options.outDirectory);
  const summary = finishResults(options.outDirectory, campaign.name, campaign.seed);
  return { kind: 'completed', total: jobs.length, ran, summary, selfCheck };
}

/** The manifest of a run whose trials are all in. */
export function finishedManifest(manifest: Omit<Manifest, 'tool'>): Omit<Manifest, 'tool'> {
  return Object.fromEntries(Object.entries(manifest).filter(([field]) => field !== 'unfinished')) as Omit<Manifest, 'tool'>;
}

/** The records of the sampled faults this run ran, to run again once the run is done. */
class SampleKeeper {
  private readonly kept: { group: readonly TrialJob[]; records: readonly CampaignRecord[] }[] = [];

  constructor(private readonly every: number) {}

  keep(group: readonly TrialJob[], records: readonly CampaignRecord[]): void {
    if (records.some((entry) => isHarnessError(entry.record))) return;
    if (inSample(group, this.every)) this.kept.push({ group, records });
  }

  /** Run each kept fault again in another thread than the first time, and compare. */
  async check(ranInWorkers: boolean, directory: string): Promise<SelfCheckResult> {
    if (this.kept.length === 0) return { checked: 0, mismatches: [] };
    const mismatches: Mismatch[] = [];
    const runAgain = ranInWorkers || !existsSync(builtWorkerFile()) ? async (group: readonly TrialJob[]) => runJobs(group) : await oneWorker();
    try {
      for (const { group, records } of this.kept) mismatches.push(...compareRuns(records, await runAgain.call(undefined, group), directory));
    } finally {
      await (runAgain as { close?: () => Promise<void> }).close?.();
    }
    return { checked: this.kept.length, mismatches };
  }
}

/** A function that runs jobs in a worker thread of its own, and closes it when done. */
async function oneWorker(): Promise<((group: readonly TrialJob[]) => Promise<CampaignRecord[]>) & { close: () => Promise<void> }> {
  const pool = new Piscina<readonly TrialJob[], CampaignRecord[]>({ filename: workerFile(), minThreads: 1, maxThreads: 1 });
  return Object.assign((group: readonly TrialJob[]) => pool.run(group), { close: () => pool.destroy() });
}

interface StoredTrials {
  /** planned trials the results file already holds */
  readonly done: Set<TrialJob>;
  /** stored trials this campaign does not plan, and the id of the first */
  foreign: number;
  firstForeign?: string;
  /** the provenance of a stored trial that another ninelives made */
  otherVersion?: { value: Provenance | undefined };
}

/**
 * What the results file holds, read a record at a time. Ids do not hold the seed, run length or
 * host: a stored trial is this campaign's only if its spec is.
 */
function storedTrials(path: string, planned: ReadonlyMap<string, TrialJob>, provenance: Provenance): StoredTrials {
  const stored: StoredTrials = { done: new Set(), foreign: 0 };
  for (const record of readRecords(path)) {
    if (!sameProvenance(record.ninelives, provenance)) stored.otherVersion ??= { value: record.ninelives };
    const job = planned.get(record.id);
    if (job !== undefined && stored.done.has(job)) throw new ResultsFileError(`${path} holds trial ${record.id} twice: a trial is counted once; remove one`);
    if (job !== undefined && isPlannedAs(record, job)) stored.done.add(job);
    else {
      stored.foreign++;
      stored.firstForeign ??= record.id;
    }
  }
  return stored;
}

function isPlannedAs(record: CampaignRecord, job: TrialJob): boolean {
  return record.campaign === job.campaign && JSON.stringify(record.spec) === JSON.stringify(job.spec);
}

type OnRecords = (group: readonly TrialJob[], records: readonly CampaignRecord[]) => void;
export type RunGroup = (group: readonly TrialJob[]) => Promise<CampaignRecord[]>;
/** Fault groups come in rounds: `nextGroups` is asked again once a round's records are all in. */
type GroupSource = () => readonly TrialJob[][] | undefined;

/** Run the rounds of jobs; true if they ran in worker threads. */
async function execute(nextGroups: GroupSource, options: RunOptions, onRecords: OnRecords): Promise<boolean> {
  if (options.workers <= 1) {
    await executeHere(nextGroups, options.signal, onRecords);
    return false;
  }
  await executeInWorkers(nextGroups, options.workers, options.signal, onRecords);
  return true;
}

/**
 * A fault's trials, and when the harness fails (a trial throws, a worker thread dies: piscina
 * replaces it), each of them once more on its own; a trial that fails again is recorded as a
 * harness error, so one bad trial neither ends the campaign nor takes its fault's others with it.
 */
export async function runWithRetry(run: RunGroup, group: readonly TrialJob[]): Promise<CampaignRecord[]> {
  try {
    return await run(group);
  } catch {
    return Promise.all(
      group.map(async (job) => {
        try {
          return (await run([job]))[0];
        } catch (error) {
          return { campaign: job.campaign, id: job.id, stage: job.stage, spec: job.spec, record: harnessErrorRecord(job.spec, error) };
        }
      }),
    );
  }
}

/** Jobs of the same fault (configuration, fault type, trial index), in plan order: run together. */
export function groupByFault(jobs: readonly TrialJob[]): TrialJob[][] {
  const groups = new Map<string, TrialJob[]>();
  for (const job of jobs) {
    const key = JSON.stringify([job.spec.configuration, job.spec.faultType, job.spec.trialIndex]);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [job]);
    else group.push(job);
  }
  return [...groups.values()];
}

async function executeHere(nextGroups: GroupSource, signal: AbortSignal | undefined, onRecords: OnRecords): Promise<void> {
  const runHere: RunGroup = async (group) => runJobs(group);
  for (let groups = nextGroups(); groups !== undefined; groups = nextGroups()) {
    for (const group of groups) {
      if (signal?.aborted) return;
      onRecords(group, await runWithRetry(runHere, group));
      // let signals and progress output through between faults
      await new Promise((resolveTick) => setImmediate(resolveTick));
    }
  }
}

async function executeInWorkers(nextGroups: GroupSource, workers: number, signal: AbortSignal | undefined, onRecords: OnRecords): Promise<void> {
  const pool = new Piscina<readonly TrialJob[], CampaignRecord[]>({ filename: workerFile(), minThreads: workers, maxThreads: workers });
  const runInPool: RunGroup = (group) => pool.run(group);
  const inFlightLimit = workers * 4;
  let groups: readonly TrialJob[][] | undefined = [];
  let next = 0;
  const running = new Set<Promise<void>>();
  try {
    while (!signal?.aborted) {
      if (next >= groups.length) {
        // a round's decisions need all of the previous round's records
        await Promise.all(running);
        groups = nextGroups();
        next = 0;
        if (groups === undefined) break;
        continue;
      }
      const group = groups[next++];
      const task = runWithRetry(runInPool, group).then((records) => onRecords(group, records));
      const tracked: Promise<void> = task.finally(() => running.delete(tracked));
      running.add(tracked);
      if (running.size >= inFlightLimit) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    await pool.destroy();
  }
}

/** The compiled worker next to this module; from TypeScript sources (tests), the built one. */
export function workerFile(): string {
  const built = builtWorkerFile();
  if (!existsSync(built)) throw new Error(`worker threads need the compiled worker: run \`npm run build\` (looked for ${built})`);
  return built;
}

function builtWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'worker.js');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  return resolve(dirname(here), '../../dist/src/campaign/worker.js');
}

class Tally {
  done: number;
  private readonly recovery: Record<string, { recovered: number; attempted: number }> = {};

  constructor(
    private readonly total: number,
    alreadyDone: number,
    private readonly onProgress: RunOptions['onProgress'],
  ) {
    this.done = alreadyDone;
    onProgress?.({ done: this.done, total, recovery: this.recovery });
  }

  add({ record }: CampaignRecord): void {
    this.done++;
    if (!isHarnessError(record) && record.outcome === 'detected' && record.recovery !== undefined) {
      const counts = (this.recovery[record.mechanism] ??= { recovered: 0, attempted: 0 });
      counts.attempted++;
      if (record.recovery.result === 'recovered') counts.recovered++;
    }
    this.onProgress?.({ done: this.done, total: this.total, recovery: this.recovery });
  }
}
