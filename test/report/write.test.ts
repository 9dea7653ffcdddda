/**
 * writeReports writes report.md, report.html and trials.csv whole, replacing old ones, and
 * leaves no temporary files behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { summarize } from '../../src/results/summary.js';
import { renderCsv } from '../../src/report/csv.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { writeReports } from '../../src/report/write.js';
import { writeFileAtomically } from '../../src/results/staged-file.js';
import { pairedCampaign } from './samples.js';

const context = { title: 'Written', generatedBy: 'ninelives report reports/x' };

describe('writeReports', () => {
  let directory = '';
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'ninelives-report-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('writes the three reports, replacing old ones, with no temporary files left', async () => {
    await writeFile(join(directory, 'report.md'), 'stale');
    const entries = pairedCampaign();
    const summary = summarize('paired', 42, entries);
    const written = await writeReports(directory, summary, entries, context);
    expect(written).toEqual(['report.md', 'report.html', 'trials.csv'].map((name) => join(directory, name)));
    expect((await readdir(directory)).sort()).toEqual(['report.html', 'report.md', 'trials.csv']);
    expect(await readFile(join(directory, 'report.md'), 'utf8')).toBe(renderMarkdown(summary, context));
    expect(await readFile(join(directory, 'trials.csv'), 'utf8')).toBe(renderCsv(entries));
    expect(await readFile(join(directory, 'report.html'), 'utf8')).toMatch(/^<!DOCTYPE html>[\s\S]*<\/html>\n$/);
  });

  it('writes trials.csv from records given one at a time', async () => {
    const entries = pairedCampaign();
    function* oneAtATime(): Generator<(typeof entries)[number]> {
      yield* entries;
    }
    await writeReports(directory, summarize('paired', 42, entries), oneAtATime(), context);
    expect(await readFile(join(directory, 'trials.csv'), 'utf8')).toBe(renderCsv(entries));
  });

  it('records that fail to read write nothing, and leave no temporary file', async () => {
    await writeFile(join(directory, 'report.md'), 'old');
    function* failing(): Generator<ReturnType<typeof pairedCampaign>[number]> {
      yield pairedCampaign()[0];
      throw new Error('unreadable');
    }
    await expect(writeReports(directory, summarize('paired', 42, pairedCampaign()), failing(), context)).rejects.toThrow('unreadable');
    expect(await readdir(directory)).toEqual(['report.md']);
    expect(await readFile(join(directory, 'report.md'), 'utf8')).toBe('old');
  });

  it('creates the directory when needed', async () => {
    const nested = join(directory, 'a', 'b');
    await writeReports(nested, summarize('empty', 1, []), [], context);
    expect((await readdir(nested)).sort()).toEqual(['report.html', 'report.md', 'trials.csv']);
  });

  it('a failed write leaves the other files as they were and no temporary file', async () => {
    const target = join(directory, 'report.md');
    await writeFile(target, 'old');
    // renaming a file over a non-empty directory fails after the temporary file was written
    const blocked = join(directory, 'blocked');
    await mkdir(join(blocked, 'inside'), { recursive: true });
    expect(() => writeFileAtomically(blocked, 'new')).toThrow();
    expect(await readFile(target, 'utf8')).toBe('old');
    expect((await readdir(directory)).sort()).toEqual(['blocked', 'report.md']);
  });
});
