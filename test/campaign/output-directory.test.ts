/**
 * Issue 14, point 2: a user's files are theirs. run, merge and report write only into a
 * directory that is new, empty, or holds a ninelives result of the same campaign (its manifest,
 * ninelives.json, says so; results made before manifests are known by holding only ninelives's
 * files). Every other class of destination (the filesystem root, a system directory, a file, a
 * directory with other files, another campaign's results, a manifest that is not ours, a path
 * that cannot be created) is refused before any work, in one line with exit 2, and nothing in it
 * changes; --force writes into a directory with other files, and never into a system directory.
 * What `ninelives triage` adds (triage.md, triage.json, triage.jsonl, the trials/ pages) is
 * ninelives's own: a triaged result is still accepted, and triage claims a directory as report does.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOutputDirectory, OutputDirectoryError } from '../../src/results/output-directory.js';
import { cli, messages, read, removeTemporaryDirectories, requireFreshBuild, smallCampaignText, spawnCli, temporaryDirectory, waitForLines, writeCampaign } from './helpers.js';

let directory: string;
let campaign: string;
/** a finished run of the small campaign */
let results: string;

beforeAll(async () => {
  requireFreshBuild();
  directory = temporaryDirectory();
  campaign = writeCampaign(directory, smallCampaignText({ register: 3, failstop: 2 }));
  results = join(directory, 'results');
  const run = await cli(['run', campaign, '--out', results, '--workers', '2']);
  expect(run.exitCode, run.stderr).toBe(0);
}, 60_000);
afterAll(removeTemporaryDirectories);

/** Every file under a directory with its content, to show that nothing changed. */
function snapshot(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  if (!statSync(path).isDirectory()) return { '.': read(path) };
  return Object.fromEntries(readdirSync(path, { recursive: true, encoding: 'utf8' }).map((name) => [name, existsSync(join(path, name)) ? safeRead(join(path, name)) : '']));
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '(directory)';
  }
}

interface Destination {
  readonly title: string;
  /** makes the destination; returns its path */
  readonly make: () => string;
  readonly message: RegExp;
  /** whether --force may write there */
  readonly forcible: boolean;
  /** a system path: not read to show it unchanged */
  readonly system?: boolean;
}

let made = 0;
const fresh = (): string => join(directory, `place-${made++}`);

const refused: readonly Destination[] = [
  { title: 'the filesystem root', make: () => '/', message: /is the filesystem root/, forcible: false, system: true },
  { title: 'a system directory', make: () => '/etc', message: /is a system directory/, forcible: false, system: true },
  { title: 'a path under /proc', make: () => '/proc/ninelives-results', message: /is a system directory/, forcible: false, system: true },
  { title: 'a new directory in a system tree', make: () => '/usr/share/ninelives-results', message: /is a system directory, or in one/, forcible: false, system: true },
  { title: 'a device', make: () => '/dev/null', message: /is a system directory, or in one/, forcible: false, system: true },
  {
    title: 'a link to a system directory',
    make: () => {
      const link = fresh();
      symlinkSync('/usr', link);
      return link;
    },
    message: /is a system directory/,
    forcible: false,
    system: true,
  },
  { title: 'an empty name', make: () => '', message: /is empty/, forcible: false },
  {
    title: 'a file',
    make: () => {
      const path = fresh();
      writeFileSync(path, 'my notes');
      return path;
    },
    message: /is a file, not a directory/,
    forcible: false,
  },
  {
    title: 'a path that cannot be created (below a file)',
    make: () => {
      const path = fresh();
      writeFileSync(path, 'my notes');
      return join(path, 'results');
    },
    message: /cannot write to .*ENOTDIR/,
    forcible: false,
  },
  {
    title: 'a directory with the user\'s own report.md and summary.json',
    make: () => {
      const path = fresh();
      mkdirSync(path);
      writeFileSync(join(path, 'report.md'), '# my report\n');
      writeFileSync(join(path, 'summary.json'), '{"mine": true}\n');
      return path;
    },
    message: /is not empty and holds no ninelives result of campaign "small" .*--force/,
    forcible: true,
  },
  {
    title: 'a ninelives result with a file of the user\'s beside it',
    make: () => {
      const path = fresh();
      cpSync(results, path, { recursive: true });
      rmSync(join(path, 'ninelives.json'));
      writeFileSync(join(path, 'notes.txt'), 'mine\n');
      return path;
    },
    message: /holds no ninelives result of campaign "small" \(it has notes\.txt\)/,
    forcible: true,
  },
  {
    title: 'a ninelives.json that is not ours',
    make: () => {
      const path = fresh();
      mkdirSync(path);
      writeFileSync(join(path, 'ninelives.json'), '{"name": "my project"}\n');
      return path;
    },
    message: /is not a ninelives manifest/,
    forcible: true,
  },
  {
    title: 'a manifest whose planned count no run writes (1e300 said "partial: 8 of 1e+300 trials")',
    make: () => {
      const path = fresh();
      cpSync(results, path, { recursive: true });
      const manifest = JSON.parse(read(join(path, 'ninelives.json'))) as Record<string, unknown>;
      writeFileSync(join(path, 'ninelives.json'), JSON.stringify({ ...manifest, planned: 1e300 }));
      return path;
    },
    message: /ninelives\.json is not a ninelives manifest/,
    forcible: true,
  },
  {
    title: 'another campaign\'s results',
    make: () => {
      const path = fresh();
      cpSync(results, path, { recursive: true });
      const manifest = JSON.parse(read(join(path, 'ninelives.json'))) as Record<string, unknown>;
      writeFileSync(join(path, 'ninelives.json'), JSON.stringify({ ...manifest, campaign: 'other' }));
      rmSync(join(path, 'trials.jsonl'));
      return path;
    },
    message: /holds the results of campaign "other", not "small"/,
    forcible: false,
  },
];

describe('ninelives run refuses a destination that is not its own: exit 2, one line, nothing changed', () => {
  it.each(refused.map((entry) => [entry.title, entry] as const))('%s', async (_, { make, message, forcible, system = false }) => {
    const out = make();
    const before = system || out === '' ? undefined : snapshot(out);
    for (const force of forcible ? [] : [[], ['--force']]) {
      const result = await cli(['run', campaign, '--out', out, '--workers', '1', ...force]);
      expect(result.exitCode, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(messages(result.stderr)).toHaveLength(1);
      expect(messages(result.stderr)[0]).toMatch(message);
    }
    if (forcible) {
      const result = await cli(['run', campaign, '--out', out, '--workers', '1']);
      expect(result.exitCode, result.stderr).toBe(2);
      expect(messages(result.stderr)[0]).toMatch(message);
    }
    if (before !== undefined) expect(snapshot(out)).toEqual(before);
  });

  it('a manifest that is a named pipe is not read (the read would block): run and report refuse it', async () => {
    const out = fresh();
    cpSync(results, out, { recursive: true });
    rmSync(join(out, 'ninelives.json'));
    execFileSync('mkfifo', [join(out, 'ninelives.json')]);
    for (const argv of [['run', campaign, '--out', out, '--workers', '1'], ['report', out]]) {
      const result = await cli(argv);
      expect(result.exitCode, argv.join(' ')).toBe(2);
      expect(messages(result.stderr)).toEqual([expect.stringMatching(/ninelives\.json is not a regular file/)]);
    }
  });

  it('--force writes into a directory with other files, and leaves the files it does not write', async () => {
    const out = fresh();
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'mine\n');
    const result = await cli(['run', campaign, '--out', out, '--workers', '1', '--force']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(read(join(out, 'notes.txt'))).toBe('mine\n');
    expect(read(join(out, 'trials.jsonl'))).toBe(read(join(results, 'trials.jsonl')));
  }, 60_000);
});

describe('what is accepted', () => {
  it('a new directory, an empty one, and the same campaign\'s results (with --resume)', async () => {
    const empty = fresh();
    mkdirSync(empty);
    for (const out of [fresh(), empty]) {
      const result = await cli(['run', campaign, '--out', out, '--workers', '1']);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(JSON.parse(read(join(out, 'ninelives.json')))).toMatchObject({ tool: 'ninelives', campaign: 'small', seed: 5, planned: 10 });
    }
    const again = await cli(['run', campaign, '--out', empty, '--workers', '1', '--resume']);
    expect(again.exitCode, again.stderr).toBe(0);
  }, 60_000);

  it('results made before manifests: only ninelives\'s own files, records of the same campaign', async () => {
    const legacy = fresh();
    cpSync(results, legacy, { recursive: true });
    rmSync(join(legacy, 'ninelives.json'));
    const report = await cli(['report', legacy]);
    expect(report.exitCode, report.stderr).toBe(0);
    const resume = await cli(['run', campaign, '--out', legacy, '--workers', '1', '--resume']);
    expect(resume.exitCode, resume.stderr).toBe(0);
  }, 60_000);
});

it('the default directories of shards, then their merge into the campaign\'s default directory', async () => {
  const home = fresh();
  mkdirSync(home);
  const file = writeCampaign(home, smallCampaignText({ register: 3, failstop: 2 }));
  for (const shard of ['1/2', '2/2']) {
    const run = await cliIn(home, ['run', file, '--shard', shard, '--workers', '1']);
    expect(run.exitCode, run.stderr).toBe(0);
  }
  const merged = await cliIn(home, ['merge', 'reports/small', 'reports/small/shard-1-of-2', 'reports/small/shard-2-of-2']);
  expect(merged.exitCode, merged.stderr).toBe(0);
  expect(read(join(home, 'reports/small/trials.jsonl'))).toBe(read(join(results, 'trials.jsonl')));
}, 60_000);

/** The CLI with `directory` as the working directory. */
async function cliIn(directory: string, argv: readonly string[]): Promise<Awaited<ReturnType<typeof cli>>> {
  const previous = process.cwd();
  process.chdir(directory);
  try {
    return await cli(argv);
  } finally {
    process.chdir(previous);
  }
}

describe('report and merge write only where run would', () => {
  it('report refuses a results directory with a file of the user\'s, unless --force', async () => {
    const out = fresh();
    cpSync(results, out, { recursive: true });
    rmSync(join(out, 'ninelives.json'));
    writeFileSync(join(out, 'report.md'), '# my own report\n');
    writeFileSync(join(out, 'mine.txt'), 'mine\n');
    const refusedReport = await cli(['report', out]);
    expect(refusedReport.exitCode).toBe(2);
    expect(messages(refusedReport.stderr)).toEqual([expect.stringMatching(/holds no ninelives result of campaign "small"/)]);
    expect(read(join(out, 'report.md'))).toBe('# my own report\n');
    const forced = await cli(['report', out, '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
  });

  it('merge refuses an output directory of the user\'s, and one of the shards', async () => {
    const out = fresh();
    mkdirSync(out);
    writeFileSync(join(out, 'report.md'), '# my own report\n');
    const intoUsers = await cli(['merge', out, results]);
    expect(intoUsers.exitCode).toBe(2);
    expect(messages(intoUsers.stderr)).toEqual([expect.stringMatching(/is not empty and holds no ninelives result/)]);
    expect(readdirSync(out)).toEqual(['report.md']);
    const intoShard = await cli(['merge', results, results]);
    expect(intoShard.exitCode).toBe(2);
    expect(messages(intoShard.stderr)).toEqual([expect.stringMatching(/is also one of the shards/)]);
    // the same shard twice ("from 2 shards" before), also through another spelling of its path
    // results already there (a copy of a shard typed as OUT, a finished run): merge wrote over them
    const copy = fresh();
    cpSync(results, copy, { recursive: true });
    const before = read(join(copy, 'trials.jsonl'));
    const overResults = await cli(['merge', copy, results]);
    expect(overResults.exitCode).toBe(2);
    expect(messages(overResults.stderr)).toEqual([`ninelives: ${join(copy, 'trials.jsonl')} exists: merge writes a new result and never over one; merge into a new directory`]);
    expect(read(join(copy, 'trials.jsonl'))).toBe(before);
    // an output inside a shard was made there, beside the shard's own files
    const inside = await cli(['merge', join(results, 'merged'), results]);
    expect(inside.exitCode).toBe(2);
    expect(messages(inside.stderr)).toEqual([`ninelives: ${join(results, 'merged')} is inside shard ${results}: merge into a directory of its own`]);
    expect(existsSync(join(results, 'merged'))).toBe(false);
    const twice = await cli(['merge', fresh(), results, `${results}/.`]);
    expect(twice.exitCode).toBe(2);
    expect(messages(twice.stderr)).toEqual([`ninelives: ${results}/. is named twice among the shards: name each shard once`]);
  });

  it('ablate takes microreset or microreboot only (failover ran, with a first stage that recovered everything)', async () => {
    for (const mechanism of ['none', 'failover']) {
      const result = await cli(['ablate', '--mechanism', mechanism, '--out', fresh()]);
      expect(result.exitCode).toBe(2);
      expect(messages(result.stderr)).toEqual([`ninelives: --mechanism expects one of microreset, microreboot, got "${mechanism}"`]);
    }
  });
});

describe('one writer a results directory', () => {
  it('a second run into a directory a run is writing is refused in one line (both ran every trial and wrote each twice); a lock whose process is gone is taken over', async () => {
    const out = fresh();
    const longer = writeCampaign(temporaryDirectory(), smallCampaignText({ register: 40, failstop: 10 }));
    const first = spawnCli(['run', longer, '--out', out, '--workers', '1'], directory);
    await waitForLines(first, join(out, 'trials.jsonl'), 2);
    const second = await cli(['run', longer, '--out', out, '--workers', '1', '--resume']);
    expect(second.exitCode).toBe(2);
    expect(messages(second.stderr)).toEqual([`ninelives: ${out} is in use by process ${first.process.pid}, another ninelives writing there: wait for it to end, or stop it`]);
    first.process.kill('SIGKILL');
    await first.exited;
    // killed with -9, it left its lock: the next run takes it over, and gives the lock back at its end
    expect(read(join(out, '.ninelives.lock'))).toBe(`${first.process.pid}\n`);
    const resumed = await cli(['run', longer, '--out', out, '--workers', '1', '--resume']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(existsSync(join(out, '.ninelives.lock'))).toBe(false);
  }, 120_000);
});

describe('a triaged result is still the campaign\'s own', () => {
  it('triage writes into it; report and run --resume accept its triage files and trial pages, with or without the manifest; triage refuses a directory of the user\'s', async () => {
    const out = fresh();
    cpSync(results, out, { recursive: true });
    const triaged = await cli(['triage', out, '--workers', '1']);
    expect(triaged.exitCode, triaged.stderr).toBe(0);
    for (const name of ['triage.md', 'triage.json', 'triage.jsonl', 'trials']) expect(existsSync(join(out, name)), name).toBe(true);
    for (const withManifest of [true, false]) {
      if (!withManifest) rmSync(join(out, 'ninelives.json'));
      const report = await cli(['report', out]);
      expect(report.exitCode, report.stderr).toBe(0);
      const resume = await cli(['run', campaign, '--out', out, '--workers', '1', '--resume']);
      expect(resume.exitCode, resume.stderr).toBe(0);
    }
    // run --resume wrote the manifest again; without it, a file of the user's makes the directory not ours (as for report)
    rmSync(join(out, 'ninelives.json'));
    writeFileSync(join(out, 'mine.txt'), 'mine\n');
    const before = snapshot(out);
    const refusedTriage = await cli(['triage', out, '--workers', '1']);
    expect(refusedTriage.exitCode).toBe(2);
    expect(messages(refusedTriage.stderr)).toEqual([expect.stringMatching(/holds no ninelives result of campaign "small" \(it has mine\.txt\)/)]);
    expect(snapshot(out)).toEqual(before);
  }, 120_000);
});

it('claimOutputDirectory throws OutputDirectoryError for every refusal, before creating anything', () => {
  const below = join(fresh(), 'a', 'b');
  expect(() => claimOutputDirectory('/', { campaign: 'x', named: '--out' })).toThrow(OutputDirectoryError);
  claimOutputDirectory(below, { campaign: 'x', named: '--out' });
  expect(existsSync(below)).toBe(true);
});
