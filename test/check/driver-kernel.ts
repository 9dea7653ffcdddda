/**
 * A guest that does what the test tells it: requests are queued from outside and issued one at a
 * time, each answer recorded. When it has nothing to do it blocks (AppVMs: a notification wakes
 * it for its next request) or yields (the PrivVM, which runs the toolstack's commands).
 */
import { Hypercall, MULTICALL_ENTRY_WORDS, MulticallEntry, PORT_TIMER, SCHEDOP_BLOCK, SCHEDOP_YIELD } from '../../src/hypervisor/abi.js';
import type { GuestAction, GuestKernel, GuestVerdict } from '../../src/guests/kernel.js';

export type DriverRequest =
  | { readonly kind: 'call'; readonly hypercall: number; readonly args: readonly [number, number, number] }
  /** fill the multicall buffer with these mmu_updates, then issue multicall(n) */
  | { readonly kind: 'multicall'; readonly updates: readonly { readonly slot: number; readonly frame: number }[] }
  /** set_timer_op(microseconds), then block until PORT_TIMER */
  | { readonly kind: 'sleep'; readonly microseconds: number };

export interface DriverAnswer {
  readonly returnValue: number;
  /** multicall: each entry's result and done flag, read when the call returned */
  readonly entries?: readonly { readonly result: number; readonly done: number }[];
  /** sleep: when set_timer_op returned, and when PORT_TIMER woke the guest */
  readonly timerSetNs?: number;
  readonly wokenNs?: number;
}

/** Direct access to a shared page of hypervisor memory (the guest's multicall buffer). */
export interface Words {
  read(offset: number): number;
  write(offset: number, value: number): void;
}

type Stage =
  | { readonly kind: 'idle' }
  | { readonly kind: 'calling'; readonly request: DriverRequest }
  | { readonly kind: 'sleeping'; readonly timerSetNs: number };

const COMPUTE_NS = 10_000;

export class DriverKernel implements GuestKernel {
  readonly name = 'driver';
  readonly queue: DriverRequest[] = [];
  readonly answers: DriverAnswer[] = [];
  private stage: Stage = { kind: 'idle' };
  private events = 0;
  private crashed: string | undefined;

  constructor(
    readonly domainId: number,
    private readonly idle: 'block' | 'yield',
    private readonly multicallBuffer: Words,
  ) {}

  /** Requests answered so far. */
  get completed(): number {
    return this.answers.length;
  }

  boot(): GuestAction {
    return this.next();
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.events |= events;
    const stage = this.stage;
    if (stage.kind === 'calling') {
      if (stage.request.kind === 'sleep') {
        this.stage = { kind: 'sleeping', timerSetNs: nowNs };
        return this.waitForTimer();
      }
      this.answers.push({ returnValue, ...(stage.request.kind === 'multicall' ? { entries: this.readEntries(stage.request.updates.length) } : {}) });
      this.stage = { kind: 'idle' };
    } else if (stage.kind === 'sleeping') {
      if ((this.events & (1 << PORT_TIMER)) === 0) return this.waitForTimer();
      this.events &= ~(1 << PORT_TIMER);
      this.answers.push({ returnValue: 0, timerSetNs: stage.timerSetNs, wokenNs: nowNs });
      this.stage = { kind: 'idle' };
    }
    return this.next();
  }

  deliverEvents(events: number): void {
    this.events |= events;
  }

  crash(reason: string): void {
    this.crashed = reason;
  }

  /** A scripted kernel owes no progress: it has no benchmark to time out. */
  setServiceInterruptions(): void {}

  verdict(nowNs: number): GuestVerdict {
    return this.crashed === undefined ? { kind: 'correct' } : { kind: 'failed', reason: this.crashed, atNs: nowNs };
  }

  summary(): Record<string, number> {
    return { completed: this.completed };
  }

  saveState(): unknown {
    throw new Error('the driver kernel is not snapshotted');
  }

  loadState(): void {
    throw new Error('the driver kernel is not snapshotted');
  }

  private next(): GuestAction {
    const request = this.queue.shift();
    if (request === undefined) {
      this.stage = { kind: 'idle' };
      return action(Hypercall.SchedOp, this.idle === 'block' ? SCHEDOP_BLOCK : SCHEDOP_YIELD);
    }
    this.stage = { kind: 'calling', request };
    switch (request.kind) {
      case 'call':
        return action(request.hypercall, ...request.args);
      case 'multicall':
        request.updates.forEach((update, index) => this.writeEntry(index, update.slot, update.frame));
        return action(Hypercall.Multicall, request.updates.length);
      case 'sleep':
        this.events &= ~(1 << PORT_TIMER);
        return action(Hypercall.SetTimerOp, request.microseconds);
    }
  }

  private waitForTimer(): GuestAction {
    return action(Hypercall.SchedOp, SCHEDOP_BLOCK);
  }

  private writeEntry(index: number, slot: number, frame: number): void {
    const base = index * MULTICALL_ENTRY_WORDS;
    this.multicallBuffer.write(base + MulticallEntry.operation, Hypercall.MmuUpdate);
    this.multicallBuffer.write(base + MulticallEntry.argument0, slot);
    this.multicallBuffer.write(base + MulticallEntry.argument1, frame);
    this.multicallBuffer.write(base + MulticallEntry.result, 0);
    this.multicallBuffer.write(base + MulticallEntry.done, 0);
  }

  private readEntries(count: number): { result: number; done: number }[] {
    return Array.from({ length: count }, (_, index) => ({
      result: this.multicallBuffer.read(index * MULTICALL_ENTRY_WORDS + MulticallEntry.result),
      done: this.multicallBuffer.read(index * MULTICALL_ENTRY_WORDS + MulticallEntry.done),
    }));
  }
}

function action(hypercall: number, argument0 = 0, argument1 = 0, argument2 = 0): GuestAction {
  return { computeNs: COMPUTE_NS, hypercall, args: [argument0, argument1, argument2] };
}
