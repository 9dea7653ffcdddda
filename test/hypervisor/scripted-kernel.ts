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
