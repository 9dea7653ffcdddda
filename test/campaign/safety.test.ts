/**
 * Issue 14, points 3 to 6, through the CLI on a small campaign:
 * - a partial result says so (a short or torn trials.jsonl; shards missing from a merge), in
 *   stderr, in report.md and in summary.json;
 * - merging different campaigns, different settings or different versions says exactly that,
 *   even when the trial ids coincide;
 * - every record and summary.json carry the ninelives version and source, and --resume refuses
 *   to mix versions, naming both;
 * - a trial that throws or a worker thread that dies is retried once and then recorded as a
 *   harnessError, the campaign completes, and the exit code says it had errors;
 * - the determinism self-check catches a trial whose record depends on the thread it ran in.
 *
 * Harness faults are injected through the test hook of src/campaign/harness.ts
 * (NINELIVES_TEST_HARNESS_FAULT, honoured only under vitest).
 */
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CampaignRecord, Summary } from '../../src/results/summary.js';
import { ROOT, cli, lines, messages, read, removeTemporaryDirectories, requireFreshBuild, smallCampaignText, temporaryDirectory, writeCampaign } from './helpers.js';

const TOTAL = (6 + 3) * 2;

let directory: string;
let campaign: string;
/** a complete run of the small campaign, never changed */
let reference: string;

let copies = 0;
function copyOf(path: string): string {
  const copy = join(directory, `copy-${copies++}`);
  cpSync(path, copy, { recursive: true });
  return copy;
}

function recordsOf(out: string): CampaignRecord[] {
  return lines(read(join(out, 'trials.jsonl'))).map((line) => JSON.parse(line) as CampaignRecord);
}

function summaryOf(out: string): Summary {
  return JSON.parse(read(join(out, 'summary.json'))) as Summary;
}

function writeRecords(out: string, records: readonly CampaignRecord[]): void {
  writeFileSync(join(out, 'trials.jsonl'), records.map((record) => JSON.stringify(record) + '\n').join(''));
}

beforeAll(async () => {
  requireFreshBuild();
  directory = temporaryDirectory();
  campaign = writeCampaign(directory, smallCampaignText({ register: 6, failstop: 3 }));
  reference = join(directory, 'reference');
  const run = await cli(['run', campaign, '--out', reference, '--workers', '2']);
  expect(run.exitCode, run.stderr).toBe(0);
}, 60_000);
afterAll(removeTemporaryDirectories);
afterEach(() => {
  delete process.env.NINELIVES_TEST_HARNESS_FAULT;
  delete process.env.NINELIVES_TEST_HARNESS_MARKER;
});

describe('a partial result says so', () => {
  it.each([
    ['fewer trials than planned', (records: CampaignRecord[]) => ({ kept: records.slice(0, 7), torn: '' }), /^partial: 7 of 18 trials \(11 planned trials are missing\)/],
    ['a torn last line', (records: CampaignRecord[]) => ({ kept: records.slice(0, -1), torn: JSON.stringify(records[records.length - 1]).slice(0, 40) }), /^partial: 17 of 18 trials \(1 planned trial is missing; trials\.jsonl ended in a torn line/],
  ])('report on %s: stderr, report.md, report.html and summary.json', async (_, cut, pattern) => {
    const copy = copyOf(reference);
    const { kept, torn } = cut(recordsOf(reference));
    writeFileSync(join(copy, 'trials.jsonl'), kept.map((record) => JSON.stringify(record) + '\n').join('') + torn);
    const result = await cli(['report', copy]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(messages(result.stderr)).toHaveLength(1);
    expect(messages(result.stderr)[0].replace(/^ninelives: /, '')).toMatch(pattern);
    const partial = summaryOf(copy).partial;
    expect(partial).toMatchObject({ trials: kept.length, planned: TOTAL });
    expect(read(join(copy, 'report.md'))).toContain(`**partial: ${kept.length} of ${TOTAL} trials`);
    expect(read(join(copy, 'report.html'))).toContain(`partial: ${kept.length} of ${TOTAL} trials`);
  });

  it('a complete result has no partial mark', () => {
    expect(summaryOf(reference).partial).toBeUndefined();
    expect(read(join(reference, 'report.md'))).not.toContain('partial');
  });

  it('merge names the missing shards, marks the result partial and exits 1', async () => {
    const shards = [1, 2, 3].map((index) => join(directory, `shard-${index}-of-3`));
    for (const [position, out] of shards.entries()) {
      const run = await cli(['run', campaign, '--out', out, '--shard', `${position + 1}/3`, '--workers', '1']);
      expect(run.exitCode, run.stderr).toBe(0);
    }
    // resumed, a shard stays that shard: without --shard it would grow into the whole campaign
    const before = read(join(shards[0], 'trials.jsonl'));
    for (const [args, holds] of [
      [[], 'shard 1/3 of campaign "small": resume it with --shard 1/3'],
      [['--shard', '2/3'], 'shard 1/3 of campaign "small": resume it with --shard 1/3'],
    ] as const) {
      const resumed = await cli(['run', campaign, '--out', shards[0], '--resume', '--workers', '1', ...args]);
      expect(resumed.exitCode).toBe(2);
      expect(messages(resumed.stderr)).toEqual([`ninelives: ${shards[0]} holds ${holds}, or choose another --out`]);
    }
    const whole = await cli(['run', campaign, '--out', reference, '--resume', '--shard', '1/3', '--workers', '1']);
    expect(messages(whole.stderr)).toEqual([`ninelives: ${reference} holds the whole campaign "small", not a shard: resume it without --shard, or choose another --out`]);
    expect(read(join(shards[0], 'trials.jsonl'))).toBe(before);
    const partialOut = join(directory, 'merged-partial');
    const partial = await cli(['merge', partialOut, shards[0], shards[2]]);
    expect(partial.exitCode).toBe(1);
    expect(messages(partial.stderr)).toEqual([expect.stringMatching(/^ninelives: the merged result is not complete: shard 2 of 3 missing; partial: \d+ of 18 trials/)]);
    expect(summaryOf(partialOut).partial?.planned).toBe(TOTAL);
    const merged = join(directory, 'merged-whole');
    const complete = await cli(['merge', merged, ...shards]);
    expect(complete.exitCode, complete.stderr).toBe(0);
    expect(read(join(merged, 'trials.jsonl'))).toBe(read(join(reference, 'trials.jsonl')));
    expect(read(join(merged, 'summary.json'))).toBe(read(join(reference, 'summary.json')));
  }, 60_000);
});

describe('merging what does not belong together says exactly what it is', () => {
  it('two campaigns whose trial ids coincide', async () => {
    const other = copyOf(reference);
    writeRecords(other, recordsOf(other).map((record) => ({ ...record, campaign: 'other' })));
    writeFileSync(join(other, 'ninelives.json'), JSON.stringify({ ...JSON.parse(read(join(other, 'ninelives.json'))), campaign: 'other' }));
    const result = await cli(['merge', join(directory, 'merged-mixed'), reference, other]);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([expect.stringMatching(/the shards come from different campaigns: "small" seed 5 \(.*\) and "other" seed 5/)]);
  });

  it('the same campaign with other settings', async () => {
    const longer = join(directory, 'longer');
    const file = writeCampaign(directory, smallCampaignText({ register: 6, failstop: 3 }).replace('runLengthMs: 300', 'runLengthMs: 310'), 'longer.yaml');
    const run = await cli(['run', file, '--out', longer, '--workers', '2']);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = await cli(['merge', join(directory, 'merged-settings'), reference, longer]);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([expect.stringMatching(/different settings of campaign "small"/)]);
  }, 60_000);
});

describe('provenance', () => {
  it('every record and summary.json name the ninelives version and source', () => {
    const { version } = JSON.parse(read(join(ROOT, 'package.json'))) as { version: string };
    for (const record of recordsOf(reference)) expect(record.ninelives).toEqual({ version, source: expect.stringMatching(/^(git:[0-9a-f]{40}(\+sha256:[0-9a-f]{64})?|sha256:[0-9a-f]{64})$/) });
    expect(summaryOf(reference).ninelives).toEqual(recordsOf(reference)[0].ninelives);
  });

  it('--resume and merge refuse results of another version, naming both', async () => {
    const older = copyOf(reference);
    const records = recordsOf(older);
    writeRecords(older, records.slice(0, 5).map((record) => ({ ...record, ninelives: { version: '0.0.1', source: 'git:0123456789abcdef0123456789abcdef01234567' } })));
    const resumed = await cli(['run', campaign, '--out', older, '--resume', '--workers', '1']);
    expect(resumed.exitCode).toBe(2);
    expect(messages(resumed.stderr)).toEqual([expect.stringMatching(/was made by ninelives 0\.0\.1 \(git:0123456789ab\), and this is ninelives \d+\.\d+\.\d+ \((git|sha256):[0-9a-f]{12}(\+sha256:[0-9a-f]{12})?\)/)]);
    // complete results of another version are reported again, not refused: nothing is mixed
    const complete = copyOf(reference);
    writeRecords(complete, recordsOf(complete).map((record) => ({ ...record, ninelives: { version: '0.0.1', source: 'git:0123456789abcdef0123456789abcdef01234567' } })));
    const again = await cli(['run', campaign, '--out', complete, '--resume', '--workers', '1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(summaryOf(complete).ninelives).toEqual({ version: '0.0.1', source: 'git:0123456789abcdef0123456789abcdef01234567' });
    const merged = await cli(['merge', join(directory, 'merged-versions'), older, reference]);
    expect(merged.exitCode).toBe(2);
    expect(messages(merged.stderr)).toEqual([expect.stringMatching(/made by different versions: ninelives 0\.0\.1 .* and ninelives \d/)]);
  });
});

describe('when the harness fails', () => {
  const target = '1AppVM/register/microreboot/all/2';

  it.each([
    ['a trial that always throws', 'throw', /Error: injected harness fault/],
    ['a worker thread that dies', 'exit', /worker exited/],
  ])('%s: retried once, then recorded as harnessError; the rest as in a clean run; exit 1', async (_, kind, error) => {
    process.env.NINELIVES_TEST_HARNESS_FAULT = `${kind}:${target}`;
    const out = join(directory, `harness-${kind}`);
    const result = await cli(['run', campaign, '--out', out, '--workers', '2']);
    expect(result.exitCode).toBe(1);
    expect(messages(result.stderr)).toEqual([`ninelives: the campaign had errors: 1 trial failed in the harness (outcome harnessError in ${join(out, 'trials.jsonl')})`]);
    const records = recordsOf(out);
    const failed = records.filter((record) => record.record.outcome === 'harnessError');
    expect(failed.map((record) => record.id)).toEqual([target]);
    expect(failed[0].record).toMatchObject({ outcome: 'harnessError', error: expect.stringMatching(error) });
    const clean = recordsOf(reference);
    expect(records.filter((record) => record.id !== target)).toEqual(clean.filter((record) => record.id !== target));
    expect(summaryOf(out)).toMatchObject({ harnessErrors: 1, trials: TOTAL - 1 });
    expect(read(join(out, 'report.md'))).toContain('1 trial failed in the harness');
    expect(read(join(out, 'trials.csv'))).toMatch(new RegExp(`^${target.replace(/\//g, '\\/')},.*,harnessError,`, 'm'));
  }, 60_000);

  it('in the main thread too (--workers 1)', async () => {
    process.env.NINELIVES_TEST_HARNESS_FAULT = `throw:${target}`;
    const out = join(directory, 'harness-here');
    const result = await cli(['run', campaign, '--out', out, '--workers', '1']);
    expect(result.exitCode).toBe(1);
    expect(summaryOf(out).harnessErrors).toBe(1);
  }, 60_000);

  it('a trial that throws once: the retry gives the clean run\'s files, byte for byte', async () => {
    process.env.NINELIVES_TEST_HARNESS_FAULT = `throw-once:${target}`;
    process.env.NINELIVES_TEST_HARNESS_MARKER = join(directory, 'thrown-once');
    const out = join(directory, 'harness-once');
    const result = await cli(['run', campaign, '--out', out, '--workers', '2']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(existsSync(join(directory, 'thrown-once'))).toBe(true);
    expect(read(join(out, 'trials.jsonl'))).toBe(read(join(reference, 'trials.jsonl')));
    expect(read(join(out, 'summary.json'))).toBe(read(join(reference, 'summary.json')));
  }, 60_000);
});

describe('the determinism self-check', () => {
  const target = '1AppVM/failstop/microreset/all/1';

  it.each([['2'], ['1']])('with --workers %s, catches a record that differs between threads, names both replays, exits 1', async (workers) => {
    process.env.NINELIVES_TEST_HARNESS_FAULT = `nondeterminism:${target}`;
    const out = join(directory, `self-check-${workers}`);
    const result = await cli(['run', campaign, '--out', out, '--workers', workers, '--self-check-every', '1']);
    expect(result.exitCode).toBe(1);
    expect(messages(result.stderr)).toEqual([
      `ninelives: determinism check: trial ${target} gave a different record when run again in another thread; replay the stored one with \`ninelives replay ${out} ${target}\` and run it afresh with \`ninelives inject --config 1AppVM --fault failstop --seed 5 --trial 1 --run-length-ms 300 --mechanism microreset --cpus 8 --memory-gib 8\``,
      `ninelives: the campaign had errors: 1 of ${TOTAL / 2} re-run faults did not reproduce`,
    ]);
  }, 60_000);

  it('passes on an honest run, every fault checked', async () => {
    const out = join(directory, 'self-check-honest');
    const result = await cli(['run', campaign, '--out', out, '--workers', '2', '--self-check-every', '1']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(read(join(out, 'trials.jsonl'))).toBe(read(join(reference, 'trials.jsonl')));
  }, 60_000);
});
