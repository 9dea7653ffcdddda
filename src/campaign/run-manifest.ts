/**
 * What a run of a campaign writes into its results directory's manifest (results/manifest.ts)
 * before any work: the campaign, the trials the directory should hold (this shard's, and the
 * whole campaign's), the shard's place, a fingerprint of everything that decides the trials, and
 * which ninelives runs it. `run` and `ablate` both write it, so both directories can be resumed,
 * reported and merged the same way.
 */
import { createHash } from 'node:crypto';
import type { Manifest } from '../results/manifest.js';
import { currentProvenance } from '../results/provenance.js';
import { plannedTrialCount, type PlanSize } from './limits.js';
import type { Shard } from './plan.js';
import type { Campaign } from './spec.js';

/** The campaign's size, for counting its trials without planning them. */
export function planSizeOf(campaign: Campaign): PlanSize {
  return { configurations: campaign.configurations.length, faults: Object.values(campaign.faults), variants: campaign.variants.length };
}

export function runManifest(campaign: Campaign, trialsOverride: number | undefined, shard: Shard | undefined): Omit<Manifest, 'tool'> {
  const size = planSizeOf(campaign);
  return {
    campaign: campaign.name,
    seed: campaign.seed,
    ...(campaign.description === undefined ? {} : { description: campaign.description }),
    planned: plannedTrialCount(size, trialsOverride, shard),
    ...(shard === undefined ? {} : { shard }),
    campaignTrials: plannedTrialCount(size, trialsOverride),
    fingerprint: campaignFingerprint(campaign, trialsOverride),
    ninelives: currentProvenance(),
  };
}

/** The hash of what decides a campaign's trials (not its description): see Manifest.fingerprint. */
export function campaignFingerprint(campaign: Campaign, trialsOverride: number | undefined): string {
  const decisive = { ...campaign, description: null, trialsOverride: trialsOverride ?? null };
  return createHash('sha256').update(JSON.stringify(decisive)).digest('hex').slice(0, 16);
}
