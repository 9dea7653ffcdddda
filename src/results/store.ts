/**
 * The results store: trials.jsonl, one CampaignRecord per line, appended and flushed as each
 * trial completes, so an interruption (even kill -9) loses at most the line being written.
 * Reading goes a record at a time (never the whole file at once) and tolerates a torn last line;
 * the final file is rewritten in canonical order, atomically (canonical.ts).
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readLines, ResultsFileError, type Line, type ReadOptions } from './lines.js';
import { writeFileAtomically } from './staged-file.js';
import type { CampaignRecord } from './summary.js';

export class ResultsStore {
  private descriptor: number | undefined;

  constructor(readonly path: string) {}

  /**
   * Appends the record's line whole, or throws: a write the system cuts short (a disk filling
   * up) is carried on until it fails with the reason, so that no caller takes a torn line for a
   * stored record.
   */
  append(record: CampaignRecord): void {
    this.descriptor ??= openSync(this.path, 'a');
    const line = Buffer.from(JSON.stringify(record) + '\n');
    for (let written = 0; written < line.length; ) written += writeSync(this.descriptor, line, written);
  }

  close(): void {
    if (this.descriptor === undefined) return;
    fsyncSync(this.descriptor);
    closeSync(this.descriptor);
    this.descriptor = undefined;
  }
}

export { ResultsFileError } from './lines.js';

/**
 * The records in a results file, one at a time, in file order; a torn last line (an interrupted
 * write) is dropped from the file.
 */
export function* readRecords(path: string, options?: ReadOptions): Generator<CampaignRecord> {
  for (const line of readLines(path, options)) yield parseRecord(line, path);
}

/** The first record of a results file, or undefined when it holds none. */
export function firstRecord(path: string): CampaignRecord | undefined {
  for (const record of readRecords(path)) return record;
  return undefined;
}

/**
 * A line as a record. Only what ordering records needs is checked (their identity and sort
 * key): a line without it is no trial of a campaign.
 */
export function parseRecord(line: Line, path: string): CampaignRecord {
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch {
    throw new ResultsFileError(`${path} line ${line.number}: not JSON`);
  }
  if (!isRecordShaped(value)) throw new ResultsFileError(`${path} line ${line.number}: not a trial record (it needs id, stage and record.configuration, faultType, mechanism, trialIndex)`);
  const problem = inconsistency(value);
  if (problem !== undefined) throw new ResultsFileError(`${path} line ${line.number}: ${problem}: not a trial record as ninelives writes one`);
  return value;
}

const OUTCOMES: readonly string[] = ['notInjected', 'nonManifested', 'sdc', 'detected', 'harnessError'];

/** What a record says against itself: an id that names another trial, an index or an outcome no trial has. */
function inconsistency(entry: CampaignRecord): string | undefined {
  const { configuration, faultType, trialIndex, outcome } = entry.record;
  if (!Number.isSafeInteger(trialIndex) || trialIndex < 0) return `trial index ${trialIndex}`;
  if (!entry.id.startsWith(`${configuration}/${faultType}/`) || !entry.id.endsWith(`/${entry.stage}/${trialIndex}`)) {
    return `its id ${entry.id} names another trial than its record (${configuration}, ${faultType}, stage ${entry.stage}, index ${trialIndex})`;
  }
  if (!OUTCOMES.includes(outcome)) return `outcome ${JSON.stringify(outcome)}`;
  return undefined;
}

function isRecordShaped(value: unknown): value is CampaignRecord {
  const entry = (typeof value === 'object' ? value : null) as Partial<CampaignRecord> | null;
  const record = (typeof entry?.record === 'object' ? entry.record : null) as Partial<CampaignRecord['record']> | null;
  return (
    typeof entry?.id === 'string' &&
    typeof entry.stage === 'string' &&
    typeof record?.configuration === 'string' &&
    typeof record.faultType === 'string' &&
    typeof record.mechanism === 'string' &&
    typeof record.trialIndex === 'number'
  );
}

/** Write a file whole or not at all: a temporary file in the same directory, then a rename. */
export function writeAtomically(path: string, content: string): void {
  writeFileAtomically(path, content, `${path}.partial`);
}
