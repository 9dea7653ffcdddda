/**
 * A fake hypervisor for guest tests: a small discrete-event loop in simulated time that executes
 * GuestActions correctly (page tables and frame use counts, multicall buffers, timers, event
 * delivery, blocking, device interrupts), with hooks that make it give wrong answers on purpose.
 */
import {
  DOMCTL_CREATE,
  ERROR_INVALID,
  ERROR_NO_DOMAIN,
  ERROR_NO_SYSTEM_CALL,
  ERROR_PERMISSION,
  EVENT_PORT_COUNT,
  FRAMES_PER_DOMAIN,
  FRAME_COUNT,
  Hypercall,
  MULTICALL_ENTRY_WORDS,
  MULTICALL_MAX_ENTRIES,
  MulticallEntry,
  PAGE_TABLE_SLOTS,
  PORT_DISK,
  PORT_NIC,
  PORT_TIMER,
  SCHEDOP_BLOCK,
  SCHEDOP_YIELD,
  VECTOR_DISK,
  VECTOR_NIC,
  firstFrameOf,
  hypercallNames,
} from '../../src/hypervisor/abi.js';
import type { DevicePlatform } from '../../src/guests/devices.js';
import type { GuestAction, GuestKernel, SharedRegion } from '../../src/guests/kernel.js';

export class FakeRegion implements SharedRegion {
  readonly words: Int32Array;

  constructor(readonly sizeWords: number) {
    this.words = new Int32Array(sizeWords);
  }

  read(offset: number): number {
    this.check(offset);
    return this.words[offset];
  }

  write(offset: number, value: number): void {
    this.check(offset);
    this.words[offset] = value;
  }

  private check(offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.sizeWords) throw new Error(`region access at ${offset} outside ${this.sizeWords} words`);
  }
}

export interface CallInfo {
  readonly domainId: number;
  readonly hypercall: number;
  readonly args: readonly number[];
  readonly nowNs: number;
}

/** Ways to make the fake lie; each returns the (possibly altered) answer. */
export interface FakeTamper {
  returnValue?(call: CallInfo, value: number): number;
  multicallResult?(call: CallInfo & { readonly index: number }, value: number): number;
  /** true to lose this timer expiry */
  dropTimer?(domainId: number, nowNs: number): boolean;
}

export interface FakeOptions {
  readonly tamper?: FakeTamper;
  /** intervals during which nothing runs (a recovery's service interruption) */
  readonly pauses?: readonly { readonly startNs: number; readonly endNs: number }[];
  /** domctl(create) on `cpu`: returns the new domain id or a negative error */
  readonly createDomain?: (cpu: number, nowNs: number) => number;
  /**
   * Hand events to a computing guest at once through deliverEvents (an interrupt exit and
   * re-entry) instead of at its next hypercall return. 'exceptBeforeBlock' never does so while
   * the guest's next hypercall is sched_op(block): like Xen's safe_halt, events then stay pending
   * so that block returns at once. 'always' does, and risks a lost wake-up.
   */
  readonly deliverByInterrupt?: 'always' | 'exceptBeforeBlock';
}

interface FakeDomain {
  readonly domainId: number;
  readonly cpu: number;
  kernel: GuestKernel;
  readonly multicallRegion: SharedRegion;
  pendingEvents: number;
  blocked: boolean;
  /** the hypercall the guest will make when its computation ends */
  nextAction: GuestAction | null;
  timerGeneration: number;
  readonly pageTable: number[];
}

type FakeEvent = { readonly timeNs: number; readonly sequence: number } & (
  | { readonly kind: 'boot'; readonly domainId: number }
  | { readonly kind: 'hypercall'; readonly domainId: number; readonly action: GuestAction }
  | { readonly kind: 'timer'; readonly domainId: number; readonly generation: number }
  | { readonly kind: 'interrupt'; readonly cpu: number; readonly vector: number }
);

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Simulated cost of a hypercall round trip. */
const HYPERCALL_NS = 1_000;

export class FakeHypervisor {
  nowNs = 0;
  readonly trace: string[] = [];
  readonly platform: DevicePlatform = {
    raiseInterrupt: (timeNs, cpu, vector) => this.push({ kind: 'interrupt', timeNs, cpu, vector }),
  };
  private readonly domains = new Map<number, FakeDomain>();
  private readonly frameUseCounts = new Array<number>(FRAME_COUNT).fill(0);
  private events: FakeEvent[] = [];
  private nextSequence = 0;

  constructor(private readonly options: FakeOptions = {}) {}

  addDomain(domainId: number, cpu: number, kernel: GuestKernel, multicallRegion: SharedRegion, bootAtNs = this.nowNs): void {
    if (this.domains.has(domainId)) throw new Error(`domain ${domainId} exists`);
    this.domains.set(domainId, {
      domainId,
      cpu,
      kernel,
      multicallRegion,
      pendingEvents: 0,
      blocked: false,
      nextAction: null,
      timerGeneration: 0,
      pageTable: new Array<number>(PAGE_TABLE_SLOTS).fill(0),
    });
    this.push({ kind: 'boot', timeNs: bootAtNs, domainId });
  }

  kernel(domainId: number): GuestKernel {
    return this.domain(domainId).kernel;
  }

  replaceKernel(domainId: number, kernel: GuestKernel): void {
    this.domain(domainId).kernel = kernel;
  }

  domainIds(): number[] {
    return [...this.domains.keys()].sort((a, b) => a - b);
  }

  /** Runs every event up to `endNs` inclusive, then sets the clock to `endNs`. */
  run(endNs: number): void {
    while (this.events.length > 0 && this.events[0].timeNs <= endNs) {
      const event = this.events.shift()!;
      const pause = this.options.pauses?.find((interval) => event.timeNs >= interval.startNs && event.timeNs < interval.endNs);
      if (pause !== undefined) {
        this.push({ ...event, timeNs: pause.endNs });
        continue;
      }
      this.nowNs = Math.max(this.nowNs, event.timeNs);
      this.dispatch(event);
    }
    this.nowNs = Math.max(this.nowNs, endNs);
  }

  private push(event: DistributiveOmit<FakeEvent, 'sequence'>): void {
    const full = { ...event, sequence: this.nextSequence++ } as FakeEvent;
    let index = this.events.length;
    while (index > 0 && this.events[index - 1].timeNs > full.timeNs) index--;
    this.events.splice(index, 0, full);
  }

  private domain(domainId: number): FakeDomain {
    const domain = this.domains.get(domainId);
    if (domain === undefined) throw new Error(`no domain ${domainId}`);
    return domain;
  }

  private dispatch(event: FakeEvent): void {
    switch (event.kind) {
      case 'boot': {
        const domain = this.domain(event.domainId);
        return this.schedule(domain, domain.kernel.boot(this.nowNs), this.nowNs);
      }
      case 'hypercall':
        return this.execute(this.domain(event.domainId), event.action);
      case 'timer': {
        const domain = this.domain(event.domainId);
        if (event.generation !== domain.timerGeneration) return;
        if (this.options.tamper?.dropTimer?.(domain.domainId, this.nowNs)) return;
        return this.post(domain, PORT_TIMER);
      }
      case 'interrupt': {
        const domain = [...this.domains.values()].find((candidate) => candidate.cpu === event.cpu);
        if (domain === undefined) throw new Error(`interrupt on CPU ${event.cpu} with no domain`);
        if (event.vector === VECTOR_DISK) return this.post(domain, PORT_DISK);
        if (event.vector === VECTOR_NIC) return this.post(domain, PORT_NIC);
        throw new Error(`unexpected vector ${event.vector}`);
      }
    }
  }

  private schedule(domain: FakeDomain, action: GuestAction, atNs: number): void {
    if (!Number.isFinite(action.computeNs) || action.computeNs < 0) throw new Error(`bad computeNs ${action.computeNs}`);
    domain.nextAction = action;
    this.trace.push(`${atNs} d${domain.domainId} ${hypercallNames[action.hypercall] ?? action.hypercall}(${action.args.join(',')}) +${action.computeNs}`);
    this.push({ kind: 'hypercall', timeNs: atNs + action.computeNs, domainId: domain.domainId, action });
  }

  private resume(domain: FakeDomain, returnValue: number): void {
    const atNs = this.nowNs + HYPERCALL_NS;
    const events = domain.pendingEvents;
    domain.pendingEvents = 0;
    this.schedule(domain, domain.kernel.resume(returnValue, events, atNs), atNs);
  }

  /** Makes `port` pending and wakes the domain if it is blocked. */
  private post(domain: FakeDomain, port: number): void {
    domain.pendingEvents |= 1 << port;
    if (!domain.blocked) return this.maybeDeliverByInterrupt(domain);
    domain.blocked = false;
    this.resume(domain, 0);
  }

  private maybeDeliverByInterrupt(domain: FakeDomain): void {
    const action = domain.nextAction;
    if (!this.options.deliverByInterrupt || action === null) return;
    const blocking = action.hypercall === Hypercall.SchedOp && action.args[0] === SCHEDOP_BLOCK;
    if (blocking && this.options.deliverByInterrupt === 'exceptBeforeBlock') return;
    const events = domain.pendingEvents;
    domain.pendingEvents = 0;
    this.trace.push(`${this.nowNs} d${domain.domainId} interrupt delivers ${events}`);
    domain.kernel.deliverEvents(events, this.nowNs);
  }

  private execute(domain: FakeDomain, action: GuestAction): void {
    const call: CallInfo = { domainId: domain.domainId, hypercall: action.hypercall, args: action.args, nowNs: this.nowNs };
    const value = this.handle(domain, call);
    if (value === 'blocked') {
      domain.blocked = true;
      return;
    }
    const answer = this.options.tamper?.returnValue?.(call, value) ?? value;
    this.resume(domain, answer);
  }

  private handle(domain: FakeDomain, call: CallInfo): number | 'blocked' {
    const [argument0, argument1] = call.args;
    switch (call.hypercall) {
      case Hypercall.MmuUpdate:
        return this.mmuUpdate(domain, argument0, argument1);
      case Hypercall.Multicall:
        return this.multicall(domain, call, argument0);
      case Hypercall.SchedOp:
        if (argument0 === SCHEDOP_YIELD) return 0;
        if (argument0 === SCHEDOP_BLOCK) return domain.pendingEvents !== 0 ? 0 : 'blocked';
        return ERROR_INVALID;
      case Hypercall.SetTimerOp:
        domain.timerGeneration++;
        this.push({ kind: 'timer', timeNs: this.nowNs + argument0 * 1_000, domainId: domain.domainId, generation: domain.timerGeneration });
        return 0;
      case Hypercall.EventChannelOp:
        return this.notify(argument0, argument1);
      case Hypercall.PhysdevOp:
        // the fake delivers device interrupts as events and has no interrupt controller to end
        return 0;
      case Hypercall.Domctl:
        if (argument0 !== DOMCTL_CREATE || this.options.createDomain === undefined) return ERROR_INVALID;
        return this.options.createDomain(argument1, this.nowNs);
      default:
        return ERROR_NO_SYSTEM_CALL;
    }
  }

  private mmuUpdate(domain: FakeDomain, slot: number, frame: number): number {
    if (slot < 0 || slot >= PAGE_TABLE_SLOTS) return ERROR_INVALID;
    const first = firstFrameOf(domain.domainId);
    if (frame !== 0 && (frame < first || frame >= first + FRAMES_PER_DOMAIN)) return ERROR_PERMISSION;
    const old = domain.pageTable[slot];
    if (old !== 0) this.frameUseCounts[old]--;
    domain.pageTable[slot] = frame;
    if (frame === 0) return 0;
    return ++this.frameUseCounts[frame];
  }

  private multicall(domain: FakeDomain, call: CallInfo, count: number): number {
    if (count < 0 || count > MULTICALL_MAX_ENTRIES) return ERROR_INVALID;
    const region = domain.multicallRegion;
    for (let index = 0; index < count; index++) {
      const base = index * MULTICALL_ENTRY_WORDS;
      if (region.read(base + MulticallEntry.done) === 1) continue;
      const operation = region.read(base + MulticallEntry.operation);
      const result =
        operation === Hypercall.MmuUpdate
          ? this.mmuUpdate(domain, region.read(base + MulticallEntry.argument0), region.read(base + MulticallEntry.argument1))
          : ERROR_NO_SYSTEM_CALL;
      region.write(base + MulticallEntry.result, this.options.tamper?.multicallResult?.({ ...call, index }, result) ?? result);
      region.write(base + MulticallEntry.done, 1);
    }
    return count;
  }

  private notify(domainId: number, port: number): number {
    const target = this.domains.get(domainId);
    if (target === undefined) return ERROR_NO_DOMAIN;
    if (port < 0 || port >= EVENT_PORT_COUNT) return ERROR_INVALID;
    this.post(target, port);
    return 0;
  }
}
