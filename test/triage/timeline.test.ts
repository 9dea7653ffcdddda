/**
 * A trial's timeline page: the SVG holds the fault, the detection and each recovery step the
 * record names, a lane per CPU, and the lanes show recovery holding every CPU; the CLI writes it
 * from `inject --timeline`.
 */
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderTimelinePage } from '../../src/report/timeline.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { trialTimeline } from '../../src/trial/timeline.js';
import { cli, removeTemporaryDirectories, temporaryDirectory } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

const spec: TrialSpec = { configuration: '1AppVM', seed: 7, trialIndex: 0, faultType: 'failstop', mechanism: 'microreset', disabledSteps: ['release-static-locks'] };

/** The text of an SVG's text elements. */
function svgTexts(html: string): string[] {
  const svg = /<svg[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((match) => match[1]);
}

describe('trial timelines', () => {
  it('hold the fault, the detection, each recovery step and a lane per CPU', async () => {
    const timeline = trialTimeline(spec);
    const record = timeline.record;
    if (record.outcome !== 'detected' || record.recovery === undefined) throw new Error('expected a detected, recovered-from trial');
    const texts = svgTexts(await renderTimelinePage(timeline, { title: 'example' }));
    expect(texts.some((text) => text.startsWith('fault:'))).toBe(true);
    expect(texts.some((text) => text.startsWith('detection:'))).toBe(true);
    for (const step of record.recovery.steps) expect(texts.some((text) => text.startsWith(`${step.step} (`)), step.step).toBe(true);
    for (let cpu = 0; cpu < timeline.cpuCount; cpu++) expect(texts).toContain(`cpu ${cpu}`);
    const held = timeline.segments.filter((segment) => segment.activity === 'recovery');
    expect(new Set(held.map((segment) => segment.cpu)).size).toBe(timeline.cpuCount);
    for (const segment of held) expect(segment.startNs).toBeGreaterThanOrEqual(record.detection.timeNs);
  });

  it('are written by inject --timeline, with a failed recovery\'s footprint', async () => {
    // the first of seed 7's fail-stops whose recovery fails without the heap-lock repair
    const failing: TrialSpec = { ...spec, disabledSteps: ['release-heap-locks'] };
    const trialIndex = Array.from({ length: 40 }, (_, index) => index).find((index) => {
      const { record } = trialTimeline({ ...failing, trialIndex: index });
      return record.outcome === 'detected' && record.recovery?.result === 'recoveryFailed';
    });
    expect(trialIndex).toBeDefined();
    const path = join(temporaryDirectory(), 'timeline.html');
    const result = await cli(['inject', '--config', '1AppVM', '--fault', 'failstop', '--seed', '7', '--trial', String(trialIndex), '--mechanism', 'microreset', '--disable', 'release-heap-locks', '--timeline', path]);
    expect(result.exitCode, result.stderr).toBe(0);
    const html = readFileSync(path, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('Left half-done by abandoned work');
    // nothing beside the page: it was written under a hidden name and linked into place
    expect(readdirSync(dirname(path))).toEqual(['timeline.html']);
  });

  it('are written only as new files: inject and replay refuse an existing file or a missing directory in one line, exit 2, before the trial runs', async () => {
    const directory = temporaryDirectory();
    const users = join(directory, 'notes.html');
    writeFileSync(users, 'mine\n');
    const dangling = join(directory, 'dangling.html');
    symlinkSync(join(directory, 'nowhere'), dangling);
    const inject = ['inject', '--config', '1AppVM', '--fault', 'failstop', '--seed', '7', '--trial', '0', '--timeline'];
    for (const [target, message] of [
      [users, `--timeline ${users} exists: ninelives writes a new file and never over one (remove it, or name another)`],
      // a link that leads nowhere is there too: the write would fail on it after the trial ran
      [dangling, `--timeline ${dangling} exists: ninelives writes a new file and never over one (remove it, or name another)`],
      [join(directory, 'none', 't.html'), `--timeline ${join(directory, 'none', 't.html')}: there is no directory ${join(directory, 'none')} to write it in`],
      ['', '--timeline is empty: name a file to write'],
      // these failed after the trial ran, as internal errors or "a file name is too long"
      [`${directory}/new/`, `--timeline ${directory}/new/ names a directory: name a file to write`],
      [`${directory}/..`, `--timeline ${directory}/.. names a directory: name a file to write`],
      [join(directory, 'n'.repeat(230)), '--timeline: a file name of at most 200 bytes, not 230'],
      // a new file in the system's trees: nothing could be written in /proc anyway, were the check wrong
      ['/proc/ninelives-timeline.html', '--timeline /proc/ninelives-timeline.html is in a system directory: write it in a directory of your own'],
    ]) {
      const result = await cli([...inject, target]);
      expect(result).toMatchObject({ exitCode: 2, stdout: '' });
      expect(result.stderr).toBe(`ninelives: ${message}\n`);
    }
    const replayed = await cli(['replay', directory, 'any-trial', '--timeline', users]);
    expect(replayed.exitCode).toBe(2);
    expect(replayed.stderr).toBe(`ninelives: --timeline ${users} exists: ninelives writes a new file and never over one (remove it, or name another)\n`);
    expect(readFileSync(users, 'utf8')).toBe('mine\n');
    expect(readdirSync(directory).sort()).toEqual(['dangling.html', 'notes.html']);
  });
});
