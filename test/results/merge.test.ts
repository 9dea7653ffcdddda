/**
 * Merging shards a line at a time: the union of their trials (a trial in several shards once),
 * in canonical order after sorting, as merging the records in memory gave; conflicting copies and
 * mixed campaigns refused; ids whose hashes collide still told apart.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { sortResultsFile } from '../../src/results/canonical.js';
import { MergeConflictError, MixedCampaignsError, idHash, planMerge, writeMerged, type ShardResults } from '../../src/results/merge.js';
import { compareRecords, type CampaignRecord } from '../../src/results/summary.js';
import { detected, notInjected } from '../report/fixtures.js';
import { recordArbitrary, stored } from '../campaign/arbitraries.js';

const directory = mkdtempSync(join(tmpdir(), 'ninelives-merge-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let made = 0;
function shards(...contents: readonly (readonly CampaignRecord[])[]): ShardResults[] {
  return contents.map((records) => {
    const shard = join(directory, `shard-${made++}`);
    mkdirSync(shard);
    const path = join(shard, 'trials.jsonl');
    writeFileSync(path, records.map((record) => JSON.stringify(record) + '\n').join(''));
    return { directory: shard, path };
  });
}

function merged(shardResults: readonly ShardResults[]): string {
  const path = join(directory, `merged-${made++}.jsonl`);
  writeMerged(planMerge(shardResults), path);
  return readFileSync(path, 'utf8');
}

const lines = (records: readonly CampaignRecord[]): string => records.map((record) => JSON.stringify(record) + '\n').join('');

describe('planMerge and writeMerged', () => {
  it('sorted, give the union that merging in memory gave, for shards that overlap', () => {
    fc.assert(
      fc.property(fc.uniqueArray(recordArbitrary, { selector: (record) => record.id, maxLength: 30 }), fc.array(fc.nat({ max: 6 }), { minLength: 30, maxLength: 30 }), (generated, placements) => {
        const records = generated.map(stored);
        // each record goes to one shard or to two (placement 3-6: shards 0 and the other one)
        const contents: CampaignRecord[][] = [[], [], []];
        records.forEach((record, index) => {
          const placement = placements[index];
          contents[placement % 3].push(record);
          if (placement >= 3) contents[(placement + 1) % 3].push(record);
        });
        const shardResults = shards(...contents);
        const plan = planMerge(shardResults);
        expect(plan.trials).toBe(records.length);
        const path = join(directory, `merged-${made++}.jsonl`);
        writeMerged(plan, path);
        sortResultsFile(path);
        const byId = new Map(contents.flat().map((record) => [record.id, record]));
        expect(readFileSync(path, 'utf8')).toBe(lines([...byId.values()].sort(compareRecords)));
      }),
      { numRuns: 100 },
    );
  });

  it('keeps the first copy of a trial, in shard order', () => {
    const [a, b, c] = [0, 1, 2].map((trialIndex) => notInjected({ trialIndex }));
    expect(merged(shards([a, b], [c, b, a]))).toBe(lines([a, b, c]));
  });

  it('names the campaign, or none for shards without trials', () => {
    const record = notInjected({ trialIndex: 0 });
    expect(planMerge(shards([record])).campaign).toEqual({ name: 'report-test', seed: 42 });
    expect(planMerge(shards([], [])).campaign).toBeUndefined();
  });

  it('refuses a trial that differs between shards, naming the shard', () => {
    const recovered = detected({ trialIndex: 4 }, { recovered: true, serviceInterruptionMs: 20 });
    const failed = detected({ trialIndex: 4 }, { recovered: false, serviceInterruptionMs: 20 });
    const shardResults = shards([recovered, notInjected({ trialIndex: 0 })], [notInjected({ trialIndex: 1 })], [failed]);
    expect(() => planMerge(shardResults)).toThrow(new MergeConflictError(`trial ${recovered.id} differs between shards (${shardResults[2].directory})`));
  });

  it('refuses shards of different campaigns or seeds', () => {
    const record = notInjected({ trialIndex: 0 });
    const other = { ...notInjected({ trialIndex: 1 }), campaign: 'other' };
    const third = notInjected({ trialIndex: 2 });
    const reseeded = { ...third, record: { ...third.record, seed: 7 } };
    expect(() => planMerge(shards([record], [other, reseeded]))).toThrow(
      new MixedCampaignsError('the shards come from different campaigns: report-test (seed 42), other (seed 42), report-test (seed 7)'),
    );
  });

  it('tells apart trials whose ids hash alike, and finds the second copy of each', () => {
    // two ids with the same 32-bit hash (found by search)
    const first = notInjected({ trialIndex: 65065, mechanism: 'microreset' });
    const second = notInjected({ trialIndex: 15380, faultType: 'failstop', mechanism: 'microreboot' });
    expect([first.id, second.id]).toEqual(['1AppVM/register/microreset/all/65065', '1AppVM/failstop/microreboot/all/15380']);
    expect(idHash(first.id)).toBe(idHash(second.id));
    const plan = planMerge(shards([first, second], [second, first]));
    expect(plan.trials).toBe(2);
    expect(() => planMerge(shards([first, second], [{ ...second, spec: { ...second.spec, runLengthNs: (second.spec.runLengthNs ?? 0) + 1 } }]))).toThrow(MergeConflictError);
  });
});
