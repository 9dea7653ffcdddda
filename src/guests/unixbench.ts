/**
 * UnixBench-like AppVM: hypercall heavy. A seeded loop of page-table updates, multicall batches
 * of page-table updates, yields and timer sleeps. The guest mirrors its page table, so it knows
 * the exact use count each mmu_update must return and checks every answer.
 */
import {
  FRAMES_PER_DOMAIN,
  Hypercall,
  MULTICALL_ENTRY_WORDS,
  MULTICALL_MAX_ENTRIES,
  MulticallEntry,
  PAGE_TABLE_SLOTS,
  PORT_TIMER,
  SCHEDOP_YIELD,
  firstFrameOf,
} from '../hypervisor/abi.js';
import type { GuestAction, SharedRegion } from './kernel.js';
import { BLOCK_COMPUTE_NS, KernelBase, initialCommonState, overdueTimer, type CommonState, type Failure } from './kernel-base.js';
import { blockAction, hypercallAction, microsecondsToNs, portBit } from './protocol.js';

export interface UnixBenchOptions {
  readonly domainId: number;
  readonly seed: number;
  /** the multicall page shared with the hypervisor: MULTICALL_MAX_ENTRIES * MULTICALL_ENTRY_WORDS words */
  readonly multicallRegion: SharedRegion;
}

interface PageUpdate {
  readonly slot: number;
  readonly frame: number;
  /** use count of `frame` after the update (0 for an unmap) */
  readonly expectedCount: number;
}

/** The hypercall in flight, with what its answer must be. */
type UnixOperation =
  | { readonly kind: 'none' }
  | ({ readonly kind: 'mmuUpdate' } & PageUpdate)
  | { readonly kind: 'multicall'; readonly updates: readonly PageUpdate[] }
  | { readonly kind: 'yield' }
  | { readonly kind: 'setTimer'; readonly durationUs: number }
  | { readonly kind: 'awaitTimer' };

interface UnixBenchState extends CommonState {
  /** the guest's own copy of its page table: frame per slot, 0 = unmapped */
  pageTable: number[];
  inFlight: UnixOperation;
  /** deadline of the armed timer, or null when no timer is awaited */
  timerDeadlineNs: number | null;
  counts: { mmuUpdates: number; multicalls: number; multicallEntries: number; yields: number; timers: number };
  checksum: number;
}

const MINIMUM_COMPUTE_NS = 20_000;
const MAXIMUM_COMPUTE_NS = 120_000;
/** relative weights of mmu_update, multicall, yield, timer sleep */
const OPERATION_WEIGHTS = [40, 25, 20, 15];
/** an unmap is this likely among page-table updates */
const UNMAP_PROBABILITY = 0.2;

export class UnixBench extends KernelBase<UnixBenchState> {
  private readonly multicallRegion: SharedRegion;

  constructor(options: UnixBenchOptions) {
    super('unixbench', options.domainId, options.seed, () => ({
      ...initialCommonState(),
      pageTable: new Array<number>(PAGE_TABLE_SLOTS).fill(0),
      inFlight: { kind: 'none' },
      timerDeadlineNs: null,
      counts: { mmuUpdates: 0, multicalls: 0, multicallEntries: 0, yields: 0, timers: 0 },
      checksum: 0,
    }));
    const neededWords = MULTICALL_MAX_ENTRIES * MULTICALL_ENTRY_WORDS;
    if (options.multicallRegion.sizeWords < neededWords) {
      throw new Error(`unixbench: multicall region has ${options.multicallRegion.sizeWords} words, needs ${neededWords}`);
    }
    this.multicallRegion = options.multicallRegion;
  }

  boot(nowNs: number): GuestAction {
    this.started(nowNs);
    return this.issue(this.nextAction(nowNs));
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.acceptEvents(events);
    if (!this.state.halted) this.checkAnswer(this.state.inFlight, returnValue, nowNs);
    // every answered call is a step of the benchmark; waiting on a timer is not
    if (this.state.inFlight.kind !== 'none' && this.state.inFlight.kind !== 'awaitTimer') this.progressed(nowNs);
    return this.issue(this.nextAction(nowNs));
  }

  summary(): Readonly<Record<string, number>> {
    const { counts } = this.state;
    const operations = counts.mmuUpdates + counts.multicalls + counts.yields + counts.timers;
    return { operations, ...counts, checksum: this.state.checksum, pageTableMapped: this.state.pageTable.filter((frame) => frame !== 0).length };
  }

  protected override failuresAtEnd(nowNs: number): Failure[] {
    const lost = this.state.halted ? null : overdueTimer('set_timer_op', this.state.timerDeadlineNs, nowNs);
    return lost === null ? [] : [lost];
  }

  // --- choosing the next hypercall ------------------------------------------------------------

  private nextAction(nowNs: number): GuestAction {
    if (this.state.halted) return this.begin({ kind: 'none' }, this.idleAction());
    if (this.state.timerDeadlineNs !== null) return this.awaitTimer(nowNs);
    switch (this.random.weighted(OPERATION_WEIGHTS)) {
      case 0:
        return this.startMmuUpdate();
      case 1:
        return this.startMulticall();
      case 2:
        return this.begin({ kind: 'yield' }, hypercallAction(this.computeNs(), Hypercall.SchedOp, SCHEDOP_YIELD));
      default:
        return this.startTimer();
    }
  }

  private begin(operation: UnixOperation, action: GuestAction): GuestAction {
    this.state.inFlight = operation;
    return action;
  }

  private computeNs(): number {
    return this.random.integer(MINIMUM_COMPUTE_NS, MAXIMUM_COMPUTE_NS);
  }

  /** Picks a slot and a frame (0 = unmap, else one of the domain's own) and predicts the count. */
  private planUpdate(): PageUpdate {
    const slot = this.random.integer(0, PAGE_TABLE_SLOTS - 1);
    const unmap = this.random.fraction() < UNMAP_PROBABILITY;
    const frame = unmap ? 0 : firstFrameOf(this.domainId) + this.random.integer(0, FRAMES_PER_DOMAIN - 1);
    this.state.pageTable[slot] = frame;
    const expectedCount = frame === 0 ? 0 : countOf(this.state.pageTable, frame);
    return { slot, frame, expectedCount };
  }

  private startMmuUpdate(): GuestAction {
    const { slot, frame, expectedCount } = this.planUpdate();
    return this.begin({ kind: 'mmuUpdate', slot, frame, expectedCount }, hypercallAction(this.computeNs(), Hypercall.MmuUpdate, slot, frame));
  }

  /** Fills a fresh batch: every entry starts with result 0 and done 0, as the ABI requires. */
  private startMulticall(): GuestAction {
    const count = this.random.integer(2, 6);
    const updates: PageUpdate[] = [];
    for (let index = 0; index < count; index++) {
      const update = this.planUpdate();
      updates.push(update);
      this.writeMulticallEntry(index, update);
    }
    return this.begin({ kind: 'multicall', updates }, hypercallAction(this.computeNs(), Hypercall.Multicall, count));
  }

  private writeMulticallEntry(index: number, update: PageUpdate): void {
    const base = index * MULTICALL_ENTRY_WORDS;
    this.multicallRegion.write(base + MulticallEntry.operation, Hypercall.MmuUpdate);
    this.multicallRegion.write(base + MulticallEntry.argument0, update.slot);
    this.multicallRegion.write(base + MulticallEntry.argument1, update.frame);
    this.multicallRegion.write(base + MulticallEntry.result, 0);
    this.multicallRegion.write(base + MulticallEntry.done, 0);
  }

  private startTimer(): GuestAction {
    const durationUs = this.random.integer(200, 2_000);
    // A stale timer event must not satisfy the wait for this new timer.
    this.takeEvents(portBit(PORT_TIMER));
    return this.begin({ kind: 'setTimer', durationUs }, hypercallAction(this.computeNs(), Hypercall.SetTimerOp, durationUs));
  }

  /**
   * Blocks until PORT_TIMER; a wake-up without it just blocks again. A late timer is not judged
   * here: a recovery pauses the guest for its service interruption and every timer is late then.
   * Only a timer still missing at the end of the run is a failure (failuresAtEnd).
   */
  private awaitTimer(nowNs: number): GuestAction {
    if (this.takeEvents(portBit(PORT_TIMER))) {
      this.state.timerDeadlineNs = null;
      this.state.counts.timers++;
      this.progressed(nowNs);
      return this.nextAction(nowNs);
    }
    return this.begin({ kind: 'awaitTimer' }, blockAction(BLOCK_COMPUTE_NS));
  }

  // --- checking the answer --------------------------------------------------------------------

  private checkAnswer(operation: UnixOperation, returnValue: number, nowNs: number): void {
    switch (operation.kind) {
      case 'none':
        return;
      case 'mmuUpdate':
        return this.checkMmuUpdate(operation, returnValue, nowNs);
      case 'multicall':
        return this.checkMulticall(operation.updates, returnValue, nowNs);
      case 'yield':
        this.state.counts.yields++;
        return this.checkNoError(returnValue, nowNs);
      case 'setTimer':
        this.state.timerDeadlineNs = nowNs + microsecondsToNs(operation.durationUs);
        return this.checkNoError(returnValue, nowNs);
      case 'awaitTimer':
        return this.checkNoError(returnValue, nowNs);
    }
  }

  private checkMmuUpdate(update: PageUpdate, returnValue: number, nowNs: number): void {
    this.state.counts.mmuUpdates++;
    this.record(returnValue);
    if (returnValue < 0) return this.failAndHalt(`${describeUpdate(update)} returned error ${returnValue}`, nowNs);
    if (returnValue !== update.expectedCount) {
      this.failAndHalt(`${describeUpdate(update)} returned use count ${returnValue}, expected ${update.expectedCount}`, nowNs);
    }
  }

  /** Every entry must be done with the predicted result, and the return value is the count done: all of them. */
  private checkMulticall(updates: readonly PageUpdate[], returnValue: number, nowNs: number): void {
    this.state.counts.multicalls++;
    this.state.counts.multicallEntries += updates.length;
    this.record(returnValue);
    if (returnValue !== updates.length) {
      return this.failAndHalt(`multicall(${updates.length} mmu_update) returned ${returnValue}`, nowNs);
    }
    for (let index = 0; index < updates.length; index++) this.checkMulticallEntry(index, updates[index], nowNs);
  }

  private checkMulticallEntry(index: number, update: PageUpdate, nowNs: number): void {
    const base = index * MULTICALL_ENTRY_WORDS;
    const done = this.multicallRegion.read(base + MulticallEntry.done);
    const result = this.multicallRegion.read(base + MulticallEntry.result);
    this.record(result);
    if (done !== 1) this.failAndHalt(`multicall entry ${index} ${describeUpdate(update)} not done (done flag ${done})`, nowNs);
    else if (result !== update.expectedCount) this.failAndHalt(`multicall entry ${index} ${describeUpdate(update)} result ${result}, expected ${update.expectedCount}`, nowNs);
  }

  private record(value: number): void {
    this.state.checksum = (Math.imul(this.state.checksum, 31) + value) | 0;
  }
}

/** An update as failures name it; built only when one does, as nearly every update succeeds. */
function describeUpdate(update: PageUpdate): string {
  return `mmu_update(slot ${update.slot}, frame ${update.frame})`;
}

function countOf(values: readonly number[], value: number): number {
  let count = 0;
  for (const candidate of values) if (candidate === value) count++;
  return count;
}
