/**
 * Writes the rendered reports into a campaign's output directory. Each file is written to a
 * temporary file in the same directory, flushed to disk, then renamed over the old one: a crash
 * leaves either the previous report or the new one, never half of one.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { CampaignRecord, Summary } from '../campaign/summary.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { ReportContext } from './tables.js';

export const reportFiles = { markdown: 'report.md', html: 'report.html', csv: 'trials.csv' } as const;

/** Renders everything first, so a rendering error writes nothing; then writes each file atomically. */
export async function writeReports(directory: string, summary: Summary, entries: readonly CampaignRecord[], context: ReportContext): Promise<string[]> {
  const contents: [string, string][] = [
    [reportFiles.markdown, renderMarkdown(summary, context)],
    [reportFiles.html, await renderHtml(summary, context)],
    [reportFiles.csv, renderCsv(entries)],
  ];
  await mkdir(directory, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of contents) {
    const path = join(directory, name);
    await writeFileAtomic(path, content);
    written.push(path);
  }
  return written;
}

let sequence = 0;

/** Write, fsync, rename: the file at `path` is always whole. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${sequence++}.tmp`);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** Makes the rename itself durable; not every platform can open a directory, which is fine. */
async function syncDirectory(directory: string): Promise<void> {
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort: the rename is atomic either way
  }
}
