/**
 * A minimal guest kernel for hypervisor tests: it cycles through a fixed script of hypercalls and
 * records every return value, so tests can drive the hypervisor without the real workloads.
 */
import { Hypercall, SCHEDOP_BLOCK, SCHEDOP_YIELD, PORT_TIMER, firstFrameOf } from '../../src/hypervisor/abi.js';
import type { GuestAction, GuestKernel, GuestVerdict } from '../../src/guests/kernel.js';

interface ScriptedState {
  step: number;
  returns: number[];
  events: number;
  crashed: string | undefined;
  waitingForTimer: boolean;
}

export class ScriptedKernel implements GuestKernel {
  readonly name = 'scripted';
  readonly domainId: number;
  state: ScriptedState = { step: 0, returns: [], events: 0, crashed: undefined, waitingForTimer: false };

  constructor(domainId: number) {
    this.domainId = domainId;
  }

  boot(): GuestAction {
    return this.next();
  }

  resume(returnValue: number, events: number): GuestAction {
    this.state.returns.push(returnValue);
    this.state.events |= events;
    if (this.state.waitingForTimer) {
      if ((this.state.events & (1 << PORT_TIMER)) === 0) return block();
      this.state.events &= ~(1 << PORT_TIMER);
      this.state.waitingForTimer = false;
    }
    return this.next();
  }

  deliverEvents(events: number): void {
    this.state.events |= events;
  }

  crash(reason: string): void {
    this.state.crashed = reason;
  }

  /** A scripted kernel owes no progress: it has no benchmark to time out. */
  setServiceInterruptions(): void {}

  verdict(nowNs: number): GuestVerdict {
    return this.state.crashed ? { kind: 'failed', reason: this.state.crashed, atNs: nowNs } : { kind: 'correct' };
  }

  summary(): Record<string, number> {
    return { steps: this.state.step };
  }

  saveState(): unknown {
    return structuredClone(this.state);
  }

  loadState(state: unknown): void {
    this.state = structuredClone(state as ScriptedState);
  }

  private next(): GuestAction {
    const step = this.state.step++;
    const frame = firstFrameOf(this.domainId) + (step % 4);
    switch (step % 4) {
      case 0:
        return { computeNs: 30_000, hypercall: Hypercall.MmuUpdate, args: [step % 3, frame, 0] };
      case 1:
        return { computeNs: 30_000, hypercall: Hypercall.SchedOp, args: [SCHEDOP_YIELD, 0, 0] };
      case 2:
        return { computeNs: 30_000, hypercall: Hypercall.MmuUpdate, args: [step % 3, 0, 0] };
      default:
        this.state.waitingForTimer = true;
        return { computeNs: 20_000, hypercall: Hypercall.SetTimerOp, args: [500, 0, 0] };
    }
  }
}

function block(): GuestAction {
  return { computeNs: 1_000, hypercall: Hypercall.SchedOp, args: [SCHEDOP_BLOCK, 0, 0] };
}

/** One step of a playlist: a hypercall whose return value is recorded, or a timer sleep. */
export type PlaylistStep =
  | { readonly kind: 'call'; readonly hypercall: number; readonly args: readonly [number, number, number] }
  | { readonly kind: 'sleep'; readonly microseconds: number };

export function call(hypercall: number, argument0 = 0, argument1 = 0, argument2 = 0): PlaylistStep {
  return { kind: 'call', hypercall, args: [argument0, argument1, argument2] };
}

export function sleep(microseconds: number): PlaylistStep {
  return { kind: 'sleep', microseconds };
}

interface PlaylistState {
  step: number;
  /** the return value of each 'call' step, in order */
  returns: number[];
  events: number;
  crashed: string | undefined;
  waitingForTimer: boolean;
  /** simulated time at which the last step was answered */
  finishedAtNs: number | undefined;
}

const PLAYLIST_COMPUTE_NS = 10_000;

/**
 * A guest that plays a fixed list of hypercalls once, recording each return value, then either
 * blocks for good or yields for ever (so that its vCPU never blocks).
 */
export class PlaylistKernel implements GuestKernel {
  readonly name = 'playlist';
  readonly domainId: number;
  state: PlaylistState = { step: 0, returns: [], events: 0, crashed: undefined, waitingForTimer: false, finishedAtNs: undefined };

  constructor(
    domainId: number,
    private readonly steps: readonly PlaylistStep[],
    private readonly afterwards: 'block' | 'yield' = 'block',
  ) {
    this.domainId = domainId;
  }

  get finished(): boolean {
    return this.state.finishedAtNs !== undefined;
  }

  boot(nowNs: number): GuestAction {
    return this.next(nowNs);
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.state.events |= events;
    if (this.state.waitingForTimer) {
      if ((this.state.events & (1 << PORT_TIMER)) === 0) return block();
      this.state.events &= ~(1 << PORT_TIMER);
      this.state.waitingForTimer = false;
    } else if (this.state.step > 0 && this.state.step <= this.steps.length && this.steps[this.state.step - 1].kind === 'call') {
      this.state.returns.push(returnValue);
    }
    return this.next(nowNs);
  }

  deliverEvents(events: number): void {
    this.state.events |= events;
  }

  crash(reason: string): void {
    this.state.crashed = reason;
  }

  /** A scripted kernel owes no progress: it has no benchmark to time out. */
  setServiceInterruptions(): void {}

  verdict(nowNs: number): GuestVerdict {
    return this.state.crashed ? { kind: 'failed', reason: this.state.crashed, atNs: nowNs } : { kind: 'correct' };
  }

  summary(): Record<string, number> {
    return { steps: this.state.step };
  }

  saveState(): unknown {
    return structuredClone(this.state);
  }

  loadState(state: unknown): void {
    this.state = structuredClone(state as PlaylistState);
  }

  private next(nowNs: number): GuestAction {
    if (this.state.step >= this.steps.length) {
      if (this.state.step === this.steps.length) {
        this.state.step++;
        this.state.finishedAtNs = nowNs;
      }
      return this.afterwards === 'block' ? block() : { computeNs: PLAYLIST_COMPUTE_NS, hypercall: Hypercall.SchedOp, args: [SCHEDOP_YIELD, 0, 0] };
    }
    const step = this.steps[this.state.step++];
    if (step.kind === 'call') return { computeNs: PLAYLIST_COMPUTE_NS, hypercall: step.hypercall, args: step.args };
    this.state.waitingForTimer = true;
    this.state.events &= ~(1 << PORT_TIMER);
    return { computeNs: PLAYLIST_COMPUTE_NS, hypercall: Hypercall.SetTimerOp, args: [step.microseconds, 0, 0] };
  }
}
