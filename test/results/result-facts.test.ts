/**
 * Whether a summary says its results are partial: by the count its manifest plans, by a torn last
 * line, and by the manifest's unfinished mark, which is the only sign under a stop rule (where the
 * planned count is a ceiling) that a run was stopped between whole records.
 */
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/results/manifest.js';
import { currentProvenance } from '../../src/results/provenance.js';
import { RecordFacts, UNFINISHED, withFacts } from '../../src/results/result-facts.js';
import type { Summary } from '../../src/results/summary.js';

const RULE = { margin: 0.02, confidence: 0.95, minDetected: 100, every: 100 };

function summary(stopping: boolean): Summary {
  return { campaign: 'c', seed: 1, trials: 40, groups: [], ...(stopping ? { stopping: { rule: RULE, cells: [] } } : {}) } as unknown as Summary;
}

function facts(records: number): RecordFacts {
  const watched = new RecordFacts();
  watched.records = records;
  return watched;
}

function manifest(unfinished: boolean): Manifest {
  return { tool: 'ninelives', campaign: 'c', seed: 1, planned: 100, ninelives: currentProvenance(), ...(unfinished ? { unfinished: true as const } : {}) };
}

describe('partial results', () => {
  it('under a stop rule, whole lines and no mark: complete (the planned count is a ceiling)', () => {
    expect(withFacts(summary(true), facts(40), manifest(false), false).partial).toBeUndefined();
  });

  it('under a stop rule, the unfinished mark alone makes the results partial', () => {
    expect(withFacts(summary(true), facts(40), manifest(true), false).partial).toEqual({ trials: 40, planned: 100, reason: `${UNFINISHED}; under its stop rule 100 is the most it may take` });
  });

  it('without a stop rule, the mark is said beside the missing count', () => {
    expect(withFacts(summary(false), facts(40), manifest(true), false).partial).toEqual({ trials: 40, planned: 100, reason: `60 planned trials are missing; ${UNFINISHED}` });
  });

  it('every trial in, but the run stopped before it cleared the mark: still partial, of as many as it holds', () => {
    expect(withFacts(summary(false), facts(100), manifest(true), false).partial).toEqual({ trials: 100, planned: 100, reason: UNFINISHED });
    expect(withFacts(summary(false), facts(100), manifest(false), false).partial).toBeUndefined();
  });

  it('a torn line under a stop rule, with the mark: both reasons', () => {
    expect(withFacts(summary(true), facts(40), manifest(true), true).partial).toEqual({ trials: 40, planned: 41, reason: `${UNFINISHED}; trials.jsonl ended in a torn line (an interrupted write), which was dropped` });
  });

  it('a torn line after every planned trial, no mark: complete, as before the mark', () => {
    expect(withFacts(summary(false), facts(100), manifest(false), true).partial).toBeUndefined();
  });
});
