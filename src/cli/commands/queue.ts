/**
 * `ninelives queue ...`: campaigns on a Redis work queue (BullMQ). `enqueue` adds a campaign's
 * missing chunks, `work` runs chunks on this host into its own results directory, `status`
 * shows the fleet's progress, and `run` does all three on one host and merges the result.
 * `ninelives merge` combines the hosts' results directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import type { Queue } from 'bullmq';
import { ResultsSoFar, type ChunkJob } from '../../campaign/queue/chunks.js';
import { checkReachable, DEFAULT_LOCK_MS, DEFAULT_PREFETCH, DEFAULT_QUEUE, enqueueCampaign, openQueue, queueStatus, startWorker, statusOf, type QueueAddress, type QueueStatus } from '../../campaign/queue/queue.js';
import { describeIdle } from '../../campaign/queue/idle.js';
import { TRIALS_FILE, existingTrialsFile, finishResults } from '../../results/directory.js';
import { firstRecord } from '../../results/store.js';
import { MANIFEST_FILE, writeManifest, type Manifest } from '../../results/manifest.js';
import { planMerge, writeMerged } from '../../results/merge.js';
import { currentProvenance, provenanceId } from '../../results/provenance.js';
import { STOP_RULE_FILE, stopRuleText } from '../../results/stopping.js';
import { planSizeOf, runManifest } from '../../campaign/run-manifest.js';
import { chooseWorkers, plannedFaultCount } from '../../campaign/limits.js';
import { stopRuleOf } from '../../campaign/stopping.js';
import type { Campaign } from '../../campaign/spec.js';
import { LOCK_FILE, lockDirectory } from '../../results/lock.js';
import { NinelivesError } from '../../errors.js';
import { writeDirectoryReports } from '../../report/write.js';
import { CommandFailure, errorLine, Interrupted, UsageError } from '../errors.js';
import { interruptibly, stoppingAtOnce } from '../interrupts.js';
import { shellCommand } from '../shell.js';
import type { CliIo } from '../io.js';
import { parseInteger } from '../options.js';
import { findPackageRoot } from '../../package-info.js';
import { checkOrExplain, claimOrExplain, loadOrExplain } from './run.js';

const DEFAULT_CHUNK_SIZE = 20;
/**
 * `queue run` asks how the queue is doing after a tenth of the time it has waited so far, within
 * these bounds: a short round of a stop rule is seen done within 50 ms, a long wait costs a
 * status a second, and no wait runs more than a tenth longer than its work.
 */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 1000;
/** and says so on stderr this often */
const REPORT_MS = 2000;

interface AddressOptions {
  readonly redis: string;
  readonly queue: string;
}

/** The version a queue's chunks are made and worked with: the provenance records carry, as one string. */
export function ninelivesVersion(): string {
  return provenanceId(currentProvenance());
}

/** BullMQ's keys join the queue's name with ':', and Redis holds it in every key */
const MAX_QUEUE_NAME = 100;

function parseQueueName(text: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(text) || text.length > MAX_QUEUE_NAME) {
    throw new UsageError('usage.invalidArgument', `--queue expects a name of letters, digits, '.', '_' and '-', at most ${MAX_QUEUE_NAME} characters, got "${text.length > 40 ? `${text.slice(0, 40)}...` : text}"`);
  }
  return text;
}

function withAddress(command: Command): Command {
  return command
    .addOption(new Option('--redis <url>', 'the Redis server').default(process.env.NINELIVES_REDIS_URL || 'redis://127.0.0.1:6379', '$NINELIVES_REDIS_URL or redis://127.0.0.1:6379'))
    .option('--queue <name>', `the queue's name (letters, digits, '.', '_', '-'; at most ${MAX_QUEUE_NAME} characters)`, parseQueueName, DEFAULT_QUEUE);
}

async function reachable(options: AddressOptions): Promise<QueueAddress> {
  await translated(() => checkReachable(options.redis));
  return { url: options.redis, queue: options.queue };
}

async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof NinelivesError && /^(usage|input)\./.test(error.code)) throw new UsageError(error.code, error.message);
    if (error instanceof NinelivesError) throw new CommandFailure(error.code, error.message);
    throw error;
  }
}

/** Results files under the directories given: each directory's own, and its hosts' (DIR/hosts/*). */
function resultsFilesIn(directories: readonly string[]): string[] {
  return directories.flatMap((directory) => {
    const hosts = join(directory, 'hosts');
    const own = [join(directory, TRIALS_FILE)];
    const ofHosts = existsSync(hosts) ? readdirSync(hosts).map((host) => join(hosts, host, TRIALS_FILE)) : [];
    return [...own, ...ofHosts].filter((path) => existsSync(path));
  });
}

/**
 * The results files of `--results`: each directory named once, a directory holding a ninelives
 * result (its trials.jsonl, its hosts' hosts/NAME/trials.jsonl, all regular files) of this campaign
 * and seed. A typo or another campaign's results would otherwise enqueue the whole campaign again
 * without a word.
 */
function checkedResultsFiles(directories: readonly string[], campaign: Campaign, io: CliIo): string[] {
  const named = directories.map((directory) => resolve(directory));
  const twice = directories.find((_, index) => named.indexOf(named[index]) !== index);
  if (twice !== undefined) throw new UsageError('usage.noResults', `--results names ${twice} twice`);
  return directories.flatMap((directory) => {
    // a host's directory its worker has not made (or filled) yet holds nothing: said, so that a typo is seen
    if (!existsSync(directory) || (isDirectory(directory) && readdirSync(directory).length === 0)) {
      io.stderr.write(errorLine(`note: --results ${directory} ${existsSync(directory) ? 'is empty' : 'does not exist'} (yet): nothing in it is counted as done`));
      return [];
    }
    if (!isDirectory(directory)) throw new UsageError('usage.noResults', `--results ${directory} is not a directory`);
    const hosts = join(directory, 'hosts');
    if (existsSync(hosts) && !isDirectory(hosts)) throw new UsageError('usage.noResults', `--results ${directory}: ${hosts} is not a directory`);
    const hostDirectories = existsSync(hosts) ? readdirSync(hosts).map((host) => join(hosts, host)) : [];
    const stranger = hostDirectories.find((host) => !isDirectory(host));
    if (stranger !== undefined) throw new UsageError('usage.noResults', `--results ${directory}: ${stranger} is not a directory (each host's results are)`);
    const files = resultsFilesIn([directory]).map((path) => existingTrialsFile(dirname(path)));
    // a worker's directory before its first record holds its lock, then its manifest, only
    const isResults = files.length > 0 || hostDirectories.length > 0 || [MANIFEST_FILE, LOCK_FILE].some((name) => existsSync(join(directory, name)));
    if (!isResults) throw new UsageError('usage.noResults', `--results ${directory} holds no ninelives results (no ${TRIALS_FILE}, ${MANIFEST_FILE} or hosts/)`);
    for (const file of files) {
      const first = firstRecord(file);
      if (first !== undefined && (first.campaign !== campaign.name || first.record.seed !== campaign.seed)) {
        throw new UsageError('usage.mixedCampaigns', `--results ${file} holds trials of campaign "${first.campaign}" (seed ${first.record.seed}), not "${campaign.name}" (seed ${campaign.seed})`);
      }
    }
    return files;
  });
}

/** A directory, not a link to one: results are read where they are. */
function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function registerQueueCommands(program: Command, io: CliIo): void {
  const queue = program.command('queue').description('run campaigns on a Redis work queue (BullMQ) across hosts');

  withAddress(queue.command('enqueue'))
    .description('enqueue the chunks of a campaign that the results given lack (again after a Redis restart: idempotent)')
    .argument('<campaign>', 'campaign file (YAML)')
    .option('--results <dirs...>', 'results directories already holding trials of it (and their hosts/*)', [])
    .option('--chunk-size <n>', 'fault groups per chunk', parseInteger('--chunk-size', 1, 100_000), DEFAULT_CHUNK_SIZE)
    .action(async (path: string, options: AddressOptions & { results: string[]; chunkSize: number }) => {
      const campaign = loadOrExplain(path);
      const resultsFiles = checkedResultsFiles(options.results, campaign, io);
      const address = await reachable(options);
      const result = await translated(() => enqueueCampaign(address, campaign, { version: ninelivesVersion(), chunkSize: options.chunkSize, resultsFiles }));
      const round = result.round === undefined ? '' : ` (round ${result.round} of its stop rule: enqueue again, with the hosts' results, once it is done)`;
      if (result.missing === 0) {
        io.stdout.write(`${campaign.name}: complete in the results given; nothing enqueued\n`);
        return;
      }
      io.stdout.write(`${campaign.name}: ${result.chunks} chunks, ${result.missing} missing from the results, ${result.added} added to queue "${address.queue}"${result.retried > 0 ? ` (and ${result.retried} that had failed put back)` : ''}${round}\n`);
    });

  withAddress(queue.command('work'))
    .description('work chunks from the queue with this host\'s worker threads, appending records to DIR/trials.jsonl, until SIGINT or SIGTERM')
    .requiredOption('--out <dir>', 'this host\'s results directory')
    .option('--workers <n>', 'worker threads (default: one per core)', parseInteger('--workers', 1, 256), availableParallelism())
    .option('--lock-ms <ms>', 'how long a dead worker\'s chunk stays locked before another takes it', parseInteger('--lock-ms', 1000, 3_600_000), DEFAULT_LOCK_MS)
    .option('--force', 'write into an output directory that holds other files than a ninelives result')
    .option('--prefetch <n>', 'chunks to hold beyond one per thread, so that a thread finishing a chunk finds the next one waiting (0: take a chunk only when a thread is free)', parseInteger('--prefetch', 0, 64), DEFAULT_PREFETCH)
    .option('--idle-report', 'on stopping, print how long the pool ran dry and the threads waited between groups (the queue\'s overhead)')
    .action(async (options: AddressOptions & { out: string; workers: number; lockMs: number; prefetch: number; force?: boolean; idleReport?: boolean }) => {
      // as for `run --out`: new, empty or a ninelives result, before any chunk (the first chunk's
      // campaign writes the manifest, and chunks of another campaign are refused); created only
      // once Redis answers, so that a refusal leaves nothing behind
      const claim = { campaign: undefined, force: options.force, named: '--out' };
      checkOrExplain(options.out, claim);
      const address = await reachable(options);
      claimOrExplain(options.out, claim);
      // one writer a results directory: another worker, or a run, writing there is refused
      const release = lockDirectory(options.out);
      try {
        await workUntilStopped(address, options, io, release);
      } finally {
        release();
      }
    });

  withAddress(queue.command('status'))
    .description('chunks done, running, waiting and stalled across every host; trials per second and the time left')
    .option('--json', 'one JSON object')
    .action(async (options: AddressOptions & { json?: boolean }) => {
      const status = await translated(async () => queueStatus(await reachable(options)));
      io.stdout.write(options.json === true ? JSON.stringify(status) + '\n' : describeStatus(status));
    });

  withAddress(queue.command('run'))
    .description('one host: enqueue a campaign, work it with N worker processes, merge their results into DIR and write the reports')
    .argument('<campaign>', 'campaign file (YAML)')
    .requiredOption('--out <dir>', 'results directory (the processes write DIR/hosts/worker-I)')
    .option('--processes <n>', 'worker processes', parseInteger('--processes', 1, 256), 2)
    .option('--workers <n>', 'worker threads per process', parseInteger('--workers', 1, 256), 1)
    .option('--chunk-size <n>', 'fault groups per chunk', parseInteger('--chunk-size', 1, 100_000), DEFAULT_CHUNK_SIZE)
    .option('--force', 'write into an output directory that holds other files than this campaign\'s results')
    .option('--prefetch <n>', 'chunks each process holds beyond one per thread (as for queue work)', parseInteger('--prefetch', 0, 64), DEFAULT_PREFETCH)
    .option('--idle-report', 'each worker process prints, as it stops, how long its pool ran dry and its threads waited between groups')
    .action(async (path: string, options: AddressOptions & { out: string; processes: number; workers: number; chunkSize: number; prefetch: number; force?: boolean; idleReport?: boolean }, command: Command) => {
      const commandLine = shellCommand(['ninelives', ...(command.parent?.parent?.args ?? ['queue', 'run', path])]);
      const campaign = loadOrExplain(path);
      // as for `run`: DIR is new, empty or this campaign's (its manifest says so), before any work
      // unfinished until the hosts' results are merged, so a run stopped on the way says it is partial
      const manifest = runManifest(campaign, undefined, undefined);
      const claim = { campaign: campaign.name, force: options.force, named: '--out' };
      checkOrExplain(options.out, claim);
      // created only once Redis answers, so that a refusal leaves nothing behind
      const address = await reachable(options);
      claimOrExplain(options.out, claim, { ...manifest, unfinished: true });
      // as run's --workers: a process per fault group at most, and two threads a core in all
      const faults = plannedFaultCount(planSizeOf(campaign), undefined, undefined);
      const choice = chooseWorkers(options.processes * options.workers, faults, availableParallelism(), '--processes × --workers');
      const processes = Math.max(1, Math.floor(choice.workers / options.workers));
      if (choice.note !== undefined) io.stderr.write(errorLine(`note: ${choice.note}, so ${processes} process${processes === 1 ? '' : 'es'}`));
      const release = lockDirectory(options.out);
      try {
        await runOnThisHost(campaign, manifest, address, { ...options, processes }, { commandLine, release }, io);
      } finally {
        release();
      }
    });
}

interface QueueRunOptions {
  readonly out: string;
  readonly processes: number;
  readonly workers: number;
  readonly chunkSize: number;
  readonly prefetch: number;
  readonly idleReport?: boolean;
}

/** How queue run says to go on, and gives DIR back when it stops at once. */
interface RunInvocation {
  readonly commandLine: string;
  readonly release: () => void;
}

/** queue run's work once DIR is claimed: enqueue, work with the processes, merge, report. */
async function runOnThisHost(campaign: Campaign, manifest: Omit<Manifest, 'tool'>, address: QueueAddress, options: QueueRunOptions, invocation: RunInvocation, io: CliIo): Promise<void> {
  const added = await workWithProcesses(campaign, address, options, invocation, io);
  const shards = resultsFilesIn([options.out]).map((file) => ({ directory: dirname(file), path: file }));
  const plan = planMerge(shards);
  if (plan.campaign === undefined) throw new CommandFailure('merge.conflict', 'the workers wrote no trials');
  mkdirSync(options.out, { recursive: true });
  writeMerged(plan, join(options.out, TRIALS_FILE));
  writeManifest(options.out, manifest);
  const rule = stopRuleOf(campaign);
  if (rule !== undefined) writeFileSync(join(options.out, STOP_RULE_FILE), stopRuleText(rule));
  const summary = finishResults(options.out, plan.campaign.name, plan.campaign.seed);
  await writeDirectoryReports(options.out, summary, { title: campaign.name, generatedBy: invocation.commandLine });
  io.stdout.write(`${campaign.name}: ${added} chunks run by ${options.processes} processes; ${summary.trials} trials; report: ${join(options.out, 'report.md')}\n`);
}

/**
 * Enqueue the campaign (round by round under a stop rule) and work it with the worker
 * processes until the results hold it; how many chunks were added. SIGINT or SIGTERM stops the
 * processes (their finished records kept) and says how to go on; a second one, while they finish
 * the chunks in hand, passes it on to them, so that they too stop at once, and exits.
 */
async function workWithProcesses(campaign: Campaign, address: QueueAddress, options: QueueRunOptions, { commandLine, release }: RunInvocation, io: CliIo): Promise<number> {
  const hosts = Array.from({ length: options.processes }, (_, index) => join(options.out, 'hosts', `worker-${index + 1}`));
  const children = hosts.map((out) => spawnWorker(address, out, { threads: options.workers, prefetch: options.prefetch, idleReport: options.idleReport === true }));
  const queue = openQueue(address);
  const exitAtOnce = stoppingAtOnce(io, release, `stopped at once with the worker processes, their finished records kept in ${join(options.out, 'hosts')} (the chunks they held go back to the queue within ${DEFAULT_LOCK_MS / 1000} s); continue with: ${commandLine}`);
  const stopAtOnce = (): never => {
    // the processes' own second signal: they stop at once too
    for (const child of children.filter(isRunning)) child.kill('SIGTERM');
    return exitAtOnce();
  };
  return interruptibly(undefined, stopAtOnce, async (signal) => {
    try {
      return await enqueueUntilDone(campaign, address, queue, children, options, signal, io);
    } catch (error) {
      if (error instanceof InterruptedWait) throw new Interrupted(`interrupted; the worker processes are stopped, their records kept in ${join(options.out, 'hosts')}; continue with: ${commandLine}`);
      throw error;
    } finally {
      await Promise.all(children.map(stopChild));
      await queue.close();
    }
  });
}

/** One pass for a fixed-size campaign, one per round for a campaign with a stop rule: the chunks added. */
async function enqueueUntilDone(campaign: Campaign, address: QueueAddress, queue: Queue<ChunkJob, number>, children: readonly ChildProcess[], options: QueueRunOptions, signal: AbortSignal, io: CliIo): Promise<number> {
  let added = 0;
  // the hosts' records read so far: each round reads only what the workers added since
  const soFar = new ResultsSoFar(campaign);
  for (;;) {
    const enqueued = await translated(() => enqueueCampaign(address, campaign, { version: ninelivesVersion(), chunkSize: options.chunkSize, resultsFiles: resultsFilesIn([options.out]), soFar }));
    if (enqueued.missing === 0) return added;
    const status = await statusOf(queue);
    if (enqueued.added === 0 && status.waiting + status.running === 0) {
      throw new CommandFailure('internal', `queue "${address.queue}" says ${enqueued.missing} chunks are done that ${options.out} lacks: give another --queue, or flush it`);
    }
    added += enqueued.added;
    await untilDrained(queue, children, io, signal);
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function spawnWorker(address: QueueAddress, out: string, options: { threads: number; prefetch: number; idleReport: boolean }): ChildProcess {
  // the built CLI, also when this command runs inside another program (a test)
  const main = join(findPackageRoot(dirname(fileURLToPath(import.meta.url))), 'dist/src/cli/main.js');
  const report = options.idleReport ? ['--idle-report'] : [];
  const args = ['queue', 'work', '--redis', address.url, '--queue', address.queue, '--out', out, '--workers', String(options.threads), '--prefetch', String(options.prefetch), ...report];
  return spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

interface WorkCommandOptions {
  readonly out: string;
  readonly workers: number;
  readonly lockMs: number;
  readonly prefetch: number;
  readonly idleReport?: boolean;
}

/**
 * Work chunks into `options.out` until SIGINT or SIGTERM, or until the worker stops by itself.
 * The first signal lets the chunks in progress finish; a second stops at once, their records so
 * far kept, the chunks themselves taken up again by a worker once their locks expire.
 */
async function workUntilStopped(address: QueueAddress, options: WorkCommandOptions, io: CliIo, release: () => void): Promise<void> {
  const worker = await translated(() => startWorker(address, { version: ninelivesVersion(), outDirectory: options.out, threads: options.workers, lockDurationMs: options.lockMs, prefetch: options.prefetch }));
  const stopAtOnce = stoppingAtOnce(io, release, `worker ${process.pid} stopped at once; the chunks it was working go back to the queue within ${options.lockMs / 1000} s, their finished trials kept in ${options.out}`);
  io.stderr.write(`worker ${process.pid} (ninelives ${ninelivesVersion()}) on queue "${address.queue}", ${options.workers} threads, results in ${options.out}\n`);
  try {
    await interruptibly(undefined, stopAtOnce, (signal) => {
      signal.addEventListener('abort', () => void worker.close(), { once: true });
      return translated(() => worker.stopped);
    });
  } finally {
    if (options.idleReport === true) io.stderr.write(`worker ${process.pid}: ${describeIdle(worker.idle())}`);
  }
}

/** untilDrained was told to stop waiting */
class InterruptedWait extends Error {}

async function untilDrained(queue: Queue<ChunkJob, number>, children: readonly ChildProcess[], io: CliIo, signal: AbortSignal): Promise<void> {
  const started = performance.now();
  let reported = started;
  for (;;) {
    const waitedMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, waitedMs / 10))));
    if (signal.aborted) throw new InterruptedWait();
    const status = await statusOf(queue);
    if (performance.now() - reported >= REPORT_MS) {
      reported = performance.now();
      io.stderr.write(describeStatus(status));
    }
    if (status.running === 0 && status.waiting === 0) {
      if (status.failed > 0) throw new CommandFailure('internal', `${status.failed} chunks failed: see \`ninelives queue status\``);
      return;
    }
    if (!children.some(isRunning)) throw new CommandFailure('internal', 'every worker process exited before the queue was drained');
  }
}

export function describeStatus(status: QueueStatus): string {
  const eta = Number.isNaN(status.etaSeconds) ? '-' : `${Math.ceil(status.etaSeconds)} s`;
  const total = `chunks: ${status.completed} done, ${status.running} running, ${status.waiting} waiting, ${status.stalled} stalled, ${status.failed} failed; trials ${status.trialsDone}/${status.trialsTotal}, ${status.trialsPerSecond.toFixed(1)}/s, ETA ${eta}\n`;
  // one line per campaign where the queue holds more than one
  const campaigns = status.campaigns.length > 1 ? status.campaigns.map((entry) => `  ${entry.campaign}: trials ${entry.trialsDone}/${entry.trialsQueued}\n`) : [];
  return total + campaigns.join('');
}
