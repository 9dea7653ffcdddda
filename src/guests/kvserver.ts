/**
 * A multithreaded key-value server (configuration 3AppVM-mt): two threads, each on its own
 * vCPU, take requests from one socket, update a shared store under a lock and reply. A share
 * `raceRate` of the requests also bump a statistics counter without the lock (a read, some
 * work, a write: a benign race as real servers have) and quote it in the reply, so what a
 * reply says depends on how the two threads' accesses interleaved.
 *
 * Every access to shared memory happens at a step boundary: a step is guest work (its compute
 * time) that ends in a hypercall, so the order of two threads' accesses is the order of their
 * steps on the machine, and it changes when their timing does. That is what deterministic
 * replay (trial/replay-failover.ts) has to live with.
 *
 * The hypervisor model has one vCPU per domain, so the server's two vCPUs are two domains
 * whose kernels share the server's memory: thread 0's kernel holds it in its saved state and
 * thread 1 reads it from there (KvServerLink ties them).
 *
 * What is nondeterministic, and what a replicator logs (KvRecording): which request each
 * `recv` system call returned (the socket is a shared kernel resource), when each system call
 * happened, the order of lock acquisitions, and, with Kendo ordering, the logical clock a
 * thread woke with. A replayer (KvReplay) feeds the logged results back.
 */
import { Hypercall, PORT_TIMER, SCHEDOP_BLOCK, SCHEDOP_YIELD } from '../hypervisor/abi.js';
import type { GuestAction } from './kernel.js';
import { KernelBase, PROGRESS_WINDOW_NS, initialCommonState, type CommonState, type Failure } from './kernel-base.js';
import { hypercallAction, portBit } from './protocol.js';

/** How the threads' lock acquisitions are ordered. */
export type KvOrdering = 'none' | 'log' | 'deterministic';

export interface KvServerOptions {
  /** share of requests that touch the statistics counter without the lock (default 0.1) */
  readonly raceRate?: number;
  /** how much longer thread 0's work takes than its instruction count says, as a share (0: balanced) */
  readonly imbalance?: number;
}

export const DEFAULT_RACE_RATE = 0.1;
export const KV_KEYS = 8;
/** requests arrive in bursts of two, one burst per millisecond on average */
export const BURST_REQUESTS = 2;
const ARRIVAL_PERIOD_NS = 1_000_000;
const ARRIVAL_JITTER_NS = 400_000;

const RECV_NS = 3_000;
const CRITICAL_SECTION_NS = 6_000;
const MINIMUM_WORK_NS = 5_000;
const MAXIMUM_WORK_NS = 25_000;
const RACE_WINDOW_NS = 2_000;
const SEND_NS = 3_000;
const SPIN_NS = 1_000;
/** a replayed recv whose logged result was "nothing yet" blocks this long before it takes the next one */
const REPLAY_POLL_NS = 1_000;
/** Kendo's logical clock: one tick per microsecond of nominal work */
const NS_PER_TICK = 1_000;

/** One request of the client stream: a function of the seed and its index, like the NIC's pings. */
export interface KvRequest {
  readonly id: number;
  readonly key: number;
  readonly delta: number;
  readonly racy: boolean;
  readonly workNs: number;
  /** how far into its work a racy request touches the counter */
  readonly racyAtNs: number;
}

/** A reply leaving the server: what the outside world sees. */
export interface KvOutput {
  readonly index: number;
  readonly requestId: number;
  readonly thread: number;
  readonly value: number;
  readonly hits: number;
  readonly timeNs: number;
}

/** A system call as the primary logged it: its time, and what recv returned (-1: nothing). */
export interface KvSyscall {
  readonly kind: 'recv' | 'send';
  readonly timeNs: number;
  readonly requestId: number;
  /** Kendo: the thread's logical clock after the call (its wake-up bump travels in the log) */
  readonly clock: number;
}

/** Entries indexed from where recording started (a trial starts from a checkpoint). */
export class IndexedLog<T> {
  private base = -1;
  readonly items: T[] = [];

  put(index: number, item: T): void {
    if (this.base < 0) this.base = index;
    if (index !== this.base + this.items.length) throw new Error(`log entry ${index} out of order (next is ${this.base + this.items.length})`);
    this.items.push(item);
  }

  at(index: number): T | undefined {
    return this.base < 0 ? undefined : this.items[index - this.base];
  }

  /** One past the last index held. */
  end(): number {
    return this.base < 0 ? 0 : this.base + this.items.length;
  }
}

/** What the primary's replicator logs as the server runs. */
export class KvRecording {
  readonly syscalls: IndexedLog<KvSyscall>[] = [new IndexedLog(), new IndexedLog()];
  readonly lockOrder = new IndexedLog<number>();
  readonly outputs = new IndexedLog<KvOutput>();
}

/** The backup's replay: the log, and whether to keep the original gaps between system calls. */
export interface KvReplay {
  /** what the backup holds of the primary's log; its outputs are the released replies */
  readonly log: KvRecording;
  readonly timingAdjustment: boolean;
}

/** The first replayed output that differs from the released one. */
export interface KvDivergence {
  readonly released: KvOutput;
  readonly replayed: KvOutput;
}

/**
 * What ties the server's threads together and to the outside world, outside the snapshots:
 * the recording or replay in progress, the timing of the host it runs on, and who watches
 * its outputs. The trial runner sets these; a plain run has none of them.
 */
export class KvServerLink {
  readonly threads: KvThread[] = [];
  recording: KvRecording | undefined;
  replay: KvReplay | undefined;
  /** multiplies each thread's compute time (the host's CPU speed): 1 on the primary */
  speedFactors: readonly number[] = [1, 1];
  onOutput: ((output: KvOutput) => void) | undefined;
  divergence: KvDivergence | undefined;
  /** when the replay reached the last released output and the server went live (-1: at once) */
  replayEndedNs: number | undefined;
  /** the released replies the replay has still to reproduce, by request id */
  private awaited = new Map<number, KvOutput>();
  /** lock acquisitions seen on this host, in order (thread ids) */
  readonly acquisitions: number[] = [];

  constructor(readonly options: KvServerOptions = {}) {}

  /** Shared memory lives in thread 0's saved state. */
  shared(): KvShared {
    const owner = this.threads[0];
    if (owner === undefined) throw new Error('the key-value server has no thread 0');
    return owner.sharedMemory();
  }

  /**
   * Start replaying `replay` (on the backup, right after restoring the checkpoint) up to the
   * last released reply: every reply the primary released after the checkpoint must come again,
   * the same. Replies are told apart by request, as the clients see them.
   */
  startReplay(replay: KvReplay): void {
    this.replay = replay;
    this.divergence = undefined;
    this.replayEndedNs = undefined;
    const from = this.shared().outputs;
    this.awaited = new Map(replay.log.outputs.items.filter((output) => output.index >= from).map((output) => [output.requestId, output]));
    if (this.awaited.size === 0) this.goLive(-1);
  }

  /** Replies released after the checkpoint, that the replay has to reproduce. */
  awaitedCount(): number {
    return this.awaited.size;
  }

  /** A reply of the replay: compared with the released one for its request; live once none is awaited. */
  replayed(output: KvOutput, nowNs: number): void {
    const released = this.awaited.get(output.requestId);
    if (released === undefined) return;
    if (this.divergence === undefined && !sameOutput(released, output)) this.divergence = { released, replayed: output };
    this.awaited.delete(output.requestId);
    if (this.awaited.size === 0) this.goLive(nowNs);
  }

  goLive(nowNs: number): void {
    this.replay = undefined;
    this.replayEndedNs = nowNs;
  }

  replaying(): boolean {
    return this.replay !== undefined;
  }
}

/** The server's memory: the store, its lock, the socket, the statistics counter, Kendo's clocks. */
export interface KvShared {
  store: number[];
  /** what the store must hold: the deltas of the requests applied, per key */
  expected: number[];
  lockHolder: number;
  lockAcquisitions: number;
  /** Kendo: the logical time of the lock's last release */
  lockReleasedAt: number;
  /** the next request the socket hands out */
  socketNext: number;
  hits: number;
  outputs: number;
  checksum: number;
  ordering: KvOrdering;
  clocks: number[];
  asleep: boolean[];
  /** time threads spent waiting for their turn in the lock's order (log or Kendo), per thread */
  orderingWaitNs: number[];
}

type Phase = 'recv' | 'sleep' | 'lock' | 'unlock' | 'racyRead' | 'racyWrite' | 'send';

interface KvThreadState extends CommonState {
  thread: number;
  phase: Phase;
  request: KvRequest | null;
  readValue: number;
  replyValue: number;
  hitsRead: number;
  replyHits: number;
  /** system calls made so far: the index of the next one in the log */
  syscalls: number;
  /** when the previous system call happened, on this host */
  lastSyscallNs: number;
  /** thread 0 holds the server's memory */
  shared: KvShared | null;
}

function initialShared(): KvShared {
  return {
    store: new Array<number>(KV_KEYS).fill(0),
    expected: new Array<number>(KV_KEYS).fill(0),
    lockHolder: -1,
    lockAcquisitions: 0,
    lockReleasedAt: -1,
    socketNext: 0,
    hits: 0,
    outputs: 0,
    checksum: 0,
    ordering: 'none',
    clocks: [0, 0],
    asleep: [false, false],
    orderingWaitNs: [0, 0],
  };
}

/** A 32-bit mix of two words (murmur3's finaliser). */
function mix(seed: number, value: number): number {
  let hash = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(value + 0x632be5ab, 0xc2b2ae35);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** The client's requests: when request `id` arrives at the socket. */
export function requestArrivalNs(seed: number, id: number): number {
  const burst = Math.floor(id / BURST_REQUESTS);
  return (burst + 1) * ARRIVAL_PERIOD_NS + (mix(seed, -1 - burst) % ARRIVAL_JITTER_NS);
}

export function kvRequest(seed: number, id: number, raceRate: number): KvRequest {
  const hash = mix(seed, id);
  const racyHash = mix(seed ^ 0x5bd1e995, id);
  const workNs = MINIMUM_WORK_NS + ((hash >>> 10) % (MAXIMUM_WORK_NS - MINIMUM_WORK_NS + 1));
  return {
    id,
    key: hash % KV_KEYS,
    delta: 1 + ((hash >>> 3) % 100),
    racy: racyHash / 2 ** 32 < raceRate,
    workNs,
    racyAtNs: mix(seed ^ 0x27d4eb2f, id) % workNs,
  };
}

export interface KvThreadOptions {
  readonly domainId: number;
  readonly seed: number;
  readonly thread: number;
  readonly link: KvServerLink;
}

const THREAD_COUNT = 2;

export class KvThread extends KernelBase<KvThreadState> {
  private readonly link: KvServerLink;
  private readonly seed: number;

  constructor(options: KvThreadOptions) {
    super('kvserver', options.domainId, options.seed, () => ({
      ...initialCommonState(),
      thread: options.thread,
      phase: 'recv',
      request: null,
      readValue: 0,
      replyValue: 0,
      hitsRead: 0,
      replyHits: 0,
      syscalls: 0,
      lastSyscallNs: 0,
      shared: options.thread === 0 ? initialShared() : null,
    }));
    this.link = options.link;
    this.seed = options.seed;
    options.link.threads[options.thread] = this;
  }

  get thread(): number {
    return this.state.thread;
  }

  sharedMemory(): KvShared {
    if (this.state.shared === null) throw new Error(`thread ${this.state.thread} does not hold the server's memory`);
    return this.state.shared;
  }

  /** The next system call's index (where a replay of this thread stands in the log). */
  syscallCount(): number {
    return this.state.syscalls;
  }

  boot(nowNs: number): GuestAction {
    this.started(nowNs);
    this.state.lastSyscallNs = nowNs;
    return this.issue(this.step(nowNs));
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.acceptEvents(events);
    this.checkNoError(returnValue, nowNs);
    return this.issue(this.step(nowNs));
  }

  summary(): Readonly<Record<string, number>> {
    const summary: Record<string, number> = { syscalls: this.state.syscalls };
    if (this.state.shared !== null) {
      summary.outputs = this.state.shared.outputs;
      summary.checksum = this.state.shared.checksum;
      summary.hits = this.state.shared.hits;
    }
    return summary;
  }

  /** The server's own check: the store holds what the applied requests add up to, and requests were answered. */
  protected override failuresAtEnd(nowNs: number): Failure[] {
    const shared = this.state.shared;
    if (shared === null) return [];
    const failures: Failure[] = [];
    const wrongKey = shared.store.findIndex((value, key) => value !== shared.expected[key]);
    if (wrongKey >= 0) failures.push({ reason: `store[${wrongKey}] = ${shared.store[wrongKey]}, but its requests add up to ${shared.expected[wrongKey]}`, atNs: nowNs });
    const owed = arrivedBy(this.seed, nowNs - PROGRESS_WINDOW_NS) - THREAD_COUNT;
    if (shared.outputs < owed) failures.push({ reason: `answered ${shared.outputs} requests, but ${owed} arrived more than ${PROGRESS_WINDOW_NS / 1_000_000} ms before the end`, atNs: nowNs });
    return failures;
  }

  /** One step: the shared access due now, then the work before the next step. */
  private step(nowNs: number): GuestAction {
    if (this.state.halted) return this.idleAction();
    switch (this.state.phase) {
      case 'recv':
        return this.receive(nowNs);
      case 'sleep':
        // the timer is armed: block until it fires (or the block returns with events pending);
        // a timer that fired already must not be waited for (its event is in, the block would last)
        this.state.phase = 'recv';
        if (this.takeEvents(portBit(PORT_TIMER))) return this.receive(nowNs);
        return hypercallAction(0, Hypercall.SchedOp, SCHEDOP_BLOCK);
      case 'lock':
        return this.acquire();
      case 'unlock':
        return this.release();
      case 'racyRead':
        return this.racyRead();
      case 'racyWrite':
        return this.racyWrite();
      case 'send':
        return this.send(nowNs);
    }
  }

  private receive(nowNs: number): GuestAction {
    const delay = this.adjustment(nowNs);
    if (delay > 0) return this.yieldAfter(delay);
    const shared = this.link.shared();
    const thread = this.state.thread;
    const logged = this.loggedSyscall();
    // a thread whose log ran out while another still replays takes nothing live yet: the
    // requests the other will replay are still on the socket
    // (and like a thread blocked in recv it takes no turn in Kendo's order meanwhile)
    if (logged === undefined && this.link.replaying()) {
      shared.asleep[thread] = true;
      return this.yieldAfter(this.scaled(REPLAY_POLL_NS));
    }
    const wasAsleep = shared.asleep[thread];
    shared.asleep[thread] = false;
    let requestId: number;
    if (logged !== undefined) {
      requestId = logged.requestId;
      shared.clocks[thread] = logged.clock;
    } else {
      requestId = requestArrivalNs(this.seed, shared.socketNext) <= nowNs ? shared.socketNext : -1;
      if (wasAsleep && shared.ordering === 'deterministic') shared.clocks[thread] = Math.max(shared.clocks[thread], this.otherClocksMaximum() + 1);
    }
    if (requestId >= 0) shared.socketNext = Math.max(shared.socketNext, requestId + 1);
    this.syscall('recv', nowNs, requestId);
    this.progressed(nowNs);
    if (requestId < 0) return this.idle(nowNs);
    this.state.request = kvRequest(this.seed, requestId, this.link.options.raceRate ?? DEFAULT_RACE_RATE);
    this.state.phase = 'lock';
    return this.work(RECV_NS);
  }

  /** Nothing to receive: sleep until the next request arrives (a replay need not wait for it). */
  private idle(nowNs: number): GuestAction {
    const shared = this.link.shared();
    shared.asleep[this.state.thread] = true;
    // no work is owed while the socket is empty: the progress clock restarts at the next recv
    // (a request that never gets answered is caught at the end, against the arrivals)
    this.state.lastProgressNs = null;
    // replaying, the thread blocks as briefly as its timer allows: the logged result of its next
    // recv is already there, but the wake-up still comes through an interrupt on this host
    if (this.loggedSyscall() !== undefined) return this.sleepFor(REPLAY_POLL_NS);
    return this.sleepFor(Math.max(1_000, requestArrivalNs(this.seed, shared.socketNext) - nowNs));
  }

  /** Arm this vCPU's timer and block until it fires (the next step blocks). */
  private sleepFor(waitNs: number): GuestAction {
    // an old timer event must not end this sleep
    this.takeEvents(portBit(PORT_TIMER));
    this.state.phase = 'sleep';
    return hypercallAction(0, Hypercall.SetTimerOp, Math.ceil(waitNs / 1_000));
  }

  private acquire(): GuestAction {
    const shared = this.link.shared();
    const thread = this.state.thread;
    const refusal = this.refusal(shared, thread);
    if (refusal !== undefined) {
      if (refusal === 'notMyTurn') shared.orderingWaitNs[thread] += this.scaled(SPIN_NS);
      return this.yieldAfter(this.scaled(SPIN_NS));
    }
    shared.lockHolder = thread;
    this.link.recording?.lockOrder.put(shared.lockAcquisitions, thread);
    shared.lockAcquisitions++;
    this.link.acquisitions.push(thread);
    const request = this.request();
    this.state.readValue = shared.store[request.key];
    this.state.phase = 'unlock';
    return this.work(CRITICAL_SECTION_NS);
  }

  /**
   * Why this thread may not take the lock now (undefined: it may). Free, and: with a replayed lock order, it is
   * this thread's turn in it; with Kendo's rule, its clock is the smallest of the threads
   * awake (ties by thread id) and the last release happened at an earlier logical time. A
   * thread whose turn it is but finds the lock taken moves its clock on (Kendo), so that the
   * holder, waiting for its turn to release, is not kept waiting by it.
   */
  private refusal(shared: KvShared, thread: number): 'held' | 'notMyTurn' | undefined {
    const replay = this.link.replay;
    if (shared.ordering === 'deterministic') {
      if (!this.hasTurn(shared, thread)) return 'notMyTurn';
      if (shared.lockHolder !== -1 || shared.lockReleasedAt >= shared.clocks[thread]) {
        shared.clocks[thread]++;
        return 'held';
      }
      return undefined;
    }
    if (shared.lockHolder !== -1) return 'held';
    if (shared.ordering === 'log' && replay !== undefined) {
      const next = replay.log.lockOrder.at(shared.lockAcquisitions);
      if (next !== undefined && next !== thread) return 'notMyTurn';
    }
    return undefined;
  }

  private hasTurn(shared: KvShared, thread: number): boolean {
    const mine = shared.clocks[thread];
    for (let other = 0; other < THREAD_COUNT; other++) {
      if (other === thread) continue;
      const theirs = this.clockOf(shared, other);
      if (theirs === undefined) continue;
      if (theirs < mine || (theirs === mine && other < thread)) return false;
    }
    return true;
  }

  /**
   * The logical time of a thread's next action; undefined for a thread asleep in recv, which
   * takes no turn (it wakes with a clock past the others', the shepherd's bump). On a replaying
   * backup the bump is known from the log, so an asleep thread counts from its wake-up clock:
   * the others may not run past it before it wakes, as on the primary they did not.
   */
  private clockOf(shared: KvShared, thread: number): number | undefined {
    if (!shared.asleep[thread]) return shared.clocks[thread];
    const sleeper = this.link.threads[thread];
    return sleeper === undefined ? undefined : this.link.replay?.log.syscalls[thread].at(sleeper.syscallCount())?.clock;
  }

  private otherClocksMaximum(): number {
    const shared = this.link.shared();
    return Math.max(...shared.clocks.filter((_, other) => other !== this.state.thread));
  }

  private release(): GuestAction {
    const shared = this.link.shared();
    const request = this.request();
    shared.store[request.key] = (this.state.readValue + request.delta) | 0;
    shared.expected[request.key] = (shared.expected[request.key] + request.delta) | 0;
    shared.lockHolder = -1;
    shared.lockReleasedAt = shared.clocks[this.state.thread];
    shared.clocks[this.state.thread]++;
    this.state.replyValue = shared.store[request.key];
    this.state.replyHits = 0;
    this.state.phase = request.racy ? 'racyRead' : 'send';
    return this.work(request.racy ? request.racyAtNs : request.workNs);
  }

  private racyRead(): GuestAction {
    this.state.hitsRead = this.link.shared().hits;
    this.state.phase = 'racyWrite';
    return this.work(RACE_WINDOW_NS);
  }

  private racyWrite(): GuestAction {
    const shared = this.link.shared();
    shared.hits = (this.state.hitsRead + 1) | 0;
    this.state.replyHits = shared.hits;
    this.state.phase = 'send';
    const request = this.request();
    return this.work(request.workNs - request.racyAtNs);
  }

  private send(nowNs: number): GuestAction {
    const delay = this.adjustment(nowNs);
    if (delay > 0) return this.yieldAfter(delay);
    const shared = this.link.shared();
    const request = this.request();
    const output: KvOutput = { index: shared.outputs, requestId: request.id, thread: this.state.thread, value: this.state.replyValue, hits: this.state.replyHits, timeNs: nowNs };
    shared.outputs++;
    shared.checksum = (Math.imul(shared.checksum, 31) + output.value * 7 + output.hits) | 0;
    this.syscall('send', nowNs, request.id);
    this.progressed(nowNs);
    this.emit(output, nowNs);
    this.state.request = null;
    this.state.phase = 'recv';
    return this.work(SEND_NS);
  }

  /** A reply leaves: logged on the primary, compared with the released one on a replaying backup. */
  private emit(output: KvOutput, nowNs: number): void {
    const link = this.link;
    link.recording?.outputs.put(output.index, output);
    if (link.replay !== undefined) link.replayed(output, nowNs);
    link.onOutput?.(output);
  }

  /** Record a system call on the primary; step past it in the log on a replaying backup. */
  private syscall(kind: KvSyscall['kind'], nowNs: number, requestId: number): void {
    const thread = this.state.thread;
    this.link.recording?.syscalls[thread].put(this.state.syscalls, { kind, timeNs: nowNs, requestId, clock: this.link.shared().clocks[thread] });
    this.state.syscalls++;
    this.state.lastSyscallNs = nowNs;
  }

  /** The logged result of this thread's next system call, while replaying and the log holds it. */
  private loggedSyscall(): KvSyscall | undefined {
    return this.link.replay?.log.syscalls[this.state.thread].at(this.state.syscalls);
  }

  /**
   * HyCoR's timing adjustment: a replayed system call waits until the gap since this thread's
   * previous one is at least the gap the primary had between them.
   */
  private adjustment(nowNs: number): number {
    const replay = this.link.replay;
    if (replay === undefined || !replay.timingAdjustment) return 0;
    const log = replay.log.syscalls[this.state.thread];
    const next = log.at(this.state.syscalls);
    const previous = log.at(this.state.syscalls - 1);
    if (next === undefined || previous === undefined) return 0;
    return Math.max(0, next.timeNs - previous.timeNs - (nowNs - this.state.lastSyscallNs));
  }

  private request(): KvRequest {
    if (this.state.request === null) throw new Error(`thread ${this.state.thread} in phase ${this.state.phase} holds no request`);
    return this.state.request;
  }

  /**
   * Nominal work: it moves Kendo's clock by its deterministic amount (its instructions) and
   * takes this host's time; thread 0's instructions take longer by the server's imbalance (its
   * share of slow work: cache misses, a busier core), which its clock does not see.
   */
  private work(nominalNs: number): GuestAction {
    const shared = this.link.shared();
    shared.clocks[this.state.thread] += Math.max(1, Math.round(nominalNs / NS_PER_TICK));
    const slower = this.state.thread === 0 ? 1 + (this.link.options.imbalance ?? 0) : 1;
    return this.yieldAfter(this.scaled(nominalNs * slower));
  }

  private scaled(nominalNs: number): number {
    return Math.max(1, Math.round(nominalNs * (this.link.speedFactors[this.state.thread] ?? 1)));
  }

  private yieldAfter(computeNs: number): GuestAction {
    return hypercallAction(computeNs, Hypercall.SchedOp, SCHEDOP_YIELD);
  }
}

/** The same reply, as a client sees it: which request, and what it says. */
function sameOutput(left: KvOutput, right: KvOutput): boolean {
  return left.requestId === right.requestId && left.value === right.value && left.hits === right.hits;
}

/** How many requests have arrived by `timeNs` (arrivals are in order of id within a burst). */
function arrivedBy(seed: number, timeNs: number): number {
  let count = 0;
  while (requestArrivalNs(seed, count) <= timeNs) count++;
  return count;
}
