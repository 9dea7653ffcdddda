/**
 * A results directory: ninelives.json (its manifest, manifest.ts: whose results these are),
 * trials.jsonl (the records) and summary.json (what they add up to). The reports rendered from
 * them are the report layer's; this layer only puts the records in canonical order and writes
 * the summary. Where a directory may be written at all is output-directory.ts's to say.
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { NinelivesError } from '../errors.js';
import { sortResultsFile } from './canonical.js';
import { endsInTornLine, manifestOf, RecordFacts, withFacts } from './result-facts.js';
import { readRecords, writeAtomically } from './store.js';
import { readStopRule } from './stopping.js';
import { summarize, type Summary } from './summary.js';

export const TRIALS_FILE = 'trials.jsonl';
export const SUMMARY_FILE = 'summary.json';
/** the folder of the trial browser's pages (`ninelives triage`) */
export const TRIAL_PAGES_FOLDER = 'trials';

export function trialsPath(directory: string): string {
  return join(directory, TRIALS_FILE);
}

/**
 * The directory's trials.jsonl, which must be there and a regular file: a pipe would block the
 * read, a device never end it, a directory fail it, a link lead a rewrite elsewhere.
 */
export function existingTrialsFile(directory: string): string {
  if (directory.trim() === '') throw new NinelivesError('usage.noResults', 'the results directory is empty text: name one');
  const path = trialsPath(directory);
  let isFile: boolean;
  try {
    isFile = lstatSync(path).isFile();
  } catch {
    throw new NinelivesError('usage.noResults', `no ${TRIALS_FILE} in ${directory}`);
  }
  if (!isFile) throw new NinelivesError('usage.noResults', `${path} is not a regular file`);
  return path;
}

/**
 * Rewrite trials.jsonl in canonical order, then write summary.json, with what it says about the
 * results as a whole (result-facts.ts: the description from the directory's manifest, which
 * ninelives made the records, harness errors, and whether the results are partial). The records
 * pass through one at a time (sorted by a small key per line, then read again for the summary),
 * so memory does not grow with the number of trials. A directory run with a stop rule
 * (stopping.json) gets where each cell stopped in its summary.
 */
export function finishResults(directory: string, campaign: string, seed: number): Summary {
  const path = trialsPath(directory);
  // reading the file drops a torn last line: see it first, to say so
  const tornLine = endsInTornLine(path);
  sortResultsFile(path);
  const facts = new RecordFacts();
  const summary = withFacts(summarize(campaign, seed, facts.watch(readRecords(path)), readStopRule(directory)), facts, manifestOf(directory), tornLine);
  writeAtomically(join(directory, SUMMARY_FILE), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
