/**
 * Campaign -> trial jobs, in a fixed order. Every mechanism variant of a (configuration, fault
 * type) cell gets the same trial indexes, hence the same faults: comparisons are paired.
 */
import type { FaultType } from '../faults/fault.js';
import type { TrialSpec } from '../trial/record.js';
import type { Shard } from '../results/manifest.js';
import type { Campaign } from './spec.js';

export interface TrialJob {
  readonly campaign: string;
  readonly id: string;
  readonly stage: string;
  readonly spec: TrialSpec;
}

// a shard's place is part of a results directory's manifest, so the results layer defines it
export type { Shard } from '../results/manifest.js';

export function planTrials(campaign: Campaign, trialsOverride?: number): TrialJob[] {
  const jobs: TrialJob[] = [];
  for (const configuration of campaign.configurations) {
    for (const [faultType, trials] of Object.entries(campaign.faults) as [FaultType, number][]) {
      const count = trialsOverride ?? trials;
      for (let trialIndex = 0; trialIndex < count; trialIndex++) {
        for (const variant of campaign.variants) {
          jobs.push({
            campaign: campaign.name,
            id: `${configuration}/${faultType}/${variant.mechanism}/${variant.stage}/${trialIndex}`,
            stage: variant.stage,
            spec: {
              configuration,
              seed: campaign.seed,
              trialIndex,
              faultType,
              runLengthNs: campaign.runLengthMs === undefined ? undefined : campaign.runLengthMs * 1_000_000,
              strictNetBench: campaign.strictNetBench,
              ...(variant.pkeys === true ? { pkeys: true } : {}),
              mechanism: variant.mechanism,
              disabledSteps: variant.disabledSteps,
              host: campaign.host,
              // only replay-failover's specs carry its options, so every other spec is as it was
              ...(variant.replay === undefined ? {} : { replay: variant.replay }),
              ...(variant.replication === undefined ? {} : { replication: variant.replication }),
              ...(variant.kvServer === undefined ? {} : { kvServer: variant.kvServer }),
            },
          });
        }
      }
    }
  }
  return jobs;
}

/** Shard I of N takes every N-th trial index, so shards balance and merge back in plan order. */
export function inShard(job: TrialJob, shard: Shard | undefined): boolean {
  return shard === undefined || job.spec.trialIndex % shard.count === shard.index - 1;
}
