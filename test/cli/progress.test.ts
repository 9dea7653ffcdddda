/**
 * Issue 14, point 8: progress counts only the trials this process ran (a resumed run starts with
 * the trials found done, which took no time here), piped output shows an ETA, and `run --help`
 * states each option's default once.
 */
import { describe, expect, it } from 'vitest';
import { createProgress, formatEta } from '../../src/cli/progress.js';
import { cli } from '../campaign/helpers.js';

function lineSink(): { io: { stdout: { write: (text: string) => void }; stderr: { write: (text: string) => void } }; lines: string[] } {
  const lines: string[] = [];
  return { io: { stdout: { write: () => undefined }, stderr: { write: (text: string) => void lines.push(text) } }, lines };
}

describe('progress lines', () => {
  it('a resumed run\'s rate counts only trials run since it started, and the ETA follows from it', async () => {
    const { io, lines } = lineSink();
    const progress = createProgress(io, 'quick');
    progress.update(308, 500);
    // a timer may fire a fraction of a millisecond early: wait longer than the bound below needs
    await new Promise((resolve) => setTimeout(resolve, 250));
    progress.update(358, 500);
    expect(lines[0]).toMatch(/^quick: 308\/500 trials, 0\.0\/s, ETA - /);
    const [, rate] = /, ([\d.]+)\/s/.exec(lines[1]) ?? [];
    // 50 trials in at least 0.2 s: at most 250/s, where counting all 358 would give more than 1000/s
    expect(Number(rate)).toBeGreaterThan(0);
    expect(Number(rate)).toBeLessThanOrEqual(250);
    expect(lines[1]).toMatch(/ETA \d+s /);
  });

  it('formats an ETA in minutes and seconds, and a dash without a rate', () => {
    expect(formatEta(130, 2)).toBe('1m05s');
    expect(formatEta(10, 0)).toBe('-');
    expect(formatEta(0, 0)).toBe('0s');
  });
});

it('run --help states each default once', async () => {
  const result = await cli(['run', '--help']);
  expect(result.exitCode).toBe(0);
  const text = result.stdout.replace(/\n\s+/g, ' ');
  for (const option of ['--workers', '--out', '--self-check-every']) {
    const described = text.slice(text.indexOf(option), text.indexOf(' --', text.indexOf(option) + option.length));
    expect((described.match(/default/g) ?? []).length, described).toBe(1);
  }
});
