/**
 * What triage says about a campaign: each failed trial's diagnosis (its corruption footprint,
 * audit findings, minimal restoring set and the disabled steps that repair it) and the clusters
 * those diagnoses fall into. Plain JSON data: triage (campaign layer) computes it, the report
 * layer renders it, and the results directory keeps it (triage.jsonl) so triage can resume.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResultsFileError } from './lines.js';

/** How one named region of state differs from the fault-free run's at the same point. */
export interface RegionDifference {
  /** the region as the hypervisor names it (`cpu_locks[0].schedule`, `percpu[1].irqCount`, `cpu[0].timerDeadline`), or guest state as the guests name it (`guest[unixbench].resumeToken`, `guest[netbench].ring.responseConsumer`, `disk.queue`) */
  readonly region: string;
  /** the region with its indices dropped (`percpu.irqCount`): what steps declare they repair */
  readonly kind: string;
  /** words (or CPU fields) that differ */
  readonly words: number;
  /** the first differing word's value in the trial, and in the fault-free run (guest state that is not a number: short JSON) */
  readonly trialValue: number | string;
  readonly goldenValue: number | string;
}

/**
 * A footprint: the regions that differ from the fault-free run. `touchedByFault` differed already
 * at the detection (the fault's own word and what the faulty run wrote); `leftHalfDone` agreed
 * with the fault-free run at the detection and differs only after recovery (work in flight that
 * recovery abandoned). Differences that are only progress (a counter or clock the fault-free run
 * also moved, standing strictly between its values at the interval's ends) are counted, not listed.
 */
export interface Footprint {
  readonly atDetection: readonly RegionDifference[];
  /** absent when recovery did not get as far as releasing the CPUs */
  readonly afterRecovery?: readonly RegionDifference[];
  readonly touchedByFault: readonly string[];
  readonly leftHalfDone: readonly string[];
  readonly progressIgnored: number;
}

/**
 * Where a restoring set is set back: at the detection (the detecting CPU's registers at its
 * trap), just before the CPUs run again after recovery, or, for a silent data corruption, at the
 * first checkpoint after the fault.
 */
export type RestoringPoint = 'detection' | 'afterRecovery' | 'checkpoint';

/** A search that ran out of its bounds says so, and what it had found by then. */
export type RestoringSet =
  | { readonly kind: 'found'; readonly regions: readonly string[]; readonly reruns: number; readonly point: RestoringPoint }
  /** even setting back every region of the footprint does not recover the trial */
  | { readonly kind: 'none'; readonly reruns: number; readonly point: RestoringPoint }
  | { readonly kind: 'exhausted'; readonly regions: readonly string[]; readonly reruns: number; readonly point: RestoringPoint; readonly reason: string };

export interface TrialDiagnosis {
  readonly id: string;
  readonly replay: string;
  readonly mechanism: string;
  readonly cause: string;
  readonly detector: string;
  /** the code label the fault landed in: a code fault's flipped word, else the instruction the CPU was at */
  readonly faultFunction: string;
  readonly footprint: Footprint;
  /** the audit's violated invariants right after recovery (and at the end of the run) */
  readonly auditAfterRecovery: readonly string[];
  readonly restoring: RestoringSet;
  /** disabled steps that, switched on alone, make the trial recover */
  readonly repairedBy: readonly string[];
  readonly reruns: number;
}

export interface TriageCluster {
  readonly signature: string;
  readonly count: number;
  readonly trials: readonly string[];
  readonly restoring: readonly string[];
  readonly repairedBy: readonly string[];
  readonly cause: string;
  readonly detector: string;
  /** the hypervisor routine every trial's fault landed in (part of the signature) */
  readonly faultRoutine?: string;
  /** the code labels within it */
  readonly faultFunctions: readonly string[];
  readonly replay: string;
  readonly reading: string;
  /** trials of the cluster whose search ran out of its bounds */
  readonly exhausted: number;
}

export interface Triage {
  readonly campaign: string;
  /** failed recoveries diagnosed */
  readonly failed: number;
  /** silent data corruptions diagnosed (`triage --sdc`); absent when they were not asked for */
  readonly silent?: number;
  readonly clusters: readonly TriageCluster[];
  /** trial pages written beside the results (trial id -> path relative to the directory) */
  readonly pages?: Readonly<Record<string, string>>;
  /** failed trials another mechanism recovered from on the same fault */
  readonly discordant?: readonly string[];
}

/** The clusters of the last triage of a results directory, beside its trials. */
export const TRIAGE_CLUSTERS_FILE = 'triage.json';

/**
 * The directory's triage, when `ninelives triage` has written one. A results directory is user
 * input: a triage.json that is not one is a ResultsFileError, one line, not a crash.
 */
export function readTriage(directory: string): Triage | undefined {
  const path = join(directory, TRIAGE_CLUSTERS_FILE);
  if (!existsSync(path)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ResultsFileError(`${path} is not a triage (not JSON): run \`ninelives triage\` again, or remove it`);
  }
  const triage = (typeof value === 'object' && value !== null ? value : {}) as Partial<Triage>;
  if (typeof triage.campaign !== 'string' || typeof triage.failed !== 'number' || !Array.isArray(triage.clusters)) {
    throw new ResultsFileError(`${path} is not a triage: run \`ninelives triage\` again, or remove it`);
  }
  return triage as Triage;
}
