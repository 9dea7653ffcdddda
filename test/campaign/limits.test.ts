/**
 * Issue 14, point 1: every size a user gives is bounded before any work. Each class of
 * oversized input (the campaign file's bytes, what it is, YAML alias expansion and nesting, trial
 * counts in the file or from --trials, shards beyond the trials) is one stderr line, exit 2, and
 * no output directory; worker threads beyond what is useful are capped with a note. The counting
 * behind the checks agrees with the plan itself (properties).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseWorkers, MAX_CAMPAIGN_FILE_BYTES, MAX_NESTING_DEPTH, MAX_SEED, MAX_TRIALS, MAX_WORKERS_PER_CORE, plannedFaultCount, plannedTrialCount, shardShare } from '../../src/campaign/limits.js';
import { inShard, planTrials } from '../../src/campaign/plan.js';
import { loadCampaign, parseCampaign } from '../../src/campaign/spec.js';
import { cli, messages, removeTemporaryDirectories, requireFreshBuild, smallCampaignText, temporaryDirectory, writeCampaign } from './helpers.js';

const HEAD = ['name: limits', 'seed: 1', 'configurations: [1AppVM]', 'runLengthMs: 300'];

/** An alias bomb: each level a list of nine aliases of the level below. */
function aliasBomb(levels: number): string {
  const names = 'abcdefghijklmnop';
  const lines = [`${names[0]}: &${names[0]} [x, x, x, x, x, x, x, x, x]`];
  for (let level = 1; level < levels; level++) lines.push(`${names[level]}: &${names[level]} [${Array(9).fill(`*${names[level - 1]}`).join(', ')}]`);
  return lines.join('\n');
}

interface Oversized {
  readonly title: string;
  readonly text: string;
  readonly args?: readonly string[];
  readonly message: RegExp;
}

const oversized: readonly Oversized[] = [
  { title: 'a trial count of 10^12', text: [...HEAD, 'faults: { register: 1000000000000 }', 'mechanisms: [microreset]'].join('\n'), message: /faults\.register: .*1000000/ },
  { title: 'trial counts each allowed but too many together', text: [...HEAD, `faults: { register: ${MAX_TRIALS}, failstop: ${MAX_TRIALS} }`, 'mechanisms: [microreset, microreboot]'].join('\n'), message: /plans 4000000 trials, more than 1000000/ },
  { title: '--trials beyond the limit', text: smallCampaignText(), args: ['--trials', String(MAX_TRIALS + 1)], message: /--trials expects an integer from 1 to 1000000/ },
  { title: '--trials within the limit but too many with the mechanisms', text: smallCampaignText(), args: ['--trials', String(MAX_TRIALS)], message: /--trials 1000000 plans 4000000 trials, more than 1000000/ },
  { title: 'an alias bomb', text: [...HEAD, 'faults: { register: 2 }', 'mechanisms: [microreset]', 'description: bomb', 'x:', ...aliasBomb(8).split('\n').map((line) => `  ${line}`)].join('\n'), message: /YAML: aliases expand into too many values/ },
  { title: 'flow collections nested thousands deep', text: [...HEAD, `description: ${'['.repeat(5000)}${']'.repeat(5000)}`].join('\n'), message: new RegExp(`YAML: nested more than ${MAX_NESTING_DEPTH} levels deep`) },
  { title: 'block mappings nested past the limit', text: [...HEAD, 'x:', ...Array.from({ length: MAX_NESTING_DEPTH + 2 }, (_, depth) => `${'  '.repeat(depth + 1)}k${depth}:`)].join('\n'), message: /YAML: nested more than \d+ levels deep/ },
  { title: 'a file over the size limit', text: `# ${'x'.repeat(MAX_CAMPAIGN_FILE_BYTES)}\n${smallCampaignText()}`, message: /bytes, more than a campaign file may have/ },
  { title: 'a shard beyond the trials', text: smallCampaignText({ register: 2, failstop: 2 }), args: ['--shard', '3/5'], message: /--shard 3\/5 selects no trials/ },
];

let directory: string;
beforeAll(() => {
  directory = temporaryDirectory();
});
afterAll(removeTemporaryDirectories);

describe('a size beyond its limit: exit 2, one line, nothing written', () => {
  it.each(oversized.map((entry) => [entry.title, entry] as const))('%s', async (title, { text, args = [], message }) => {
    const file = writeCampaign(directory, text, `${title.replace(/\W+/g, '-')}.yaml`);
    const out = join(directory, `out-${title.replace(/\W+/g, '-')}`);
    const result = await cli(['run', file, '--out', out, ...args]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(messages(result.stderr)).toHaveLength(1);
    expect(messages(result.stderr)[0]).toMatch(/^ninelives: /);
    expect(messages(result.stderr)[0]).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('a seed beyond 32 bits, a trial index beyond a campaign\'s, or a run too short to boot: refused (a seed of 2^32 repeated seed 0\'s trials)', async () => {
    for (const [argv, message] of [
      [['inject', '--fault', 'failstop', '--seed', String(MAX_SEED + 1)], `--seed expects an integer from 0 to ${MAX_SEED}`],
      [['inject', '--fault', 'failstop', '--trial', String(MAX_TRIALS + 1)], `--trial expects an integer from 0 to ${MAX_TRIALS}`],
      [['golden', '--seed', String(2 ** 40)], `--seed expects an integer from 0 to ${MAX_SEED}`],
      // as in campaign files: a shorter run does not get through boot
      [['inject', '--fault', 'failstop', '--run-length-ms', '5'], '--run-length-ms expects an integer from 10 to 60000'],
      [['ablate', '--mechanism', 'microreset', '--seed', String(MAX_SEED + 1), '--out', join(directory, 'out-ablate-seed')], `--seed expects an integer from 0 to ${MAX_SEED}`],
    ] as const) {
      const result = await cli([...argv]);
      expect(result.exitCode, argv.join(' ')).toBe(2);
      expect(messages(result.stderr)).toEqual([expect.stringContaining(message)]);
    }
    expect(existsSync(join(directory, 'out-ablate-seed'))).toBe(false);
  });

  it('lists typed on the command line: at most 64 names, none twice (3,000 repeats were each run, or each written into the record)', async () => {
    const many = Array.from({ length: 65 }, () => 'deterministic').join(',');
    for (const [argv, message] of [
      [['check', '--invariant', many], '--invariant names 65 values, more than 64'],
      [['check', '--invariant', 'deterministic', '--invariant', 'deterministic'], '--invariant names deterministic twice'],
      [['check', '--disable', 'clear-irq-count,clear-irq-count'], '--disable names clear-irq-count twice'],
      [['inject', '--fault', 'failstop', '--mechanism', 'microreset', '--disable', 'discard-threads,discard-threads'], '--disable names discard-threads twice'],
    ] as const) {
      const result = await cli([...argv]);
      expect(result.exitCode, argv.join(' ')).toBe(2);
      expect(messages(result.stderr)).toEqual([`ninelives: ${message}`]);
    }
  });

  it.skipIf(process.platform === 'win32')('a device or a pipe is not read', async () => {
    const fifo = join(directory, 'campaign.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const path of ['/dev/zero', fifo]) {
      const result = await cli(['run', path, '--out', join(directory, 'out-device')]);
      expect(result.exitCode).toBe(2);
      expect(messages(result.stderr)).toEqual([`ninelives: ${path}: not a regular file (a device or a pipe is not read)`]);
    }
  });
});

describe('worker threads', () => {
  beforeAll(requireFreshBuild);

  it('beyond the faults to inject are capped, with a note, and the run completes', async () => {
    const file = writeCampaign(directory, smallCampaignText({ name: 'workers', register: 2, failstop: 1 }), 'workers.yaml');
    const result = await cli(['run', file, '--out', join(directory, 'out-workers'), '--workers', '4096']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(messages(result.stderr)).toEqual([`ninelives: note: --workers 4096 capped to ${Math.min(3, availableParallelism() * MAX_WORKERS_PER_CORE)}: ${3 <= availableParallelism() * MAX_WORKERS_PER_CORE ? 'the run has 3 faults to inject' : `this machine has ${availableParallelism()} cores`}`]);
  }, 60_000);

  it('are never more than asked, than the faults, or than the cores allow, and at least one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 512 }), (requested, faults, cores) => {
        const { workers, note } = chooseWorkers(requested, faults, cores);
        expect(workers).toBeGreaterThanOrEqual(1);
        expect(workers).toBeLessThanOrEqual(Math.max(1, Math.min(requested, faults, cores * MAX_WORKERS_PER_CORE)));
        expect(note === undefined).toBe(workers === requested);
      }),
    );
  });
});

describe('counting the plan without planning it', () => {
  const campaignArbitrary = fc.record({
    configurations: fc.subarray(['1AppVM', '3AppVM', '1AppVM-blk'], { minLength: 1 }),
    register: fc.integer({ min: 1, max: 12 }),
    failstop: fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
    mechanisms: fc.subarray(['microreset', 'microreboot', 'none'], { minLength: 1 }),
    trials: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }),
    shardCount: fc.integer({ min: 1, max: 7 }),
  });

  it('gives the plan\'s length, whole and per shard, and shards add up to the whole', () => {
    fc.assert(
      fc.property(campaignArbitrary, ({ configurations, register, failstop, mechanisms, trials, shardCount }) => {
        const faults = failstop === undefined ? `{ register: ${register} }` : `{ register: ${register}, failstop: ${failstop} }`;
        const campaign = parseCampaign([`name: count`, 'seed: 3', `configurations: [${configurations.join(', ')}]`, `faults: ${faults}`, `mechanisms: [${mechanisms.join(', ')}]`].join('\n'), 'count.yaml');
        const size = { configurations: campaign.configurations.length, faults: Object.values(campaign.faults), variants: campaign.variants.length };
        const plan = planTrials(campaign, trials);
        expect(plannedTrialCount(size, trials)).toBe(plan.length);
        expect(plannedFaultCount(size, trials) * campaign.variants.length).toBe(plan.length);
        let sum = 0;
        for (let index = 1; index <= shardCount; index++) {
          const shard = { index, count: shardCount };
          const count = plannedTrialCount(size, trials, shard);
          expect(count).toBe(plan.filter((job) => inShard(job, shard)).length);
          sum += count;
        }
        expect(sum).toBe(plan.length);
      }),
    );
  });

  it('shardShare counts the indexes a shard takes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), (count, index, extra) => {
        const shard = { index, count: index + extra - 1 };
        const taken = Array.from({ length: count }, (_, trial) => trial).filter((trial) => trial % shard.count === shard.index - 1).length;
        expect(shardShare(count, shard)).toBe(taken);
      }),
    );
  });
});

it('a campaign file of any size up to the limit loads', () => {
  const text = smallCampaignText();
  const padding = MAX_CAMPAIGN_FILE_BYTES - text.length - 3;
  const path = writeCampaign(directory, `# ${'x'.repeat(padding)}\n${text}`, 'at-the-limit.yaml');
  expect(() => loadCampaign(path)).not.toThrow();
});
