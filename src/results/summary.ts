/**
 * Records become statistics: one group per (configuration, fault type, mechanism, stage), with
 * outcome counts, recovery counts and rates with intervals, service interruption percentiles,
 * and failure causes; plus paired McNemar comparisons between mechanisms on the same faults.
 */
import type { FaultType } from '../faults/fault.js';
import { costWhenNothingFails, replayCostWhenNothingFails } from './replication-cost.js';
import { mcNemarExact, percentile, wilson, type Interval } from './statistics.js';
import type { TrialRecord, TrialSpec } from '../trial/record.js';
import { isHarnessError, type HarnessErrorRecord } from './harness-error.js';
import type { Provenance } from './provenance.js';
import { StageGainsAccumulator, type StageGains } from './stage-gains.js';
import { StoppingAccumulator, type StopRule, type Stopping } from './stopping.js';

export interface CampaignRecord {
  readonly campaign: string;
  /** unique within a campaign: configuration/fault/mechanism/stage/trial index */
  readonly id: string;
  readonly stage: string;
  /** what `replay` runs again */
  readonly spec: TrialSpec;
  /** the trial's record, or what went wrong when the harness (not the model) failed */
  readonly record: TrialRecord | HarnessErrorRecord;
  /** the ninelives that made the record; absent in results made before it was recorded */
  readonly ninelives?: Provenance;
}

/** A record of a trial that ran: what the statistics count. */
export type TrialEntry = CampaignRecord & { readonly record: TrialRecord };

export function isTrialEntry(entry: CampaignRecord): entry is TrialEntry {
  return !isHarnessError(entry.record);
}

/** The canonical order of records: configuration, fault type, trial index, mechanism, stage. */
export function compareRecords(x: CampaignRecord, y: CampaignRecord): number {
  const a = x.record;
  const b = y.record;
  return (
    a.configuration.localeCompare(b.configuration) ||
    a.faultType.localeCompare(b.faultType) ||
    a.trialIndex - b.trialIndex ||
    a.mechanism.localeCompare(b.mechanism) ||
    x.stage.localeCompare(y.stage, undefined, { numeric: true })
  );
}

export interface SummaryGroup {
  readonly mechanism: string;
  readonly faultType: FaultType;
  readonly config: string;
  readonly stage: string;
  readonly trials: number;
  readonly outcomes: { readonly notInjected: number; readonly nonManifested: number; readonly sdc: number; readonly detected: number };
  readonly recovery: { readonly success: number; readonly noVmFailure: number; readonly failure: number };
  readonly recoveryRate: Interval;
  readonly noVmFailureRate: Interval;
  readonly serviceInterruptionMs: { readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly failureCauses: Readonly<Record<string, number>>;
  readonly detectors: Readonly<Record<string, number>>;
  /** in campaigns with a failover group: what the mechanism costs when nothing fails (replication-cost.ts) */
  readonly overheadPercent?: number;
  readonly outputDelayMs?: { readonly p50: number; readonly p99: number };
}

export interface Comparison {
  readonly config: string;
  readonly faultType: FaultType;
  readonly first: string;
  readonly second: string;
  /** detected faults recovered by both, by neither, by only one */
  readonly pairs: number;
  readonly bothRecovered: number;
  readonly neitherRecovered: number;
  readonly onlyFirst: number;
  readonly onlySecond: number;
  readonly pValue: number;
  readonly test: 'mcnemar-exact';
}

export interface Summary {
  readonly campaign: string;
  readonly seed: number;
  /** trials that ran (harness errors are not among them) */
  readonly trials: number;
  readonly groups: readonly SummaryGroup[];
  readonly comparisons: readonly Comparison[];
  /** added when the results are finished (result-facts.ts, directory.ts), about the results as a whole */
  readonly description?: string;
  readonly ninelives?: Provenance | 'mixed' | 'unrecorded';
  readonly harnessErrors?: number;
  /** present when the results hold fewer trials than planned */
  readonly partial?: { readonly trials: number; readonly planned: number; readonly reason: string };
  /** where each cell stopped and why, for a campaign with a stop rule */
  readonly stopping?: Stopping;
  /** in a campaign with ablation stages: what each stage recovers that the one before did not, and where those faults landed */
  readonly stageGains?: readonly StageGains[];
}

/** A mechanism variant in one configuration: its groups (one per fault type) share the periods. */
function variantKey(configuration: string, mechanism: string, stage: string): string {
  return JSON.stringify([configuration, mechanism, stage]);
}

function groupKey(entry: CampaignRecord): string {
  const { record } = entry;
  return JSON.stringify([record.configuration, record.faultType, record.mechanism, entry.stage]);
}

/** The same key, from a group's identity. */
function groupKeyOf(group: Pick<SummaryGroup, 'config' | 'faultType' | 'mechanism' | 'stage'>): string {
  return JSON.stringify([group.config, group.faultType, group.mechanism, group.stage]);
}

/** The summary of records given in any iterable (an array, or a file read a record at a time). */
export function summarize(campaign: string, seed: number, entries: Iterable<CampaignRecord>, stopRule?: StopRule): Summary {
  const accumulator = new SummaryAccumulator();
  const stopping = new StoppingAccumulator();
  for (const entry of entries) {
    accumulator.add(entry);
    stopping.add(entry);
  }
  const summary = accumulator.summary(campaign, seed);
  return stopRule === undefined ? summary : { ...summary, stopping: stopping.stopping(stopRule) };
}

/**
 * A summary built a record at a time: per group it keeps counts, and one number per recovery
 * attempt (for the service interruption percentiles); per paired cell, one flag per detected
 * trial. Records are not kept, so a campaign's summary does not need its records in memory.
 * The summary depends on the order of the records (groups and comparisons appear in the order
 * they are first met, before sorting): give them in canonical order.
 */
export class SummaryAccumulator {
  private trials = 0;
  private readonly groups = new Map<string, GroupTally>();
  private readonly pairs = new MechanismPairs();
  private readonly ladders = new StageGainsAccumulator();
  /** failover's epoch of each (configuration, mechanism, stage), from its specs: a campaign may compare epochs */
  private readonly epochs = new Map<string, number | undefined>();

  add(entry: CampaignRecord): void {
    // a trial the harness could not run has no outcome to count
    if (!isTrialEntry(entry)) return;
    this.trials++;
    const variant = variantKey(entry.record.configuration, entry.record.mechanism, entry.stage);
    if (!this.epochs.has(variant)) this.epochs.set(variant, entry.spec.replication?.epochMs);
    const key = groupKey(entry);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = new GroupTally(entry);
      this.groups.set(key, group);
    }
    group.add(entry);
    this.pairs.add(entry);
    this.ladders.add(entry);
  }

  summary(campaign: string, seed: number): Summary {
    const tallies = [...this.groups.values()];
    const tallied = tallies.map((group) => group.summary()).sort(compareGroups);
    const replicates = tallied.some((group) => group.mechanism === 'failover' || group.mechanism === 'replay-failover');
    // replay-failover's cost depends on each group's options (its checkpoint interval, ordering), failover's on its epoch
    // and on the key-value server's options a group sets (its race rate and load imbalance)
    const tallyOf = new Map(tallies.map((group) => [group.key, group]));
    const epochOf = (group: SummaryGroup): number | undefined => this.epochs.get(variantKey(group.config, group.mechanism, group.stage));
    const costOf = (group: SummaryGroup) => {
      const tally = tallyOf.get(groupKeyOf(group));
      if (group.mechanism === 'replay-failover') return replayCostWhenNothingFails(group.config, seed, tally?.replay ?? {}, tally?.kvServer);
      return costWhenNothingFails(group.mechanism, group.config, seed, epochOf(group), tally?.kvServer);
    };
    const groups = replicates ? tallied.map((group) => ({ ...group, ...costOf(group) })) : tallied;
    const stageGains = this.ladders.gains();
    return { campaign, seed, trials: this.trials, groups, comparisons: this.pairs.comparisons(), ...(stageGains.length === 0 ? {} : { stageGains }) };
  }
}

function compareGroups(x: SummaryGroup, y: SummaryGroup): number {
  return x.config.localeCompare(y.config) || x.faultType.localeCompare(y.faultType) || x.mechanism.localeCompare(y.mechanism) || 0;
}

/** One (configuration, fault type, mechanism, stage) group's counts. */
class GroupTally {
  private readonly identity: Pick<SummaryGroup, 'mechanism' | 'faultType' | 'config' | 'stage'>;
  private trials = 0;
  private readonly outcomes = { notInjected: 0, nonManifested: 0, sdc: 0, detected: 0 };
  private readonly recovery = { success: 0, noVmFailure: 0, failure: 0 };
  private readonly failureCauses: Record<string, number> = {};
  private readonly detectors: Record<string, number> = {};
  private readonly interruptions: number[] = [];

  /** replay-failover's options, from the group's specs */
  readonly replay: TrialSpec['replay'];
  /** the key-value server's options, from the group's specs */
  readonly kvServer: TrialSpec['kvServer'];

  constructor({ record, stage, spec }: TrialEntry) {
    this.identity = { mechanism: record.mechanism, faultType: record.faultType, config: record.configuration, stage };
    this.replay = spec.replay;
    this.kvServer = spec.kvServer;
  }

  get key(): string {
    return groupKeyOf(this.identity);
  }

  add({ record }: TrialEntry): void {
    this.trials++;
    this.outcomes[record.outcome]++;
    if (record.outcome !== 'detected') return;
    const detector = record.detection.detector === 'exception' ? `exception:${record.detection.exception}` : record.detection.detector;
    this.detectors[detector] = (this.detectors[detector] ?? 0) + 1;
    if (record.recovery === undefined) return;
    this.interruptions.push(record.recovery.serviceInterruptionMs);
    if (record.recovery.result === 'recovered') {
      this.recovery.success++;
      if (record.recovery.noVmFailure) this.recovery.noVmFailure++;
    } else {
      this.recovery.failure++;
      const cause = record.recovery.cause ?? 'unknown';
      this.failureCauses[cause] = (this.failureCauses[cause] ?? 0) + 1;
    }
  }

  summary(): SummaryGroup {
    const attempted = this.recovery.success + this.recovery.failure;
    return {
      ...this.identity,
      trials: this.trials,
      outcomes: { ...this.outcomes },
      recovery: { ...this.recovery },
      recoveryRate: wilson(this.recovery.success, attempted),
      noVmFailureRate: wilson(this.recovery.noVmFailure, attempted),
      serviceInterruptionMs: distribution(this.interruptions),
      failureCauses: { ...this.failureCauses },
      detectors: { ...this.detectors },
    };
  }
}

function distribution(values: number[]): SummaryGroup['serviceInterruptionMs'] {
  const sorted = values.slice().sort((x, y) => x - y);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { mean, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1] };
}

/**
 * Paired: the same trial (configuration, fault, index) under two mechanisms at stage 'all'.
 * Whether each detected trial was recovered, per cell and mechanism, by trial index.
 */
class MechanismPairs {
  private readonly byCell = new Map<string, Map<string, Map<number, boolean>>>();

  add({ record, stage }: TrialEntry): void {
    if (stage !== 'all' || record.mechanism === 'none' || record.outcome !== 'detected' || record.recovery === undefined) return;
    const cell = JSON.stringify([record.configuration, record.faultType]);
    const mechanisms = this.byCell.get(cell) ?? new Map<string, Map<number, boolean>>();
    const results = mechanisms.get(record.mechanism) ?? new Map<number, boolean>();
    results.set(record.trialIndex, record.recovery.result === 'recovered');
    mechanisms.set(record.mechanism, results);
    this.byCell.set(cell, mechanisms);
  }

  comparisons(): Comparison[] {
    const comparisons: Comparison[] = [];
    for (const [cell, mechanisms] of this.byCell) {
      const [config, faultType] = JSON.parse(cell) as [string, FaultType];
      const names = [...mechanisms.keys()].sort();
      for (let i = 0; i < names.length; i++) {
        for (let j = i + 1; j < names.length; j++) comparisons.push(pairUp(config, faultType, names[i], names[j], mechanisms));
      }
    }
    return comparisons;
  }
}

function pairUp(config: string, faultType: FaultType, first: string, second: string, mechanisms: Map<string, Map<number, boolean>>): Comparison {
  const a = mechanisms.get(first) as Map<number, boolean>;
  const b = mechanisms.get(second) as Map<number, boolean>;
  let both = 0, neither = 0, onlyFirst = 0, onlySecond = 0;
  for (const [index, recovered] of a) {
    const other = b.get(index);
    if (other === undefined) continue;
    if (recovered && other) both++;
    else if (!recovered && !other) neither++;
    else if (recovered) onlyFirst++;
    else onlySecond++;
  }
  const test = mcNemarExact(onlyFirst, onlySecond);
  return { config, faultType, first, second, pairs: both + neither + onlyFirst + onlySecond, bothRecovered: both, neitherRecovered: neither, onlyFirst, onlySecond, pValue: test.pValue, test: 'mcnemar-exact' };
}
