/**
 * The Redis work queue (BullMQ): a producer enqueues a campaign's missing chunks; workers, on any
 * number of hosts, run chunks in their local worker threads (so the event loop stays free to
 * renew BullMQ's locks) and append the records to their own results file; `merge` combines the
 * hosts' files, checking that a trial run twice (a chunk re-issued after a worker died) gave the
 * same record. Trials are pure functions of their spec, so delivering a chunk twice is harmless.
 */
import { connect } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { STOP_RULE_FILE, stopRuleText, type StopRule } from '../../results/stopping.js';
import { stopRuleOf } from '../stopping.js';
import { Piscina } from 'piscina';
import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { isSystemIoFailure, NinelivesError } from '../../errors.js';
import { trialsPath } from '../../results/directory.js';
import { currentProvenance } from '../../results/provenance.js';
import { ResultsStore } from '../../results/store.js';
import { cutTornEnd } from '../../results/lines.js';
import type { TrialJob } from '../plan.js';
import { runWithRetry, workerFile, type RunGroup } from '../runner.js';
import type { Campaign } from '../spec.js';
import { ChunkCache, chunkJobId, pendingWork, ResultsSoFar, type ChunkJob } from './chunks.js';
import { HostCampaignError, HostDirectory } from './host-directory.js';
import { IdleMeter, type IdleReport } from './idle.js';
import type { TimedRecords } from './thread.js';
import { addQueued, chunkDone, chunkStarted, existing, readProgress, whichExist, type CampaignProgress } from './progress.js';

export const DEFAULT_QUEUE = 'ninelives';
export const DEFAULT_PREFETCH = 1;
/** How long a chunk stays locked to a worker that stopped renewing it (one killed, say) before another takes it. */
export const DEFAULT_LOCK_MS = 30_000;
/** chunks enqueued with one addBulk (BullMQ sends them in one pipeline) */
const ENQUEUE_BATCH = 1000;

export class QueueUnreachableError extends NinelivesError {
  constructor(url: string, reason: string) {
    super('usage.noQueue', `cannot reach Redis at ${withoutPassword(url)} (${reason}): start redis-server, or give --redis redis://HOST:PORT`);
  }
}

/** A Redis URL as messages show it: a password never printed. */
export function withoutPassword(url: string): string {
  return url.replace(/^(redis:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

export class VersionMismatchError extends NinelivesError {
  constructor(queue: string, theirs: string, mine: string) {
    super('queue.versionMismatch', `queue "${queue}" holds chunks of ninelives ${theirs}; this worker is ${mine}: run the same version on every host`);
  }
}

export interface QueueAddress {
  readonly url: string;
  readonly queue: string;
}

/** Redis numbers its databases from 0; how many it has is its own setting (16 by default). */
const MAX_DATABASE_INDEX = 2 ** 31 - 1;

interface RedisTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username?: string;
  readonly password?: string;
}

/** The parts of redis://[USER:PASSWORD@]HOST[:PORT][/DB], or a one-line error naming the URL. */
function redisTarget(url: string): RedisTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueUnreachableError(url, 'expected redis://HOST:PORT');
  }
  if (parsed.protocol !== 'redis:' || parsed.hostname === '') throw new QueueUnreachableError(url, 'expected redis://HOST:PORT');
  const database = parsed.pathname.replace(/^\//, '');
  if (!/^\d{0,10}$/.test(database) || Number(database) > MAX_DATABASE_INDEX) throw new QueueUnreachableError(url, `the database after the port must be a number, got "${database}"`);
  return {
    // an IPv6 address is written in brackets in a URL, and connected to without them
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db: Number(database),
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
  };
}

/** ioredis options from a redis:// URL; BullMQ's workers need maxRetriesPerRequest null. */
export function connectionOf(url: string): ConnectionOptions {
  return { ...redisTarget(url), maxRetriesPerRequest: null };
}

/** A command as Redis reads it (RESP): an array of bulk strings, so a password may hold anything. */
function respCommand(...parts: readonly string[]): string {
  return `*${parts.length}\r\n` + parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('');
}

/**
 * Fails fast, in one line, where Redis does not answer (ioredis itself would retry forever) or
 * refuses the URL's credentials or database (ioredis would go on in database 0).
 */
export async function checkReachable(url: string, timeoutMs = 3000): Promise<void> {
  const target = redisTarget(url);
  const commands = [
    ...(target.password === undefined ? [] : [target.username === undefined ? respCommand('AUTH', target.password) : respCommand('AUTH', target.username, target.password)]),
    respCommand('SELECT', String(target.db)),
  ];
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    const fail = (reason: string): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new QueueUnreachableError(url, reason));
    };
    const timer = setTimeout(() => fail('no answer'), timeoutMs);
    let replies = '';
    socket.once('connect', () => socket.write(commands.join('')));
    socket.on('data', (data) => {
      replies += data.toString('utf8');
      const lines = replies.split('\r\n').slice(0, -1);
      // a password given to a Redis that needs none is not an error (ioredis only warns)
      const refused = lines.find((line) => line.startsWith('-') && !/no password is set|without any password configured/.test(line));
      if (refused !== undefined) return fail(refused.slice(1));
      if (lines.length < commands.length) return;
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once('error', (error) => fail(error.message));
  });
}

function versionKey(queue: string): string {
  return `ninelives:${queue}:version`;
}

export interface EnqueueResult {
  readonly chunks: number;
  readonly missing: number;
  /** jobs Redis did not hold yet */
  readonly added: number;
  /** jobs Redis held as failed (their attempts used up), put back to be worked again */
  readonly retried: number;
  /** a campaign with a stop rule: the round enqueued (enqueue again once it is done) */
  readonly round?: number;
}

/**
 * Enqueue the chunks of `campaign` that the results files lack. A chunk already on the queue
 * (waiting, running or completed) keeps its job: its id is the same. A caller that enqueues the
 * same campaign again and again (each round of a stop rule) passes the same `soFar`, which reads
 * each record once.
 */
export async function enqueueCampaign(address: QueueAddress, campaign: Campaign, options: { version: string; chunkSize: number; resultsFiles: readonly string[]; soFar?: ResultsSoFar }): Promise<EnqueueResult> {
  const pending = pendingWork(campaign, options.chunkSize, options.resultsFiles, options.soFar);
  if (pending === undefined) return { chunks: 0, missing: 0, added: 0, retried: 0 };
  const { chunks, missing, round } = pending;
  const queue = new Queue<ChunkJob>(address.queue, { connection: connectionOf(address.url) });
  try {
    const client = await queue.client;
    await client.set(versionKey(address.queue), options.version);
    let added = 0;
    let retried = 0;
    let trialsAdded = 0;
    // in batches, a round trip or two each, not two a chunk: a million trials are 25,000 chunks
    for (let start = 0; start < missing.length; start += ENQUEUE_BATCH) {
      const batch = missing.slice(start, start + ENQUEUE_BATCH).map((chunk) => ({ chunk, jobId: chunkJobId(campaign, options.version, options.chunkSize, chunk, round?.round) }));
      // a chunk already on the queue (waiting, running or done) keeps its job
      const held = await whichExist(client, batch.map(({ jobId }) => queue.toKey(jobId)));
      // a chunk whose attempts were used up is missing from the results still: work it again
      retried += await retryFailed(queue, batch.filter((_, index) => held[index]).map(({ jobId }) => jobId));
      const fresh = batch.filter((_, index) => !held[index]);
      if (fresh.length === 0) continue;
      const jobs = fresh.map(({ chunk, jobId }) => {
        const trials = chunks[chunk].reduce((sum, group) => sum + group.length, 0);
        trialsAdded += trials;
        const data: ChunkJob = { campaign, chunk, chunkSize: options.chunkSize, version: options.version, trials, ...(round === undefined ? {} : { round }) };
        return { name: 'chunk', data, opts: { jobId, removeOnComplete: false, removeOnFail: false, attempts: 3 } };
      });
      await queue.addBulk(jobs);
      added += jobs.length;
    }
    if (trialsAdded > 0) await addQueued(client, address.queue, campaignLabel(campaign), trialsAdded);
    return { chunks: chunks.length, missing: missing.length, added, retried, ...(round === undefined ? {} : { round: round.round }) };
  } finally {
    await queue.close();
  }
}

/** Put the failed ones among `jobIds` back on the queue; how many there were. */
async function retryFailed(queue: Queue<ChunkJob>, jobIds: readonly string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const client = await queue.client;
  const failed = queue.toKey('failed');
  const scores = await Promise.all(jobIds.map((jobId) => client.zscore(failed, jobId)));
  const toRetry = jobIds.filter((_, index) => scores[index] !== null);
  // with its attempts given back: a chunk put back gets the three a new one gets
  for (const jobId of toRetry) await (await queue.getJob(jobId))?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  return toRetry.length;
}

/** How status names a campaign: its name and seed. */
export function campaignLabel(campaign: Campaign): string {
  return `${campaign.name} seed ${campaign.seed}`;
}

export interface WorkOptions {
  readonly version: string;
  readonly outDirectory: string;
  readonly threads: number;
  /** how long a dead worker's chunk stays locked before it is re-issued */
  readonly lockDurationMs?: number;
  /** chunks taken beyond one per thread, waiting in the pool's queue (default 1; see startWorker) */
  readonly prefetch?: number;
  readonly onChunk?: (job: ChunkJob, trials: number) => void;
}

export interface RunningWorker {
  /**
   * resolves when the worker stopped on close; rejects when it stopped by itself: a chunk of
   * another version or campaign, or a results file it could not write (a full disk), each chunk
   * given back to the queue
   */
  readonly stopped: Promise<void>;
  close(): Promise<void>;
  /** how long its pool ran dry and its threads waited between groups, so far (idle.ts) */
  idle(): IdleReport;
}

/**
 * Works chunks until closed. Each record goes to `outDirectory`/trials.jsonl as it completes.
 *
 * The worker holds its next chunk while it runs one (prefetch, 1 by default): BullMQ takes one
 * chunk more than there are threads, and the held chunk's groups wait in the pool's queue behind
 * the running chunk's, so that a thread finishing a chunk starts the next at once, while the
 * finished chunk's completion, the fetch of another chunk and the progress counters go to Redis
 * beside the work instead of between chunks. Holding through BullMQ's concurrency rather than by
 * fetching a job ourselves keeps BullMQ's bookkeeping for the held chunk: it is an active job
 * whose lock the worker's lock manager renews like the running chunk's, so a worker that dies
 * leaves both to go stale, and the stalled-job check re-issues both; each chunk's trials are
 * counted once (progress.ts) and a trial run twice must give the same record (`merge`). The
 * price: at the end of a campaign, or of a stop rule's round, a held chunk waits for its worker
 * while another host may be idle, at most one chunk a worker; `prefetch: 0` gives that back.
 */
export async function startWorker(address: QueueAddress, options: WorkOptions): Promise<RunningWorker> {
  const queue = new Queue(address.queue, { connection: connectionOf(address.url) });
  const wanted = await (await queue.client).get(versionKey(address.queue));
  await queue.close();
  if (wanted !== null && wanted !== options.version) throw new VersionMismatchError(address.queue, wanted, options.version);
  mkdirSync(options.outDirectory, { recursive: true });
  // this host's file has one writer, this worker: a line a killed worker left torn is cut, not appended to
  cutTornEnd(trialsPath(options.outDirectory));
  const store = new ResultsStore(trialsPath(options.outDirectory));
  // Groups run in the order given (stricterFIFO: piscina otherwise sends a group it could not
  // place to the back of its queue, mixing a held chunk's groups into the running chunk's), and a
  // thread is given its next group while it runs one (two a thread), so that it finds the next
  // one waiting when it finishes instead of waiting for the main thread to hear of the result
  // and send another: with a loaded machine, that round trip between threads costs about a
  // millisecond a group. A thread still runs its groups one after the other.
  const pool = new Piscina<readonly TrialJob[], TimedRecords>({
    filename: threadFile(),
    minThreads: options.threads,
    maxThreads: options.threads,
    stricterFIFO: true,
    concurrentTasksPerWorker: 2,
  });
  const host = new HostDirectory(options.outDirectory);
  const chunks = new ChunkCache();
  const meter = new IdleMeter();
  const runGroup = (firstOfChunk: boolean): RunGroup => async (group) => {
    meter.groupSubmitted();
    let waitedMs: number | undefined;
    try {
      const timed = await pool.run(group);
      waitedMs = timed.waitedMs;
      return timed.records;
    } finally {
      meter.groupDone(waitedMs, firstOfChunk);
    }
  };
  let refused: NinelivesError | NodeJS.ErrnoException | undefined;
  // give the chunk back for another worker (or this one, started again), and stop taking chunks
  const giveBack = async (job: Job<ChunkJob, number>, token: string | undefined, why: NinelivesError | NodeJS.ErrnoException): Promise<never> => {
    refused ??= why;
    // wall-clock time for the broker, at the edge: no trial reads it
    // eslint-disable-next-line no-restricted-properties
    await job.moveToDelayed(Date.now() + 1000, token);
    void closeAll();
    throw new DelayedError();
  };
  const lockDuration = options.lockDurationMs ?? DEFAULT_LOCK_MS;
  const worker = new Worker<ChunkJob, number>(
    address.queue,
    async (job: Job<ChunkJob, number>, token?: string) => {
      if (job.data.version !== options.version) return giveBack(job, token, new VersionMismatchError(address.queue, job.data.version, options.version));
      try {
        host.admit(job.data.campaign);
      } catch (error) {
        if (error instanceof HostCampaignError) return giveBack(job, token, error);
        throw error;
      }
      const client = await worker.client;
      await chunkStarted(client, address.queue);
      meter.chunkStarted();
      let trials: number;
      try {
        trials = await runChunk(job, chunks.chunk(job.data), runGroup, store, options);
      } catch (error) {
        // a full disk fails every chunk alike: retrying them would only use up their attempts
        if (isSystemIoFailure(error)) return giveBack(job, token, error);
        throw error;
      }
      // counted once per chunk, after its records are on disk
      await chunkDone(client, address.queue, job.id ?? '', campaignLabel(job.data.campaign), trials);
      return trials;
    },
    { connection: connectionOf(address.url), concurrency: options.threads + (options.prefetch ?? DEFAULT_PREFETCH), lockDuration, stalledInterval: Math.max(1000, lockDuration / 2), maxStalledCount: 10 },
  );
  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> =>
    (closing ??= (async () => {
      await worker.close();
      await pool.destroy();
      store.close();
    })());
  await worker.waitUntilReady();
  const stopped = new Promise<void>((resolve, reject) => {
    worker.on('closed', () => {
      void (closing ?? Promise.resolve()).then(() => (refused === undefined ? resolve() : reject(refused)));
    });
  });
  return { stopped, close: closeAll, idle: () => meter.report() };
}

/** The queue's thread entry (thread.ts), built beside the plain run's (dist/src/campaign/queue/). */
function threadFile(): string {
  return join(dirname(workerFile()), 'queue', 'thread.js');
}

async function runChunk(job: Job<ChunkJob, number>, groups: readonly TrialJob[][], runGroup: (firstOfChunk: boolean) => RunGroup, store: ResultsStore, options: WorkOptions): Promise<number> {
  let trials = 0;
  await Promise.all(
    groups.map(async (group, index) => {
      // a trial the harness fails is retried, then recorded as a harness error, as in a plain run
      const records = await runWithRetry(runGroup(index === 0), group);
      for (const record of records) store.append({ ...record, ninelives: currentProvenance() });
      // no job.updateProgress here: nothing reads a chunk's own progress (status reads the
      // progress hash, once a chunk is done), and a Redis command a group is CPU beside the work
      trials += records.length;
    }),
  );
  // a host's results say which stop rule they were run under, for `merge`
  if (job.data.campaign.stop !== undefined) writeFileSync(join(options.outDirectory, STOP_RULE_FILE), stopRuleText(stopRuleOf(job.data.campaign) as StopRule));
  options.onChunk?.(job.data, trials);
  return trials;
}

export interface QueueStatus {
  readonly completed: number;
  readonly running: number;
  readonly waiting: number;
  /** running chunks whose worker stopped renewing the lock: they go back to waiting soon */
  readonly stalled: number;
  readonly failed: number;
  /** trials of finished chunks, and of the chunks enqueued (over the queue's life) */
  readonly trialsDone: number;
  readonly trialsTotal: number;
  /** since the queue last went from idle to busy: first chunk started to last chunk finished */
  readonly trialsPerSecond: number;
  readonly etaSeconds: number;
  readonly campaigns: readonly CampaignProgress[];
}

/**
 * The fleet's progress at a cost that does not grow with the number of jobs: BullMQ's counts,
 * the progress hash the producer and workers keep (progress.ts), and the locks of the running
 * chunks only (as many as the fleet has threads), to see which are stalled.
 */
export async function queueStatus(address: QueueAddress): Promise<QueueStatus> {
  const queue = openQueue(address, { readOnly: true });
  try {
    return await statusOf(queue);
  } finally {
    await queue.close();
  }
}

/**
 * A queue handle. BullMQ writes the queue's meta hash (its version) when a handle connects; one
 * that only reads (`readOnly`, as `queue status`) writes nothing, so that asking about a queue,
 * or a misspelt one, leaves Redis as it was.
 */
export function openQueue(address: QueueAddress, { readOnly = false } = {}): Queue<ChunkJob, number> {
  return new Queue<ChunkJob, number>(address.queue, { connection: connectionOf(address.url), skipMetasUpdate: readOnly });
}

/** As queueStatus, on a queue the caller keeps open (one who asks often). */
export async function statusOf(queue: Queue<ChunkJob, number>): Promise<QueueStatus> {
  const counts = await queue.getJobCounts('completed', 'active', 'waiting', 'delayed', 'prioritized', 'paused', 'failed');
  const client = await queue.client;
  const activeIds = await client.lrange(queue.toKey('active'), 0, -1);
  const locks = await existing(client, activeIds.map((id) => queue.toKey(`${id}:lock`)));
  const progress = await readProgress(client, queue.name);
  return {
    completed: counts.completed,
    running: counts.active,
    waiting: counts.waiting + counts.delayed + counts.prioritized + counts.paused,
    stalled: activeIds.length - locks,
    failed: counts.failed,
    trialsDone: progress.trialsDone,
    trialsTotal: progress.trialsQueued,
    trialsPerSecond: progress.trialsPerSecond,
    etaSeconds: progress.etaSeconds,
    campaigns: progress.campaigns,
  };
}
