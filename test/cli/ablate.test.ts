/**
 * `ninelives ablate` is a one-cell ablation campaign run by the campaign runner: it writes the
 * results and reports into --out, prints one row per stage (--json: as JSON), refuses to
 * overwrite results and resumes with --resume. Its output directory is claimed as run's is
 * (issue 14): new, empty or this campaign's, with a manifest; a user's files are refused unless
 * --force, and workers beyond the faults are capped with a note.
 *
 * The run here uses worker threads, which load the compiled worker: run `npm run build` first.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Summary } from '../../src/results/summary.js';
import { cli, lines, messages, removeTemporaryDirectories, requireFreshBuild, temporaryDirectory } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

interface JsonRow {
  readonly stage: string;
  readonly trials: number;
  readonly detected: number;
  readonly recovered: number;
}

const ablate = (out: string, ...extra: string[]) =>
  cli(['ablate', '--mechanism', 'microreset', '--fault', 'failstop', '--config', '1AppVM', '--trials', '6', '--out', out, '--workers', '2', '--json', ...extra]);

describe('ninelives ablate', () => {
  it('writes the results and reports of its campaign, prints the stages, and resumes', async () => {
    requireFreshBuild();
    const out = join(temporaryDirectory(), 'ablation');
    const first = await ablate(out);
    expect(first.exitCode, first.stderr).toBe(0);
    for (const file of ['trials.jsonl', 'summary.json', 'report.md', 'report.html', 'trials.csv']) expect(existsSync(join(out, file)), file).toBe(true);
    const rows = JSON.parse(first.stdout) as JsonRow[];
    expect(rows[0]).toMatchObject({ stage: '0 no repairs', trials: 6 });
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    expect(rows.map((row) => row.stage)).toEqual(summary.groups.map((group) => group.stage));
    expect(rows.map((row) => row.recovered)).toEqual(summary.groups.map((group) => group.recovery.success));
    expect(lines(readFileSync(join(out, 'trials.jsonl'), 'utf8'))).toHaveLength(6 * rows.length);

    const again = await ablate(out);
    expect(again.exitCode).toBe(2);
    expect(messages(again.stderr)[0]).toMatch(/already exists.*--resume/);

    const resumed = await ablate(out, '--resume');
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stdout).toBe(first.stdout);
  });
});

describe('ninelives ablate claims its output directory as run does', () => {
  const small = (out: string, ...extra: string[]) =>
    cli(['ablate', '--mechanism', 'microreset', '--fault', 'failstop', '--config', '1AppVM', '--trials', '2', '--out', out, '--self-check-every', '0', '--json', ...(extra.includes('--workers') ? extra : ['--workers', '1', ...extra])]);

  it('writes a manifest of its campaign, planning every stage\'s trials', async () => {
    requireFreshBuild();
    const out = join(temporaryDirectory(), 'ablation');
    const result = await small(out);
    expect(result.exitCode, result.stderr).toBe(0);
    const rows = JSON.parse(result.stdout) as JsonRow[];
    const manifest = JSON.parse(readFileSync(join(out, 'ninelives.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ tool: 'ninelives', campaign: 'ablate-microreset-failstop-1AppVM', seed: 42, planned: 2 * rows.length });
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    expect(summary.partial).toBeUndefined();
    expect(summary.description).toBe(manifest.description);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain(String(manifest.description));
  });

  it('refuses a directory with the user\'s files before any work (one line, exit 2), and writes there with --force', async () => {
    requireFreshBuild();
    const out = join(temporaryDirectory(), 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'report.md'), '# my report\n');
    const refused = await small(out);
    expect(refused.exitCode).toBe(2);
    expect(refused.stdout).toBe('');
    expect(messages(refused.stderr)).toHaveLength(1);
    expect(messages(refused.stderr)[0]).toMatch(/holds no ninelives result of campaign "ablate-microreset-failstop-1AppVM".*--force/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toBe('# my report\n');
    expect(existsSync(join(out, 'trials.jsonl'))).toBe(false);

    const forced = await small(out, '--force');
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(existsSync(join(out, 'trials.jsonl'))).toBe(true);
  });

  it('refuses the filesystem root and caps workers beyond the faults, with a note', async () => {
    const root = await small('/');
    expect(root.exitCode).toBe(2);
    expect(messages(root.stderr)).toEqual([expect.stringMatching(/--out \/ is the filesystem root/)]);
    requireFreshBuild();
    const out = join(temporaryDirectory(), 'capped');
    const capped = await small(out, '--workers', '256');
    expect(capped.exitCode, capped.stderr).toBe(0);
    expect(messages(capped.stderr)[0]).toMatch(/^ninelives: note: --workers 256 capped to [12]: /);
  });
});

