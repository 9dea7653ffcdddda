/**
 * A campaign with a stop rule runs in rounds of `every` trial indexes. Before each round, each
 * cell still running is decided at the checkpoint (the round's first trial index) from its own
 * trials before it, all of which have run by then. Without a stop rule there is one round: the
 * whole plan. Both the runner and the queue's producer go through this, so they stop alike.
 */
import { meetsMargin, type StopRule } from '../results/stopping.js';
import type { CampaignRecord } from '../results/summary.js';
import type { TrialJob } from './plan.js';
import type { Campaign } from './spec.js';

export function stopRuleOf(campaign: Campaign): StopRule | undefined {
  return campaign.stop === undefined ? undefined : { margin: campaign.stop.margin, confidence: campaign.stop.confidence, minDetected: campaign.stop.minDetected, every: campaign.stop.every };
}

/** Why a campaign with a stop rule is not run in shards; undefined where it may be. */
export function shardingRefusal(campaign: Campaign, shard: unknown): string | undefined {
  if (campaign.stop === undefined || shard === undefined) return undefined;
  return `${campaign.name} stops at a precision, which needs every trial index of a cell: run it whole (or through the queue), not in shards`;
}

/** A cell's key: configuration, fault type, mechanism, stage. */
export function cellKey(job: TrialJob): string {
  return cellOf(job);
}

function cellOf(job: TrialJob): string {
  return JSON.stringify([job.spec.configuration, job.spec.faultType, job.spec.mechanism, job.stage]);
}

function faultTypeOf(job: TrialJob): string {
  return JSON.stringify([job.spec.configuration, job.spec.faultType]);
}

function cellOfRecord({ record, stage }: CampaignRecord): string {
  return JSON.stringify([record.configuration, record.faultType, record.mechanism, stage]);
}

/** Recovery counts per round of trial indexes, per cell. */
interface CellCounts {
  readonly attempted: number[];
  readonly recovered: number[];
}

export class StoppingRounds {
  private round = 0;
  private readonly stopped = new Set<string>();
  private readonly counts = new Map<string, CellCounts>();
  private readonly rounds: number;
  /** per (configuration, fault type), its cells that have a mechanism */
  private readonly mechanismCells = new Map<string, Set<string>>();

  constructor(
    private readonly jobs: readonly TrialJob[],
    private readonly rule: StopRule | undefined,
  ) {
    const largestIndex = jobs.reduce((largest, job) => Math.max(largest, job.spec.trialIndex), -1);
    for (const job of jobs) {
      if (job.spec.mechanism === 'none') continue;
      const cells = this.mechanismCells.get(faultTypeOf(job)) ?? new Set<string>();
      cells.add(cellOf(job));
      this.mechanismCells.set(faultTypeOf(job), cells);
    }
    this.rounds = rule === undefined ? (jobs.length > 0 ? 1 : 0) : Math.ceil((largestIndex + 1) / rule.every);
  }

  /** A record of this campaign (stored or new): its recovery counts toward its cell's round. */
  add(entry: CampaignRecord): void {
    if (this.rule === undefined) return;
    if (entry.record.outcome !== 'detected' || entry.record.recovery === undefined) return;
    const key = cellOfRecord(entry);
    let counts = this.counts.get(key);
    if (counts === undefined) {
      counts = { attempted: [], recovered: [] };
      this.counts.set(key, counts);
    }
    const round = Math.floor(entry.record.trialIndex / this.rule.every);
    counts.attempted[round] = (counts.attempted[round] ?? 0) + 1;
    if (entry.record.recovery.result === 'recovered') counts.recovered[round] = (counts.recovered[round] ?? 0) + 1;
  }

  /**
   * The next round's jobs, after the cells are decided at its checkpoint; undefined when every
   * cell has stopped or the plan is exhausted. Call it only once the previous round's records
   * have all been added.
   */
  next(): TrialJob[] | undefined {
    return this.nextRound()?.jobs;
  }

  /** As next(), with the round's index and the cells it runs (cellKey of each). */
  nextRound(): { round: number; jobs: TrialJob[]; cells: string[] } | undefined {
    const round = this.round;
    const jobs = this.advance();
    return jobs === undefined ? undefined : { round, jobs, cells: [...new Set(jobs.map(cellKey))] };
  }

  private advance(): TrialJob[] | undefined {
    if (this.round >= this.rounds) return undefined;
    const round = this.round++;
    if (this.rule === undefined) return [...this.jobs];
    const { every } = this.rule;
    this.decide(round * every);
    const jobs = this.jobs.filter((job) => job.spec.trialIndex >= round * every && job.spec.trialIndex < (round + 1) * every && this.isRunning(job));
    return jobs.length === 0 && this.allStopped() ? undefined : jobs;
  }

  private decide(checkpoint: number): void {
    const rule = this.rule as StopRule;
    if (checkpoint === 0) return;
    for (const cell of [...this.mechanismCells.values()].flatMap((cells) => [...cells])) {
      if (this.stopped.has(cell)) continue;
      const counts = this.counts.get(cell);
      const attempted = sumBefore(counts?.attempted, checkpoint / rule.every);
      const recovered = sumBefore(counts?.recovered, checkpoint / rule.every);
      if (meetsMargin(recovered, attempted, rule)) this.stopped.add(cell);
    }
  }

  /** A `none` baseline runs while a mechanism of its fault type does (or alone, to the end). */
  private isRunning(job: TrialJob): boolean {
    if (job.spec.mechanism !== 'none') return !this.stopped.has(cellOf(job));
    const siblings = [...(this.mechanismCells.get(faultTypeOf(job)) ?? [])];
    return siblings.length === 0 || siblings.some((cell) => !this.stopped.has(cell));
  }

  private allStopped(): boolean {
    return [...this.mechanismCells.values()].every((cells) => [...cells].every((cell) => this.stopped.has(cell)));
  }
}

function sumBefore(values: readonly number[] | undefined, rounds: number): number {
  let sum = 0;
  for (let round = 0; round < rounds; round++) sum += values?.[round] ?? 0;
  return sum;
}
