/**
 * The guest host: runs guest kernels on the machine's CPUs in guest mode (the machine's
 * GuestPort). It keeps, per vCPU, the guest's resume token, the hypercall it is waiting on and
 * the compute time left when an interrupt cut it short. A token that comes back changed, or one
 * vCPU entered on two CPUs at once, crashes that guest: that is how corrupted hypervisor state
 * becomes a VM failure. So does a sched_op(block) that returns anything but 0, as every Linux PV
 * kernel blocks through xen_safe_halt, which BUG()s then: a block cut short by a recovery that
 * does not retry it returns the hypercall number left in the guest's return register.
 */
import { DOUBLE_FIELD } from '../machine/double-field.js';
import type { GuestPort } from '../machine/machine.js';
import { EXIT_HYPERCALL, EXIT_INTERRUPT, HYPERCALL_COUNT, Hypercall, SCHEDOP_BLOCK } from '../hypervisor/abi.js';
import type { GuestAction, GuestKernel } from './kernel.js';

/** A crashed guest does nothing useful: it blocks, again and again. */
const CRASHED_ACTION: GuestAction = { computeNs: 1_000_000, hypercall: Hypercall.SchedOp, args: [SCHEDOP_BLOCK, 0, 0] };
const NO_CPU = -1;
/** A rewound hypercall instruction executes again at once. */
const RESTART_COMPUTE_NS = 10;

interface VcpuState {
  token: number;
  started: boolean;
  awaitingReturn: boolean;
  crashed: boolean;
  action: GuestAction;
  computeEndNs: number;
  remainingNs: number;
  cpu: number;
  /** an entry during failover's epoch pause, put off: the events and restart flag it carried */
  deferred?: { events: number; restart: number };
}

/** One vCPU's guest-side context as a saved state holds it. */
export type SavedVcpu = Readonly<VcpuState>;

export interface GuestHostState {
  readonly vcpus: (VcpuState | null)[];
  readonly runningOn: number[];
  readonly hypercallCounts: number[];
  readonly kernels: unknown[];
}

export class GuestHost implements GuestPort {
  private readonly kernels: (GuestKernel | undefined)[] = [];
  private vcpus: (VcpuState | null)[] = [];
  private runningOn: number[];
  /** hypercalls issued, by number (index HYPERCALL_COUNT counts unknown numbers) */
  hypercallCounts: number[] = new Array<number>(HYPERCALL_COUNT + 1).fill(0);
  /**
   * Loads a guest into a vCPU entered for the first time without one: the toolstack puts the
   * new VM's kernel in place as part of creating it, before its vCPU can first run.
   */
  provisioner: ((vcpuId: number) => GuestKernel | undefined) | undefined;
  /** failover's epoch pause (measurement runs only): these vCPUs do no guest work until `untilNs` */
  private pause: { readonly vcpuIds: readonly number[]; readonly untilNs: number } | undefined;

  constructor(cpuCount: number) {
    this.runningOn = new Array<number>(cpuCount).fill(NO_CPU);
  }

  /** Run `kernel` whenever the hypervisor enters vCPU `vcpuId`. */
  attach(vcpuId: number, kernel: GuestKernel): void {
    this.kernels[vcpuId] = kernel;
    const vcpu: VcpuState = {
      token: 0, started: false, awaitingReturn: false, crashed: false,
      action: CRASHED_ACTION, computeEndNs: DOUBLE_FIELD, remainingNs: 0, cpu: NO_CPU,
    };
    vcpu.computeEndNs = 0;
    this.vcpus[vcpuId] = vcpu;
  }

  /**
   * Run `kernel` on vCPU `vcpuId` from a saved context (a VM restored from a checkpoint). A vCPU
   * that was running its guest when the state was saved was stopped by the pause there: it goes
   * on with the compute it had left at `savedAtNs`.
   */
  attachSaved(vcpuId: number, kernel: GuestKernel, saved: SavedVcpu, savedAtNs: number): void {
    this.kernels[vcpuId] = kernel;
    const vcpu: VcpuState = { ...saved };
    if (saved.cpu !== NO_CPU) vcpu.remainingNs = Math.max(1, saved.computeEndNs - savedAtNs);
    vcpu.cpu = NO_CPU;
    this.vcpus[vcpuId] = vcpu;
  }

  /** Where vCPU `vcpuId`'s guest stands in its stream: its resume token and whether it waits on a hypercall (undefined: no such vCPU). */
  vcpuPoint(vcpuId: number): { readonly token: number; readonly awaitingReturn: boolean } | undefined {
    const vcpu = this.vcpus[vcpuId];
    return vcpu === undefined || vcpu === null ? undefined : { token: vcpu.token, awaitingReturn: vcpu.awaitingReturn };
  }

  kernel(vcpuId: number): GuestKernel | undefined {
    return this.kernels[vcpuId];
  }

  attachedKernels(): GuestKernel[] {
    return this.kernels.filter((kernel): kernel is GuestKernel => kernel !== undefined);
  }

  /**
   * Failover's epoch pause from `nowNs` to `untilNs`: the vCPUs `vcpuIds` do no guest work in
   * it. A vCPU entered meanwhile spins until the end, then leaves as an interrupt would and does
   * its work at its next entry; one in its guest now finishes its compute that much later.
   * Returns the CPUs whose guest run the machine must stretch by the pause.
   */
  pauseVcpus(vcpuIds: readonly number[], nowNs: number, untilNs: number): number[] {
    this.pause = { vcpuIds, untilNs };
    const stretched: number[] = [];
    for (const id of vcpuIds) {
      const vcpu = this.vcpus[id];
      if (vcpu === undefined || vcpu === null || vcpu.cpu === NO_CPU || vcpu.deferred !== undefined) continue;
      vcpu.computeEndNs += untilNs - nowNs;
      stretched.push(vcpu.cpu);
    }
    return stretched;
  }

  enter(cpu: number, context: number, registers: Int32Array, nowNs: number): number | undefined {
    if (this.kernels[context] === undefined) this.provision(context);
    const vcpu = this.vcpus[context];
    const kernel = this.kernels[context];
    if (vcpu === undefined || vcpu === null || kernel === undefined) return undefined;
    if (this.pause !== undefined) {
      const paused = this.deferIfPaused(vcpu, cpu, context, registers, nowNs);
      if (paused !== undefined) return paused;
    }
    if (vcpu.cpu !== NO_CPU && vcpu.cpu !== cpu) this.crash(vcpu, kernel, `vCPU entered on cpu ${cpu} while running on cpu ${vcpu.cpu}`, nowNs);
    if (registers[5] !== vcpu.token) this.crash(vcpu, kernel, 'resume token corrupted', nowNs);
    vcpu.cpu = cpu;
    this.runningOn[cpu] = context;
    if (vcpu.crashed) return this.begin(vcpu, CRASHED_ACTION, nowNs);
    if (!vcpu.started) {
      vcpu.started = true;
      return this.begin(vcpu, kernel.boot(nowNs), nowNs);
    }
    if (vcpu.awaitingReturn && registers[3] === 1) return this.restart(vcpu, kernel, registers[2], nowNs);
    if (vcpu.awaitingReturn) {
      vcpu.awaitingReturn = false;
      const returned = registers[0];
      // Linux's xen_safe_halt: a sched_op(block) that returns anything but 0 is a BUG()
      if (isBlock(vcpu.action) && returned !== 0) {
        this.crash(vcpu, kernel, `BUG() in xen_safe_halt: sched_op(block) returned ${returned}`, nowNs);
        return this.begin(vcpu, CRASHED_ACTION, nowNs);
      }
      return this.begin(vcpu, kernel.resume(returned, registers[2], nowNs), nowNs);
    }
    return this.continueAfterInterrupt(vcpu, kernel, registers[2], nowNs);
  }

  exit(cpu: number, registers: Int32Array, nowNs: number, interrupted: boolean): void {
    const context = this.runningOn[cpu];
    this.runningOn[cpu] = NO_CPU;
    const vcpu = this.vcpus[context];
    if (vcpu === undefined || vcpu === null) return;
    vcpu.cpu = NO_CPU;
    if (vcpu.deferred !== undefined) {
      // the paused entry leaves as an interrupted guest does: nothing done, the token unchanged
      registers[0] = EXIT_INTERRUPT;
      registers[5] = vcpu.token;
      return;
    }
    if (interrupted) {
      vcpu.remainingNs = Math.max(1, vcpu.computeEndNs - nowNs);
      registers[0] = EXIT_INTERRUPT;
      registers[5] = vcpu.token;
      return;
    }
    const { hypercall, args } = vcpu.action;
    this.hypercallCounts[hypercall >= 0 && hypercall < HYPERCALL_COUNT ? hypercall : HYPERCALL_COUNT]++;
    vcpu.awaitingReturn = true;
    vcpu.token = nextToken(vcpu.token, context);
    registers[0] = EXIT_HYPERCALL;
    registers[1] = hypercall;
    registers[2] = args[0];
    registers[3] = args[1];
    registers[4] = args[2];
    registers[5] = vcpu.token;
  }

  /**
   * The hypervisor rewound the pending hypercall: the guest executes it again. Events delivered
   * with the entry still reach the guest; a rewound block with events pending returns at once.
   */
  private restart(vcpu: VcpuState, kernel: GuestKernel, events: number, nowNs: number): number {
    if (events !== 0 && isBlock(vcpu.action)) return this.begin(vcpu, kernel.resume(0, events, nowNs), nowNs);
    kernel.deliverEvents(events, nowNs);
    return this.begin(vcpu, vcpu.action, nowNs, RESTART_COMPUTE_NS);
  }

  /**
   * During the pause: put the entry off (its events and restart flag kept for the real one) and
   * spin to the pause's end; after it, give a put-off entry's events back. Undefined: enter now.
   */
  private deferIfPaused(vcpu: VcpuState, cpu: number, context: number, registers: Int32Array, nowNs: number): number | undefined {
    const pause = this.pause as NonNullable<typeof this.pause>;
    if (nowNs < pause.untilNs && pause.vcpuIds.includes(context) && !vcpu.crashed) {
      vcpu.deferred = { events: (vcpu.deferred?.events ?? 0) | registers[2], restart: vcpu.deferred?.restart === 1 || registers[3] === 1 ? 1 : 0 };
      vcpu.cpu = cpu;
      this.runningOn[cpu] = context;
      return pause.untilNs - nowNs;
    }
    if (vcpu.deferred !== undefined) {
      registers[2] |= vcpu.deferred.events;
      if (vcpu.deferred.restart === 1) registers[3] = 1;
      delete vcpu.deferred;
    }
    return undefined;
  }

  private provision(vcpuId: number): void {
    if (!Number.isInteger(vcpuId) || vcpuId < 0) return;
    const kernel = this.provisioner?.(vcpuId);
    if (kernel !== undefined) this.attach(vcpuId, kernel);
  }

  saveState(): GuestHostState {
    return {
      vcpus: this.vcpus.map((vcpu) => (vcpu ? { ...vcpu } : null)),
      runningOn: this.runningOn.slice(),
      hypercallCounts: this.hypercallCounts.slice(),
      kernels: this.kernels.map((kernel) => kernel?.saveState()),
    };
  }

  loadState(state: GuestHostState): void {
    this.vcpus = state.vcpus.map((vcpu) => (vcpu ? { ...vcpu } : null));
    this.runningOn = state.runningOn.slice();
    this.hypercallCounts = state.hypercallCounts.slice();
    state.kernels.forEach((saved, index) => this.kernels[index]?.loadState(saved));
  }

  /**
   * Back from an interrupt exit. Events it delivered are cleared in the hypervisor, so a guest
   * about to block would sleep through them: as Xen's block returns at once when events are
   * pending, the guest re-decides instead of blocking.
   */
  private continueAfterInterrupt(vcpu: VcpuState, kernel: GuestKernel, events: number, nowNs: number): number {
    if (events !== 0 && isBlock(vcpu.action)) return this.begin(vcpu, kernel.resume(0, events, nowNs), nowNs);
    kernel.deliverEvents(events, nowNs);
    vcpu.computeEndNs = nowNs + vcpu.remainingNs;
    return vcpu.remainingNs;
  }

  private begin(vcpu: VcpuState, action: GuestAction, nowNs: number, computeNs = action.computeNs): number {
    vcpu.action = action;
    vcpu.awaitingReturn = false;
    vcpu.remainingNs = Math.max(1, Math.round(computeNs));
    vcpu.computeEndNs = nowNs + vcpu.remainingNs;
    return vcpu.remainingNs;
  }

  private crash(vcpu: VcpuState, kernel: GuestKernel, reason: string, nowNs: number): void {
    if (vcpu.crashed) return;
    vcpu.crashed = true;
    kernel.crash(reason, nowNs);
  }
}

function isBlock(action: GuestAction): boolean {
  return action.hypercall === Hypercall.SchedOp && action.args[0] === SCHEDOP_BLOCK;
}

/** Tokens change on every hypercall, so a stale or corrupted saved context is noticed. */
function nextToken(token: number, vcpuId: number): number {
  return (Math.imul(token ^ 0x5bd1e995, 0x2c1b3c6d) + 0x297a2d39 + vcpuId) | 0;
}
