/**
 * The Redis work queue, against a real redis-server ($NINELIVES_REDIS_URL, as .ci/run starts
 * one): one producer and three worker processes give what a plain run gives, byte for byte; so
 * does a worker killed (SIGKILL) mid-chunk, whose chunk another worker takes once its lock
 * expires; enqueueing a finished campaign again runs nothing; a flushed Redis is refilled from
 * the results. Without Redis these tests skip with a message, except under CI=true, where that
 * is a failure. Worker processes run the built CLI: `npm run build` first.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReachable, connectionOf, queueStatus, type QueueAddress } from '../../src/campaign/queue/queue.js';
import { chunkJobId } from '../../src/campaign/queue/chunks.js';
import { LOCK_FILE } from '../../src/results/lock.js';
import { parseCampaign } from '../../src/campaign/spec.js';
import { cli, completeLines, lines, messages, read, removeTemporaryDirectories, requireFreshBuild, smallCampaignText, spawnCli, temporaryDirectory, waitUntil, writeCampaign, type Child } from './helpers.js';

/** a database of its own, so that flushing it touches nothing else */
const REDIS_URL = `${process.env.NINELIVES_REDIS_URL ?? 'redis://127.0.0.1:6379'}/7`;
const redisReachable = await checkReachable(REDIS_URL, 1000).then(
  () => true,
  () => false,
);
if (!redisReachable) {
  if (process.env.CI === 'true') throw new Error(`CI=true but Redis is not reachable at ${REDIS_URL}: .ci/run starts redis-server and exports NINELIVES_REDIS_URL`);
  console.warn(`skipping the queue tests: no Redis at ${REDIS_URL} (set NINELIVES_REDIS_URL, or install redis-server)`);
}

const CAMPAIGN_TEXT = smallCampaignText({ name: 'queued', register: 24, failstop: 8 });
const CHUNK_SIZE = '4';
let directory: string;
let campaign: string;
let reference: { trials: string; summary: string };
let queues = 0;

function resultsIn(out: string): { trials: string; summary: string } {
  return { trials: read(join(out, 'trials.jsonl')), summary: read(join(out, 'summary.json')) };
}

function freshQueue(): QueueAddress {
  return { url: REDIS_URL, queue: `test-${process.pid}-${++queues}` };
}

function worker(address: QueueAddress, out: string, extra: readonly string[] = [], fileLimitKiB?: number): Child {
  return spawnCli(['queue', 'work', '--redis', address.url, '--queue', address.queue, '--out', out, '--workers', '1', ...extra], directory, fileLimitKiB);
}

async function enqueue(address: QueueAddress, results: readonly string[] = []): Promise<string> {
  const result = await cli(['queue', 'enqueue', campaign, '--redis', address.url, '--queue', address.queue, '--chunk-size', CHUNK_SIZE, ...(results.length > 0 ? ['--results', ...results] : [])]);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return result.stdout;
}

async function drained(address: QueueAddress, timeoutMs = 90_000): Promise<void> {
  let done = false;
  const deadline = performance.now() + timeoutMs;
  while (!done) {
    if (performance.now() > deadline) throw new Error(`queue ${address.queue} not drained in ${timeoutMs} ms`);
    const status = await queueStatus(address);
    expect(status.failed).toBe(0);
    done = status.running === 0 && status.waiting === 0 && status.completed > 0;
    if (!done) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stop(children: readonly Child[]): Promise<void> {
  for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGTERM');
  for (const child of children) {
    const exited = await child.exited;
    expect(exited.signal === 'SIGKILL' || exited.code === 0, exited.stderr).toBe(true);
  }
}

async function merged(outs: readonly string[]): Promise<{ trials: string; summary: string }> {
  const out = join(directory, `merged-${++queues}`);
  const result = await cli(['merge', out, ...outs.filter((host) => completeLines(join(host, 'trials.jsonl')) > 0)]);
  expect(result.exitCode, result.stderr).toBe(0);
  return resultsIn(out);
}

/** One worker into `out` drains the queue, and `out` merged gives the plain run's results. */
async function finishInto(address: QueueAddress, out: string): Promise<void> {
  const finisher = worker(address, out);
  await drained(address);
  expect(await merged([out])).toEqual(reference);
  await stop([finisher]);
}

beforeAll(async () => {
  if (!redisReachable) return;
  requireFreshBuild();
  directory = temporaryDirectory();
  campaign = writeCampaign(directory, CAMPAIGN_TEXT);
  const plain = await spawnCli(['run', campaign, '--out', join(directory, 'plain'), '--workers', '1'], directory).exited;
  expect(plain.code, plain.stderr).toBe(0);
  reference = resultsIn(join(directory, 'plain'));
}, 60_000);

afterAll(removeTemporaryDirectories);

describe('queue work claims its --out before any chunk, as run does', () => {
  // no Redis listens on port 1: a refusal of the directory comes before any attempt to reach it
  const nowhere = 'redis://127.0.0.1:1';

  it('someone else\'s files: one line, exit 2, before reaching Redis; --force writes there', async () => {
    const out = temporaryDirectory();
    writeFileSync(join(out, 'notes.txt'), 'mine\n');
    const refused = await cli(['queue', 'work', '--out', out, '--redis', nowhere]);
    expect(refused.exitCode).toBe(2);
    expect(messages(refused.stderr)).toEqual([`ninelives: ${out} is not empty and holds no ninelives result (it has notes.txt): choose a new or empty directory, or --force to write there anyway`]);
    const forced = await cli(['queue', 'work', '--out', out, '--redis', nowhere, '--force']);
    expect(forced.exitCode).toBe(2);
    expect(forced.stderr).toContain('cannot reach Redis at redis://127.0.0.1:1');
    expect(readdirSync(out)).toEqual(['notes.txt']);
  });

  it('a new directory, or a ninelives result of any campaign, passes the check (the chunks say which campaign); nothing is created while Redis does not answer', async () => {
    const parent = temporaryDirectory();
    const results = join(parent, 'results');
    mkdirSync(results);
    writeFileSync(join(results, 'ninelives.json'), JSON.stringify({ tool: 'ninelives', campaign: 'other', seed: 1 }));
    for (const out of [join(parent, 'new'), results]) {
      const claimed = await cli(['queue', 'work', '--out', out, '--redis', nowhere]);
      expect(claimed.stderr).toContain('cannot reach Redis');
    }
    expect(existsSync(join(parent, 'new'))).toBe(false);
    const run = await cli(['queue', 'run', writeCampaign(parent, CAMPAIGN_TEXT), '--out', join(parent, 'run'), '--redis', nowhere]);
    expect(run.exitCode).toBe(2);
    expect(messages(run.stderr)).toEqual([expect.stringContaining('cannot reach Redis at redis://127.0.0.1:1')]);
    expect(existsSync(join(parent, 'run'))).toBe(false);
  });

  it('the filesystem root is refused', async () => {
    const refused = await cli(['queue', 'work', '--out', '/', '--redis', nowhere]);
    expect(refused.exitCode).toBe(2);
    expect(messages(refused.stderr)).toEqual(['ninelives: --out / is the filesystem root: choose a directory of your own for the results']);
  });
});

describe.skipIf(!redisReachable)('enqueue --results names results of this campaign, each once: else one line, exit 2, before reaching Redis (a typo enqueued everything again; a pipe hung it)', () => {
  it('refuses what is not such a directory', async () => {
    const parent = temporaryDirectory();
    const file = writeCampaign(parent, CAMPAIGN_TEXT);
    const made = (name: string, make: (path: string) => void): string => {
      const path = join(parent, name);
      mkdirSync(path);
      make(path);
      return path;
    };
    const hostsFile = made('hosts-file', (path) => writeFileSync(join(path, 'hosts'), ''));
    const pipe = made('pipe', (path) => execFileSync('mkfifo', [join(path, 'trials.jsonl')]));
    const users = made('users', (path) => writeFileSync(join(path, 'notes.txt'), 'mine\n'));
    const other = made('other', (path) => writeFileSync(join(path, 'trials.jsonl'), read(join(directory, 'plain', 'trials.jsonl')).replaceAll('"seed":5,', '"seed":6,')));
    for (const [results, message] of [
      [[file], `--results ${file} is not a directory`],
      [[hostsFile], `--results ${hostsFile}: ${join(hostsFile, 'hosts')} is not a directory`],
      [[pipe], `${join(pipe, 'trials.jsonl')} is not a regular file`],
      [[users], `--results ${users} holds no ninelives results (no trials.jsonl, ninelives.json or hosts/)`],
      [[users, `${users}/`], `--results names ${users}/ twice`],
      [[other], `--results ${join(other, 'trials.jsonl')} holds trials of campaign "queued" (seed 6), not "queued" (seed 5)`],
    ] as const) {
      const result = await cli(['queue', 'enqueue', file, '--redis', 'redis://127.0.0.1:1', '--results', ...results]);
      expect(result.exitCode, results.join(' ')).toBe(2);
      expect(messages(result.stderr)).toEqual([`ninelives: ${message}`]);
    }
    // a directory that does not exist yet (a host whose worker has not started) is noted, not refused
    const missing = join(parent, 'not-yet');
    const noted = await cli(['queue', 'enqueue', file, '--redis', 'redis://127.0.0.1:1', '--results', missing]);
    expect(messages(noted.stderr)).toEqual([`ninelives: note: --results ${missing} does not exist (yet): nothing in it is counted as done`, expect.stringContaining('cannot reach Redis')]);
  });
});

describe('a queue name BullMQ cannot take, or of any length: one line, exit 2, nothing made', () => {
  it.each(['', 'a:b', 'x'.repeat(101), 'sp ace'])('%j', async (name) => {
    const parent = temporaryDirectory();
    const result = await cli(['queue', 'work', '--out', join(parent, 'out'), '--queue', name, '--redis', 'redis://127.0.0.1:1']);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([expect.stringMatching(/^ninelives: --queue expects a name of letters, digits/)]);
    expect(existsSync(join(parent, 'out'))).toBe(false);
  });
});

it('an IPv6 address is connected to without the brackets its URL writes it in (ENOTFOUND before)', () => {
  expect(connectionOf('redis://[::1]:6391/3')).toMatchObject({ host: '::1', port: 6391, db: 3 });
  expect(connectionOf('redis://127.0.0.1:6391')).toMatchObject({ host: '127.0.0.1', port: 6391, db: 0 });
});

it('a Redis that cannot be reached is named without the URL\'s password', async () => {
  const result = await cli(['queue', 'status', '--redis', 'redis://user:secretpw@127.0.0.1:1']);
  expect(result.exitCode).toBe(2);
  expect(messages(result.stderr)).toEqual([expect.stringContaining('cannot reach Redis at redis://user:***@127.0.0.1:1 (')]);
  expect(result.stderr).not.toContain('secretpw');
});

describe('a Redis URL that names no database Redis has: one line, exit 2', () => {
  const server = REDIS_URL.replace(/\/7$/, '');

  it('a database that is not a number is refused before reaching Redis', async () => {
    for (const database of ['abc', '1.5', '-1', '99999999999']) {
      const url = `redis://127.0.0.1:1/${database}`;
      const result = await cli(['queue', 'status', '--redis', url]);
      expect(result.exitCode, url).toBe(2);
      expect(messages(result.stderr)).toEqual([`ninelives: cannot reach Redis at ${url} (the database after the port must be a number, got "${database}"): start redis-server, or give --redis redis://HOST:PORT`]);
    }
  });

  it.skipIf(!redisReachable)('a database Redis does not have is Redis\'s refusal, not a quiet fall back to database 0', async () => {
    const url = `${server}/99999`;
    const result = await cli(['queue', 'status', '--redis', url]);
    expect(result.exitCode).toBe(2);
    expect(messages(result.stderr)).toEqual([`ninelives: cannot reach Redis at ${url} (ERR DB index is out of range): start redis-server, or give --redis redis://HOST:PORT`]);
    expect(result.stdout).toBe('');
  });
});

describe.skipIf(!redisReachable)('the Redis work queue', () => {
  it('one producer and three worker processes give the plain run\'s results, byte for byte; enqueueing again runs nothing', async () => {
    const address = freshQueue();
    const hosts = [1, 2, 3].map((index) => join(directory, `three-${index}`));
    const workers = hosts.map((out) => worker(address, out));
    expect(await enqueue(address)).toBe(`queued: 8 chunks, 8 missing from the results, 8 added to queue "${address.queue}"\n`);
    await drained(address);
    expect(await merged(hosts)).toEqual(reference);
    const status = await queueStatus(address);
    expect(status).toMatchObject({ completed: 8, running: 0, waiting: 0, stalled: 0, failed: 0, trialsDone: 64, trialsTotal: 64, etaSeconds: 0 });
    expect(status.trialsPerSecond).toBeGreaterThan(0);
    // finished: the same chunks are the same jobs, and with the results nothing is missing
    expect(await enqueue(address)).toMatch(/, 0 added to queue/);
    expect(await enqueue(address, hosts)).toBe('queued: complete in the results given; nothing enqueued\n');
    const before = hosts.map((out) => completeLines(join(out, 'trials.jsonl')));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(hosts.map((out) => completeLines(join(out, 'trials.jsonl')))).toEqual(before);
    expect(before.reduce((sum, lines) => sum + lines, 0)).toBe(64);
    await stop(workers);
  }, 120_000);

  it('a worker killed mid-chunk loses nothing and counts nothing twice: its chunk is re-issued', async () => {
    const address = freshQueue();
    const hosts = [1, 2].map((index) => join(directory, `killed-${index}`));
    const doomed = worker(address, hosts[0], ['--lock-ms', '2000']);
    await enqueue(address);
    await waitUntil(() => completeLines(join(hosts[0], 'trials.jsonl')) >= 3, 'the first worker has started a chunk');
    doomed.process.kill('SIGKILL');
    const survivor = worker(address, hosts[1], ['--lock-ms', '2000']);
    await drained(address);
    expect(await merged(hosts)).toEqual(reference);
    // the re-issued chunk's trials are counted once, by the worker that finished it
    expect(await queueStatus(address)).toMatchObject({ completed: 8, trialsDone: 64, trialsTotal: 64 });
    await stop([doomed, survivor]);
  }, 120_000);

  it('a worker killed while it holds a prefetched chunk loses nothing and counts nothing twice: both its chunks are re-issued', async () => {
    const address = freshQueue();
    const hosts = [1, 2].map((index) => join(directory, `held-${index}`));
    // one thread and the default prefetch: one chunk running, the next held in the pool's queue
    const doomed = worker(address, hosts[0], ['--lock-ms', '2000']);
    await enqueue(address);
    const deadline = performance.now() + 30_000;
    let holding = await queueStatus(address);
    // the first record is written: the first chunk runs, and the worker took the second beside it
    while (!(holding.running === 2 && completeLines(join(hosts[0], 'trials.jsonl')) >= 1)) {
      if (performance.now() > deadline) throw new Error('timed out waiting until the worker runs one chunk and holds the next');
      holding = await queueStatus(address);
    }
    doomed.process.kill('SIGKILL');
    await doomed.exited;
    // both chunks were the killed worker's, and both locked: the held one's lock kept like the running one's
    expect(holding).toMatchObject({ running: 2, stalled: 0 });
    const killedAt = completeLines(join(hosts[0], 'trials.jsonl'));
    expect(killedAt).toBeLessThan(64);
    const survivor = worker(address, hosts[1], ['--lock-ms', '2000']);
    await drained(address);
    // the survivor ran what the killed worker held (a whole chunk, 8 trials, at least) and the rest
    expect(completeLines(join(hosts[1], 'trials.jsonl'))).toBeGreaterThanOrEqual(Math.max(8, 64 - killedAt));
    expect(await merged(hosts)).toEqual(reference);
    expect(await queueStatus(address)).toMatchObject({ completed: 8, trialsDone: 64, trialsTotal: 64, failed: 0 });
    await stop([doomed, survivor]);
  }, 120_000);

  it('a held chunk\'s lock is renewed while it waits: waiting longer than the lock, it is never taken for stalled', async () => {
    const address = freshQueue();
    // two chunks of 300 trials (a few seconds each): the second is held while the first runs
    const text = ['name: heldlock', 'seed: 4', 'configurations: [1AppVM]', 'runLengthMs: 3000', 'faults: { register: 300 }', 'mechanisms: [microreset, microreboot]', ''].join('\n');
    const held = writeCampaign(directory, text, 'held.yaml');
    const enqueued = await cli(['queue', 'enqueue', held, '--redis', address.url, '--queue', address.queue, '--chunk-size', '150']);
    expect(enqueued.stdout).toMatch(/: 2 chunks, 2 missing/);
    const alone = worker(address, join(directory, 'held-lock'), ['--lock-ms', '1000']);
    await drained(address, 120_000);
    await stop([alone]);
    const queue = new Queue(address.queue, { connection: connectionOf(address.url) });
    const jobs = (await queue.getJobs(['completed'])).sort((a, b) => (a.processedOn ?? 0) - (b.processedOn ?? 0));
    await queue.close();
    expect(jobs).toHaveLength(2);
    const [first, second] = jobs;
    // the second was taken while the first ran and waited for it longer than a lock lasts ...
    expect((first.finishedOn ?? 0) - (second.processedOn ?? 0)).toBeGreaterThan(1000);
    // ... and BullMQ's stalled-job check, every second, never found either without its lock
    expect(jobs.map((job) => job.stalledCounter)).toEqual([0, 0]);
    expect(await queueStatus(address)).toMatchObject({ completed: 2, trialsDone: 600, trialsTotal: 600 });
  }, 180_000);

  it('a flushed Redis: enqueueing again from the results finishes the campaign', async () => {
    const address = freshQueue();
    const hosts = [1, 2].map((index) => join(directory, `flushed-${index}`));
    const first = worker(address, hosts[0]);
    await enqueue(address);
    await waitUntil(() => completeLines(join(hosts[0], 'trials.jsonl')) >= 20, 'some chunks are done');
    await stop([first]);
    const queue = new Queue(address.queue, { connection: connectionOf(address.url) });
    // the client is an ioredis instance; BullMQ's type lists only the commands BullMQ uses
    await ((await queue.client) as unknown as { flushdb(): Promise<unknown> }).flushdb();
    await queue.close();
    const second = worker(address, hosts[1]);
    // a host's directory its worker has not made yet is only noted (enqueue's stderr is checked empty)
    await waitUntil(() => existsSync(join(hosts[1], '.ninelives.lock')), 'the second worker holds its directory');
    const refill = await enqueue(address, hosts);
    const missing = Number(/(\d+) missing/.exec(refill)?.[1]);
    expect(missing).toBeGreaterThan(0);
    expect(missing).toBeLessThan(8);
    await drained(address);
    expect(await merged(hosts)).toEqual(reference);
    await stop([second]);
  }, 120_000);

  it('a worker of another version is refused', async () => {
    const address = freshQueue();
    const queue = new Queue(address.queue, { connection: connectionOf(address.url) });
    await (await queue.client).set(`ninelives:${address.queue}:version`, '0.0.0+elsewhere');
    await queue.close();
    const refused = await worker(address, join(directory, 'refused')).exited;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('queue "' + address.queue + '" holds chunks of ninelives 0.0.0+elsewhere; this worker is ');
  }, 30_000);

  it('a campaign with a stop rule, queued round by round on one host (`queue run`), gives the plain run\'s results', async () => {
    const address = freshQueue();
    const text = ['name: queuedstop', 'seed: 9', 'configurations: [1AppVM]', 'runLengthMs: 300', 'faults: { register: 60, failstop: 20 }', 'mechanisms: [microreset, microreboot]', 'stop: { margin: 0.15, confidence: 0.9, minDetected: 8, every: 10 }', ''].join('\n');
    const stopping = writeCampaign(directory, text, 'stopping.yaml');
    const plain = await spawnCli(['run', stopping, '--out', join(directory, 'stop-plain'), '--workers', '1'], directory).exited;
    expect(plain.code, plain.stderr).toBe(0);
    const queued = await spawnCli(['queue', 'run', stopping, '--out', join(directory, 'stop-queued'), '--processes', '2', '--chunk-size', '3', '--redis', address.url, '--queue', address.queue], directory).exited;
    expect(queued.code, queued.stderr).toBe(0);
    const expected = resultsIn(join(directory, 'stop-plain'));
    expect(resultsIn(join(directory, 'stop-queued'))).toEqual(expected);
    expect(JSON.parse(expected.summary)).toHaveProperty('stopping');
  }, 120_000);

  it('`queue run` interrupted (SIGINT): its worker processes stop with it, exit 130, one line with the command that goes on; that command finishes the campaign as a plain run', async () => {
    const run = await queueRunUnderWay('queue-run-interrupted');
    run.child.process.kill('SIGINT');
    const exit = await run.child.exited;
    expect(exit.code, exit.stderr).toBe(130);
    const said = lines(exit.stderr).filter((line) => line.startsWith('ninelives:'));
    expect(said).toEqual([`ninelives: interrupted; the worker processes are stopped, their records kept in ${run.hosts}; continue with: ${run.command}`]);
    await expectWorkersStopped(run.recorded);
    const resumed = await spawnCli(run.command.split(' ').slice(1), directory).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resultsIn(run.out)).toEqual(reference);
  }, 120_000);

  it('`queue run` interrupted twice: the second signal stops it and its worker processes at once, exit 130, one line with the command that goes on, no lock left; that command (on a fresh queue) finishes the campaign as a plain run', async () => {
    const run = await queueRunUnderWay('queue-run-interrupted-twice');
    // two signals at once (two SIGINTs could be merged into one while pending): Ctrl-C, then a kill
    run.child.process.kill('SIGINT');
    run.child.process.kill('SIGTERM');
    const exit = await run.child.exited;
    expect(exit.code, exit.stderr).toBe(130);
    // the worker processes share its stderr, and each says how it stopped
    const said = lines(exit.stderr).filter((line) => line.startsWith('ninelives:') && !/^ninelives: interrupted again: worker \d+ stopped at once;/.test(line));
    expect(said).toEqual([`ninelives: interrupted again: stopped at once with the worker processes, their finished records kept in ${run.hosts} (the chunks they held go back to the queue within 30 s); continue with: ${run.command}`]);
    expect(existsSync(join(run.out, LOCK_FILE))).toBe(false);
    // the processes get the second signal as the command exits: give them a moment
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectWorkersStopped(run.recorded);
    // the same command on a fresh queue runs what is missing at once, without waiting for the held chunks' locks
    const resumed = await spawnCli([...run.command.split(' ').slice(1, -1), `${run.address.queue}-again`], directory).exited;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resultsIn(run.out)).toEqual(reference);
  }, 120_000);

  it('`queue work` interrupted twice stops at once: exit 130, one line saying where its chunks go, no lock left; another worker finishes the campaign', async () => {
    const address = freshQueue();
    await enqueue(address);
    const out = join(directory, 'work-interrupted-twice');
    const child = worker(address, out, ['--lock-ms', '2000']);
    await waitUntil(() => completeLines(join(out, 'trials.jsonl')) >= 2, 'the worker has recorded some trials');
    child.process.kill('SIGINT');
    child.process.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit.code, exit.stderr).toBe(130);
    expect(lines(exit.stderr).filter((line) => line.startsWith('ninelives:'))).toEqual([`ninelives: interrupted again: worker ${child.process.pid} stopped at once; the chunks it was working go back to the queue within 2 s, their finished trials kept in ${out}`]);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    await finishInto(address, out);
  }, 120_000);

  it('`queue run --processes` is capped as run\'s --workers is, with a note (256 processes were started for 32 faults), and gives the plain run\'s results', async () => {
    const address = freshQueue();
    const out = join(directory, 'queue-run-capped');
    const ran = await spawnCli(['queue', 'run', campaign, '--out', out, '--processes', '256', '--redis', address.url, '--queue', address.queue], directory).exited;
    expect(ran.code, ran.stderr).toBe(0);
    const capped = Math.min(32, 2 * availableParallelism());
    const reason = capped === 32 ? 'the run has 32 faults to inject' : `this machine has ${availableParallelism()} core${availableParallelism() === 1 ? '' : 's'}`;
    expect(lines(ran.stderr)[0]).toBe(`ninelives: note: --processes × --workers 256 capped to ${capped}: ${reason}, so ${capped} processes`);
    expect(readdirSync(join(out, 'hosts'))).toHaveLength(capped);
    expect(resultsIn(out)).toEqual(reference);
  }, 120_000);

  it('status reads no job: at 25,000 chunks (a million trials) it costs what it costs at one', async () => {
    const address = freshQueue();
    const queue = new Queue(address.queue, { connection: connectionOf(address.url) });
    const jobs = 25_000;
    try {
      for (let start = 0; start < jobs; start += 5000) {
        await queue.addBulk(Array.from({ length: 5000 }, (_, index) => ({ name: 'chunk', data: { trials: 40, index: start + index } })));
      }
    } finally {
      await queue.close();
    }
    const commands = await monitored(() => queueStatus(address));
    const status = commands.result;
    expect(status).toMatchObject({ waiting: jobs, running: 0, completed: 0, stalled: 0 });
    // BullMQ keeps job i in the hash bull:QUEUE:i: no command of status names one
    const jobKey = new RegExp(`"bull:${address.queue}:\\d+"`);
    expect(commands.lines.filter((line) => jobKey.test(line))).toEqual([]);
    expect(commands.lines.length).toBeGreaterThan(0);
    expect(commands.lines.length).toBeLessThan(40);
  }, 60_000);

  it('status writes nothing: asking about a queue that does not exist (a misspelt name) leaves no key behind', async () => {
    const address = freshQueue();
    const commands = await monitored(() => queueStatus(address));
    expect(commands.result).toMatchObject({ waiting: 0, running: 0, completed: 0, trialsTotal: 0 });
    expect(await keysMatching(`bull:${address.queue}:*`)).toEqual([]);
    // the command each line names (a script's own calls come as lines of their own)
    const writes = /\] "(hset|hmset|set|del|lpush|rpush|zadd|hincrby|expire)"/i;
    expect(commands.lines.filter((line) => writes.test(line))).toEqual([]);
  });

  it('a worker whose --out holds another campaign\'s results gives the chunk back and stops: one line, exit 2, nothing written', async () => {
    const address = freshQueue();
    const out = join(directory, 'other-campaign');
    mkdirSync(out);
    const manifest = JSON.stringify({ tool: 'ninelives', campaign: 'other', seed: 1 });
    writeFileSync(join(out, 'ninelives.json'), manifest);
    await enqueue(address);
    const refused = await worker(address, out).exited;
    expect(refused.code).toBe(2);
    // after its banner (worker PID on queue ...), one error line
    expect(messages(refused.stderr).slice(1)).toEqual([`ninelives: ${out} holds results of campaign "other" (seed 1); the queue gave this worker a chunk of campaign "queued" (seed 5): start the workers of each campaign with their own --out`]);
    expect(readdirSync(out)).toEqual(['ninelives.json']);
    expect(read(join(out, 'ninelives.json'))).toBe(manifest);
    const status = await queueStatus(address);
    expect(status.waiting).toBe(8);
    expect(status.trialsDone).toBe(0);
  }, 60_000);

  it('a worker that cannot write its records (a full disk) gives its chunks back and stops in one line, exit 1; started again, it finishes the campaign', async () => {
    const address = freshQueue();
    const out = join(directory, 'too-big');
    await enqueue(address);
    // a few records' worth: the write that passes the limit fails (EFBIG), as on a full disk (ENOSPC)
    const cramped = await worker(address, out, [], 8).exited;
    expect(cramped.code).toBe(1);
    expect(messages(cramped.stderr).slice(1)).toEqual(['ninelives: a file is larger than this process may write: EFBIG: file too large, write']);
    const stopped = await queueStatus(address);
    // nothing used up its attempts: what was not done is waiting again
    expect(stopped.failed).toBe(0);
    expect(stopped.completed).toBeLessThan(8);
    expect(stopped.waiting + stopped.completed).toBe(8);
    // with room, the same worker's directory (its torn last line cut) completes the campaign
    await finishInto(address, out);
  }, 120_000);

  it('enqueue puts back a chunk whose attempts were used up, so that it is worked again', async () => {
    const address = freshQueue();
    await enqueue(address);
    // fail one chunk as a worker that threw on each of its three attempts would
    const taker = new Worker(address.queue, null, { connection: connectionOf(address.url) });
    // (a failed attempt goes to the back of the queue: the chunks take turns until one has had three)
    for (let attempt = 1; (await queueStatus(address)).failed === 0; attempt++) {
      const job = await taker.getNextJob('test-token');
      await job?.moveToFailed(new Error(`thrown on attempt ${attempt}`), 'test-token');
    }
    await taker.close();
    expect(await queueStatus(address)).toMatchObject({ failed: 1, waiting: 7 });
    expect(await enqueue(address)).toBe(`queued: 8 chunks, 8 missing from the results, 0 added to queue "${address.queue}" (and 1 that had failed put back)\n`);
    // put back with its attempts: it may fail twice more before it is given up again
    const client = await new Queue(address.queue, { connection: connectionOf(address.url) }).client;
    const attempts = await Promise.all((await client.lrange(`bull:${address.queue}:wait`, 0, -1)).map((id) => client.hget(`bull:${address.queue}:${id}`, 'atm')));
    expect(attempts.filter((made) => made === '3')).toEqual([]);
    client.disconnect();
    await finishInto(address, join(directory, 'retried'));
  }, 120_000);

  it('one writer a results directory: a second worker on a worker\'s --out is refused in one line, exit 2 (both wrote every record)', async () => {
    const address = freshQueue();
    const out = join(directory, 'one-writer');
    const first = worker(address, out);
    await waitUntil(() => existsSync(join(out, '.ninelives.lock')), 'the first worker holds the directory');
    const second = await worker(freshQueue(), out).exited;
    expect(second.code).toBe(2);
    expect(messages(second.stderr)).toEqual([`ninelives: ${out} is in use by process ${first.process.pid}, another ninelives writing there: wait for it to end, or stop it`]);
    await stop([first]);
    expect(existsSync(join(out, '.ninelives.lock'))).toBe(false);
  }, 60_000);

  it('job ids name the campaign, its seed, the version and the chunk', () => {
    const parsed = parseCampaign(CAMPAIGN_TEXT, 'queued.yaml');
    const id = chunkJobId(parsed, '0.1.0+abc', 4, 7);
    expect(id).toMatch(/^queued-5-[0-9a-f]{16}-4-7$/);
    expect(chunkJobId(parsed, '0.1.0+def', 4, 7)).not.toBe(id);
    expect(chunkJobId({ ...parsed, seed: 6 }, '0.1.0+abc', 4, 7)).not.toBe(id);
  });
});

/** A `queue run` of the campaign with two processes, once they have recorded some trials. */
async function queueRunUnderWay(name: string): Promise<{ address: QueueAddress; out: string; hosts: string; child: Child; command: string; recorded: () => number }> {
  const address = freshQueue();
  const out = join(directory, name);
  const hosts = join(out, 'hosts');
  const args = ['queue', 'run', campaign, '--out', out, '--processes', '2', '--chunk-size', '1', '--redis', address.url, '--queue', address.queue];
  const child = spawnCli(args, directory);
  const recorded = (): number => (existsSync(hosts) ? readdirSync(hosts).reduce((sum, host) => sum + completeLines(join(hosts, host, 'trials.jsonl')), 0) : 0);
  await waitUntil(() => recorded() >= 4, 'the worker processes have recorded some trials');
  return { address, out, hosts, child, command: `ninelives ${args.join(' ')}`, recorded };
}

/** The worker processes stopped short of the campaign, and write nothing more. */
async function expectWorkersStopped(recorded: () => number): Promise<void> {
  const stoppedAt = recorded();
  expect(stoppedAt).toBeLessThan(64);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(recorded()).toBe(stoppedAt);
}

/**
 * A bare connection to the tests' Redis (no client library that might write) that sends
 * `commands`; `feed()` is everything it has answered so far.
 */
function bareRedis(commands: string): { feed: () => string; close: () => void } {
  const { hostname, port } = new URL(REDIS_URL);
  const socket = connect({ host: hostname, port: Number(port === '' ? 6379 : port) });
  let feed = '';
  socket.on('data', (data) => (feed += data.toString('utf8')));
  socket.write(commands);
  return { feed: () => feed, close: () => socket.destroy() };
}

/** KEYS pattern in the tests' database. */
async function keysMatching(pattern: string): Promise<string[]> {
  const redis = bareRedis(`SELECT 7\r\nKEYS ${pattern}\r\n`);
  const answered = (feed: string): boolean => /^\+OK\r\n\*(\d+)\r\n/.test(feed) && feed.split('\r\n').length >= 3 + 2 * Number(/\*(\d+)/.exec(feed)?.[1]);
  await waitUntil(() => answered(redis.feed()), 'KEYS answered', 5000);
  redis.close();
  return redis.feed().split('\r\n').slice(2).filter((_, index) => index % 2 === 1);
}

/** The commands Redis ran, in its MONITOR feed, for the keys of our database, while `work` ran. */
async function monitored<T>(work: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const redis = bareRedis('MONITOR\r\n');
  await waitUntil(() => redis.feed().startsWith('+OK'), 'MONITOR is on', 5000);
  const result = await work();
  // the feed may lag the commands a little
  await new Promise((resolve) => setTimeout(resolve, 300));
  redis.close();
  const lines = redis.feed().split('\r\n').filter((line) => line.startsWith('+') && / \[7 /.test(line));
  return { result, lines };
}
