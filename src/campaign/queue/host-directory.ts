/**
 * A queue worker's results directory holds one campaign's records. `queue work` claims it before
 * taking any chunk (new, empty or a ninelives result, as `run --out`, or --force); the campaign is
 * known only from the first chunk, which writes the manifest. The manifest plans no trial count:
 * a host holds whatever share of the campaign its worker took. A chunk of another campaign, or of
 * another setting of this one, is refused, so one trials.jsonl never mixes two.
 */
import { join } from 'node:path';
import { NinelivesError } from '../../errors.js';
import { TRIALS_FILE } from '../../results/directory.js';
import { readManifest, writeManifest, type Manifest } from '../../results/manifest.js';
import { firstRecord } from '../../results/store.js';
import { campaignFingerprint, runManifest } from '../run-manifest.js';
import type { Campaign } from '../spec.js';

export class HostCampaignError extends NinelivesError {
  constructor(directory: string, holds: string, chunk: string) {
    super('usage.outputDirectory', `${directory} holds results of ${holds}; the queue gave this worker a chunk of ${chunk}: start the workers of each campaign with their own --out`);
  }
}

export class HostDirectory {
  /** the fingerprint of the campaign the directory holds, once known */
  private admitted: string | undefined;

  constructor(private readonly directory: string) {}

  /** Throws HostCampaignError unless the chunk's records may go here; the first one writes the manifest. */
  admit(campaign: Campaign): void {
    const fingerprint = campaignFingerprint(campaign, undefined);
    if (this.admitted === fingerprint) return;
    const held = this.held();
    if (held !== undefined && !(held.campaign === campaign.name && held.seed === campaign.seed && (held.fingerprint === undefined || held.fingerprint === fingerprint))) {
      throw new HostCampaignError(this.directory, describe(held), describe({ campaign: campaign.name, seed: campaign.seed }));
    }
    if (held?.fingerprint === undefined) writeManifest(this.directory, hostManifest(campaign));
    this.admitted = fingerprint;
  }

  /** Whose results the directory holds, by its manifest or else its first record. */
  private held(): Pick<Manifest, 'campaign' | 'seed' | 'fingerprint'> | undefined {
    let manifest: Manifest | undefined;
    try {
      manifest = readManifest(this.directory);
    } catch {
      // not ours: the claim let it through only with --force, as `run --force` replaces it
      manifest = undefined;
    }
    if (manifest !== undefined) return manifest;
    const first = firstRecord(join(this.directory, TRIALS_FILE));
    return first === undefined ? undefined : { campaign: first.campaign, seed: first.record.seed };
  }
}

/** The campaign's manifest without a planned count. */
export function hostManifest(campaign: Campaign): Omit<Manifest, 'tool'> {
  const whole = runManifest(campaign, undefined, undefined);
  return Object.fromEntries(Object.entries(whole).filter(([field]) => field !== 'planned')) as Omit<Manifest, 'tool'>;
}

function describe(held: { campaign: string; seed: number }): string {
  return `campaign "${held.campaign}" (seed ${held.seed})`;
}
