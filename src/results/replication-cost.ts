/**
 * What each group's mechanism costs when nothing fails, for summaries of campaigns that have a
 * failover group: failover's overhead and output delay are measured on the golden run of the
 * group's configuration (trial/failover.ts); microreset and microreboot replicate nothing and
 * cost nothing until a failure. Campaigns without failover keep their summaries as they were.
 */
import { DEFAULT_REPLICATION, measureReplicationCost, type ReplicationCost } from '../trial/failover.js';
import { DEFAULT_REPLAY, measureReplayCost, type ReplayCost } from '../trial/replay-failover.js';
import type { KvServerSettings, TrialSpec } from '../trial/record.js';

export interface CostWhenNothingFails {
  readonly overheadPercent: number;
  readonly outputDelayMs: { readonly p50: number; readonly p99: number };
}

const NOTHING: CostWhenNothingFails = { overheadPercent: 0, outputDelayMs: { p50: 0, p99: 0 } };

const measured = new Map<string, ReplicationCost>();

/** The cost of `mechanism` in `configuration` (workload seed `seed`), with failover's epoch. */
export function costWhenNothingFails(mechanism: string, configuration: string, seed: number, epochMs: number = DEFAULT_REPLICATION.epochMs, kvServer?: KvServerSettings): CostWhenNothingFails {
  if (mechanism !== 'failover') return NOTHING;
  const key = JSON.stringify([configuration, seed, epochMs, ...(kvServer === undefined ? [] : [kvServer])]);
  let cost = measured.get(key);
  if (cost === undefined) {
    cost = measureReplicationCost({ configuration, seed, ...(kvServer === undefined ? {} : { kvServer }) }, { ...DEFAULT_REPLICATION, epochMs });
    measured.set(key, cost);
  }
  return { overheadPercent: round(cost.overheadPercent), outputDelayMs: { p50: round(cost.outputDelayMs.p50), p99: round(cost.outputDelayMs.p99) } };
}

const replayMeasured = new Map<string, ReplayCost>();

/**
 * What a replay-failover group costs when nothing fails, with its options: checkpoint pauses and
 * ordering waits as overhead, and each reply's wait for its log to reach the backup.
 */
export function replayCostWhenNothingFails(configuration: string, seed: number, settings: NonNullable<TrialSpec['replay']>, kvServer?: KvServerSettings): CostWhenNothingFails {
  const options = { ...DEFAULT_REPLAY, ...settings };
  const key = JSON.stringify([configuration, seed, options.checkpointMs, options.ordering, ...(kvServer === undefined ? [] : [kvServer])]);
  let cost = replayMeasured.get(key);
  if (cost === undefined) {
    cost = measureReplayCost({ configuration, seed, ...(kvServer === undefined ? {} : { kvServer }) }, options);
    replayMeasured.set(key, cost);
  }
  return { overheadPercent: round(cost.overheadPercent), outputDelayMs: { p50: round(cost.outputDelayMs.p50), p99: round(cost.outputDelayMs.p99) } };
}

function round(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}
