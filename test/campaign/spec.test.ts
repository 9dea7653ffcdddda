/**
 * Campaign files: every problem in a bad file is one stderr line that names the file, the key
 * and what was expected, with exit code 2 and nothing written; the shipped campaigns load; the
 * plan pairs mechanisms on the same faults and shards partition it.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inShard, planTrials } from '../../src/campaign/plan.js';
import { loadCampaign, parseCampaign } from '../../src/campaign/spec.js';
import { ablationStages, mechanismNamed } from '../../src/recovery/mechanisms.js';
import { ROOT, cli, lines, removeTemporaryDirectories, smallCampaignText, temporaryDirectory, writeCampaign } from './helpers.js';

const VALID = ['name: bad', 'seed: 1', 'configurations: [1AppVM]', 'faults: { register: 3 }', 'mechanisms: [microreset]'];

/** The valid campaign above with some of its keys' lines replaced or added. */
function variation(changes: Readonly<Record<string, string | null>>): string {
  const kept = VALID.filter((line) => !(line.split(':')[0] in changes));
  const added = Object.values(changes).filter((line): line is string => line !== null);
  return [...kept, ...added, ''].join('\n');
}

interface BadFile {
  readonly title: string;
  readonly text: string;
  /** one pattern per problem on the one stderr line, matched after `ninelives: <file>: ` */
  readonly problems: readonly RegExp[];
}

const badFiles: readonly BadFile[] = [
  { title: 'an unknown top-level key', text: variation({ colour: 'colour: red' }), problems: [/^colour: unknown key \(expected one of name, description, seed, .*mechanisms.*\)$/] },
  { title: 'two unknown top-level keys', text: variation({ colour: 'colour: red', size: 'size: 3' }), problems: [/^colour: unknown key \(expected /, /^size: unknown key \(expected /] },
  { title: 'an unknown key in host', text: variation({ host: 'host: { cpus: 8, memoryGiB: 8, disks: 2 }' }), problems: [/^host\.disks: unknown key \(expected one of cpus, memoryGiB\)$/] },
  { title: 'an unknown key in a mechanism entry', text: variation({ mechanisms: 'mechanisms: [{ name: microreset, disabled: [x] }]' }), problems: [/^mechanisms\.0\.disabled: unknown key \(expected one of name, disable, ablation, label, checkpointMs, ordering, timingAdjustment, epochMs, heartbeatMs, raceRate, imbalance\)$/] },
  { title: 'a seed that is a word', text: variation({ seed: 'seed: one' }), problems: [/^seed: .*expected number, received string$/] },
  { title: 'configurations not a list', text: variation({ configurations: 'configurations: 1AppVM' }), problems: [/^configurations: .*expected array, received string$/] },
  { title: 'a trial count as a string', text: variation({ faults: "faults: { register: '3' }" }), problems: [/^faults\.register: .*expected number, received string$/] },
  { title: 'strictNetBench not a boolean', text: variation({ strictNetBench: 'strictNetBench: yes please' }), problems: [/^strictNetBench: .*expected boolean, received string$/] },
  { title: 'a negative trial count', text: variation({ faults: 'faults: { register: -3 }' }), problems: [/^faults\.register: .*expected number to be >0$/] },
  { title: 'zero and fractional trial counts', text: variation({ faults: 'faults: { register: 0, code: 2.5 }' }), problems: [/^faults\.register: .*>0$/, /^faults\.code: .*expected int/] },
  { title: 'a negative seed', text: variation({ seed: 'seed: -1' }), problems: [/^seed: .*expected number to be >=0$/] },
  { title: 'a run length too short to boot', text: variation({ runLengthMs: 'runLengthMs: 5' }), problems: [/^runLengthMs: .*expected number to be >=10$/] },
  { title: 'a host without CPUs', text: variation({ host: 'host: { cpus: 0, memoryGiB: 8 }' }), problems: [/^host\.cpus: .*>0$/] },
  { title: 'a name with a slash', text: variation({ name: 'name: ../escape' }), problems: [/^name: a name of letters, digits/] },
  { title: 'a label with a space at its end (it read like another: "all" and "all ")', text: variation({ mechanisms: 'mechanisms: [microreset, { name: microreset, label: "all ", disable: [frame-table-pass] }]' }), problems: [/^mechanisms\.1\.label: printable text on one line, without '\/' \(trial ids join their parts with it\) or spaces at either end \("all " would read as "all"\)$/] },
  { title: 'a label with a slash (trial ids join their parts with it)', text: variation({ mechanisms: 'mechanisms: [{ name: microreset, label: "x/0" }]' }), problems: [/^mechanisms\.0\.label: printable text on one line, without '\/' \(trial ids join their parts with it\) or spaces at either end/] },
  { title: 'an unknown configuration', text: variation({ configurations: 'configurations: [1AppVM, 2AppVM]' }), problems: [/^configurations\.1: .*expected one of "1AppVM"\|"1AppVM-blk"\|"3AppVM"\|"3AppVM-mt"$/] },
  { title: 'no configuration', text: variation({ configurations: 'configurations: []' }), problems: [/^configurations: .*>=1 items$/] },
  { title: 'an unknown fault type', text: variation({ faults: 'faults: { register: 3, cosmic: 3 }' }), problems: [/^faults\.cosmic: unknown key \(expected one of failstop, register, code, memory, hostFailstop\)$/] },
  { title: 'no fault type', text: variation({ faults: 'faults: {}' }), problems: [/^faults: at least one fault type$/] },
  { title: 'pkeys neither a boolean nor "both"', text: variation({ pkeys: 'pkeys: maybe' }), problems: [/^pkeys: expected true, false or "both"$/] },
  { title: 'pkeys a number, beside a mechanism entry of neither form', text: variation({ pkeys: 'pkeys: 3', mechanisms: 'mechanisms: [microreset, 7]' }), problems: [/^mechanisms\.1: expected a mechanism name /, /^pkeys: expected true, false or "both"$/] },
  { title: 'a failover epoch of zero', text: variation({ mechanisms: 'mechanisms: [{ name: failover, epochMs: 0 }]' }), problems: [/^mechanisms\.0\.epochMs: .*expected number to be >=1$/] },
  { title: 'a heartbeat longer than a second', text: variation({ mechanisms: 'mechanisms: [{ name: failover, heartbeatMs: 5000 }]' }), problems: [/^mechanisms\.0\.heartbeatMs: .*expected number to be <=1000$/] },
  { title: 'a fractional epoch', text: variation({ mechanisms: 'mechanisms: [{ name: failover, epochMs: 2.5 }]' }), problems: [/^mechanisms\.0\.epochMs: .*expected int/] },
  { title: 'an epoch on a mechanism that replicates nothing', text: variation({ mechanisms: 'mechanisms: [{ name: microreset, epochMs: 30 }]' }), problems: [/^mechanisms\.0: epochMs and heartbeatMs are failover's periods, not microreset's$/] },
  {
    title: 'unknown mechanisms, as a name and as an object',
    text: variation({ mechanisms: 'mechanisms: [microreset, nilihype, { name: rehype }]' }),
    problems: [/^mechanisms\.1: .*expected one of "none"\|"microreset"\|"microreboot"\|"failover"\|"replay-failover"$/, /^mechanisms\.2\.name: .*expected one of "none"\|"microreset"\|"microreboot"\|"failover"\|"replay-failover"$/],
  },
  {
    title: 'a mechanism object with a bad name and an unknown key',
    text: variation({ mechanisms: 'mechanisms: [{ name: rehype, disabled: [x] }]' }),
    problems: [/^mechanisms\.0\.name: .*expected one of "none"\|"microreset"\|"microreboot"\|"failover"\|"replay-failover"$/, /^mechanisms\.0\.disabled: unknown key \(expected /],
  },
  { title: 'a mechanism entry of the wrong type', text: variation({ mechanisms: 'mechanisms: [42]' }), problems: [/^mechanisms\.0: expected a mechanism name \(none, microreset, microreboot, failover, replay-failover\) or an object/] },
  {
    title: 'a disabled step the mechanism does not have',
    text: variation({ mechanisms: 'mechanisms: [{ name: microreset, disable: [boot-new-instance, clear-irq-count] }]' }),
    problems: [/^mechanisms\.0\.disable: microreset has no step "boot-new-instance" \(expected one of stop-cpus, .*clear-irq-count.*\)$/],
  },
  { title: 'steps disabled on mechanism none', text: variation({ mechanisms: 'mechanisms: [{ name: none, disable: [stop-cpus] }]' }), problems: [/^mechanisms\.0: mechanism none has no steps to disable or ablate$/] },
  {
    title: 'a duplicate mechanism variant',
    text: variation({ mechanisms: 'mechanisms: [microreset, microreboot, { name: microreset }]' }),
    problems: [/^mechanisms: microreset appears twice with stage "all" \(give one a label\)$/],
  },
  {
    title: 'the same steps disabled twice',
    text: variation({ mechanisms: 'mechanisms: [{ name: microreboot, disable: [nmi-ipi] }, { name: microreboot, disable: [nmi-ipi] }]' }),
    problems: [/^mechanisms: microreboot appears twice with stage "without nmi-ipi" \(give one a label\)$/],
  },
  {
    title: 'a step switched off twice',
    text: variation({ mechanisms: 'mechanisms: [{ name: microreset, disable: [discard-threads, clear-irq-count, discard-threads] }]' }),
    problems: [/^mechanisms\.0\.disable: names "discard-threads" twice$/],
  },
  {
    title: 'the same steps switched off, listed in another order',
    text: variation({ mechanisms: 'mechanisms: [{ name: microreset, disable: [reprogram-timers, clear-irq-count] }, { name: microreset, disable: [clear-irq-count, reprogram-timers] }]' }),
    problems: [/^mechanisms: microreset appears twice with stage "without clear-irq-count, reprogram-timers" \(give one a label\)$/],
  },
  { title: 'a description with control characters (a terminal acts on them)', text: variation({ description: 'description: "red \\e[31m text\\a"' }), problems: [/^description: text without control characters \(lines and tabs are fine\)$/] },
  { title: 'a stop rule at a confidence the normal quantile cannot reach', text: variation({ stop: 'stop: { margin: 0.1, confidence: 0.9999999999999999 }' }), problems: [/^stop\.confidence: .*<=0\.999999$/] },
  { title: 'missing required keys', text: 'name: bad\n', problems: [/^seed: .*expected number/, /^configurations: .*expected array/, /^faults: .*expected record/, /^mechanisms: .*expected array/] },
  { title: 'an empty file', text: '', problems: [/^\(top level\): .*expected object/] },
  { title: 'a file that is a list', text: '- name: bad\n', problems: [/^\(top level\): .*expected object, received array$/] },
  { title: 'malformed YAML (an unclosed list)', text: 'name: bad\nseed: [1\nconfigurations: [1AppVM]\n', problems: [/^line [23], column \d+: YAML: \S/] },
  { title: 'a key given twice', text: variation({ name: 'name: bad\nname: worse' }), problems: [/^line \d+, column \d+: YAML: Map keys must be unique$/] },
];

describe('a bad campaign file: exit 2, one line naming the file once and every problem, nothing written', () => {
  let directory: string;
  beforeAll(() => {
    directory = temporaryDirectory();
  });
  afterAll(removeTemporaryDirectories);

  it.each(badFiles.map((bad, index) => ({ ...bad, index })))('$title', async ({ text, problems, index }) => {
    const file = writeCampaign(directory, text, `bad-${index}.yaml`);
    const out = join(directory, `out-${index}`);
    const result = await cli(['run', file, '--out', out, '--workers', '1']);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    const reported = lines(result.stderr);
    expect(reported, result.stderr).toHaveLength(1);
    const prefix = `ninelives: ${file}: `;
    expect(reported[0].startsWith(prefix), reported[0]).toBe(true);
    const each = reported[0].slice(prefix.length).split('; ');
    expect(each, reported[0]).toHaveLength(problems.length);
    each.forEach((problem, position) => expect(problem).toMatch(problems[position]));
    expect(existsSync(out)).toBe(false);
  });

  it('a missing file', async () => {
    const file = join(directory, 'no-such-campaign.yaml');
    const out = join(directory, 'out-missing');
    const result = await cli(['run', file, '--out', out]);
    expect(result).toMatchObject({ exitCode: 2, stdout: '' });
    expect(lines(result.stderr)).toEqual([`ninelives: ${file}: cannot read the campaign file`]);
    expect(existsSync(out)).toBe(false);
  });

  it('an empty file name', async () => {
    for (const name of ['', '  ']) {
      const result = await cli(['run', name, '--out', join(directory, 'out-empty')]);
      expect(result).toMatchObject({ exitCode: 2, stdout: '' });
      expect(lines(result.stderr)).toEqual(['ninelives: the campaign file name is empty: name a campaign file (campaigns/quick.yaml, say)']);
    }
    expect(existsSync(join(directory, 'out-empty'))).toBe(false);
  });

  it('a file that is not UTF-8 text (UTF-16, binary): named as such (UTF-16 read as "expected object, received string" before); a UTF-8 byte-order mark is fine', async () => {
    const valid = VALID.join('\n') + '\n';
    for (const [name, bytes] of [
      ['utf16.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(valid, 'utf16le')])],
      ['binary.yaml', Buffer.from([0x6e, 0x61, 0xc3, 0x28, 0xff, 0x00])],
    ] as const) {
      const file = join(directory, name);
      writeFileSync(file, bytes);
      const result = await cli(['run', file, '--out', join(directory, `out-${name}`)]);
      expect(result.exitCode).toBe(2);
      expect(lines(result.stderr)).toEqual([`ninelives: ${file}: not UTF-8 text (a campaign file is YAML in UTF-8; UTF-16, say, is not read)`]);
      expect(existsSync(join(directory, `out-${name}`))).toBe(false);
    }
    const marked = join(directory, 'bom.yaml');
    writeFileSync(marked, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)]));
    expect(loadCampaign(marked).name).toBe('bad');
  });

  it('a run too short for a configuration\'s fault-free run to finish is refused before any work (its trials recorded the shortfall as silent data corruption)', async () => {
    const file = writeCampaign(directory, ['name: short', 'seed: 42', 'configurations: [1AppVM-blk]', 'faults: { failstop: 2 }', 'mechanisms: [microreset]', 'runLengthMs: 10', ''].join('\n'), 'short.yaml');
    const result = await cli(['run', file, '--out', join(directory, 'out-short')]);
    expect(result.exitCode).toBe(2);
    expect(lines(result.stderr)).toEqual([
      `ninelives: ${file}: runLengthMs: 10 ms is too short for 1AppVM-blk: its fault-free run does not finish (blkbench did not complete: 146 of 150 operations done); give a longer run (\`ninelives golden --config 1AppVM-blk --run-length-ms N\` shows whether a length is)`,
    ]);
    expect(existsSync(join(directory, 'out-short'))).toBe(false);
  });

  it('a directory instead of a file', async () => {
    const result = await cli(['run', directory, '--out', join(directory, 'out-dir')]);
    expect(result.exitCode).toBe(2);
    expect(lines(result.stderr)).toEqual([`ninelives: ${directory}: cannot read the campaign file`]);
  });

  it('an existing but empty --out directory stays empty', async () => {
    const out = join(directory, 'empty-out');
    mkdirSync(out);
    const file = writeCampaign(directory, variation({ seed: 'seed: -1' }), 'bad-empty-out.yaml');
    const result = await cli(['run', file, '--out', out]);
    expect(result.exitCode).toBe(2);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('the shipped campaigns', () => {
  const files = readdirSync(join(ROOT, 'campaigns')).filter((name) => name.endsWith('.yaml'));

  it('there are some', () => {
    expect(files).toEqual(expect.arrayContaining(['quick.yaml', 'dsn18.yaml']));
  });

  it.each(files)('%s loads', (file) => {
    const campaign = loadCampaign(join(ROOT, 'campaigns', file));
    expect(campaign.name).toBe(file.replace(/\.yaml$/, ''));
    expect(campaign.variants.length).toBeGreaterThan(0);
  });

  it('dsn18 compares the two mechanisms with every repair on, at the paper\'s sizes', () => {
    const campaign = loadCampaign(join(ROOT, 'campaigns', 'dsn18.yaml'));
    expect(campaign.variants).toEqual([
      { mechanism: 'microreset', stage: 'all', disabledSteps: [] },
      { mechanism: 'microreboot', stage: 'all', disabledSteps: [] },
    ]);
    expect(campaign.faults).toEqual({ failstop: 1000, register: 5000, code: 2000 });
    expect(planTrials(campaign)).toHaveLength(16_000);
  });

  it.each(['microreset', 'microreboot'] as const)('ablation-%s has one variant per cumulative stage', (mechanism) => {
    const campaign = loadCampaign(join(ROOT, 'campaigns', `ablation-${mechanism}.yaml`));
    const stages = ablationStages(mechanismNamed(mechanism));
    expect(campaign.variants.map((variant) => variant.stage)).toEqual(stages.map((stage) => stage.stage));
    expect(campaign.variants[0].disabledSteps).toEqual(mechanismNamed(mechanism).repairOrder);
    expect(campaign.variants.at(-1)?.disabledSteps).toEqual([]);
  });
});

describe('defaults and labels', () => {
  it('a campaign without host or strictNetBench gets the nominal host and lenient NetBench', () => {
    const campaign = parseCampaign(smallCampaignText(), 'small.yaml');
    expect(campaign.host).toEqual({ cpus: 8, memoryGiB: 8 });
    expect(campaign.strictNetBench).toBe(false);
  });

  it('disabled steps name the stage unless a label does', () => {
    const text = variation({ mechanisms: 'mechanisms: [microreset, { name: microreset, disable: [clear-irq-count] }, { name: microreset, disable: [nmi-ipi], label: no-nmi }]' });
    expect(parseCampaign(text, 'labels.yaml').variants.map((variant) => variant.stage)).toEqual(['all', 'without clear-irq-count', 'no-nmi']);
  });
});

describe('failover periods', () => {
  it('go into every failover trial\'s spec and name the stage unless a label does', () => {
    const text = variation({ mechanisms: 'mechanisms: [microreset, failover, { name: failover, epochMs: 10 }, { name: failover, epochMs: 100, heartbeatMs: 20, label: slow }]' });
    const campaign = parseCampaign(text, 'periods.yaml');
    expect(campaign.variants.map((variant) => variant.stage)).toEqual(['all', 'all', 'epoch 10 ms', 'slow']);
    const specs = planTrials(campaign).filter((job) => job.spec.trialIndex === 0).map((job) => job.spec.replication);
    expect(specs).toEqual([undefined, undefined, { epochMs: 10 }, { epochMs: 100, heartbeatMs: 20 }]);
  });
});

describe('the trial plan', () => {
  const campaign = parseCampaign(smallCampaignText({ register: 7, failstop: 3 }), 'small.yaml');
  const jobs = planTrials(campaign);

  it('has one job per (fault type, trial index, mechanism variant), ids unique', () => {
    expect(jobs).toHaveLength((7 + 3) * 2);
    expect(new Set(jobs.map((job) => job.id)).size).toBe(jobs.length);
  });

  it('gives every mechanism the same trials: the comparisons are paired', () => {
    const trialsOf = (mechanism: string): string[] => jobs.filter((job) => job.spec.mechanism === mechanism).map((job) => `${job.spec.faultType}/${job.spec.trialIndex}/${job.spec.seed}`);
    expect(trialsOf('microreset')).toEqual(trialsOf('microreboot'));
  });

  it('--trials overrides every fault type\'s count', () => {
    expect(planTrials(campaign, 2)).toHaveLength(2 * 2 * 2);
  });

  it.each([1, 2, 3, 5, 11])('%s shards partition the plan, each keeping both mechanisms of a trial', (count) => {
    const shards = Array.from({ length: count }, (_, index) => jobs.filter((job) => inShard(job, { index: index + 1, count })));
    expect(shards.flat().map((job) => job.id).sort()).toEqual(jobs.map((job) => job.id).sort());
    for (const shard of shards) {
      expect(shard.filter((job) => job.spec.mechanism === 'microreset')).toHaveLength(shard.length / 2);
    }
  });
});

describe('pkeys', () => {
  const text = (pkeys: string | null): string => variation({ mechanisms: 'mechanisms: [microreset, microreboot]', pkeys });

  it('both: every variant without and with keys, on the same faults; the keyed one\'s stage marked +pkeys', () => {
    const campaign = parseCampaign(text('pkeys: both'), 'both.yaml');
    expect(campaign.variants.map((variant) => [variant.mechanism, variant.stage, variant.pkeys === true])).toEqual([
      ['microreset', 'all', false],
      ['microreset', 'all+pkeys', true],
      ['microreboot', 'all', false],
      ['microreboot', 'all+pkeys', true],
    ]);
    const jobs = planTrials(campaign);
    const keyed = jobs.filter((job) => job.spec.pkeys === true);
    expect(keyed.map((job) => job.stage)).toEqual(jobs.filter((job) => job.stage.endsWith('+pkeys')).map((job) => job.stage));
    expect(new Set(keyed.map((job) => job.spec.trialIndex))).toEqual(new Set(jobs.map((job) => job.spec.trialIndex)));
    // the trials without keys are planned as a campaign without the option plans them
    expect(jobs.filter((job) => job.spec.pkeys !== true)).toEqual(planTrials(parseCampaign(text(null), 'both.yaml')));
  });

  it('true keys every trial, stages unchanged; absent leaves the campaign (and its fingerprint\'s input) as it was', () => {
    expect(planTrials(parseCampaign(text('pkeys: true'), 'on.yaml')).every((job) => job.spec.pkeys === true && job.stage === 'all')).toBe(true);
    expect('pkeys' in parseCampaign(text(null), 'off.yaml')).toBe(false);
  });
});
