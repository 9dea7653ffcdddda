/**
 * Before merging: are these shards of one campaign, made by one ninelives, split the same way,
 * and which of the split are missing? Each shard is judged by its manifest and its first record,
 * so that two different campaigns are named as such even when their trial ids coincide.
 */
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { NinelivesError } from '../errors.js';
import type { Manifest } from './manifest.js';
import type { ShardResults } from './merge.js';
import { currentProvenance, describeProvenance, sameProvenance, type Provenance } from './provenance.js';
import { manifestOf } from './result-facts.js';
import { firstRecord } from './store.js';

/** Shards that must not be merged; the message names both sides. */
export class ShardMismatchError extends NinelivesError {
  constructor(message: string) {
    super('usage.mixedShards', message);
  }
}

export interface ShardCheck {
  /** the split's shards (1-based) that were not given; empty when complete or not known */
  readonly missingShards: readonly (number | string)[];
  readonly shardCount?: number;
  /** for the merged directory */
  readonly manifest: Omit<Manifest, 'tool' | 'campaign' | 'seed'>;
}

interface ShardIdentity {
  readonly directory: string;
  readonly campaign?: string;
  readonly seed?: number;
  readonly manifest?: Manifest;
  readonly provenance?: Provenance;
  readonly hasRecords: boolean;
}

export function checkShards(shards: readonly ShardResults[], out: string): ShardCheck {
  const outPath = realOrResolved(out);
  const paths = shards.map((shard) => realOrResolved(shard.directory));
  const same = shards.find((_, index) => paths[index] === outPath);
  if (same !== undefined) throw new ShardMismatchError(`the output directory ${out} is also one of the shards (${same.directory}): merge into a new directory`);
  const twice = shards.find((_, index) => paths.indexOf(paths[index]) !== index);
  if (twice !== undefined) throw new ShardMismatchError(`${twice.directory} is named twice among the shards: name each shard once`);
  const identities = shards.map(identityOf);
  checkAgreement(identities);
  return splitOf(identities);
}

function identityOf(shard: ShardResults): ShardIdentity {
  const manifest = manifestOf(shard.directory);
  const first = firstRecord(shard.path);
  return {
    directory: shard.directory,
    campaign: first?.campaign ?? manifest?.campaign,
    seed: first?.record.seed ?? manifest?.seed,
    manifest,
    provenance: first?.ninelives,
    hasRecords: first !== undefined,
  };
}

function checkAgreement(identities: readonly ShardIdentity[]): void {
  const [reference, ...others] = identities;
  for (const other of others) {
    if (other.campaign !== reference.campaign || other.seed !== reference.seed) {
      throw new ShardMismatchError(`the shards come from different campaigns: "${reference.campaign}" seed ${reference.seed} (${reference.directory}) and "${other.campaign}" seed ${other.seed} (${other.directory})`);
    }
    const fingerprints = [reference.manifest?.fingerprint, other.manifest?.fingerprint];
    if (fingerprints.every((print) => print !== undefined) && fingerprints[0] !== fingerprints[1]) {
      throw new ShardMismatchError(`the shards come from different settings of campaign "${reference.campaign}" (its file or --trials changed between them): ${reference.directory} and ${other.directory}`);
    }
    if (reference.hasRecords && other.hasRecords && !sameProvenance(reference.provenance, other.provenance)) {
      throw new ShardMismatchError(`the shards were made by different versions: ${describeProvenance(reference.provenance)} (${reference.directory}) and ${describeProvenance(other.provenance)} (${other.directory})`);
    }
    const [a, b] = [reference.manifest?.shard, other.manifest?.shard];
    if (a !== undefined && b !== undefined && a.count !== b.count) {
      throw new ShardMismatchError(`the shards come from different splits: ${reference.directory} is shard ${a.index}/${a.count}, ${other.directory} is shard ${b.index}/${b.count}`);
    }
  }
}

function splitOf(identities: readonly ShardIdentity[]): ShardCheck {
  const manifests = identities.map((identity) => identity.manifest);
  const first = manifests[0];
  const provenance = identities.find((identity) => identity.hasRecords)?.provenance ?? currentProvenance();
  const campaignTrials = manifests.every((manifest) => manifest?.campaignTrials !== undefined && manifest.campaignTrials === first?.campaignTrials) ? first?.campaignTrials : undefined;
  const manifest = {
    ...(first?.description === undefined ? {} : { description: first.description }),
    ...(campaignTrials === undefined ? {} : { planned: campaignTrials, campaignTrials }),
    ...(first?.fingerprint === undefined ? {} : { fingerprint: first.fingerprint }),
    ninelives: provenance,
  };
  const splits = manifests.map((entry) => entry?.shard);
  if (splits.some((split) => split === undefined)) return { missingShards: [], manifest };
  const count = splits[0]?.count ?? 0;
  const present = new Set(splits.map((split) => split?.index));
  return { missingShards: missingOf(count, present), shardCount: count, manifest };
}

/** The first ten shards of 1..count not present, then how many more: a line stays short. */
function missingOf(count: number, present: ReadonlySet<number | undefined>): (number | string)[] {
  const missing: (number | string)[] = [];
  for (let index = 1; index <= count && missing.length < 10; index++) if (!present.has(index)) missing.push(index);
  const total = count - [...present].filter((index) => index !== undefined && index >= 1 && index <= count).length;
  if (total > missing.length) missing.push(`and ${total - missing.length} more`);
  return missing;
}

function realOrResolved(path: string): string {
  return existsSync(path) ? realpathSync(path) : resolve(path);
}
