/**
 * What summary.json says about the results as a whole, beyond their statistics: the campaign's
 * description, which ninelives made the records, how many trials the harness could not run, and
 * whether the results are partial (fewer trials than the directory's manifest plans, or a torn
 * last line), so that a short result never passes for a complete one.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { isHarnessError } from './harness-error.js';
import { readManifest, type Manifest } from './manifest.js';
import { sameProvenance, type Provenance } from './provenance.js';
import type { CampaignRecord, Summary } from './summary.js';

/** Watches records go by, keeping only counts and the first provenance. */
export class RecordFacts {
  records = 0;
  harnessErrors = 0;
  private provenance: Provenance | 'mixed' | 'unrecorded' | undefined;

  *watch(entries: Iterable<CampaignRecord>): Generator<CampaignRecord> {
    for (const entry of entries) {
      this.records++;
      if (isHarnessError(entry.record)) this.harnessErrors++;
      this.noteProvenance(entry.ninelives);
      yield entry;
    }
  }

  get ninelives(): Provenance | 'mixed' | 'unrecorded' | undefined {
    return this.provenance;
  }

  private noteProvenance(value: Provenance | undefined): void {
    const seen = value ?? 'unrecorded';
    if (this.provenance === undefined) this.provenance = seen;
    else if (typeof this.provenance === 'object' && typeof seen === 'object' ? !sameProvenance(this.provenance, seen) : this.provenance !== seen) this.provenance = 'mixed';
  }
}

/** Whether the file ends in bytes after its last newline: a record cut off by an interruption. */
export function endsInTornLine(path: string): boolean {
  if (!existsSync(path)) return false;
  const size = statSync(path).size;
  if (size === 0) return false;
  const descriptor = openSync(path, 'r');
  try {
    const last = Buffer.alloc(1);
    readSync(descriptor, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(descriptor);
  }
}

/** The directory's manifest, or none when it has none or one that is not ours. */
export function manifestOf(directory: string): Manifest | undefined {
  try {
    return readManifest(directory);
  } catch {
    return undefined;
  }
}

/** The reason a directory whose manifest is still marked unfinished gives. */
export const UNFINISHED = 'the run writing these results has not finished (it was stopped or is still running): resume it to complete them';

/**
 * The summary with the facts added. Results are partial when they hold fewer trials than the
 * manifest plans, when the manifest says the run writing them has not finished (the only sign,
 * under a stop rule, that a run stopped between rounds), or, where no manifest says what was
 * planned, when the file ended in a torn line (a trial that was being written, at least, is
 * missing).
 */
export function withFacts(summary: Summary, facts: RecordFacts, manifest: Manifest | undefined, tornLine: boolean): Summary {
  return withCounts(summary, facts, manifest, partialOf(facts.records, manifest, tornLine, summary.stopping !== undefined));
}

/** Whether `records` trials are short of what the manifest plans, and why; undefined when they are not. */
export function partialOf(records: number, manifest: Manifest | undefined, tornLine: boolean, underStopRule: boolean): Summary['partial'] {
  // under a stop rule the manifest's count is a ceiling, not a promise: cells stop when their
  // answer is known, so only a torn line or the unfinished mark shows that trials are missing
  const ceiling = underStopRule ? undefined : manifest?.planned;
  const short = ceiling === undefined ? tornLine : records < ceiling;
  const unfinished = manifest?.unfinished === true;
  if (!short && !unfinished) return undefined;
  const planned = ceiling ?? (tornLine ? records + 1 : Math.max(manifest?.planned ?? 0, records));
  const atMost = underStopRule && !tornLine && planned > records ? [`under its stop rule ${planned} is the most it may take`] : [];
  const reasons = [
    ...(ceiling !== undefined && records < ceiling ? [`${ceiling - records} planned trial${ceiling - records === 1 ? ' is' : 's are'} missing`] : []),
    ...(tornLine && manifest?.planned === undefined ? ['no manifest says how many were planned'] : []),
    ...(unfinished ? [UNFINISHED] : []),
    ...atMost,
    ...(tornLine ? ['trials.jsonl ended in a torn line (an interrupted write), which was dropped'] : []),
  ];
  return { trials: records, planned, reason: reasons.join('; ') };
}

function withCounts(summary: Summary, facts: RecordFacts, manifest: Manifest | undefined, partial: Summary['partial']): Summary {
  return {
    ...summary,
    ...(manifest?.description === undefined ? {} : { description: manifest.description }),
    ...(facts.ninelives === undefined ? {} : { ninelives: facts.ninelives }),
    harnessErrors: facts.harnessErrors,
    ...(partial === undefined ? {} : { partial }),
  };
}

/** "partial: 181 of 500 trials (319 planned trials are missing)" */
export function describePartial(partial: NonNullable<Summary['partial']>): string {
  return `partial: ${partial.trials} of ${partial.planned} trials (${partial.reason})`;
}

/** "3 trials failed in the harness" */
export function describeHarnessErrors(count: number): string {
  return `${count} trial${count === 1 ? '' : 's'} failed in the harness`;
}
