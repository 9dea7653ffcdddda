/**
 * Bounds on every size a user gives, checked before any work: the campaign file's bytes, its
 * YAML aliases and nesting, the trials it plans (from the file or --trials), and the worker
 * threads (capped, with a note, rather than refused: asking for more than is useful is not a
 * mistake, but each thread costs memory).
 */
import type { Shard } from './plan.js';

/** failover's epoch and heartbeat periods, ms */
export const MIN_REPLICATION_PERIOD_MS = 1;
export const MAX_REPLICATION_PERIOD_MS = 1_000;
/** replay-failover's checkpoint interval, ms */
export const MIN_CHECKPOINT_MS = 10;
export const MAX_CHECKPOINT_MS = 10_000;
/**
 * The key-value server's load imbalance: thread 0's work takes up to this many times longer
 * again than its instructions say (10: eleven times as long, far past any real core's spread)
 */
export const MAX_KV_IMBALANCE = 10;
/** A campaign file is a few hundred bytes; a megabyte is already absurd. */
export const MAX_CAMPAIGN_FILE_BYTES = 1 << 20;
/** YAML alias expansion (the yaml package's count of nodes reached through aliases) */
export const MAX_YAML_ALIAS_COUNT = 100;
/** nesting of YAML collections; a campaign file needs four */
export const MAX_NESTING_DEPTH = 32;
/**
 * Planned trials of one run. The plan is held in memory (a few hundred bytes a trial) and a
 * million trials take days on a small machine: beyond that, split the campaign into files.
 */
export const MAX_TRIALS = 1_000_000;
/** seeds are 32-bit: a trial's seed mixes the campaign's as an unsigned 32-bit word, so a larger one would repeat a smaller one's trials */
export const MAX_SEED = 2 ** 32 - 1;
/** worker threads per core: a worker is busy on its own, more only cost memory */
export const MAX_WORKERS_PER_CORE = 2;
/** the string values of a campaign file */
export const MAX_LABEL_LENGTH = 80;
export const MAX_DESCRIPTION_LENGTH = 2_000;
/** mechanism entries, and steps switched off in one */
export const MAX_LIST_LENGTH = 64;
/** shards a campaign may be split into */
export const MAX_SHARDS = 100_000;

export interface PlanSize {
  readonly configurations: number;
  /** trials per fault type */
  readonly faults: readonly number[];
  readonly variants: number;
}

/** The trials a campaign plans, over all shards or in one shard, without planning them. */
export function plannedTrialCount(size: PlanSize, trialsOverride: number | undefined, shard?: Shard): number {
  const indexes = size.faults.map((trials) => shardShare(trialsOverride ?? trials, shard));
  return size.configurations * size.variants * indexes.reduce((sum, count) => sum + count, 0);
}

/** How many of the trial indexes 0..count-1 shard I of N takes (every N-th, from I-1). */
export function shardShare(count: number, shard: Shard | undefined): number {
  if (shard === undefined) return count;
  return count < shard.index ? 0 : Math.floor((count - shard.index) / shard.count) + 1;
}

/** Faults (trial indexes times configurations and fault types) a run has: its units of work. */
export function plannedFaultCount(size: PlanSize, trialsOverride: number | undefined, shard?: Shard): number {
  return plannedTrialCount({ ...size, variants: 1 }, trialsOverride, shard);
}

export interface WorkerChoice {
  readonly workers: number;
  /** why fewer workers than asked for, when so */
  readonly note?: string;
}

/** Workers: no more than there are faults to run, nor than MAX_WORKERS_PER_CORE per core. */
export function chooseWorkers(requested: number, faults: number, cores: number, option = '--workers'): WorkerChoice {
  const byCores = Math.max(1, cores * MAX_WORKERS_PER_CORE);
  const workers = Math.max(1, Math.min(requested, faults, byCores));
  if (workers === requested) return { workers };
  const reason = workers === faults && faults < byCores ? `the run has ${faults} fault${faults === 1 ? '' : 's'} to inject` : `this machine has ${cores} core${cores === 1 ? '' : 's'}`;
  return { workers, note: `${option} ${requested} capped to ${workers}: ${reason}` };
}
