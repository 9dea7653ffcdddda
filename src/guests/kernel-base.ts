/**
 * Plumbing every guest kernel shares: event accumulation, the first recorded failure, halting,
 * and snapshots. A kernel's whole mutable state lives in one plain-data object plus its random
 * stream, so saveState is a deep copy and loadState(saveState()) continues identically.
 */
import { hypercallNames } from '../hypervisor/abi.js';
import type { GuestAction, GuestKernel, GuestVerdict } from './kernel.js';
import { copyPlainData } from './plain-data.js';
import type { ServiceInterruption } from './devices.js';
import { blockAction } from './protocol.js';
import { SeededRandom, type RandomState } from './random.js';

export interface Failure {
  readonly reason: string;
  readonly atNs: number;
}

/** State fields common to every kernel. */
export interface CommonState {
  /** event ports (bitmask) delivered by the hypervisor and not yet handled */
  pendingEvents: number;
  failure: Failure | null;
  /** a halted kernel does no more work: it blocks whenever it runs */
  halted: boolean;
  /**
   * the hypercall in flight, to name it in failures (null before the first); kept as numbers and
   * put into words only when a failure quotes it, since nearly every call succeeds
   */
  lastCall: IssuedCall | null;
  /** when the guest last completed a unit of its work (null before boot) */
  lastProgressNs: number | null;
  /** gaps between units of work longer than a progress window (the first few) */
  longGaps: ServiceInterruption[];
  /** recovery's service interruptions: the VMs are paused, so no progress is owed inside them */
  pausedIntervals: ServiceInterruption[];
}

/** What names a hypercall in a failure: its number and arguments. */
export interface IssuedCall {
  readonly hypercall: number;
  readonly args: readonly [number, number, number];
}

export function initialCommonState(): CommonState {
  return { pendingEvents: 0, failure: null, halted: false, lastCall: null, lastProgressNs: null, longGaps: [], pausedIntervals: [] };
}

export function describeCall(call: IssuedCall | null): string {
  if (call === null) return 'none';
  const name = hypercallNames[call.hypercall] ?? `hypercall ${call.hypercall}`;
  return `${name}(${call.args.join(', ')})`;
}

interface SavedKernel<S> {
  readonly kernel: string;
  readonly domainId: number;
  readonly state: S;
  readonly random: RandomState;
}

/**
 * A benchmark that completes no unit of its work for this long (outside service interruptions)
 * has timed out: a stuck VM is a failed VM, as the real benchmarks fail on a timeout. The real
 * NetBench judges 1 s windows of a 24 s run; the runs here are scaled by 1/10.
 */
export const PROGRESS_WINDOW_NS = 100_000_000;
/** the first timeout is the verdict's: a few long gaps are enough to find it */
const LONG_GAPS_KEPT = 4;

/** No PORT_TIMER by the end of the run, this long after its deadline, means the timer was lost. */
export const TIMER_GRACE_NS = 50_000_000;

/**
 * Compute time before a sched_op(block): as short as possible. Events that reach the guest
 * through an interrupt exit after it decided to block are known to the guest but no longer
 * pending in the hypervisor, so the block would sleep through them (a lost wake-up). Real
 * kernels close this window by blocking with events masked; here it is kept to 1 us.
 */
export const BLOCK_COMPUTE_NS = 1_000;

export abstract class KernelBase<S extends CommonState> implements GuestKernel {
  protected state: S;
  protected random: SeededRandom;

  protected constructor(
    readonly name: string,
    readonly domainId: number,
    seed: number,
    initialState: (random: SeededRandom) => S,
  ) {
    this.random = SeededRandom.fromSeed(seed, `${name}/${domainId}`);
    this.state = initialState(this.random);
  }

  abstract boot(nowNs: number): GuestAction;
  abstract resume(returnValue: number, events: number, nowNs: number): GuestAction;
  abstract summary(): Readonly<Record<string, number>>;

  deliverEvents(events: number, _nowNs: number): void {
    this.state.pendingEvents |= events;
  }

  crash(reason: string, nowNs: number): void {
    this.fail(`crashed: ${reason}`, nowNs);
    this.state.halted = true;
  }

  /** Recovery paused every VM for these intervals: the progress watchdog does not count them. */
  setServiceInterruptions(intervals: readonly ServiceInterruption[]): void {
    this.state.pausedIntervals = intervals.map(({ startNs, endNs }) => ({ startNs, endNs }));
  }

  verdict(nowNs: number): GuestVerdict {
    const candidates = [this.state.failure, this.firstTimeout(nowNs), ...this.failuresAtEnd(nowNs)].filter((failure): failure is Failure => failure !== null);
    if (candidates.length === 0) return { kind: 'correct' };
    const first = candidates.reduce((earliest, failure) => (failure.atNs < earliest.atNs ? failure : earliest));
    return { kind: 'failed', reason: first.reason, atNs: first.atNs };
  }

  saveState(): unknown {
    const saved: SavedKernel<S> = { kernel: this.name, domainId: this.domainId, state: this.state, random: this.random.state() };
    return copyPlainData(saved);
  }

  loadState(saved: unknown): void {
    const candidate = saved as Partial<SavedKernel<S>> | null;
    if (candidate === null || typeof candidate !== 'object' || candidate.state === undefined || candidate.random === undefined) {
      throw new Error(`${this.name}: not a saved kernel state`);
    }
    if (candidate.kernel !== this.name || candidate.domainId !== this.domainId) {
      throw new Error(`${this.name} of domain ${this.domainId}: cannot load the state of ${candidate.kernel} of domain ${candidate.domainId}`);
    }
    this.state = copyPlainData(candidate.state);
    this.random = SeededRandom.fromState(candidate.random);
  }

  /** Failures that only the end of the run reveals (work not finished, a timer that never fired). */
  protected failuresAtEnd(_nowNs: number): Failure[] {
    return [];
  }

  /** A guest whose work is done (BlkBench's sequence) owes no more progress. */
  protected hasFinished(): boolean {
    return false;
  }

  /** Until when the guest has work to progress on (NetBench: while pings arrive); by default, always. */
  protected progressOwedUntilNs(): number {
    return Number.POSITIVE_INFINITY;
  }

  /**
   * The guest completed a unit of its work now. A gap longer than the window is kept, to be
   * judged at the verdict against the service interruptions known then (set after a recovery).
   */
  protected progressed(nowNs: number): void {
    const since = this.state.lastProgressNs;
    if (since !== null && nowNs - since > PROGRESS_WINDOW_NS && this.state.longGaps.length < LONG_GAPS_KEPT) {
      this.state.longGaps.push({ startNs: since, endNs: nowNs });
    }
    this.state.lastProgressNs = nowNs;
  }

  /** Every guest's first entry starts its progress clock. */
  protected started(nowNs: number): void {
    if (this.state.lastProgressNs === null) this.state.lastProgressNs = nowNs;
  }

  /** The first timeout: a kept gap, or the one still open at `nowNs`, longer than the window outside pauses. */
  private firstTimeout(nowNs: number): Failure | null {
    for (const gap of this.state.longGaps) {
      const timeout = this.timeoutOver(gap.startNs, gap.endNs);
      if (timeout !== null) return timeout;
    }
    const since = this.state.lastProgressNs;
    if (since === null || this.state.halted || this.hasFinished()) return null;
    return this.timeoutOver(since, Math.min(nowNs, this.progressOwedUntilNs()));
  }

  private timeoutOver(sinceNs: number, untilNs: number): Failure | null {
    const stalledNs = untilNs - sinceNs - pausedWithin(this.state.pausedIntervals, sinceNs, untilNs);
    if (stalledNs <= PROGRESS_WINDOW_NS) return null;
    const reason = `timed out: no progress for more than ${PROGRESS_WINDOW_NS / 1_000_000} ms (outside service interruptions) after ${(sinceNs / 1_000_000).toFixed(1)} ms`;
    return { reason, atNs: timeoutAt(this.state.pausedIntervals, sinceNs) };
  }

  /** Records the first failure only: later ones are consequences. */
  protected fail(reason: string, atNs: number): void {
    if (this.state.failure === null) this.state.failure = { reason, atNs };
  }

  /** An AppVM benchmark stops at its first error, as a real benchmark would abort. */
  protected failAndHalt(reason: string, atNs: number): void {
    this.fail(reason, atNs);
    this.state.halted = true;
  }

  protected acceptEvents(events: number): void {
    this.state.pendingEvents |= events;
  }

  /** True if any of `mask` was pending; clears those bits. */
  protected takeEvents(mask: number): boolean {
    const taken = (this.state.pendingEvents & mask) !== 0;
    this.state.pendingEvents &= ~mask;
    return taken;
  }

  protected idleAction(): GuestAction {
    return this.issue(blockAction(BLOCK_COMPUTE_NS));
  }

  /** Remembers the hypercall about to be made, so that a failure can name it. */
  protected issue(action: GuestAction): GuestAction {
    // The action's args are never changed after it is built, so they can be kept without a copy.
    this.state.lastCall = { hypercall: action.hypercall, args: action.args };
    return action;
  }

  /** For hypercalls whose only possible answers are success or an error code. */
  protected checkNoError(returnValue: number, nowNs: number): void {
    if (returnValue < 0 && !this.state.halted) this.failAndHalt(`${describeCall(this.state.lastCall)} returned error ${returnValue}`, nowNs);
  }
}

/** When a watchdog started at `sinceNs` runs out: a window of unpaused time later. */
function timeoutAt(intervals: readonly ServiceInterruption[], sinceNs: number): number {
  let atNs = sinceNs + PROGRESS_WINDOW_NS;
  for (;;) {
    const next = sinceNs + PROGRESS_WINDOW_NS + pausedWithin(intervals, sinceNs, atNs);
    if (next === atNs) return atNs;
    atNs = next;
  }
}

/** How much of [fromNs, toNs] the intervals cover (they do not overlap). */
function pausedWithin(intervals: readonly ServiceInterruption[], fromNs: number, toNs: number): number {
  let pausedNs = 0;
  for (const { startNs, endNs } of intervals) pausedNs += Math.max(0, Math.min(endNs, toNs) - Math.max(startNs, fromNs));
  return pausedNs;
}

/** The failure of a one-shot timer that never fired, if it is overdue at `nowNs`. */
export function overdueTimer(what: string, deadlineNs: number | null, nowNs: number): Failure | null {
  if (deadlineNs === null || nowNs <= deadlineNs + TIMER_GRACE_NS) return null;
  return { reason: `${what} never fired: no PORT_TIMER within ${TIMER_GRACE_NS / 1_000_000} ms of its deadline at ${deadlineNs} ns`, atNs: deadlineNs + TIMER_GRACE_NS };
}
