/**
 * Shards' results combined into one results file, as if the campaign had run at once, without
 * holding the records. A first pass checks that the shards agree (a trial in two shards must be
 * the same record in both) and come from one campaign, keeping a few numbers per trial; a second
 * pass copies the first copy of each trial into the output. Putting the result in canonical
 * order is finishResults's job (directory.ts), as for any run.
 */
import { closeSync, openSync } from 'node:fs';
import { Column, float64Column, uint32Column, uint8Column } from './columns.js';
import { readBytes, readLines, type Line } from './lines.js';
import { stageFile, type StagedFile } from './staged-file.js';
import { parseRecord } from './store.js';
import type { CampaignRecord } from './summary.js';
import { NinelivesError } from '../errors.js';

/** The same trial id with different records in two shards. */
export class MergeConflictError extends NinelivesError {
  constructor(message: string) {
    super('merge.conflict', message);
  }
}

/** Shards of different campaigns, or of the same campaign with different seeds. */
export class MixedCampaignsError extends NinelivesError {
  constructor(message: string) {
    super('usage.mixedCampaigns', message);
  }
}

export interface ShardResults {
  readonly directory: string;
  /** its results file */
  readonly path: string;
}

export interface MergePlan {
  readonly shards: readonly ShardResults[];
  /** per line of the shards, in order: 1 if it is its trial's first copy */
  readonly firstCopies: Column<Uint8Array>;
  /** distinct trials */
  readonly trials: number;
  /** the shards' campaign; undefined when they hold no trials */
  readonly campaign: { readonly name: string; readonly seed: number } | undefined;
}

/** Check the shards against each other; throws MergeConflictError or MixedCampaignsError. */
export function planMerge(shards: readonly ShardResults[]): MergePlan {
  const copies = new Copies(shards);
  const campaigns = new Map<string, { name: string; seed: number }>();
  try {
    shards.forEach((shard, shardIndex) => {
      for (const line of readLines(shard.path)) {
        const entry = parseRecord(line, shard.path);
        campaigns.set(`${entry.campaign} (seed ${entry.record.seed})`, { name: entry.campaign, seed: entry.record.seed });
        if (!copies.add(shardIndex, line, entry)) throw new MergeConflictError(`trial ${entry.id} differs between shards (${shard.directory})`);
      }
    });
  } finally {
    copies.close();
  }
  if (campaigns.size > 1) throw new MixedCampaignsError(`the shards come from different campaigns: ${[...campaigns.keys()].join(', ')}`);
  return { shards, firstCopies: copies.firstCopies, trials: copies.trials, campaign: campaigns.values().next().value };
}

/** Write the first copy of every trial to `path`, whole or not at all. */
export function writeMerged(plan: MergePlan, path: string): void {
  const write = (output: StagedFile): void => {
    let number = 0;
    for (const shard of plan.shards) {
      for (const line of readLines(shard.path)) if (plan.firstCopies.get(number++) === 1) output.write(`${line.text}\n`);
    }
  };
  stageFile(path, write, `${path}.partial`).commit();
}

/**
 * Every line of the shards, and for each trial id where its first copy is. Ids are kept as a
 * 32-bit hash, not as strings: on a hash already seen, the earlier line is read back from its
 * shard to tell a second copy from another trial with the same hash (rare: ids that collide
 * are then kept by name).
 */
class Copies {
  readonly firstCopies = uint8Column();
  trials = 0;
  private readonly shardIndexes = uint32Column();
  private readonly offsets = float64Column();
  private readonly lengths = uint32Column();
  private readonly byHash = new Map<number, number>();
  private readonly collided = new Map<string, number>();
  private readonly descriptors = new Map<number, number>();
  private readonly scratch = Buffer.allocUnsafe(1 << 16);

  constructor(private readonly shards: readonly ShardResults[]) {}

  /** Note a line; false if its trial was seen before with a different record. */
  add(shardIndex: number, line: Line, entry: CampaignRecord): boolean {
    const number = this.offsets.length;
    this.shardIndexes.push(shardIndex);
    this.offsets.push(line.offset);
    this.lengths.push(line.length);
    const first = this.firstCopyOf(entry.id, number);
    this.firstCopies.push(first === undefined ? 1 : 0);
    if (first === undefined) {
      this.trials++;
      return true;
    }
    // every later copy was checked against the first, so comparing with the first is enough
    return JSON.stringify(this.recordAt(first)) === JSON.stringify(entry);
  }

  close(): void {
    for (const descriptor of this.descriptors.values()) closeSync(descriptor);
    this.descriptors.clear();
  }

  /** The line number of the id's first copy; undefined (and `number` noted as it) if new. */
  private firstCopyOf(id: string, number: number): number | undefined {
    const hash = idHash(id);
    const candidate = this.byHash.get(hash);
    if (candidate === undefined) {
      this.byHash.set(hash, number);
      return undefined;
    }
    if (this.recordAt(candidate).id === id) return candidate;
    const collided = this.collided.get(id);
    if (collided === undefined) this.collided.set(id, number);
    return collided;
  }

  /** A line noted earlier, read back (it parsed then, so it parses now). */
  private recordAt(number: number): CampaignRecord {
    const shard = this.shardIndexes.get(number);
    const text = readBytes(this.descriptor(shard), this.offsets.get(number), this.lengths.get(number), this.scratch).toString('utf8');
    return JSON.parse(text) as CampaignRecord;
  }

  private descriptor(shard: number): number {
    let descriptor = this.descriptors.get(shard);
    if (descriptor === undefined) {
      descriptor = openSync(this.shards[shard].path, 'r');
      this.descriptors.set(shard, descriptor);
    }
    return descriptor;
  }
}

/** FNV-1a over the UTF-16 code units, as a 32-bit signed integer (a small integer to V8). */
export function idHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash | 0;
}
