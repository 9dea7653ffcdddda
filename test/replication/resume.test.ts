/**
 * A failover campaign gives the same trials.jsonl and summary.json, byte for byte, when it is
 * killed (SIGKILL) half-way and resumed with another worker count; and a failover trial with
 * its own epoch and heartbeat periods is replayed exactly by the command its record prints.
 *
 * Child processes run the compiled CLI: run `npm run build` first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTrialEntry, type CampaignRecord } from '../../src/results/summary.js';
import { cli, completeLines, read, removeTemporaryDirectories, requireFreshBuild, spawnCli, temporaryDirectory, waitForLines, writeCampaign } from '../campaign/helpers.js';

const HOST_FAILSTOP_TRIALS = 4;
const REGISTER_TRIALS = 8;
const VARIANTS = 2;
const TOTAL = (HOST_FAILSTOP_TRIALS + REGISTER_TRIALS) * VARIANTS;
const STOP_AFTER = 4;

const CAMPAIGN = [
  'name: failover-resume',
  'seed: 1',
  'configurations: [1AppVM]',
  'runLengthMs: 400',
  'faults:',
  `  hostFailstop: ${HOST_FAILSTOP_TRIALS}`,
  `  register: ${REGISTER_TRIALS}`,
  'mechanisms: [failover, { name: failover, epochMs: 10, heartbeatMs: 20 }]',
  '',
].join('\n');

let directory: string;
let campaign: string;
let reference: { trials: string; summary: string };

function resultsIn(out: string): { trials: string; summary: string } {
  return { trials: read(join(out, 'trials.jsonl')), summary: read(join(out, 'summary.json')) };
}

function entries(text: string): CampaignRecord[] {
  return text.split('\n').slice(0, -1).map((line) => JSON.parse(line) as CampaignRecord);
}

beforeAll(async () => {
  requireFreshBuild();
  directory = temporaryDirectory();
  campaign = writeCampaign(directory, CAMPAIGN);
  const out = join(directory, 'reference');
  const result = await spawnCli(['run', campaign, '--out', out, '--workers', '1'], directory).exited;
  expect(result.code, result.stderr).toBe(0);
  reference = resultsIn(out);
}, 300_000);

afterAll(removeTemporaryDirectories);

describe('a failover campaign', () => {
  it('records each trial\'s periods, and recovers host fail-stops on the backup', () => {
    const trials = entries(reference.trials).filter(isTrialEntry);
    expect(trials).toHaveLength(TOTAL);
    const fast = trials.filter((entry) => entry.record.replication !== undefined);
    expect(fast).toHaveLength(TOTAL / VARIANTS);
    for (const entry of fast) expect(entry.record.replication).toEqual({ epochMs: 10, heartbeatMs: 20 });
    const hostStops = trials.filter((entry) => entry.record.faultType === 'hostFailstop' && entry.record.outcome === 'detected');
    expect(hostStops.length).toBeGreaterThan(0);
    for (const entry of hostStops) if (entry.record.outcome === 'detected') expect(entry.record.detection.detector).toBe('heartbeat');
  });

  it('prices each failover variant at its own epoch in the summary', () => {
    const summary = JSON.parse(reference.summary) as { groups: { mechanism: string; stage: string; faultType: string; overheadPercent?: number }[] };
    const overheadOf = (stage: string): number | undefined => summary.groups.find((group) => group.mechanism === 'failover' && group.stage === stage && group.faultType === 'register')?.overheadPercent;
    expect(overheadOf('all')).toBeGreaterThan(0);
    expect(overheadOf('epoch 10 ms, heartbeat 20 ms')).toBeGreaterThan(overheadOf('all') ?? Infinity);
  });

  it('killed with SIGKILL half-way and resumed with two workers gives the same results', async () => {
    const out = join(directory, 'killed');
    const trials = join(out, 'trials.jsonl');
    const child = spawnCli(['run', campaign, '--out', out, '--workers', '1'], directory);
    await waitForLines(child, trials, STOP_AFTER);
    child.process.kill('SIGKILL');
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
    const kept = completeLines(trials);
    expect(kept, 'the run finished before it was killed: make the campaign bigger').toBeLessThan(TOTAL);
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
    const result = await cli(['run', campaign, '--out', out, '--workers', '2', '--resume']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`ran ${TOTAL - kept} trials (${TOTAL} in the results)`);
    expect(resultsIn(out)).toEqual(reference);
  }, 300_000);

  it('replays a trial with its own periods byte for byte, from its printed command and from the results', async () => {
    const entry = entries(reference.trials).filter(isTrialEntry).find((candidate) => candidate.record.replication !== undefined && candidate.record.faultType === 'hostFailstop');
    expect(entry).toBeDefined();
    if (entry === undefined) return;
    expect(entry.record.replay).toContain('--mechanism failover');
    expect(entry.record.replay).toContain('--epoch-ms 10 --heartbeat-ms 20');
    const injected = await cli(entry.record.replay.split(' ').slice(1));
    expect(injected.exitCode, injected.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(injected.stdout))).toBe(JSON.stringify(entry.record));
    const replayed = await cli(['replay', join(directory, 'reference'), entry.id]);
    expect(replayed.exitCode, replayed.stderr).toBe(0);
    expect(replayed.stdout).toContain('reproduced');
  }, 120_000);

  it('refuses periods on a mechanism that replicates nothing: one line, exit 2', async () => {
    const result = await cli(['inject', '--config', '1AppVM', '--fault', 'register', '--mechanism', 'microreset', '--epoch-ms', '10']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain("--epoch-ms and --heartbeat-ms are failover's periods, not microreset's");
  });
});
