/**
 * trials.jsonl rewritten in canonical order a line at a time gives the bytes that sorting the
 * parsed records in memory and writing each with JSON.stringify gave, whatever the file's order,
 * formatting, blank lines or torn last line.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { sortResultsFile } from '../../src/results/canonical.js';
import { ResultsFileError } from '../../src/results/store.js';
import { compareRecords, type CampaignRecord } from '../../src/results/summary.js';
import { recordArbitrary, stored } from '../campaign/arbitraries.js';

const directory = mkdtempSync(join(tmpdir(), 'ninelives-canonical-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let files = 0;
function resultsFile(text: string | Buffer): string {
  const path = join(directory, `trials-${files++}.jsonl`);
  writeFileSync(path, text);
  return path;
}

/** What finish wrote before it streamed: the parsed records sorted, each as JSON.stringify writes it. */
function sortedInMemory(records: readonly CampaignRecord[]): string {
  return records
    .map(stored)
    .sort(compareRecords)
    .map((record) => JSON.stringify(record) + '\n')
    .join('');
}

/** Ways a line can hold a record other than exactly as JSON.stringify writes it. */
const formats: readonly ((json: string, record: CampaignRecord) => string)[] = [
  (json) => json,
  (_, record) => JSON.stringify(record, null, 1).replace(/\n */g, ' '),
  (json) => `${json}\r`,
  (json) => ` ${json}`,
];

describe('sortResultsFile', () => {
  it('gives the bytes of sorting in memory, for any order, formatting and blank lines', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(recordArbitrary, fc.nat({ max: formats.length - 1 }), fc.boolean()), { maxLength: 40, selector: ([record]) => record.id }), (lines) => {
        const text = lines.map(([record, format, blankAfter]) => `${formats[format](JSON.stringify(record), record)}\n${blankAfter ? '  \n' : ''}`).join('');
        const path = resultsFile(text);
        sortResultsFile(path);
        expect(readFileSync(path, 'utf8')).toBe(sortedInMemory(lines.map(([record]) => record)));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a trial that is there twice, naming both lines, and leaves the file as it is', () => {
    const [first, second] = fc.sample(fc.uniqueArray(recordArbitrary, { minLength: 2, maxLength: 2, selector: (record) => record.id }), { numRuns: 1, seed: 7 })[0];
    const text = `${JSON.stringify(first)}\n${JSON.stringify(second)}\n${JSON.stringify({ ...first, record: { ...first.record, seed: 99 } })}\n`;
    const path = resultsFile(text);
    expect(() => sortResultsFile(path)).toThrow(new ResultsFileError(`${path} lines 1 and 3 are the same trial (${first.id}): a trial is counted once; remove one`));
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('refuses a record whose id names another trial, or with an outcome no trial has', () => {
    const [record] = fc.sample(recordArbitrary, { numRuns: 1, seed: 5 });
    const moved = { ...record, record: { ...record.record, trialIndex: record.record.trialIndex + 1000 } };
    expect(() => sortResultsFile(resultsFile(`${JSON.stringify(moved)}\n`))).toThrow(/line 1: its id .* names another trial than its record/);
    const strange = { ...record, record: { ...record.record, outcome: 'bogus' } };
    expect(() => sortResultsFile(resultsFile(`${JSON.stringify(strange)}\n`))).toThrow(/line 1: outcome "bogus": not a trial record as ninelives writes one/);
  });

  it('drops a torn last line', () => {
    const records = fc.sample(recordArbitrary, { numRuns: 5, seed: 3 });
    const complete = records.map((record) => JSON.stringify(record) + '\n').join('');
    const path = resultsFile(complete + JSON.stringify(records[0]).slice(0, 40));
    sortResultsFile(path);
    expect(readFileSync(path, 'utf8')).toBe(sortedInMemory(records));
  });

  it('writes a line whose bytes are not UTF-8 as the record read from it', () => {
    const [record] = fc.sample(recordArbitrary, { numRuns: 1, seed: 11 });
    const json = JSON.stringify({ ...record, campaign: 'X' });
    const [before, after] = json.split('X');
    // 0xff is never part of UTF-8: read as U+FFFD, as reading the whole file as text did
    const path = resultsFile(Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after + '\n')]));
    sortResultsFile(path);
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify({ ...record, campaign: '\uFFFD' }) + '\n');
  });

  it('makes an empty file of a missing one, and leaves no temporary file', () => {
    const alone = mkdtempSync(join(directory, 'alone-'));
    const path = join(alone, 'trials.jsonl');
    sortResultsFile(path);
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(readdirSync(alone)).toEqual(['trials.jsonl']);
  });

  it('a line that is not a record: an error naming the line, and the file as it was', () => {
    const [record] = fc.sample(recordArbitrary, { numRuns: 1, seed: 5 });
    const text = `${JSON.stringify(record)}\n\n{"campaign": oops\n`;
    const path = resultsFile(text);
    expect(() => sortResultsFile(path)).toThrow(new ResultsFileError(`${path} line 3: not JSON`));
    const notRecord = resultsFile(`${JSON.stringify(record)}\n{"id": "x"}\n`);
    expect(() => sortResultsFile(notRecord)).toThrow(/line 2: not a trial record/);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });
});
