/**
 * `ninelives ablate` is a one-cell ablation campaign run by the campaign runner: it writes the
 * results and reports into --out, prints one row per stage (--json: as JSON), refuses to
 * overwrite results and resumes with --resume.
 *
 * The run here uses worker threads, which load the compiled worker: run `npm run build` first.
 */
import { existsSync, readFileSync } from 'node:fs';
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
