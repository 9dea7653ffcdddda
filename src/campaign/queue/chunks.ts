/**
 * A campaign's units of work on the queue: chunks of fault groups (the trials of one fault under
 * every mechanism variant, which share a run), in plan order. A chunk's job id is a function of
 * the campaign (its whole spec, hashed), the ninelives version, the chunk size and the chunk's
 * index, so enqueueing the same chunk twice is one job. Which chunks are missing is computed
 * from whatever results exist, so resuming (or refilling a flushed Redis) is enqueueing again.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readLines } from '../../results/lines.js';
import { parseRecord } from '../../results/store.js';
import type { CampaignRecord } from '../../results/summary.js';
import { planTrials, type TrialJob } from '../plan.js';
import { groupByFault } from '../runner.js';
import type { Campaign } from '../spec.js';
import { cellKey, StoppingRounds, stopRuleOf } from '../stopping.js';

export interface ChunkJob {
  readonly campaign: Campaign;
  readonly chunk: number;
  readonly chunkSize: number;
  /** the producer's ninelives version: a worker of another one refuses the chunk */
  readonly version: string;
  readonly trials: number;
  /** a campaign with a stop rule: the round (of `every` trial indexes) and the cells it runs */
  readonly round?: RoundSelection;
}

export interface RoundSelection {
  readonly round: number;
  readonly cells: readonly string[];
}

/** The campaign's fault groups in plan order, cut into chunks of `chunkSize` groups. */
export function chunksOf(campaign: Campaign, chunkSize: number, selection?: RoundSelection, planned: readonly TrialJob[] = planTrials(campaign)): TrialJob[][][] {
  const groups = groupByFault(selected(planned, campaign, selection));
  const chunks: TrialJob[][][] = [];
  for (let start = 0; start < groups.length; start += chunkSize) chunks.push(groups.slice(start, start + chunkSize));
  return chunks;
}

/** A round's jobs: its trial indexes, of the cells still running (the stopping rounds' choice). */
function selected(jobs: readonly TrialJob[], campaign: Campaign, selection: RoundSelection | undefined): readonly TrialJob[] {
  if (selection === undefined || campaign.stop === undefined) return jobs;
  const { every } = campaign.stop;
  const cells = new Set(selection.cells);
  return jobs.filter((job) => job.spec.trialIndex >= selection.round * every && job.spec.trialIndex < (selection.round + 1) * every && cells.has(cellKey(job)));
}

export function campaignDigest(campaign: Campaign, version: string): string {
  return createHash('sha256').update(JSON.stringify([campaign, version])).digest('hex').slice(0, 16);
}

/** BullMQ job ids may not hold ':'; these hold letters, digits, '.', '_' and '-'. */
export function chunkJobId(campaign: Campaign, version: string, chunkSize: number, chunk: number, round?: number): string {
  return `${campaign.name}-${campaign.seed}-${campaignDigest(campaign, version)}-${chunkSize}-${round === undefined ? '' : `r${round}-`}${chunk}`;
}

/** Ids of this campaign's trials in the results files given (a missing file holds none). */
export function finishedTrials(campaign: Campaign, resultsFiles: readonly string[], onRecord?: (entry: CampaignRecord) => void, jobs: readonly TrialJob[] = planTrials(campaign)): Set<string> {
  const results = new ResultsSoFar(campaign, jobs);
  results.update(resultsFiles);
  if (onRecord !== undefined) results.entries.forEach(onRecord);
  return results.finished;
}

/**
 * A campaign's trials in results files that live workers append to, read incrementally: each
 * update reads only the complete lines written since the last one (per file, from where its last
 * complete line ended), so a producer that asks again every round of a stop rule reads each
 * record once instead of every record every round. A file that shrank (replaced) is read again
 * from its start; a trial already in is not added twice.
 */
export class ResultsSoFar {
  readonly finished = new Set<string>();
  /** the first record of each finished trial, in the order read */
  readonly entries: CampaignRecord[] = [];
  private readonly planned: Map<string, string>;
  private readonly readUpTo = new Map<string, number>();
  private rounds: StoppingRounds | undefined;
  private open: NextRound | undefined;

  constructor(
    private readonly campaign: Campaign,
    readonly jobs: readonly TrialJob[] = planTrials(campaign),
  ) {
    this.planned = new Map(jobs.map((job) => [job.id, JSON.stringify(job.spec)]));
  }

  update(resultsFiles: readonly string[]): void {
    for (const path of resultsFiles) {
      let from = this.readUpTo.get(path) ?? 0;
      if (existsSync(path) && statSync(path).size < from) from = 0;
      // a live worker may be appending to it: leave its last line alone
      for (const line of readLines(path, { repairTornEnd: false, fromOffset: from })) {
        this.readUpTo.set(path, line.offset + line.length + 1);
        this.add(parseRecord(line, path));
      }
    }
  }

  /**
   * The first round (of the stop rule; the whole campaign without one) not known to be complete
   * at the last look, and the rounds after it: each round's cells are decided once, at its
   * checkpoint, from the records of the rounds before it, which are all in by then (a round is
   * passed only once its trials are; later records are of the rounds still running).
   */
  firstOpenRound(): NextRound | undefined {
    this.open ??= this.stoppingRounds().nextRound();
    return this.open;
  }

  nextRound(): NextRound | undefined {
    this.open = this.stoppingRounds().nextRound();
    return this.open;
  }

  private stoppingRounds(): StoppingRounds {
    if (this.rounds === undefined) {
      this.rounds = new StoppingRounds(this.jobs, stopRuleOf(this.campaign));
      for (const entry of this.entries) this.rounds.add(entry);
    }
    return this.rounds;
  }

  private add(entry: CampaignRecord): void {
    if (entry.campaign !== this.campaign.name || this.planned.get(entry.id) !== JSON.stringify(entry.spec) || this.finished.has(entry.id)) return;
    this.finished.add(entry.id);
    this.entries.push(entry);
    this.rounds?.add(entry);
  }
}

type NextRound = NonNullable<ReturnType<StoppingRounds['nextRound']>>;

export interface PendingWork {
  /** the chunks, of the whole campaign or of its next round */
  readonly chunks: readonly TrialJob[][][];
  /** indexes of the chunks with a trial the results lack */
  readonly missing: readonly number[];
  readonly round?: RoundSelection;
}

/**
 * What is left to run: the whole campaign's missing chunks, or for a campaign with a stop rule
 * the first round with a trial the results lack (decided from the results of the rounds before
 * it, as the runner decides); undefined when nothing is left. `soFar` keeps the records read
 * and the rounds passed from one call to the next (a producer asking every round), which then
 * reads only the records written since and starts at the round it left open.
 */
export function pendingWork(campaign: Campaign, chunkSize: number, resultsFiles: readonly string[], soFar: ResultsSoFar = new ResultsSoFar(campaign)): PendingWork | undefined {
  const rule = stopRuleOf(campaign);
  soFar.update(resultsFiles);
  const finished = soFar.finished;
  // from the round that was open at the last call: the rounds before it are complete and decided
  for (let next = soFar.firstOpenRound(); next !== undefined; next = soFar.nextRound()) {
    const round = rule === undefined ? undefined : { round: next.round, cells: next.cells };
    // a round whose trials are all in needs no chunks cut
    if (next.jobs.every((job) => finished.has(job.id))) continue;
    const chunks = chunksOf(campaign, chunkSize, round, soFar.jobs);
    const missing = missingChunks(chunks, finished);
    if (missing.length > 0) return { chunks, missing, round };
  }
  return undefined;
}

/** Indexes of the chunks with a trial not in `finished`. */
export function missingChunks(chunks: readonly TrialJob[][][], finished: ReadonlySet<string>): number[] {
  const missing: number[] = [];
  chunks.forEach((chunk, index) => {
    if (chunk.some((group) => group.some((job) => !finished.has(job.id)))) missing.push(index);
  });
  return missing;
}

/**
 * A worker's chunks of the campaign it is working: planning a campaign costs as much as a few
 * trials, so it is done once per campaign and round, not once per chunk (the last one is kept:
 * a worker takes chunks of one campaign and round after another).
 */
export class ChunkCache {
  private key: string | undefined;
  private chunks: TrialJob[][][] = [];

  chunk(job: ChunkJob): TrialJob[][] {
    const key = JSON.stringify([campaignDigest(job.campaign, job.version), job.chunkSize, job.round ?? null]);
    if (key !== this.key) {
      this.chunks = chunksOf(job.campaign, job.chunkSize, job.round);
      this.key = key;
    }
    return this.chunks[job.chunk];
  }
}
