/**
 * `ninelives triage DIR`: clusters a finished campaign's failed recoveries, prints them as JSON
 * with --json, writes triage.md, triage.json and a section of report.html, and resumes from
 * triage.jsonl; a directory without results is a usage error before any work.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, completeLines, messages, removeTemporaryDirectories, requireFreshBuild, spawnCli, temporaryDirectory, waitForLines, writeCampaign } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

interface JsonCluster {
  readonly signature: string;
  readonly count: number;
  readonly trials: readonly string[];
  readonly restoring: readonly string[];
  readonly repairedBy: readonly string[];
}

/** A finished campaign of fail-stop faults recovered without clear-irq-count (most fail): where, and how many recoveries failed. */
async function resultsWithFailures(name: string, failstop: number): Promise<{ directory: string; out: string; failed: number }> {
  const directory = temporaryDirectory();
  const campaign = writeCampaign(
    directory,
    [`name: ${name}`, 'seed: 7', 'configurations: [1AppVM]', 'faults:', `  failstop: ${failstop}`, 'mechanisms:', '  - { name: microreset, disable: [clear-irq-count] }', ''].join('\n'),
  );
  const out = join(directory, 'results');
  const ran = await cli(['run', campaign, '--out', out, '--workers', '1']);
  expect(ran.exitCode, ran.stderr).toBe(0);
  const failed = readFileSync(join(out, 'trials.jsonl'), 'utf8').split('\n').filter((line) => line.includes('"recoveryFailed"')).length;
  return { directory, out, failed };
}

describe('ninelives triage', () => {
  it('interrupted twice: the second signal stops it at once with the command that goes on, and leaves no lock; that command finishes it', async () => {
    requireFreshBuild();
    const { directory, out, failed } = await resultsWithFailures('interrupted-triage', 24);
    expect(failed).toBeGreaterThan(4);
    const child = spawnCli(['triage', out, '--workers', '1'], directory);
    await waitForLines(child, join(out, 'triage.jsonl'), 2);
    // two signals at once (two SIGINTs could be merged into one while pending): Ctrl-C, then a kill
    child.process.kill('SIGINT');
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit.code, exit.stderr).toBe(130);
    const command = `ninelives triage ${out} --workers 1`;
    expect(messages(exit.stderr)).toEqual([`ninelives: interrupted again: stopped at once, the diagnoses in progress dropped; continue with: ${command}`]);
    expect(existsSync(join(out, '.ninelives.lock'))).toBe(false);
    expect(completeLines(join(out, 'triage.jsonl'))).toBeLessThan(failed);
    const resumed = await cli(command.split(' ').slice(1));
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(completeLines(join(out, 'triage.jsonl'))).toBe(failed);
    expect(existsSync(join(out, 'triage.md'))).toBe(true);
  }, 120_000);

  it('clusters the failed recoveries, writes its files and resumes', async () => {
    const { directory, out, failed: trials } = await resultsWithFailures('no-irq-clear', 4);
    const first = await cli(['triage', out, '--workers', '1', '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    const { clusters } = JSON.parse(first.stdout) as { clusters: JsonCluster[] };
    expect(clusters.reduce((sum, cluster) => sum + cluster.count, 0)).toBe(trials);
    for (const cluster of clusters) expect(Object.keys(cluster).sort()).toEqual(['count', 'reading', 'repairedBy', 'restoring', 'signature', 'trials']);
    // most are repaired by the step switched off (others fail whatever the repairs: a fail-stop in vcpu_wake loses its wake-up)
    expect(clusters.some((cluster) => cluster.repairedBy.join() === 'clear-irq-count')).toBe(true);
    for (const file of ['triage.md', 'triage.json', 'triage.jsonl']) expect(existsSync(join(out, file)), file).toBe(true);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<section id="triage">');
    expect(readFileSync(join(out, 'triage.md'), 'utf8')).toContain(clusters[0].trials[0]);
    const triage = JSON.parse(readFileSync(join(out, 'triage.json'), 'utf8')) as { pages: Record<string, string> };
    const page = triage.pages[clusters[0].trials[0]];
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain(`href="${page}"`);
    expect(readFileSync(join(out, page), 'utf8')).toContain('Minimal restoring set');

    const stored = readFileSync(join(out, 'triage.jsonl'), 'utf8');
    const again = await cli(['triage', out, '--workers', '1', '--json']);
    expect(again.stdout).toBe(first.stdout);
    expect(readFileSync(join(out, 'triage.jsonl'), 'utf8')).toBe(stored);

    const timeline = join(directory, 'timeline.html');
    const replayed = await cli(['replay', out, clusters[0].trials[0], '--timeline', timeline]);
    expect(replayed.exitCode, replayed.stderr).toBe(0);
    expect(readFileSync(timeline, 'utf8')).toContain('clear-irq-count');

    // any trial's page on demand, with its stored diagnosis when triage made one
    const ids = readFileSync(join(out, 'trials.jsonl'), 'utf8').split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { id: string }).id);
    const unpaged = ids.find((id) => !(id in triage.pages));
    if (unpaged !== undefined) {
      const onDemand = await cli(['triage', out, '--page', unpaged]);
      expect(onDemand.exitCode, onDemand.stderr).toBe(0);
      const path = onDemand.stdout.replace(/^page: /, '').trim();
      expect(readFileSync(path, 'utf8')).toContain(unpaged);
    }
    const storedPage = await cli(['triage', out, '--page', clusters[0].trials[0]]);
    expect(storedPage.exitCode, storedPage.stderr).toBe(0);
    expect(readFileSync(storedPage.stdout.replace(/^page: /, '').trim(), 'utf8')).toContain('Minimal restoring set');
    const missing = await cli(['triage', out, '--page', 'no/such/trial']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/no trial no\/such\/trial/);
    // an empty id ("no trial  in ..." before); options of the whole triage were ignored silently
    for (const [argv, message] of [
      [['--page', ''], '--page is empty: name a trial (its id, as trials.jsonl has it)'],
      [['--page', clusters[0].trials[0], '--json', '--sdc'], "--page writes one trial's page; --json, --sdc are for the whole triage"],
    ] as const) {
      const refused = await cli(['triage', out, ...argv]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toBe(`ninelives: ${message}\n`);
    }

    const report = await cli(['report', out]);
    expect(report.exitCode, report.stderr).toBe(0);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<section id="triage">');
  }, 120_000);

  it('on results short of their plan, says they are partial, on stderr and in triage.md, as report does', async () => {
    const { out } = await resultsWithFailures('short', 4);
    // a run stopped between whole records: the last trial missing
    const trials = join(out, 'trials.jsonl');
    writeFileSync(trials, readFileSync(trials, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
    const result = await cli(['triage', out, '--workers', '1']);
    expect(result.exitCode, result.stderr).toBe(0);
    const note = 'partial: 3 of 4 trials (1 planned trial is missing)';
    expect(messages(result.stderr).filter((line) => !line.startsWith('triage: '))).toEqual([`ninelives: ${note}`]);
    expect(readFileSync(join(out, 'triage.md'), 'utf8')).toContain(`**${note}: the failed recoveries among the trials run.**`);
  }, 60_000);

  it('refuses a directory without results before any work', async () => {
    const result = await cli(['triage', temporaryDirectory()]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no trials\.jsonl/);
  });
});
