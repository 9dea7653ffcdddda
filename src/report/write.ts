/**
 * Writes the rendered reports into a results directory, once the results layer has finished it
 * (records in canonical order, summary.json written): the CLI calls it after a run, a merge or
 * `report`. Each file is written to a temporary file in the same directory, flushed to disk,
 * then renamed over the old one: a crash leaves either the previous report or the new one,
 * never half of one.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { trialsPath } from '../results/directory.js';
import { readRecords } from '../results/store.js';
import type { CampaignRecord, Summary } from '../results/summary.js';
import { stageFile, writeFileAtomically, type StagedFile } from '../results/staged-file.js';
import { csvHeader, csvLine } from './csv.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { ReportContext } from './tables.js';

export const reportFiles = { markdown: 'report.md', html: 'report.html', csv: 'trials.csv' } as const;

/**
 * Renders everything first, so a rendering error writes nothing; then puts each file in place.
 * The CSV has a line per trial: it is written a record at a time into a staged file as `entries`
 * yields them (a file read a record at a time, say), so it is never whole in memory.
 */
export async function writeReports(directory: string, summary: Summary, entries: Iterable<CampaignRecord>, context: ReportContext): Promise<string[]> {
  const markdown = renderMarkdown(summary, context);
  const html = await renderHtml(summary, context);
  await mkdir(directory, { recursive: true });
  const paths = { markdown: join(directory, reportFiles.markdown), html: join(directory, reportFiles.html), csv: join(directory, reportFiles.csv) };
  const csv = stageCsv(paths.csv, entries);
  try {
    writeFileAtomically(paths.markdown, markdown);
    writeFileAtomically(paths.html, html);
  } catch (error) {
    csv.discard();
    throw error;
  }
  csv.commit();
  return [paths.markdown, paths.html, paths.csv];
}

/**
 * The reports of a results directory, from its summary and its trials.jsonl read a record at a
 * time. The campaign's description is the summary's (taken from the directory's manifest) unless
 * the context gives one.
 */
export function writeDirectoryReports(directory: string, summary: Summary, context: ReportContext): Promise<string[]> {
  const description = context.description ?? summary.description;
  return writeReports(directory, summary, readRecords(trialsPath(directory)), description === undefined ? context : { ...context, description });
}

function stageCsv(path: string, entries: Iterable<CampaignRecord>): StagedFile {
  return stageFile(path, (file) => {
    file.write(csvHeader());
    for (const entry of entries) file.write(csvLine(entry));
  });
}
