/**
 * Records become statistics: one group per (configuration, fault type, mechanism, stage), with
 * outcome counts, recovery counts and rates with intervals, service interruption percentiles,
 * and failure causes; plus paired McNemar comparisons between mechanisms on the same faults.
 */
import type { FaultType } from '../faults/fault.js';
import { mcNemarExact, percentile, wilson, type Interval } from '../report/statistics.js';
import type { TrialRecord, TrialSpec } from '../trial/record.js';

export interface CampaignRecord {
  readonly campaign: string;
  /** unique within a campaign: configuration/fault/mechanism/stage/trial index */
  readonly id: string;
  readonly stage: string;
  /** what `replay` runs again */
  readonly spec: TrialSpec;
  readonly record: TrialRecord;
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
  readonly trials: number;
  readonly groups: readonly SummaryGroup[];
  readonly comparisons: readonly Comparison[];
}

function groupKey(entry: CampaignRecord): string {
  const { record } = entry;
  return JSON.stringify([record.configuration, record.faultType, record.mechanism, entry.stage]);
}

export function summarize(campaign: string, seed: number, entries: readonly CampaignRecord[]): Summary {
  const groups = new Map<string, CampaignRecord[]>();
  for (const entry of entries) {
    const key = groupKey(entry);
    const list = groups.get(key) ?? [];
    list.push(entry);
    groups.set(key, list);
  }
  const summaries = [...groups.values()].map(summarizeGroup).sort(compareGroups);
  return { campaign, seed, trials: entries.length, groups: summaries, comparisons: compareMechanisms(entries) };
}

function compareGroups(x: SummaryGroup, y: SummaryGroup): number {
  return x.config.localeCompare(y.config) || x.faultType.localeCompare(y.faultType) || x.mechanism.localeCompare(y.mechanism) || 0;
}

function summarizeGroup(entries: readonly CampaignRecord[]): SummaryGroup {
  const first = entries[0].record;
  const outcomes = { notInjected: 0, nonManifested: 0, sdc: 0, detected: 0 };
  const recovery = { success: 0, noVmFailure: 0, failure: 0 };
  const failureCauses: Record<string, number> = {};
  const detectors: Record<string, number> = {};
  const interruptions: number[] = [];
  for (const { record } of entries) {
    outcomes[record.outcome]++;
    if (record.outcome !== 'detected') continue;
    const detector = record.detection.detector === 'exception' ? `exception:${record.detection.exception}` : record.detection.detector;
    detectors[detector] = (detectors[detector] ?? 0) + 1;
    if (record.recovery === undefined) continue;
    interruptions.push(record.recovery.serviceInterruptionMs);
    if (record.recovery.result === 'recovered') {
      recovery.success++;
      if (record.recovery.noVmFailure) recovery.noVmFailure++;
    } else {
      recovery.failure++;
      const cause = record.recovery.cause ?? 'unknown';
      failureCauses[cause] = (failureCauses[cause] ?? 0) + 1;
    }
  }
  const attempted = recovery.success + recovery.failure;
  return {
    mechanism: first.mechanism,
    faultType: first.faultType,
    config: first.configuration,
    stage: entries[0].stage,
    trials: entries.length,
    outcomes,
    recovery,
    recoveryRate: wilson(recovery.success, attempted),
    noVmFailureRate: wilson(recovery.noVmFailure, attempted),
    serviceInterruptionMs: distribution(interruptions),
    failureCauses,
    detectors,
  };
}

function distribution(values: number[]): SummaryGroup['serviceInterruptionMs'] {
  const sorted = values.slice().sort((x, y) => x - y);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  return { mean, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1] };
}

/** Paired: the same trial (configuration, fault, index) under two mechanisms at stage 'all'. */
function compareMechanisms(entries: readonly CampaignRecord[]): Comparison[] {
  const byCell = new Map<string, Map<string, Map<number, boolean>>>();
  for (const { record, stage } of entries) {
    if (stage !== 'all' || record.mechanism === 'none' || record.outcome !== 'detected' || record.recovery === undefined) continue;
    const cell = JSON.stringify([record.configuration, record.faultType]);
    const mechanisms = byCell.get(cell) ?? new Map<string, Map<number, boolean>>();
    const results = mechanisms.get(record.mechanism) ?? new Map<number, boolean>();
    results.set(record.trialIndex, record.recovery.result === 'recovered');
    mechanisms.set(record.mechanism, results);
    byCell.set(cell, mechanisms);
  }
  const comparisons: Comparison[] = [];
  for (const [cell, mechanisms] of byCell) {
    const [config, faultType] = JSON.parse(cell) as [string, FaultType];
    const names = [...mechanisms.keys()].sort();
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) comparisons.push(pairUp(config, faultType, names[i], names[j], mechanisms));
    }
  }
  return comparisons;
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
