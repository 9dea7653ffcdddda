/**
 * The results store: trials.jsonl, one CampaignRecord per line, appended and flushed as each
 * trial completes, so an interruption (even kill -9) loses at most the line being written.
 * Reading tolerates a torn last line; the final file is rewritten in plan order, atomically.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import type { CampaignRecord } from './summary.js';

export class ResultsStore {
  private descriptor: number | undefined;

  constructor(readonly path: string) {}

  /** Records already in the file, dropping a torn last line (an interrupted write). */
  readExisting(): CampaignRecord[] {
    if (!existsSync(this.path)) return [];
    const text = readFileSync(this.path, 'utf8');
    const lines = text.split('\n');
    // the last element is '' after a final newline, or a torn line without one: drop it either way
    const complete = lines.slice(0, -1);
    const records: CampaignRecord[] = [];
    for (const line of complete) {
      if (line.trim() === '') continue;
      records.push(JSON.parse(line) as CampaignRecord);
    }
    const kept = complete.join('\n') + (complete.length > 0 ? '\n' : '');
    if (kept !== text) writeFileSync(this.path, kept);
    return records;
  }

  append(record: CampaignRecord): void {
    this.descriptor ??= openSync(this.path, 'a');
    writeSync(this.descriptor, JSON.stringify(record) + '\n');
  }

  close(): void {
    if (this.descriptor === undefined) return;
    fsyncSync(this.descriptor);
    closeSync(this.descriptor);
    this.descriptor = undefined;
  }
}

export function readRecords(path: string): CampaignRecord[] {
  return new ResultsStore(path).readExisting();
}

/** Write a file whole or not at all: a temporary file in the same directory, then a rename. */
export function writeAtomically(path: string, content: string): void {
  const temporary = `${path}.partial`;
  writeFileSync(temporary, content);
  renameSync(temporary, path);
}

export function recordsText(records: readonly CampaignRecord[]): string {
  return records.map((record) => JSON.stringify(record) + '\n').join('');
}
