/**
 * The trial browser, kept small: a page per cluster's example trial (the 40 largest clusters)
 * and per discordant trial (recovered by one mechanism only; the first 20), each with its record
 * beside the other mechanisms' records for the same fault, its footprint, restoring set and
 * timeline. Any other trial's page is made on demand with `ninelives triage DIR --page ID`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { diagnoseSdc, diagnoseTrial } from '../campaign/triage/diagnose.js';
import { renderTimelinePage } from '../report/timeline.js';
import { TRIAL_PAGES_FOLDER, trialsPath } from '../results/directory.js';
import { readRecords } from '../results/store.js';
import { writeFileAtomically } from '../results/staged-file.js';
import { isHarnessError } from '../results/harness-error.js';
import type { CampaignRecord } from '../results/summary.js';
import type { Triage, TrialDiagnosis } from '../results/triage.js';
import type { TrialRecord } from '../trial/record.js';
import { trialTimeline } from '../trial/timeline.js';

/** Discordant trials get pages up to this many; the rest are listed with their replay command. */
export const DISCORDANT_PAGE_LIMIT = 20;
/** The largest clusters' examples get pages up to this many (a page costs a re-run and a rendering). */
export const CLUSTER_PAGE_LIMIT = 40;

export interface TrialPages {
  /** trial id -> page path relative to the results directory */
  readonly pages: ReadonlyMap<string, string>;
  readonly discordant: readonly string[];
}

/** A stored trial that ran: its record is the engine's. */
type TrialEntry = CampaignRecord & { readonly record: TrialRecord };

/**
 * The page of trial `id`: its parts joined by '_' where the id is plain (letters, digits, '.',
 * '-', '/'), so that a dsn18 page reads as its id; otherwise a hash of the whole id follows, as
 * stages such as "3 + retry-hypercalls" and "3  +  retry-hypercalls" would read alike.
 */
export function pageName(id: string): string {
  const readable = id.replace(/[^A-Za-z0-9.-]+/g, '_');
  const distinct = /^[A-Za-z0-9./-]*$/.test(id) ? '' : `~${createHash('sha256').update(id).digest('hex').slice(0, 12)}`;
  return `${TRIAL_PAGES_FOLDER}/${readable}${distinct}.html`;
}

export async function writeTrialPages(directory: string, triage: Triage, diagnoses: ReadonlyMap<string, TrialDiagnosis>): Promise<TrialPages> {
  // a harness error has no trial record to show (the report lists it among the harness errors)
  const entries = [...readRecords(trialsPath(directory))].filter((entry): entry is TrialEntry => !isHarnessError(entry.record));
  const byFault = groupByFault(entries);
  const discordant = entries.filter((entry) => isDiscordant(entry, byFault.get(faultKey(entry)) ?? [])).map((entry) => entry.id);
  const wanted = [...new Set([...triage.clusters.slice(0, CLUSTER_PAGE_LIMIT).map((cluster) => cluster.trials[0]), ...discordant.slice(0, DISCORDANT_PAGE_LIMIT)])];
  const byId = new Map(entries.map((entry) => [entry.id, entry]));
  mkdirSync(join(directory, TRIAL_PAGES_FOLDER), { recursive: true });
  const pages = new Map<string, string>();
  for (const id of wanted) {
    const entry = byId.get(id);
    if (entry === undefined) continue;
    await writePage(directory, entry, byFault, diagnoses.get(id));
    pages.set(id, pageName(id));
  }
  return { pages, discordant };
}

/**
 * One trial's page, on demand (`ninelives triage DIR --page ID`): its stored diagnosis when
 * triage has made one, else, for a failed recovery or an SDC, its footprint (a diagnosis without
 * the re-runs of the search). Returns the page's path relative to the directory, or undefined
 * when the directory holds no trial `id`.
 */
export async function writeTrialPage(directory: string, id: string, stored: TrialDiagnosis | undefined): Promise<string | undefined> {
  const entries = [...readRecords(trialsPath(directory))].filter((entry): entry is TrialEntry => !isHarnessError(entry.record));
  const entry = entries.find((candidate) => candidate.id === id);
  if (entry === undefined) return undefined;
  mkdirSync(join(directory, TRIAL_PAGES_FOLDER), { recursive: true });
  await writePage(directory, entry, groupByFault(entries), stored ?? footprintOnly(entry));
  return pageName(id);
}

/** A diagnosis without re-runs: the footprint of a failed recovery or an SDC; undefined for other trials. */
function footprintOnly(entry: TrialEntry): TrialDiagnosis | undefined {
  const record = entry.record;
  const bounds = { maxReruns: 0 };
  if (record.outcome === 'sdc') return diagnoseSdc({ kind: 'sdc', id: entry.id, spec: entry.spec, cause: record.cause, replay: record.replay, injection: record.injection }, bounds);
  if (record.outcome === 'detected' && record.recovery?.result === 'recoveryFailed') return diagnoseTrial({ id: entry.id, spec: entry.spec, recovery: record.recovery, replay: record.replay }, bounds);
  return undefined;
}

async function writePage(directory: string, entry: TrialEntry, byFault: ReadonlyMap<string, TrialEntry[]>, diagnosis: TrialDiagnosis | undefined): Promise<void> {
  const others = (byFault.get(faultKey(entry)) ?? []).filter((other) => other.id !== entry.id).map((other) => ({ label: `${other.record.mechanism} (${other.stage})`, record: other.record }));
  const page = await renderTimelinePage(trialTimeline(entry.spec), { title: entry.id, ...(diagnosis === undefined ? {} : { footprint: diagnosis.footprint, diagnosis }), others });
  // put in place by a rename: a link where the page goes is replaced, never followed
  writeFileAtomically(join(directory, pageName(entry.id)), page);
}

function faultKey(entry: TrialEntry): string {
  return JSON.stringify([entry.spec.configuration, entry.spec.faultType, entry.spec.trialIndex]);
}

function groupByFault(entries: readonly TrialEntry[]): Map<string, TrialEntry[]> {
  const groups = new Map<string, TrialEntry[]>();
  for (const entry of entries) {
    const group = groups.get(faultKey(entry));
    if (group === undefined) groups.set(faultKey(entry), [entry]);
    else group.push(entry);
  }
  return groups;
}

/** Failed here, recovered by another mechanism on the same fault. */
function isDiscordant(entry: TrialEntry, sameFault: readonly TrialEntry[]): boolean {
  if (resultOf(entry.record) !== 'recoveryFailed') return false;
  return sameFault.some((other) => other.record.mechanism !== entry.record.mechanism && resultOf(other.record) === 'recovered');
}

function resultOf(record: TrialRecord): string | undefined {
  return record.outcome === 'detected' ? record.recovery?.result : undefined;
}
