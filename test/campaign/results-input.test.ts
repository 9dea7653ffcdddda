/**
 * Issue 14: a results directory is user input too. What report, merge, replay and --resume read
 * from it is bounded and checked before it is used: a results file that is not a regular file
 * (a pipe would block, a link would lead a rewrite elsewhere), a line too long to be a record, a
 * stored spec that asks for more than a campaign file may (replay runs it), a shard split beyond
 * the limit. Each is one line, exit 2, and nothing is changed.
 */
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES } from '../../src/results/lines.js';
import { storedSpecProblem } from '../../src/campaign/stored-spec.js';
import { pageName } from '../../src/cli/trial-pages.js';
import type { CampaignRecord } from '../../src/results/summary.js';
import { cli, lines, messages, read, removeTemporaryDirectories, requireFreshBuild, smallCampaignText, temporaryDirectory, writeCampaign } from './helpers.js';

let directory: string;
let campaign: string;
let results: string;
let copies = 0;

function copyOfResults(): string {
  const copy = join(directory, `copy-${copies++}`);
  cpSync(results, copy, { recursive: true });
  return copy;
}

beforeAll(async () => {
  requireFreshBuild();
  directory = temporaryDirectory();
  campaign = writeCampaign(directory, smallCampaignText({ register: 2, failstop: 1 }));
  results = join(directory, 'results');
  const run = await cli(['run', campaign, '--out', results, '--workers', '1']);
  expect(run.exitCode, run.stderr).toBe(0);
}, 60_000);
afterAll(removeTemporaryDirectories);

describe('a results file that is not a regular file', () => {
  it.each([
    ['a link to a file of the user\'s', (path: string) => {
      const target = join(directory, `users-file-${copies}`);
      writeFileSync(target, 'precious, no newline at the end');
      symlinkSync(target, path);
    }],
    ['a named pipe', (path: string) => execFileSync('mkfifo', [path])],
    ['a directory', (path: string) => mkdirSync(path)],
  ])('%s: report, run --resume, merge, triage, query and export refuse it', async (_, make) => {
    const copy = copyOfResults();
    rmSync(join(copy, 'trials.jsonl'));
    make(join(copy, 'trials.jsonl'));
    const commands = [
      ['report', copy],
      ['run', campaign, '--out', copy, '--resume', '--workers', '1'],
      ['merge', join(directory, `merged-${copies}`), copy],
      ['triage', copy, '--workers', '1'],
      ['query', copy, 'SELECT count(*) FROM trials'],
      ['export', copy, '--parquet', join(directory, `export-${copies}.parquet`)],
    ];
    for (const argv of commands) {
      const result = await cli(argv);
      expect(result.exitCode, argv.join(' ')).toBe(2);
      expect(messages(result.stderr)).toEqual([expect.stringMatching(/trials\.jsonl is not a regular file/)]);
    }
  });
});

it('a trial page that is a link: triage refuses the directory and the linked file stays as it was', async () => {
  const copy = copyOfResults();
  const id = (JSON.parse(lines(read(join(copy, 'trials.jsonl')))[0]) as CampaignRecord).id;
  const usersFile = join(directory, `users-page-${copies}`);
  writeFileSync(usersFile, 'precious');
  mkdirSync(join(copy, 'trials'));
  symlinkSync(usersFile, join(copy, pageName(id)));
  const result = await cli(['triage', copy, '--page', id]);
  expect(result.exitCode).toBe(2);
  expect(messages(result.stderr)).toEqual([expect.stringMatching(/trials\/.*\.html is not a regular file: ninelives replaces its trial pages, so it refuses/)]);
  expect(read(usersFile)).toBe('precious');
});

it('a trial twice, or a record whose id names another trial: report and run --resume refuse it in one line, exit 2, and leave the file as it is', async () => {
  const twice = copyOfResults();
  const path = join(twice, 'trials.jsonl');
  const first = lines(read(path))[0];
  writeFileSync(path, read(path) + first + '\n');
  const id = (JSON.parse(first) as CampaignRecord).id;
  for (const argv of [['report', twice], ['run', campaign, '--out', twice, '--resume', '--workers', '1']]) {
    const result = await cli(argv);
    expect(result.exitCode, argv.join(' ')).toBe(2);
    expect(messages(result.stderr)).toEqual([expect.stringMatching(new RegExp(`trials\\.jsonl (lines 1 and 7 are the same trial \\(${id}\\)|holds trial ${id} twice): a trial is counted once; remove one$`))]);
  }
  expect(lines(read(path))).toHaveLength(7);
  const moved = copyOfResults();
  const record = JSON.parse(lines(read(join(moved, 'trials.jsonl')))[0]) as CampaignRecord;
  writeFileSync(join(moved, 'trials.jsonl'), JSON.stringify({ ...record, record: { ...record.record, configuration: '9AppVM' } }) + '\n');
  const result = await cli(['report', moved]);
  expect(result.exitCode).toBe(2);
  expect(messages(result.stderr)).toEqual([expect.stringMatching(/line 1: its id .* names another trial than its record \(9AppVM, /)]);
});

it('records of more than one version: report writes the reports and says so on stderr (it said nothing)', async () => {
  const mixed = copyOfResults();
  const path = join(mixed, 'trials.jsonl');
  const [first, ...rest] = lines(read(path));
  const older = JSON.parse(first) as CampaignRecord;
  writeFileSync(path, [JSON.stringify({ ...older, ninelives: { version: '0.0.1', source: 'git:0000000' } }), ...rest].join('\n') + '\n');
  const result = await cli(['report', mixed]);
  expect(result.exitCode, result.stderr).toBe(0);
  expect(messages(result.stderr)).toEqual([`ninelives: note: the records of ${path} were made by more than one version of ninelives (summary.json says "mixed"): their numbers may not be comparable`]);
  expect(JSON.parse(read(join(mixed, 'summary.json')))).toMatchObject({ ninelives: 'mixed' });
});

it('more trials than the manifest plans: report says the two are not of one run (it said nothing)', async () => {
  const copy = copyOfResults();
  const manifest = join(copy, 'ninelives.json');
  const held = lines(read(join(copy, 'trials.jsonl'))).length;
  writeFileSync(manifest, JSON.stringify({ ...(JSON.parse(read(manifest)) as object), planned: 2 }));
  const result = await cli(['report', copy]);
  expect(result.exitCode, result.stderr).toBe(0);
  expect(messages(result.stderr)).toEqual([`ninelives: note: ${join(copy, 'trials.jsonl')} holds ${held} trials, more than the 2 its manifest (ninelives.json) plans: the two are not of one run`]);
});

it('a line too long to be a record: one line, exit 2', async () => {
  const copy = copyOfResults();
  writeFileSync(join(copy, 'trials.jsonl'), read(join(results, 'trials.jsonl')) + 'x'.repeat(MAX_LINE_BYTES + 10));
  const result = await cli(['report', copy]);
  expect(result.exitCode).toBe(2);
  expect(messages(result.stderr)).toEqual([expect.stringMatching(/trials\.jsonl line 7 is longer than \d+ bytes: not a trial record/)]);
});

describe('replay runs a stored spec only within the limits of a campaign file', () => {
  const changes: readonly [string, Record<string, unknown>, RegExp][] = [
    ['an endless run', { runLengthNs: 1e15 }, /spec\.runLengthNs: /],
    ['an unknown configuration', { configuration: '99AppVM' }, /spec\.configuration: /],
    ['a step that does not exist', { disabledSteps: ['format-disk'] }, /spec\.disabledSteps: microreset has no step "format-disk"/],
    ['a host of a billion CPUs', { host: { cpus: 1e9, memoryGiB: 8 } }, /spec\.host\.cpus: /],
    ['a negative trial index', { trialIndex: -1 }, /spec\.trialIndex: /],
  ];

  it.each(changes)('%s', async (_, change, message) => {
    const copy = copyOfResults();
    const records = lines(read(join(copy, 'trials.jsonl'))).map((line) => JSON.parse(line) as CampaignRecord);
    const target = records.find((record) => record.record.mechanism === 'microreset') as CampaignRecord;
    const tampered = records.map((record) => (record.id === target.id ? { ...record, spec: { ...record.spec, ...change } } : record));
    writeFileSync(join(copy, 'trials.jsonl'), tampered.map((record) => JSON.stringify(record) + '\n').join(''));
    const before = readFileSync(join(copy, 'trials.jsonl'));
    const result = await cli(['replay', copy, target.id]);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([expect.stringMatching(message)]);
    expect(readFileSync(join(copy, 'trials.jsonl'))).toEqual(before);
  });

  it('every stored spec of a real run passes', () => {
    for (const line of lines(read(join(results, 'trials.jsonl')))) expect(storedSpecProblem((JSON.parse(line) as CampaignRecord).spec)).toBeUndefined();
  });
});

it('a split into more shards than the limit: one line, exit 2', async () => {
  const result = await cli(['run', campaign, '--out', join(directory, 'many-shards'), '--shard', '1/1000000000']);
  expect(result.exitCode).toBe(2);
  expect(messages(result.stderr)).toEqual([expect.stringMatching(/--shard expects i\/n with 1 <= i <= n <= 100000/)]);
});

describe('trial page names', () => {
  it('are distinct for distinct trial ids (property), and a plain id reads as itself', () => {
    const part = fc.stringMatching(/^[a-z0-9 _+.,-]{1,6}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.array(part, { minLength: 5, maxLength: 5 }).map((parts) => parts.join('/')), { minLength: 2, maxLength: 30 }), (ids) => {
        expect(new Set(ids.map(pageName)).size).toBe(ids.length);
      }),
      { numRuns: 300 },
    );
    expect(pageName('3AppVM/register/microreset/all/12')).toBe('trials/3AppVM_register_microreset_all_12.html');
    expect(pageName('1AppVM/failstop/microreset/3 + retry-hypercalls/7')).toMatch(/^trials\/1AppVM_failstop_microreset_3_retry-hypercalls_7~[0-9a-f]{12}\.html$/);
  });
});
