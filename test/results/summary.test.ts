/**
 * The summary built a record at a time equals the one built from all the records in memory, as
 * summarize did before it streamed (kept below, verbatim but for names, as the reference).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SummaryAccumulator, isTrialEntry, summarize, type CampaignRecord, type Comparison, type Summary, type SummaryGroup, type TrialEntry } from '../../src/results/summary.js';
import { landedIn, type StageGains } from '../../src/results/stage-gains.js';
import type { FaultType } from '../../src/faults/fault.js';
import { mcNemarExact, percentile, wilson } from '../../src/results/statistics.js';
import { ablationCampaign, pairedCampaign, undetectedCampaign } from '../report/samples.js';
import { pairedRecordArbitrary, recordArbitrary, stored } from '../campaign/arbitraries.js';

describe('SummaryAccumulator', () => {
  it('equals the in-memory summary on any records, in any order', () => {
    fc.assert(
      fc.property(fc.array(recordArbitrary, { maxLength: 80 }), (generated) => {
        const records = generated.map(stored);
        const summary = summarize('property', 9, records);
        expect(JSON.stringify(summary)).toBe(JSON.stringify(summarizeInMemory('property', 9, records)));
        expect(summary).toEqual(summarizeInMemory('property', 9, records));
      }),
      { numRuns: 300 },
    );
  });

  it('equals it on paired records with repeated trials', () => {
    fc.assert(
      fc.property(fc.array(pairedRecordArbitrary, { maxLength: 40 }), (generated) => {
        const records = generated.map(stored);
        expect(JSON.stringify(summarize('paired', 9, records))).toBe(JSON.stringify(summarizeInMemory('paired', 9, records)));
      }),
      { numRuns: 300 },
    );
  });

  it('equals it on the report samples', () => {
    for (const records of [pairedCampaign(), ablationCampaign(), undetectedCampaign(), [...ablationCampaign(), ...pairedCampaign()], []]) {
      expect(JSON.stringify(summarize('sample', 1, records))).toBe(JSON.stringify(summarizeInMemory('sample', 1, records)));
    }
  });

  it('says what each ablation stage recovers that the one before did not, and where those faults landed', () => {
    // the sample: '0 no repairs' recovers trial 0, '1 + clear-irq-count' trials 0-1, '2 + release-heap-locks' all four; every fault at <schedule+12>
    expect(summarize('sample', 1, ablationCampaign()).stageGains).toEqual([
      {
        config: '1AppVM',
        faultType: 'failstop',
        mechanism: 'microreset',
        stages: [
          { stage: '1 + clear-irq-count', gained: 1, lost: 0, gainedIn: [{ routine: 'schedule', faults: 1 }] },
          { stage: '2 + release-heap-locks', gained: 2, lost: 0, gainedIn: [{ routine: 'schedule', faults: 2 }] },
        ],
      },
    ]);
    // a campaign without stages has none
    expect(summarize('sample', 1, pairedCampaign()).stageGains).toBeUndefined();
  });

  it('counts a fault a later stage no longer recovers as lost, not gained', () => {
    const reversed = ablationCampaign().map((entry) => (entry.stage === '2 + release-heap-locks' ? { ...entry, stage: '0 no repairs' } : entry.stage === '0 no repairs' ? { ...entry, stage: '2 + release-heap-locks' } : entry));
    const [ladder] = summarize('sample', 1, reversed).stageGains ?? [];
    expect(ladder.stages.map(({ gained, lost }) => [gained, lost])).toEqual([
      [0, 2],
      [0, 1],
    ]);
  });

  it('can be asked for a summary part-way and go on', () => {
    const records = [...pairedCampaign(), ...ablationCampaign()];
    const accumulator = new SummaryAccumulator();
    records.slice(0, 7).forEach((record) => accumulator.add(record));
    expect(accumulator.summary('sample', 1)).toEqual(summarizeInMemory('sample', 1, records.slice(0, 7)));
    records.slice(7).forEach((record) => accumulator.add(record));
    expect(accumulator.summary('sample', 1)).toEqual(summarizeInMemory('sample', 1, records));
  });
});

// ---------------------------------------------------------------------------------------------
// The reference: summarize as it was when it took every record at once.

function summarizeInMemory(campaign: string, seed: number, entries: readonly CampaignRecord[]): Summary {
  const groups = new Map<string, CampaignRecord[]>();
  for (const entry of entries) {
    const { record } = entry;
    const key = JSON.stringify([record.configuration, record.faultType, record.mechanism, entry.stage]);
    const list = groups.get(key) ?? [];
    list.push(entry);
    groups.set(key, list);
  }
  const summaries = [...groups.values()].map(summarizeGroup).sort(compareGroups);
  const stageGains = gainsInMemory(entries);
  return { campaign, seed, trials: entries.length, groups: summaries, comparisons: compareMechanisms(entries), ...(stageGains.length === 0 ? {} : { stageGains }) };
}

/** Stage gains from all the records at once: each ablation cell's detected trials, stage by stage. */
function gainsInMemory(entries: readonly CampaignRecord[]): StageGains[] {
  const cells = new Map<string, TrialEntry[]>();
  for (const entry of entries.filter(isTrialEntry)) {
    if (!/^(0 no repairs|[1-9]\d* \+ \S.*)$/.test(entry.stage) || entry.record.outcome !== 'detected' || entry.record.recovery === undefined) continue;
    const key = JSON.stringify([entry.record.configuration, entry.record.faultType, entry.record.mechanism]);
    cells.set(key, [...(cells.get(key) ?? []), entry]);
  }
  const gains: StageGains[] = [];
  for (const [key, cell] of cells) {
    const number = (stage: string): number => Number(stage.split(' ')[0]);
    const stages = [...new Set(cell.map((entry) => entry.stage))].sort((x, y) => number(x) - number(y) || x.localeCompare(y));
    if (stages.length < 2) continue;
    // the last record of a trial at a stage counts; where it landed is its first record's
    const recovered = (stage: string, trialIndex: number): boolean | undefined => {
      const found = cell.filter((entry) => entry.stage === stage && entry.record.trialIndex === trialIndex).at(-1);
      return found === undefined || found.record.outcome !== 'detected' ? undefined : found.record.recovery?.result === 'recovered';
    };
    const indexes = [...new Set(cell.map((entry) => entry.record.trialIndex))];
    const where = (trialIndex: number): string => {
      const first = cell.find((entry) => entry.record.trialIndex === trialIndex) as TrialEntry;
      return first.record.outcome === 'detected' ? landedIn(first.record.injection) : '?';
    };
    const [config, faultType, mechanism] = JSON.parse(key) as [string, FaultType, string];
    const ladder = stages.slice(1).map((stage, position) => {
      const before = stages[position];
      const changed = indexes.filter((index) => recovered(before, index) !== undefined && recovered(stage, index) !== undefined && recovered(before, index) !== recovered(stage, index));
      const gainedIndexes = changed.filter((index) => recovered(stage, index) === true);
      const counts = new Map<string, number>();
      for (const index of gainedIndexes) counts.set(where(index), (counts.get(where(index)) ?? 0) + 1);
      const gainedIn = [...counts.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).slice(0, 5).map(([routine, faults]) => ({ routine, faults }));
      return { stage, gained: gainedIndexes.length, lost: changed.length - gainedIndexes.length, gainedIn };
    });
    gains.push({ config, faultType, mechanism, stages: ladder });
  }
  return gains.sort((x, y) => x.config.localeCompare(y.config) || x.faultType.localeCompare(y.faultType) || x.mechanism.localeCompare(y.mechanism));
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
  for (const { record } of entries.filter(isTrialEntry)) {
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
