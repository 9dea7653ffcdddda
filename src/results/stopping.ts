/**
 * Stopping when the answer is known: a cell (configuration, fault type, mechanism, stage) stops
 * at the first checkpoint (every `every` trial indexes of the canonical order) where its
 * recovery rate's Wilson interval lies within `margin` of the estimate on both sides and at
 * least `minDetected` recoveries were attempted. The decision at checkpoint n looks only at the
 * cell's trials with index < n, so it is a function of the records alone: workers, shards,
 * queues and resumes cannot change it. Cells of mechanism `none` (no recovery to measure) run
 * as long as a mechanism of their fault type does, so every comparison keeps its baseline.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { wilson } from './statistics.js';
import type { CampaignRecord } from './summary.js';

export interface StopRule {
  /** the largest distance from the estimate to either end of the interval */
  readonly margin: number;
  readonly confidence: number;
  /** the floor: recoveries attempted before a cell may stop */
  readonly minDetected: number;
  /** trial indexes between checkpoints */
  readonly every: number;
}

export const STOP_RULE_FILE = 'stopping.json';

/** Whether `recovered` of `attempted` answers the rate within the rule's margin. */
export function meetsMargin(recovered: number, attempted: number, rule: StopRule): boolean {
  if (attempted < rule.minDetected || attempted === 0) return false;
  return halfWidth(recovered, attempted, rule.confidence) <= rule.margin;
}

export function halfWidth(recovered: number, attempted: number, confidence: number): number {
  const interval = wilson(recovered, attempted, confidence);
  return Math.max(interval.value - interval.low, interval.high - interval.value);
}

/** Where a cell stopped and why. */
export interface CellStop {
  readonly config: string;
  readonly faultType: string;
  readonly mechanism: string;
  readonly stage: string;
  /** trials the cell ran (trial indexes 0 .. trials - 1) */
  readonly trials: number;
  /** margin: its interval was within the margin; limit: the campaign's trial count came first; paired: a mechanism-none baseline that ran as long as its fault type's mechanisms */
  readonly reason: 'margin' | 'limit' | 'paired';
  readonly attempted: number;
  /** the interval's largest distance from the estimate at the stop */
  readonly halfWidth: number;
}

export interface Stopping {
  readonly rule: StopRule;
  readonly cells: readonly CellStop[];
}

/** Per cell: trials and recovery counts (records of a cell arrive in trial order or not: counts only). */
export class StoppingAccumulator {
  private readonly cells = new Map<string, { identity: Omit<CellStop, 'trials' | 'reason' | 'attempted' | 'halfWidth'>; trials: number; attempted: number; recovered: number }>();

  add({ record, stage }: CampaignRecord): void {
    const key = JSON.stringify([record.configuration, record.faultType, record.mechanism, stage]);
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { identity: { config: record.configuration, faultType: record.faultType, mechanism: record.mechanism, stage }, trials: 0, attempted: 0, recovered: 0 };
      this.cells.set(key, cell);
    }
    cell.trials = Math.max(cell.trials, record.trialIndex + 1);
    if (record.outcome !== 'detected' || record.recovery === undefined) return;
    cell.attempted++;
    if (record.recovery.result === 'recovered') cell.recovered++;
  }

  stopping(rule: StopRule): Stopping {
    const cells = [...this.cells.values()].map(({ identity, trials, attempted, recovered }): CellStop => {
      const width = attempted === 0 ? Number.NaN : halfWidth(recovered, attempted, rule.confidence);
      const atCheckpoint = trials % rule.every === 0;
      const reason = identity.mechanism === 'none' ? 'paired' : atCheckpoint && meetsMargin(recovered, attempted, rule) ? 'margin' : 'limit';
      return { ...identity, trials, reason, attempted, halfWidth: width };
    });
    cells.sort((x, y) => x.config.localeCompare(y.config) || x.faultType.localeCompare(y.faultType) || x.mechanism.localeCompare(y.mechanism) || x.stage.localeCompare(y.stage, undefined, { numeric: true }));
    return { rule, cells };
  }
}

/** The stop rule a results directory was run with, if any. */
export function readStopRule(directory: string): StopRule | undefined {
  const path = join(directory, STOP_RULE_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as StopRule;
}

export function stopRuleText(rule: StopRule): string {
  return JSON.stringify(rule, null, 2) + '\n';
}
