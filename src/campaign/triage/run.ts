/**
 * Triage of a finished campaign's results directory: diagnose every failed recovery (on the
 * worker pool, or in this thread), appending each diagnosis to triage.jsonl as it completes so an
 * interrupted triage resumes where it stopped, then cluster them. Diagnoses are pure functions of
 * the trial's spec and the bounds, so the order they complete in changes nothing.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { recoverySteps } from '../../recovery/steps/index.js';
import { trialsPath } from '../../results/directory.js';
import { readRecords } from '../../results/store.js';
import type { TrialDiagnosis, Triage } from '../../results/triage.js';
import { clusterDiagnoses } from './cluster.js';
import { DEFAULT_BOUNDS, type FailedTrial, type SilentTrial, type TriageBounds } from './diagnose.js';
import diagnoseJob, { type TriageJob } from './worker.js';

export const TRIAGE_FILE = 'triage.jsonl';

/**
 * What a stored diagnosis holds changes with the diagnosis (2: the CPUs' registers in the
 * footprint, a code fault's place by its flipped word; 3: guest and device state in the
 * footprint and the search): lines of another format are diagnosed again.
 */
const DIAGNOSIS_FORMAT = 3;

export interface TriageOptions {
  readonly workers: number;
  readonly bounds?: TriageBounds;
  readonly onProgress?: (done: number, total: number) => void;
  /** diagnose the silent data corruptions too */
  readonly sdc?: boolean;
  /** aborting stops new diagnoses; those in flight finish and are kept */
  readonly signal?: AbortSignal;
}

export type TriageRun =
  | { readonly kind: 'completed'; readonly triage: Triage; readonly diagnoses: readonly TrialDiagnosis[]; readonly diagnosed: number } | { readonly kind: 'interrupted'; readonly done: number; readonly total: number };

/** The failed recoveries of a results directory (and with `sdc`, its silent data corruptions), in its (canonical) order. */
export function failedTrials(directory: string, sdc = false): { campaign: string; trials: (FailedTrial | SilentTrial)[] } {
  const trials: (FailedTrial | SilentTrial)[] = [];
  let campaign = '';
  for (const entry of readRecords(trialsPath(directory))) {
    campaign = entry.campaign;
    const record = entry.record;
    if (sdc && record.outcome === 'sdc') trials.push({ kind: 'sdc', id: entry.id, spec: entry.spec, cause: record.cause, replay: record.replay, injection: record.injection });
    if (record.outcome !== 'detected' || record.recovery?.result !== 'recoveryFailed') continue;
    trials.push({ id: entry.id, spec: entry.spec, recovery: record.recovery, replay: record.replay });
  }
  return { campaign, trials };
}

export async function triageDirectory(directory: string, options: TriageOptions): Promise<TriageRun> {
  const bounds = options.bounds ?? DEFAULT_BOUNDS;
  const { campaign, trials } = failedTrials(directory, options.sdc ?? false);
  const path = join(directory, TRIAGE_FILE);
  const stored = storedDiagnoses(path, new Set(trials.map((trial) => trial.id)), bounds);
  // written even when empty: it says the directory was triaged, and is what a resumed triage reads
  if (stored.rewrite || !existsSync(path)) writeFileSync(path, [...stored.diagnoses.values()].map((diagnosis) => line(diagnosis, bounds)).join(''));
  const missing = trials.filter((trial) => !stored.diagnoses.has(trial.id));
  let done = trials.length - missing.length;
  options.onProgress?.(done, trials.length);
  const onDiagnosis = (diagnosis: TrialDiagnosis): void => {
    appendFileSync(path, line(diagnosis, bounds));
    stored.diagnoses.set(diagnosis.id, diagnosis);
    done++;
    options.onProgress?.(done, trials.length);
  };
  const jobs = missing.map((trial) => ({ trial, bounds }));
  if (options.workers <= 1) await diagnoseHere(jobs, options.signal, onDiagnosis);
  else await diagnoseInWorkers(jobs, options.workers, options.signal, onDiagnosis);
  if (done < trials.length) return { kind: 'interrupted', done, total: trials.length };
  const diagnoses = trials.map((trial) => stored.diagnoses.get(trial.id) as TrialDiagnosis);
  const disabled = [...new Set(trials.flatMap((trial) => trial.spec.disabledSteps ?? []))];
  return { kind: 'completed', triage: clusterDiagnoses(campaign, diagnoses, recoverySteps, disabled, options.sdc ?? false), diagnoses, diagnosed: missing.length };
}

/** The diagnosis of trial `id` stored in a directory's triage.jsonl (the last of the current format), if any. */
export function storedDiagnosisOf(directory: string, id: string): TrialDiagnosis | undefined {
  const path = join(directory, TRIAGE_FILE);
  if (!existsSync(path)) return undefined;
  let found: TrialDiagnosis | undefined;
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (text.trim() === '') continue;
    try {
      const parsed = JSON.parse(text) as { format?: number; diagnosis: TrialDiagnosis };
      if (parsed.format === DIAGNOSIS_FORMAT && parsed.diagnosis.id === id) found = parsed.diagnosis;
    } catch {
      // a line cut short by an interruption holds no diagnosis
    }
  }
  return found;
}

/** A stored line carries its format and the bounds it was found within: another of either makes it stale. */
function line(diagnosis: TrialDiagnosis, bounds: TriageBounds): string {
  return JSON.stringify({ format: DIAGNOSIS_FORMAT, bounds, diagnosis }) + '\n';
}

/** Diagnoses already in triage.jsonl for these trials and bounds; any other line means rewriting the file. */
function storedDiagnoses(path: string, wanted: ReadonlySet<string>, bounds: TriageBounds): { diagnoses: Map<string, TrialDiagnosis>; rewrite: boolean } {
  const diagnoses = new Map<string, TrialDiagnosis>();
  if (!existsSync(path)) return { diagnoses, rewrite: false };
  let rewrite = false;
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (text.trim() === '') continue;
    try {
      const parsed = JSON.parse(text) as { format?: number; bounds: TriageBounds; diagnosis: TrialDiagnosis };
      if (parsed.format === DIAGNOSIS_FORMAT && JSON.stringify(parsed.bounds) === JSON.stringify(bounds) && wanted.has(parsed.diagnosis.id)) diagnoses.set(parsed.diagnosis.id, parsed.diagnosis);
      else rewrite = true;
    } catch {
      // a line cut short by an interruption: diagnose that trial again
      rewrite = true;
    }
  }
  return { diagnoses, rewrite };
}

async function diagnoseHere(jobs: readonly TriageJob[], signal: AbortSignal | undefined, onDiagnosis: (diagnosis: TrialDiagnosis) => void): Promise<void> {
  for (const job of jobs) {
    if (signal?.aborted) return;
    onDiagnosis(diagnoseJob(job));
    await new Promise((resolveTick) => setImmediate(resolveTick));
  }
}

async function diagnoseInWorkers(jobs: readonly TriageJob[], workers: number, signal: AbortSignal | undefined, onDiagnosis: (diagnosis: TrialDiagnosis) => void): Promise<void> {
  const pool = new Piscina<TriageJob, TrialDiagnosis>({ filename: workerFile(), minThreads: workers, maxThreads: workers });
  const running = new Set<Promise<void>>();
  try {
    for (const job of jobs) {
      if (signal?.aborted) break;
      const tracked: Promise<void> = pool
        .run(job)
        .then(onDiagnosis)
        .finally(() => running.delete(tracked));
      running.add(tracked);
      if (running.size >= workers * 2) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    await pool.destroy();
  }
}

/** The compiled worker next to this module; from TypeScript sources (tests), the built one. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'worker.js');
  if (here.endsWith('.js') && existsSync(sibling)) return sibling;
  const built = resolve(dirname(here), '../../../dist/src/campaign/triage/worker.js');
  if (!existsSync(built)) throw new Error(`worker threads need the compiled worker: run \`npm run build\` (looked for ${built})`);
  return built;
}
