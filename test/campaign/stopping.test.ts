/**
 * Stopping when the answer is known. The rule's intervals cover a known Bernoulli rate about as
 * often as their confidence says, although the rule looks at them repeatedly (simulated), and a
 * campaign that stops at a precision gives the same bytes whatever the worker count or a
 * resume after SIGKILL (run through the built CLI).
 */
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import seedrandom from 'seedrandom';
import { afterAll, describe, expect, it } from 'vitest';
import { meetsMargin, halfWidth, type StopRule } from '../../src/results/stopping.js';
import { wilson } from '../../src/results/statistics.js';
import { StoppingRounds } from '../../src/campaign/stopping.js';
import { planTrials } from '../../src/campaign/plan.js';
import { parseCampaign } from '../../src/campaign/spec.js';
import type { Summary } from '../../src/results/summary.js';
import { UNFINISHED } from '../../src/results/result-facts.js';
import { cli, messages, read, removeTemporaryDirectories, requireFreshBuild, spawnCli, temporaryDirectory, waitForLines, writeCampaign } from './helpers.js';

afterAll(removeTemporaryDirectories);

/** Draws Bernoulli(rate) trials, checking the rule every `every` trials, up to `limit`: the interval at the stop. */
function runRule(rate: number, rule: StopRule, limit: number, random: () => number): { low: number; high: number; trials: number } {
  let recovered = 0;
  for (let trials = 1; trials <= limit; trials++) {
    if (random() < rate) recovered++;
    if ((trials % rule.every === 0 && meetsMargin(recovered, trials, rule)) || trials === limit) {
      const interval = wilson(recovered, trials, rule.confidence);
      return { low: interval.low, high: interval.high, trials };
    }
  }
  throw new Error('unreachable');
}

describe('the stopping rule', () => {
  it('covers a known rate in about its confidence of campaigns, stopping early (property)', () => {
    const rule: StopRule = { margin: 0.05, confidence: 0.95, minDetected: 50, every: 25 };
    fc.assert(
      fc.property(fc.double({ min: 0.05, max: 0.95, noNaN: true }), fc.integer({ min: 0, max: 2 ** 31 }), (rate, seed) => {
        const random = seedrandom(String(seed));
        const runs = Array.from({ length: 400 }, () => runRule(rate, rule, 2000, random));
        const covered = runs.filter((run) => run.low <= rate && rate <= run.high).length / runs.length;
        // repeated looks cost a little coverage; 400 runs have a standard error of about 1.1 points
        expect(covered).toBeGreaterThanOrEqual(0.9);
        // and the rule does stop before the limit, within the margin
        expect(runs.every((run) => run.trials < 2000)).toBe(true);
      }),
      { numRuns: 12, seed: 17 },
    );
  });

  it('does not stop below the floor of attempted recoveries, nor wider than the margin', () => {
    const rule: StopRule = { margin: 0.1, confidence: 0.95, minDetected: 40, every: 10 };
    expect(meetsMargin(39, 39, rule)).toBe(false);
    expect(meetsMargin(40, 40, rule)).toBe(true);
    expect(meetsMargin(20, 40, rule)).toBe(false);
    expect(halfWidth(20, 40, 0.95)).toBeGreaterThan(0.1);
  });

  it('runs rounds of trial indexes and stops a cell at the first checkpoint that meets the margin', () => {
    const campaign = parseCampaign(
      ['name: rounds', 'seed: 1', 'configurations: [1AppVM]', 'faults: { register: 50 }', 'mechanisms: [none, microreset]', 'stop: { margin: 0.2, confidence: 0.95, minDetected: 10, every: 10 }'].join('\n'),
      'rounds.yaml',
    );
    const jobs = planTrials(campaign);
    const rounds = new StoppingRounds(jobs, { margin: 0.3, confidence: 0.95, minDetected: 10, every: 10 });
    const first = rounds.next() ?? [];
    expect(first.map((job) => job.spec.trialIndex).every((index) => index < 10)).toBe(true);
    expect(first).toHaveLength(20);
    // every microreset trial of the first round detected and recovered: the cell is decided
    for (const job of first) {
      rounds.add({ campaign: 'rounds', id: job.id, stage: job.stage, spec: job.spec, record: { configuration: '1AppVM', faultType: 'register', mechanism: job.spec.mechanism, trialIndex: job.spec.trialIndex, outcome: 'detected', recovery: { result: 'recovered' } } as never });
    }
    expect(rounds.next()).toBeUndefined();
  });
});

const CAMPAIGN = ['name: stopping', 'seed: 14', 'configurations: [1AppVM]', 'runLengthMs: 300', 'faults: { register: 80, failstop: 30 }', 'mechanisms: [microreset, microreboot]', 'stop: { margin: 0.15, confidence: 0.9, minDetected: 8, every: 10 }', ''].join('\n');

describe('a campaign that stops at a precision', () => {
  it('is refused in shards in one line, exit 2, before its output directory is made', async () => {
    const directory = temporaryDirectory();
    const campaign = writeCampaign(directory, CAMPAIGN);
    const result = await cli(['run', campaign, '--out', join(directory, 'parent', 'deep'), '--shard', '1/2']);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual(['ninelives: stopping stops at a precision, which needs every trial index of a cell: run it whole (or through the queue), not in shards']);
    expect(existsSync(join(directory, 'parent'))).toBe(false);
  });

  it('gives the same bytes with one worker, two, and killed and resumed; the summary says where each cell stopped', async () => {
    requireFreshBuild();
    const directory = temporaryDirectory();
    const campaign = writeCampaign(directory, CAMPAIGN);
    const outputs = ['one', 'two', 'resumed'].map((name) => join(directory, name));
    const one = await spawnCli(['run', campaign, '--out', outputs[0], '--workers', '1'], directory).exited;
    expect(one.code, one.stderr).toBe(0);
    const two = await spawnCli(['run', campaign, '--out', outputs[1], '--workers', '2'], directory).exited;
    expect(two.code, two.stderr).toBe(0);
    const killed = spawnCli(['run', campaign, '--out', outputs[2], '--workers', '1'], directory);
    await waitForLines(killed, join(outputs[2], 'trials.jsonl'), 25);
    killed.process.kill('SIGKILL');
    await killed.exited;
    // killed between whole lines, only its manifest can say the run is unfinished: cut a torn line
    const copy = join(directory, 'killed-copy');
    cpSync(outputs[2], copy, { recursive: true });
    const text = read(join(copy, 'trials.jsonl'));
    writeFileSync(join(copy, 'trials.jsonl'), text.slice(0, text.lastIndexOf('\n') + 1));
    expect(JSON.parse(read(join(copy, 'ninelives.json')))).toMatchObject({ campaign: 'stopping', unfinished: true });
    const report = await cli(['report', copy]);
    expect(report.exitCode, report.stderr).toBe(0);
    const reason = `${UNFINISHED}; under its stop rule 220 is the most it may take`;
    expect(messages(report.stderr)).toEqual([expect.stringMatching(/^ninelives: partial: \d+ of 220 trials \(.*\); the reports say so$/)]);
    expect(messages(report.stderr)[0]).toContain(reason);
    expect((JSON.parse(read(join(copy, 'summary.json'))) as Summary).partial?.reason).toBe(reason);
    expect(read(join(copy, 'report.md'))).toContain(UNFINISHED);
    const resumed = await spawnCli(['run', campaign, '--out', outputs[2], '--workers', '2', '--resume'], directory).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    const [reference, ...others] = outputs.map((out) => ({ trials: read(join(out, 'trials.jsonl')), summary: read(join(out, 'summary.json')) }));
    for (const other of others) expect(other).toEqual(reference);
    const summary = JSON.parse(reference.summary) as Summary;
    expect(summary.partial).toBeUndefined();
    expect(JSON.parse(read(join(outputs[2], 'ninelives.json')))).not.toHaveProperty('unfinished');
    expect(summary.stopping?.cells.length).toBe(4);
    // the fail-stop cells, all detected and nearly all recovered, stop at their margin before their 30
    expect(summary.stopping?.cells.some((cell) => cell.reason === 'margin' && cell.trials < 30)).toBe(true);
    expect(summary.trials).toBeLessThan(2 * 110);
    expect(read(join(outputs[0], 'report.md'))).toContain('## Where each cell stopped');
  }, 180_000);
});
