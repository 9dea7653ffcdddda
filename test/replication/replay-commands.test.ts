/**
 * Every replay-failover trial is reproducible from its record alone: its options (checkpoint
 * interval, ordering, timing adjustment) and the key-value server's (race rate, imbalance) are
 * in its spec and record when a campaign sets them, the command its record prints runs it again
 * byte for byte, and `ninelives replay` reproduces it from the results. Records of groups that
 * set none of them do not have the keys. A mistaken value is one line and exit 2, before any work.
 *
 * The campaign runs in workers of the compiled CLI: run `npm run build` first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayCostWhenNothingFails } from '../../src/results/replication-cost.js';
import { isTrialEntry, type CampaignRecord } from '../../src/results/summary.js';
import { cli, messages, read, removeTemporaryDirectories, requireFreshBuild, temporaryDirectory, writeCampaign } from '../campaign/helpers.js';

const CAMPAIGN = [
  'name: replay-commands',
  'seed: 3',
  'configurations: [3AppVM-mt]',
  'runLengthMs: 400',
  'faults:',
  '  hostFailstop: 2',
  'mechanisms:',
  '  - replay-failover',
  '  - { name: replay-failover, checkpointMs: 1000, ordering: deterministic, timingAdjustment: false, raceRate: 0, imbalance: 1.5 }',
  '  - { name: failover, raceRate: 0.25 }',
  '',
].join('\n');

let directory: string;
let out: string;
let trials: CampaignRecord[];

beforeAll(async () => {
  requireFreshBuild();
  directory = temporaryDirectory();
  out = join(directory, 'results');
  const result = await cli(['run', writeCampaign(directory, CAMPAIGN), '--out', out, '--workers', '1']);
  expect(result.exitCode, result.stderr).toBe(0);
  trials = read(join(out, 'trials.jsonl'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CampaignRecord);
}, 300_000);

afterAll(removeTemporaryDirectories);

function entryOf(stage: string): CampaignRecord & { record: { replay: string } } {
  const entry = trials.filter(isTrialEntry).find((candidate) => candidate.stage === stage);
  expect(entry, `no trial in stage ${stage}`).toBeDefined();
  return entry as CampaignRecord & { record: { replay: string } };
}

const SET = '1000ms deterministic unadjusted, race 0, imbalance 1.5';

describe('a replay-failover trial', () => {
  it("carries its group's options in its record and its command only when the group sets them", () => {
    const set = entryOf(SET);
    expect(set.record).toMatchObject({ replayOptions: { checkpointMs: 1000, ordering: 'deterministic', timingAdjustment: false }, kvServer: { raceRate: 0, imbalance: 1.5 } });
    expect(set.record.replay).toContain('--mechanism replay-failover');
    expect(set.record.replay).toContain('--checkpoint-ms 1000 --ordering deterministic --timing-adjustment off --race-rate 0 --imbalance 1.5');
    const plain = entryOf('100ms log adjusted');
    expect(plain.record).not.toHaveProperty('replayOptions');
    expect(plain.record).not.toHaveProperty('kvServer');
    expect(plain.record.replay).not.toMatch(/--checkpoint-ms|--ordering|--timing-adjustment|--race-rate|--imbalance/);
    const failover = entryOf('race 0.25');
    expect(failover.record).toMatchObject({ kvServer: { raceRate: 0.25 } });
    expect(failover.record).not.toHaveProperty('replayOptions');
    expect(failover.record.replay).toContain('--mechanism failover');
    expect(failover.record.replay).toContain('--race-rate 0.25');
  });

  it("is priced in the summary with its server's options: Kendo's wait grows with the imbalance the group sets", () => {
    const summary = JSON.parse(read(join(out, 'summary.json'))) as { groups: { stage: string; overheadPercent?: number }[] };
    const unbalanced = summary.groups.find((group) => group.stage === SET)?.overheadPercent;
    const balanced = replayCostWhenNothingFails('3AppVM-mt', 3, { checkpointMs: 1000, ordering: 'deterministic' }).overheadPercent;
    expect(unbalanced).toBeGreaterThan(balanced);
  }, 120_000);

  it('records the backup host it replayed on: its CPU speeds and interrupt delays', () => {
    const set = entryOf(SET);
    const recovery = set.record.outcome === 'detected' ? set.record.recovery : undefined;
    const work = recovery?.steps.find((step) => step.step === 'restoreCheckpoint')?.work ?? {};
    expect(Object.keys(work)).toEqual(expect.arrayContaining(['speed0', 'speed1', 'interruptDelay0Ns', 'interruptDelay1Ns']));
  });

  it.each([SET, '100ms log adjusted', 'race 0.25'])('%s: its printed command and `ninelives replay` reproduce its record byte for byte', async (stage) => {
    const entry = entryOf(stage);
    const injected = await cli(entry.record.replay.split(' ').slice(1));
    expect(injected.exitCode, injected.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(injected.stdout))).toBe(JSON.stringify(entry.record));
    const replayed = await cli(['replay', out, entry.id]);
    expect(replayed.exitCode, replayed.stderr).toBe(0);
    expect(replayed.stdout).toContain('reproduced');
  }, 120_000);
});

describe('a mistaken option: one line, exit 2, before any work', () => {
  const inject = ['inject', '--fault', 'hostFailstop'];

  it.each([
    [[...inject, '--config', '3AppVM', '--race-rate', '0.2'], "--race-rate and --imbalance are options of 3AppVM-mt's key-value server, not of 3AppVM"],
    [[...inject, '--config', '3AppVM-mt', '--race-rate', '1.5'], '--race-rate expects a number from 0 to 1, got "1.5"'],
    [[...inject, '--config', '3AppVM-mt', '--imbalance', 'much'], '--imbalance expects a number from 0 to 10, got "much"'],
    [[...inject, '--config', '3AppVM-mt', '--mechanism', 'failover', '--ordering', 'log'], '--checkpoint-ms, --ordering and --timing-adjustment are options of replay-failover, not of failover'],
    [[...inject, '--config', '3AppVM-mt', '--mechanism', 'replay-failover', '--ordering', 'kendo'], '--ordering expects one of log, deterministic, none, got "kendo"'],
    [[...inject, '--config', '3AppVM-mt', '--mechanism', 'replay-failover', '--timing-adjustment', 'yes'], '--timing-adjustment expects one of on, off, got "yes"'],
  ])('inject %j', async (argv, message) => {
    const result = await cli(argv);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([`ninelives: ${message}`]);
  });

  it.each([
    ['raceRate: 2', /mechanisms\.0\.raceRate: .*(1|less)/, '[3AppVM-mt]'],
    ['imbalance: -1', /mechanisms\.0\.imbalance: /, '[3AppVM-mt]'],
    ['raceRate: 0.2', /mechanisms\.0: raceRate and imbalance are options of 3AppVM-mt's key-value server, and the campaign also runs 3AppVM$/, '[3AppVM-mt, 3AppVM]'],
  ])('a campaign entry with %s', async (option, message, configurations) => {
    const text = ['name: wrong', 'seed: 1', `configurations: ${configurations}`, 'faults: { hostFailstop: 1 }', `mechanisms: [{ name: replay-failover, ${option} }]`, ''].join('\n');
    const file = writeCampaign(directory, text, 'wrong.yaml');
    const target = join(directory, 'wrong-out');
    const result = await cli(['run', file, '--out', target]);
    expect(result.exitCode, result.stderr).toBe(2);
    expect(messages(result.stderr)).toHaveLength(1);
    expect(messages(result.stderr)[0]).toMatch(message);
    expect(existsSync(target)).toBe(false);
  });
});
