/**
 * A campaign's units of work on the queue: chunks of fault groups (the trials of one fault under
 * every mechanism variant, which share a run), in plan order. A chunk's job id is a function of
 * the campaign (its whole spec, hashed), the ninelives version, the chunk size and the chunk's
 * index, so enqueueing the same chunk twice is one job. Which chunks are missing is computed
 * from whatever results exist, so resuming (or refilling a flushed Redis) is enqueueing again.
 */
import { createHash } from 'node:crypto';
import { readRecords } from '../../results/store.js';
import { planTrials, type TrialJob } from '../plan.js';
import { groupByFault } from '../runner.js';
import type { Campaign } from '../spec.js';

export interface ChunkJob {
  readonly campaign: Campaign;
  readonly chunk: number;
  readonly chunkSize: number;
  /** the producer's ninelives version: a worker of another one refuses the chunk */
  readonly version: string;
  readonly trials: number;
}

/** The campaign's fault groups in plan order, cut into chunks of `chunkSize` groups. */
export function chunksOf(campaign: Campaign, chunkSize: number): TrialJob[][][] {
  const groups = groupByFault(planTrials(campaign));
  const chunks: TrialJob[][][] = [];
  for (let start = 0; start < groups.length; start += chunkSize) chunks.push(groups.slice(start, start + chunkSize));
  return chunks;
}

export function campaignDigest(campaign: Campaign, version: string): string {
  return createHash('sha256').update(JSON.stringify([campaign, version])).digest('hex').slice(0, 16);
}

/** BullMQ job ids may not hold ':'; these hold letters, digits, '.', '_' and '-'. */
export function chunkJobId(campaign: Campaign, version: string, chunkSize: number, chunk: number): string {
  return `${campaign.name}-${campaign.seed}-${campaignDigest(campaign, version)}-${chunkSize}-${chunk}`;
}

/** Ids of this campaign's trials in the results files given (a missing file holds none). */
export function finishedTrials(campaign: Campaign, resultsFiles: readonly string[]): Set<string> {
  const planned = new Map(planTrials(campaign).map((job) => [job.id, JSON.stringify(job.spec)]));
  const finished = new Set<string>();
  for (const path of resultsFiles) {
    for (const entry of readRecords(path)) {
      if (entry.campaign === campaign.name && planned.get(entry.id) === JSON.stringify(entry.spec)) finished.add(entry.id);
    }
  }
  return finished;
}

/** Indexes of the chunks with a trial not in `finished`. */
export function missingChunks(chunks: readonly TrialJob[][][], finished: ReadonlySet<string>): number[] {
  const missing: number[] = [];
  chunks.forEach((chunk, index) => {
    if (chunk.some((group) => group.some((job) => !finished.has(job.id)))) missing.push(index);
  });
  return missing;
}
