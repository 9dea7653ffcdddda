/**
 * The model's behaviour, pinned: a fixed set of trials (every fault type and outcome, both
 * mechanisms, a switched-off repair, both configurations) must give exactly the records
 * committed in fixtures/records.jsonl. An optimisation that changes any record fails here.
 * After a deliberate change of the model, regenerate the file and say why in the commit.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TrialRecord, TrialSpec } from '../../src/trial/record.js';
import { builtApi } from '../check/built.js';

interface Pinned {
  readonly spec: TrialSpec;
  readonly record: TrialRecord;
}

const pinned: Pinned[] = readFileSync(new URL('./fixtures/records.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Pinned);

describe('committed trial records', () => {
  it('cover every outcome and recovery result', () => {
    const kinds = new Set(pinned.map(({ record }) => (record.outcome === 'detected' ? `detected/${record.recovery?.result ?? 'none'}` : record.outcome)));
    expect([...kinds].sort()).toEqual(['detected/none', 'detected/recovered', 'detected/recoveryFailed', 'nonManifested', 'notInjected', 'sdc']);
  });

  it('are reproduced byte for byte by the current model', async () => {
    const { runTrial } = await builtApi();
    const differing = pinned.filter(({ spec, record }) => JSON.stringify(runTrial(spec).record) !== JSON.stringify(record));
    expect(differing.map(({ spec }) => `${spec.configuration}/${spec.faultType}/${spec.mechanism}/${spec.trialIndex}`)).toEqual([]);
  });

  it('are reproduced when the variants of each fault share their run up to detection, as campaigns run them', async () => {
    const { runTrialVariants } = await builtApi();
    const byFault = new Map<string, Pinned[]>();
    for (const entry of pinned) {
      const { configuration, faultType, trialIndex, runLengthNs } = entry.spec;
      const key = JSON.stringify([configuration, faultType, trialIndex, runLengthNs]);
      byFault.set(key, [...(byFault.get(key) ?? []), entry]);
    }
    expect([...byFault.values()].some((group) => group.length >= 3)).toBe(true);
    for (const group of byFault.values()) {
      const records = runTrialVariants(group.map(({ spec }) => spec));
      expect(records.map((record) => JSON.stringify(record))).toEqual(group.map(({ record }) => JSON.stringify(record)));
    }
  });
});
