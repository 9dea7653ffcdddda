/**
 * A queue's progress, kept in one small Redis hash so that `queue status` costs the same at 8
 * chunks as at 25,000 (a million trials): the producer adds the trials it enqueues, the workers
 * add the trials of each chunk they finish, and the hash holds when the current stretch of work
 * started and when the last chunk finished (Redis's clock, the same for every host), for trials
 * per second and the time left. Nothing here lists jobs.
 *
 * Fields: `queued` and `done` (trials, over the queue's life), `queued:<campaign>` and
 * `done:<campaign>` per campaign, `startedMs` and `doneAtStart` (the stretch's start, set by the
 * first chunk a worker takes after the producer found the queue idle), `lastDoneMs`. A chunk is
 * counted once even if it is delivered twice (a worker that finished it died before BullMQ heard
 * so): the ids of counted chunks are a set beside the hash.
 */
import type { RedisClient } from 'bullmq';

export function progressKey(queue: string): string {
  return `ninelives:${queue}:progress`;
}

function countedKey(queue: string): string {
  return `ninelives:${queue}:counted`;
}

/** Redis's clock in milliseconds, in a script: `now` */
const NOW = "local clock = redis.call('TIME'); local now = clock[1] * 1000 + math.floor(clock[2] / 1000)";

/** KEYS: progress, counted. ARGV: trials, campaign. Work added: an idle queue starts a new stretch. */
const ADD_QUEUED = `
local queued = tonumber(redis.call('HGET', KEYS[1], 'queued') or 0)
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or 0)
if done >= queued then redis.call('HDEL', KEYS[1], 'startedMs', 'doneAtStart') end
redis.call('HINCRBY', KEYS[1], 'queued', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'queued:' .. ARGV[2], ARGV[1])
return 1`;

/** KEYS: progress. A chunk started: the first of a stretch marks its start. */
const CHUNK_STARTED = `
${NOW}
if redis.call('HSETNX', KEYS[1], 'startedMs', now) == 1 then
  redis.call('HSET', KEYS[1], 'doneAtStart', redis.call('HGET', KEYS[1], 'done') or 0)
end
return 1`;

/** KEYS: progress, counted. ARGV: chunk id, trials, campaign. Counted once per chunk id. */
const CHUNK_DONE = `
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
${NOW}
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'done:' .. ARGV[3], ARGV[2])
redis.call('HSET', KEYS[1], 'lastDoneMs', now)
return 1`;

/**
 * The commands used here beyond those BullMQ's client type lists (it is an ioredis client,
 * which has them all).
 */
export interface ScriptingClient {
  eval(script: string, keys: number, ...args: (string | number)[]): Promise<unknown>;
  exists(...keys: string[]): Promise<number>;
}

function scripting(client: RedisClient): ScriptingClient {
  return client as unknown as ScriptingClient;
}

export async function addQueued(client: RedisClient, queue: string, campaign: string, trials: number): Promise<void> {
  await scripting(client).eval(ADD_QUEUED, 2, progressKey(queue), countedKey(queue), trials, campaign);
}

export async function chunkStarted(client: RedisClient, queue: string): Promise<void> {
  await scripting(client).eval(CHUNK_STARTED, 1, progressKey(queue));
}

export async function chunkDone(client: RedisClient, queue: string, chunkId: string, campaign: string, trials: number): Promise<void> {
  await scripting(client).eval(CHUNK_DONE, 2, progressKey(queue), countedKey(queue), chunkId, trials, campaign);
}

export interface CampaignProgress {
  readonly campaign: string;
  readonly trialsDone: number;
  readonly trialsQueued: number;
}

export interface Progress {
  readonly trialsDone: number;
  readonly trialsQueued: number;
  /** over the current stretch: from its first chunk's start to its last chunk's finish */
  readonly trialsPerSecond: number;
  /** the trials enqueued and not done, at that rate; NaN before a rate is known */
  readonly etaSeconds: number;
  readonly campaigns: readonly CampaignProgress[];
}

/** How many of `keys` exist, in one command. */
export async function existing(client: RedisClient, keys: readonly string[]): Promise<number> {
  return keys.length === 0 ? 0 : scripting(client).exists(...keys);
}

/** KEYS: any. Whether each exists, in order (EXISTS of several keys only counts them). */
const EACH_EXISTS = `
local found = {}
for index, key in ipairs(KEYS) do found[index] = redis.call('EXISTS', key) end
return found`;

/** For each of `keys`, whether it exists: one command. */
export async function whichExist(client: RedisClient, keys: readonly string[]): Promise<boolean[]> {
  if (keys.length === 0) return [];
  const found = (await scripting(client).eval(EACH_EXISTS, keys.length, ...keys)) as number[];
  return found.map((exists) => exists === 1);
}

/** The progress hash as numbers: one HGETALL, of a hash with two fields per campaign. */
export async function readProgress(client: RedisClient, queue: string): Promise<Progress> {
  const fields = await client.hgetall(progressKey(queue));
  return progressOf(fields);
}

export function progressOf(fields: Readonly<Record<string, string>>): Progress {
  const number = (name: string): number => Number(fields[name] ?? 0);
  const trialsDone = number('done');
  const trialsQueued = number('queued');
  const seconds = (number('lastDoneMs') - number('startedMs')) / 1000;
  const doneInStretch = trialsDone - number('doneAtStart');
  const timed = fields.startedMs !== undefined && fields.lastDoneMs !== undefined && seconds > 0 && doneInStretch > 0;
  const trialsPerSecond = timed ? doneInStretch / seconds : 0;
  const campaigns = Object.keys(fields)
    .filter((name) => name.startsWith('queued:'))
    .map((name) => name.slice('queued:'.length))
    .sort()
    .map((campaign) => ({ campaign, trialsDone: number(`done:${campaign}`), trialsQueued: number(`queued:${campaign}`) }));
  return { trialsDone, trialsQueued, trialsPerSecond, etaSeconds: trialsPerSecond > 0 ? Math.max(0, trialsQueued - trialsDone) / trialsPerSecond : Number.NaN, campaigns };
}
