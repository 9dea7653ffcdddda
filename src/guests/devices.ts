/**
 * Devices owned by the platform and driven by the PrivVM: a block disk and a network card that
 * receives a ping every millisecond from an external host. Both are deterministic, keep their
 * state as plain data, and raise interrupts through the injected platform at simulated times.
 */
import { ERROR_INVALID, MAX_DOMAINS, VECTOR_DISK, VECTOR_NIC } from '../hypervisor/abi.js';
import { DOUBLE_FIELD } from '../machine/double-field.js';
import type { GuestVerdict } from './kernel.js';
import { copyPlainData } from './plain-data.js';
import { BLOCKS_PER_DOMAIN, formatMs } from './protocol.js';
import { SeededRandom, type RandomState } from './random.js';

/** What devices need from the machine: an interrupt on `cpu` at simulated time `timeNs`. */
export interface DevicePlatform {
  raiseInterrupt(timeNs: number, cpu: number, vector: number): void;
}

// ---------------------------------------------------------------------------------------------
// Disk

export type DiskOperation = 'read' | 'write' | 'trim';

export interface DiskRequest {
  readonly id: number;
  readonly operation: DiskOperation;
  readonly block: number;
  /** written value for 'write'; ignored otherwise */
  readonly data: number;
}

export interface DiskCompletion {
  readonly id: number;
  readonly operation: DiskOperation;
  readonly block: number;
  /** the block's value for 'read'; 0 otherwise */
  readonly data: number;
  /** 0, or ERROR_INVALID for a block outside the disk */
  readonly status: number;
}

export interface DiskOptions {
  readonly seed: number;
  readonly platform: DevicePlatform;
  /** the PrivVM's CPU, which receives VECTOR_DISK */
  readonly cpu: number;
  readonly blockCount?: number;
  readonly minimumLatencyNs?: number;
  readonly maximumLatencyNs?: number;
}

export interface DiskState {
  blocks: number[];
  /** submitted requests in service order with their completion times (non-decreasing) */
  queue: { request: DiskRequest; completionNs: number }[];
  lastCompletionNs: number;
  counts: { reads: number; writes: number; trims: number; invalid: number };
  random: RandomState;
}

const NO_COMPLETIONS: readonly DiskCompletion[] = Object.freeze([]);

/** Every AppVM gets its own partition of BLOCKS_PER_DOMAIN blocks. */
export const DISK_BLOCK_COUNT = MAX_DOMAINS * BLOCKS_PER_DOMAIN;

export class Disk {
  private readonly blockCount: number;
  private readonly minimumLatencyNs: number;
  private readonly maximumLatencyNs: number;
  private state: Omit<DiskState, 'random'>;
  private random: SeededRandom;

  constructor(private readonly options: DiskOptions) {
    this.blockCount = options.blockCount ?? DISK_BLOCK_COUNT;
    this.minimumLatencyNs = options.minimumLatencyNs ?? 150_000;
    this.maximumLatencyNs = options.maximumLatencyNs ?? 300_000;
    this.random = SeededRandom.fromSeed(options.seed, 'disk');
    this.state = {
      blocks: new Array<number>(this.blockCount).fill(0),
      queue: [],
      lastCompletionNs: DOUBLE_FIELD,
      counts: { reads: 0, writes: 0, trims: 0, invalid: 0 },
    };
    this.state.lastCompletionNs = 0;
  }

  /**
   * Queues a request. The disk serves requests one at a time in submission order, so the
   * completion order is the submission order and a read sees every earlier write.
   */
  submit(request: DiskRequest, nowNs: number): void {
    const latencyNs = this.random.integer(this.minimumLatencyNs, this.maximumLatencyNs);
    const completionNs = Math.max(nowNs, this.state.lastCompletionNs) + latencyNs;
    this.state.lastCompletionNs = completionNs;
    this.state.queue.push({ request: { ...request }, completionNs });
    this.options.platform.raiseInterrupt(completionNs, this.options.cpu, VECTOR_DISK);
  }

  /**
   * Told of every request the PrivVM takes as completed, with the time it does: the writes that
   * failover's output commit holds until their epoch commits. Not part of the disk's state.
   */
  onCompleted: ((completion: DiskCompletion, nowNs: number) => void) | undefined;

  /** Removes and returns the requests completed by `nowNs`, applying them to the blocks. */
  completed(nowNs: number): readonly DiskCompletion[] {
    // The PrivVM polls at every hypercall it makes and usually finds nothing: no array then.
    if (this.state.queue.length === 0 || this.state.queue[0].completionNs > nowNs) return NO_COMPLETIONS;
    const done: DiskCompletion[] = [];
    while (this.state.queue.length > 0 && this.state.queue[0].completionNs <= nowNs) {
      const { request } = this.state.queue.shift()!;
      const completion = this.apply(request);
      done.push(completion);
      this.onCompleted?.(completion, nowNs);
    }
    return done;
  }

  /**
   * Taken over by another host at `nowNs` (a mirrored disk at failover): its interrupt for every
   * request still queued is raised again there, at its completion or now if that has passed.
   */
  raisePendingInterrupts(nowNs: number): void {
    for (const { completionNs } of this.state.queue) this.options.platform.raiseInterrupt(Math.max(nowNs, completionNs), this.options.cpu, VECTOR_DISK);
  }

  /** The stored value of a block (0 if never written), for tests and reports. */
  peek(block: number): number {
    return this.state.blocks[block] ?? 0;
  }

  get inFlight(): number {
    return this.state.queue.length;
  }

  counts(): Readonly<DiskState['counts']> {
    return { ...this.state.counts };
  }

  saveState(): DiskState {
    return copyPlainData({ ...this.state, random: this.random.state() });
  }

  loadState(saved: DiskState): void {
    const { random, ...rest } = copyPlainData(saved);
    if (rest.blocks.length !== this.blockCount) throw new Error(`disk state has ${rest.blocks.length} blocks, expected ${this.blockCount}`);
    this.state = rest;
    this.random = SeededRandom.fromState(random);
  }

  private apply(request: DiskRequest): DiskCompletion {
    const { id, operation, block } = request;
    if (!Number.isInteger(block) || block < 0 || block >= this.blockCount) {
      this.state.counts.invalid++;
      return { id, operation, block, data: 0, status: ERROR_INVALID };
    }
    switch (operation) {
      case 'read':
        this.state.counts.reads++;
        return { id, operation, block, data: this.state.blocks[block], status: 0 };
      case 'write':
        this.state.counts.writes++;
        this.state.blocks[block] = request.data | 0;
        return { id, operation, block, data: 0, status: 0 };
      case 'trim':
        this.state.counts.trims++;
        this.state.blocks[block] = 0;
        return { id, operation, block, data: 0, status: 0 };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Network card

/** Ping k arrives at (k + 1) * PING_INTERVAL_NS. */
export const PING_INTERVAL_NS = 1_000_000;
export const NIC_BUFFER_PACKETS = 16;
/** A ping counts as answered if the right reply leaves within this long of its arrival. */
export const PING_DEADLINE_NS = 10_000_000;

/** The payload the external host puts in ping `pingId`: a 32-bit mix of the seed and the id. */
export function pingPayload(seed: number, pingId: number): number {
  let value = Math.imul((seed | 0) ^ 0x3c6ef372, 0x9e3779b1) ^ Math.imul(pingId + 1, 0x85ebca6b);
  value ^= value >>> 16;
  value = Math.imul(value, 0x7feb352d);
  value ^= value >>> 15;
  value = Math.imul(value, 0x846ca68b);
  return (value ^ (value >>> 16)) | 0;
}

/** The reply NetBench must send for a payload: what both sides agree on. */
export function pingReply(payload: number): number {
  return (payload ^ 0x5a5a5a5a) | 0;
}

export interface Packet {
  readonly pingId: number;
  readonly payload: number;
  readonly arrivalNs: number;
}

export interface Transmission {
  readonly pingId: number;
  readonly data: number;
  readonly timeNs: number;
}

export interface NicOptions {
  readonly seed: number;
  readonly platform: DevicePlatform;
  /** the PrivVM's CPU, which receives VECTOR_NIC */
  readonly cpu: number;
  /** no ping is generated at or after the end of the run */
  readonly runLengthNs: number;
  readonly bufferPackets?: number;
}

/**
 * The packets and transmissions in a NIC state are frozen: they never change once made, so copies
 * of the state share them and copy only the arrays. The log grows with the run (a thousand
 * transmissions a second), and copying every entry at each snapshot and restore cost every trial.
 */
export interface NicState {
  /** the first ping not yet moved into the receive buffer */
  nextPingId: number;
  buffer: Packet[];
  /** time of the one interrupt the card keeps scheduled, or null */
  scheduledInterruptNs: number | null;
  droppedPingIds: number[];
  transmissions: Transmission[];
  /** a running hash of the log (drops and transmissions), so a state fingerprint need not walk it */
  logHash: number;
}

const NO_PACKETS: readonly Packet[] = Object.freeze([]);

export class Nic {
  private readonly bufferPackets: number;
  /** Number of pings the external host sends during the run. */
  readonly pingCount: number;
  private state: NicState;

  constructor(private readonly options: NicOptions) {
    this.bufferPackets = options.bufferPackets ?? NIC_BUFFER_PACKETS;
    this.pingCount = Math.max(0, Math.ceil(options.runLengthNs / PING_INTERVAL_NS) - 1);
    this.state = { nextPingId: 0, buffer: [], scheduledInterruptNs: null, droppedPingIds: [], transmissions: [], logHash: 0 };
  }

  get seed(): number {
    return this.options.seed;
  }

  arrivalNs(pingId: number): number {
    return (pingId + 1) * PING_INTERVAL_NS;
  }

  payload(pingId: number): number {
    return pingPayload(this.options.seed, pingId);
  }

  /** Schedules the interrupt of the first arrival; call once when the platform starts. */
  start(): void {
    this.scheduleNextInterrupt(0);
  }

  /**
   * Moves the pings that arrived by `nowNs` into the receive buffer (dropping those that find it
   * full), returns and empties the buffer, and keeps one interrupt scheduled for the next arrival.
   * Arrivals are computed lazily here, which is equivalent because only receive drains the buffer.
   */
  receive(nowNs: number): readonly Packet[] {
    this.admitArrivals(nowNs);
    const packets = this.state.buffer;
    // Most polls find nothing: the empty buffer stays, and no new array is made.
    if (packets.length > 0) this.state.buffer = [];
    this.scheduleNextInterrupt(nowNs);
    return packets.length > 0 ? packets : NO_PACKETS;
  }

  /** The outside world's traffic moved to this NIC at `nowNs` (failover): its next interrupt is raised here. */
  takeOverTraffic(nowNs: number): void {
    this.state.scheduledInterruptNs = null;
    this.scheduleNextInterrupt(nowNs);
  }

  transmit(pingId: number, data: number, nowNs: number): void {
    this.state.transmissions.push(Object.freeze({ pingId, data: data | 0, timeNs: nowNs }));
    this.state.logHash = mixHash(mixHash(mixHash(this.state.logHash, pingId), data), nowNs % 0x1_0000_0000);
  }

  transmissions(): readonly Transmission[] {
    return this.state.transmissions;
  }

  droppedPingIds(): readonly number[] {
    return this.state.droppedPingIds;
  }

  saveState(): NicState {
    return copyNicState(this.state);
  }

  /** Everything that distinguishes one NIC state from another, compactly: the log by its hash. */
  fingerprint(): string {
    const { nextPingId, buffer, scheduledInterruptNs, droppedPingIds, transmissions, logHash } = this.state;
    return JSON.stringify([nextPingId, buffer, scheduledInterruptNs, droppedPingIds.length, transmissions.length, logHash]);
  }

  /** Entries not frozen (a state that went through JSON, say) are copied, so none is shared unfrozen. */
  loadState(saved: NicState): void {
    this.state = { ...saved, buffer: frozenEntries(saved.buffer), droppedPingIds: saved.droppedPingIds.slice(), transmissions: frozenEntries(saved.transmissions) };
  }

  private admitArrivals(nowNs: number): void {
    while (this.state.nextPingId < this.pingCount && this.arrivalNs(this.state.nextPingId) <= nowNs) {
      const pingId = this.state.nextPingId++;
      if (this.state.buffer.length < this.bufferPackets) {
        this.state.buffer.push(Object.freeze({ pingId, payload: this.payload(pingId), arrivalNs: this.arrivalNs(pingId) }));
      } else {
        this.state.droppedPingIds.push(pingId);
        this.state.logHash = mixHash(this.state.logHash, ~pingId);
      }
    }
  }

  private scheduleNextInterrupt(nowNs: number): void {
    const scheduled = this.state.scheduledInterruptNs;
    if (scheduled !== null && scheduled > nowNs) return;
    this.state.scheduledInterruptNs = null;
    const next = this.state.nextPingId;
    if (next >= this.pingCount) return;
    const timeNs = Math.max(this.arrivalNs(next), nowNs);
    this.state.scheduledInterruptNs = timeNs;
    this.options.platform.raiseInterrupt(timeNs, this.options.cpu, VECTOR_NIC);
  }
}

/** A copy of `state` that shares only its frozen entries with it. */
function copyNicState(state: NicState): NicState {
  return { ...state, buffer: state.buffer.slice(), droppedPingIds: state.droppedPingIds.slice(), transmissions: state.transmissions.slice() };
}

/** A copy of `entries` whose entries are all frozen: the same ones where they already are. */
function frozenEntries<T extends object>(entries: readonly T[]): T[] {
  return entries.every((entry) => Object.isFrozen(entry)) ? entries.slice() : entries.map((entry) => Object.freeze({ ...entry }));
}

// ---------------------------------------------------------------------------------------------
// NetBench's verdict, read from the NIC's log

export const NET_WINDOW_NS = 1_000_000_000;
/** A window fails when strictly more than this fraction of its pings were not answered. */
export const NET_LOSS_LIMIT = 0.1;

/** [startNs, endNs) during which a recovery interrupted service. */
export interface ServiceInterruption {
  readonly startNs: number;
  readonly endNs: number;
}

export interface NetEvaluationOptions {
  /** end of the observation (end of the run) */
  readonly atNs: number;
  readonly serviceInterruptions: readonly ServiceInterruption[];
  /** count pings inside service interruptions like any other */
  readonly strict: boolean;
}

export interface NetWindowReport {
  readonly index: number;
  readonly startNs: number;
  readonly endNs: number;
  /** pings counted against the 10% limit */
  readonly counted: number;
  readonly lost: number;
  /** pings inside a service interruption (not counted unless strict) */
  readonly downtimePings: number;
  readonly downtimeLosses: number;
  /** pings whose deadline is after the end of the observation and not yet answered */
  readonly undecided: number;
}

export interface NetReport {
  readonly verdict: GuestVerdict;
  readonly windows: readonly NetWindowReport[];
  readonly answered: number;
  readonly lost: number;
  readonly downtimeLosses: number;
  /** replies with the wrong data (they do not answer their ping) */
  readonly wrongReplies: number;
}

interface MutableWindow {
  index: number;
  startNs: number;
  endNs: number;
  counted: number;
  lost: number;
  downtimePings: number;
  downtimeLosses: number;
  undecided: number;
  /** deadlines of the counted lost pings, in arrival order */
  lossDeadlinesNs: number[];
}

type PingOutcome = 'answered' | 'lost' | 'undecided';

/** Earliest time each ping got a correct reply, by ping id (an array: every id is looked up). */
function correctReplyTimes(nic: Nic): { times: (number | undefined)[]; wrongReplies: number } {
  const times = new Array<number | undefined>(nic.pingCount).fill(undefined);
  let wrongReplies = 0;
  for (const transmission of nic.transmissions()) {
    const { pingId } = transmission;
    const valid = Number.isInteger(pingId) && pingId >= 0 && pingId < nic.pingCount;
    if (!valid || transmission.data !== pingReply(nic.payload(pingId))) {
      wrongReplies++;
      continue;
    }
    const previous = times[pingId];
    if (previous === undefined || transmission.timeNs < previous) times[pingId] = transmission.timeNs;
  }
  return { times, wrongReplies };
}

function pingOutcome(arrivalNs: number, replyNs: number | undefined, atNs: number): PingOutcome {
  if (replyNs !== undefined && replyNs >= arrivalNs && replyNs - arrivalNs <= PING_DEADLINE_NS) return 'answered';
  return arrivalNs + PING_DEADLINE_NS <= atNs ? 'lost' : 'undecided';
}

function emptyWindows(atNs: number): MutableWindow[] {
  const count = Math.max(0, Math.ceil(atNs / NET_WINDOW_NS));
  return Array.from({ length: count }, (_, index) => ({
    index,
    startNs: index * NET_WINDOW_NS,
    endNs: Math.min((index + 1) * NET_WINDOW_NS, atNs),
    counted: 0,
    lost: 0,
    downtimePings: 0,
    downtimeLosses: 0,
    undecided: 0,
    lossDeadlinesNs: [],
  }));
}

function insideInterruption(timeNs: number, interruptions: readonly ServiceInterruption[]): boolean {
  return interruptions.some((interval) => timeNs >= interval.startNs && timeNs < interval.endNs);
}

/** The first window over the limit; the failure time is the deadline of the loss that crossed it. */
function firstWindowFailure(windows: readonly MutableWindow[]): GuestVerdict {
  for (const window of windows) {
    if (window.lost <= NET_LOSS_LIMIT * window.counted) continue;
    const crossing = window.lossDeadlinesNs[Math.floor(NET_LOSS_LIMIT * window.counted)];
    const percent = ((100 * window.lost) / window.counted).toFixed(1);
    const reason =
      `window ${window.index} (${formatMs(window.startNs)} - ${formatMs(window.endNs)}): ` +
      `${window.lost} of ${window.counted} pings not answered within ${PING_DEADLINE_NS / 1_000_000} ms (${percent}% > ${100 * NET_LOSS_LIMIT}%)`;
    return { kind: 'failed', reason, atNs: crossing };
  }
  return { kind: 'correct' };
}

/**
 * The NetBench rule: in each 1 s window of simulated time, at most 10% of the pings that arrived
 * may go unanswered. Pings arriving inside a service interruption are downtime, reported apart,
 * unless `strict` counts them too.
 */
export function evaluateNetBench(nic: Nic, options: NetEvaluationOptions): NetReport {
  const { times, wrongReplies } = correctReplyTimes(nic);
  const windows = emptyWindows(options.atNs);
  let answered = 0;
  for (let pingId = 0; pingId < nic.pingCount; pingId++) {
    const arrivalNs = nic.arrivalNs(pingId);
    if (arrivalNs >= options.atNs) break;
    const window = windows[Math.floor(arrivalNs / NET_WINDOW_NS)];
    const outcome = pingOutcome(arrivalNs, times[pingId], options.atNs);
    if (outcome === 'answered') answered++;
    if (outcome === 'undecided') {
      window.undecided++;
    } else if (!options.strict && insideInterruption(arrivalNs, options.serviceInterruptions)) {
      window.downtimePings++;
      if (outcome === 'lost') window.downtimeLosses++;
    } else {
      window.counted++;
      if (outcome === 'lost') {
        window.lost++;
        window.lossDeadlinesNs.push(arrivalNs + PING_DEADLINE_NS);
      }
    }
  }
  const reports = windows.map(({ lossDeadlinesNs: _deadlines, ...report }) => report);
  return {
    verdict: firstWindowFailure(windows),
    windows: reports,
    answered,
    lost: reports.reduce((sum, window) => sum + window.lost, 0),
    downtimeLosses: reports.reduce((sum, window) => sum + window.downtimeLosses, 0),
    wrongReplies,
  };
}

function mixHash(hash: number, value: number): number {
  return Math.imul(hash ^ (value | 0), 0x01000193) ^ (hash >>> 15);
}
