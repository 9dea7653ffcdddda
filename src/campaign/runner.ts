/**
 * Runs a campaign: plans its trials, skips those already in trials.jsonl (resume), runs the
 * rest in worker threads (piscina) or in this thread, streams each record to trials.jsonl as it
 * completes, and at the end rewrites the results in canonical order and writes the summary. The
 * reports are its caller's to render (the report layer sits above this one). Memory stays flat:
 * records go to disk, not into a list.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { inShard, planTrials, type Shard, type TrialJob } from './plan.js';
import type { Campaign } from './spec.js';
import { finishResults, trialsPath } from '../results/directory.js';
import { ResultsStore, readRecords } from '../results/store.js';
import type { CampaignRecord, Summary } from '../results/summary.js';
import runJobs from './worker.js';
import { StoppingRounds, stopRuleOf } from './stopping.js';
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
}

export interface RunProgress {
  readonly done: number;
  readonly total: number;
  /** running recovery counts per mechanism */
  readonly recovery: Readonly<Record<string, { readonly recovered: number; readonly attempted: number }>>;
}

export type RunResult =
  | { readonly kind: 'completed'; readonly total: number; readonly ran: number; readonly summary: Summary }
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
  const { done, foreign, firstForeign } = storedTrials(store.path, new Map(jobs.map((job) => [job.id, job])));
  if (foreign > 0) {
    throw new ResultsExistError(`${store.path} holds ${foreign} trials this campaign does not plan (e.g. ${firstForeign}): it is another campaign's or another setting's; choose another --out`);
  }
  const rule = stopRuleOf(campaign);
  if (rule !== undefined && options.shard !== undefined) throw new ResultsExistError(`${campaign.name} stops at a precision, which needs every trial index of a cell: run it whole (or through the queue), not in shards`);
  if (rule !== undefined) writeFileSync(join(options.outDirectory, STOP_RULE_FILE), stopRuleText(rule));
  const rounds = new StoppingRounds(jobs, rule);
  if (rule !== undefined) for (const record of readRecords(store.path)) rounds.add(record);
  const tally = new Tally(jobs.length, done.size, options.onProgress);
  let ran = 0;
  let finished = true;
  const nextGroups = (): TrialJob[][] | undefined => {
    const round = rounds.next();
    if (round === undefined) return undefined;
    const missing = round.filter((job) => !done.has(job));
    ran += missing.length;
    return groupByFault(missing);
  };
  try {
    await execute(nextGroups, options, (record) => {
      store.append(record);
      tally.add(record);
      rounds.add(record);
    });
    finished = !options.signal?.aborted;
  } finally {
    store.close();
  }
  if (!finished || (rule === undefined && tally.done < jobs.length)) return { kind: 'interrupted', total: jobs.length, done: tally.done };
  const summary = finishResults(options.outDirectory, campaign.name, campaign.seed);
  return { kind: 'completed', total: jobs.length, ran, summary };
}

interface StoredTrials {
  /** planned trials the results file already holds */
  readonly done: Set<TrialJob>;
  /** stored trials this campaign does not plan, and the id of the first */
  foreign: number;
  firstForeign?: string;
}

/**
 * What the results file holds, read a record at a time. Ids do not hold the seed, run length or
 * host: a stored trial is this campaign's only if its spec is.
 */
function storedTrials(path: string, planned: ReadonlyMap<string, TrialJob>): StoredTrials {
  const stored: StoredTrials = { done: new Set(), foreign: 0 };
  for (const record of readRecords(path)) {
    const job = planned.get(record.id);
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

/** Fault groups come in rounds: `nextGroups` is asked again once a round's records are all in. */
type GroupSource = () => readonly TrialJob[][] | undefined;

async function execute(nextGroups: GroupSource, options: RunOptions, onRecord: (record: CampaignRecord) => void): Promise<void> {
  if (options.workers <= 1) return executeHere(nextGroups, options.signal, onRecord);
  return executeInWorkers(nextGroups, options.workers, options.signal, onRecord);
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

async function executeHere(nextGroups: GroupSource, signal: AbortSignal | undefined, onRecord: (record: CampaignRecord) => void): Promise<void> {
  for (let groups = nextGroups(); groups !== undefined; groups = nextGroups()) {
    for (const group of groups) {
      if (signal?.aborted) return;
      runJobs(group).forEach(onRecord);
      // let signals and progress output through between faults
      await new Promise((resolveTick) => setImmediate(resolveTick));
    }
  }
}

async function executeInWorkers(nextGroups: GroupSource, workers: number, signal: AbortSignal | undefined, onRecord: (record: CampaignRecord) => void): Promise<void> {
  const pool = new Piscina<readonly TrialJob[], CampaignRecord[]>({ filename: workerFile(), minThreads: workers, maxThreads: workers });
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
      const task = pool.run(group).then((records) => records.forEach(onRecord));
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
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'worker.js');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  const built = resolve(dirname(here), '../../dist/src/campaign/worker.js');
  if (!existsSync(built)) throw new Error(`worker threads need the compiled worker: run \`npm run build\` (looked for ${built})`);
  return built;
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
    if (record.outcome === 'detected' && record.recovery !== undefined) {
      const counts = (this.recovery[record.mechanism] ??= { recovered: 0, attempted: 0 });
      counts.attempted++;
      if (record.recovery.result === 'recovered') counts.recovered++;
    }
    this.onProgress?.({ done: this.done, total: this.total, recovery: this.recovery });
  }
}
