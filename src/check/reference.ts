/**
 * The golden run's results streams: a fault-free run of the same configuration, seed and run
 * length in which every guest with a results stream is watched, so that each step of its stream
 * (work done, checksum of the answers, and the domain's page table and frame use counts as the
 * hypervisor held them when the guest saw the answer) is logged. A trial's guest can then be
 * compared with the golden one after the same amount of work, however late a recovery made it.
 *
 * The run goes on past the run length as far as a comparison needs (a trial's liveness phase
 * runs past it too), up to a limit. References are cached, a few at a time.
 */
import type { GuestAction, GuestKernel, GuestVerdict } from '../guests/kernel.js';
import { settle } from '../trial/golden.js';
import { LIVENESS_NS } from '../trial/recover-and-run.js';
import { System, type SystemOptions } from '../trial/system.js';
import { domainPages, resultsOf, type DomainPages, type Results } from './observe.js';

export interface ResultsStep extends Results, DomainPages {}

/** How far past the run length the reference may run: the liveness phase plus a slow recovery. */
const EXTENSION_NS = LIVENESS_NS + 1_700_000_000;
const STEP_NS = 10_000_000;
const CACHE_LIMIT = 8;

/** Passes every call through to the guest, and reports each call that may have moved its stream. */
class WatchedKernel implements GuestKernel {
  constructor(
    private readonly inner: GuestKernel,
    private readonly onActivity: () => void,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get domainId(): number {
    return this.inner.domainId;
  }

  boot(nowNs: number): GuestAction {
    const action = this.inner.boot(nowNs);
    this.onActivity();
    return action;
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    const action = this.inner.resume(returnValue, events, nowNs);
    this.onActivity();
    return action;
  }

  deliverEvents(events: number, nowNs: number): void {
    this.inner.deliverEvents(events, nowNs);
  }

  crash(reason: string, nowNs: number): void {
    this.inner.crash(reason, nowNs);
  }

  setServiceInterruptions(intervals: readonly { readonly startNs: number; readonly endNs: number }[]): void {
    this.inner.setServiceInterruptions(intervals);
  }

  verdict(nowNs: number): GuestVerdict {
    return this.inner.verdict(nowNs);
  }

  summary(): Readonly<Record<string, number>> {
    return this.inner.summary();
  }

  saveState(): unknown {
    return this.inner.saveState();
  }

  loadState(state: unknown): void {
    this.inner.loadState(state);
  }
}

export class GoldenReference {
  private readonly system: System;
  private readonly limitNs: number;
  private readonly streams = new Map<number, ResultsStep[]>();

  constructor(readonly options: SystemOptions) {
    this.system = new System(options);
    this.limitNs = this.system.runLengthNs + EXTENSION_NS;
    for (const kernel of this.system.kernels()) {
      if (resultsOf(kernel) === undefined) continue;
      const stream: ResultsStep[] = [];
      this.streams.set(kernel.domainId, stream);
      // attach() before start: the vCPU has not run, so replacing its guest loses nothing
      this.system.host.attach(kernel.domainId, new WatchedKernel(kernel, () => this.log(kernel, stream)));
    }
    this.system.start();
  }

  /** Domains whose guest has a results stream. */
  domains(): number[] {
    return [...this.streams.keys()];
  }

  /**
   * The steps of domain `domainId`'s stream with `work` operations done (one, or two when a step
   * changes the checksum without completing an operation, as a BlkBench copy does); runs the
   * reference further as needed. Empty when the golden guest never gets there within the limit.
   */
  stepsAt(domainId: number, work: number): ResultsStep[] {
    const stream = this.streams.get(domainId);
    if (stream === undefined) throw new RangeError(`domain ${domainId} has no results stream in ${this.options.configuration}`);
    while (lastWork(stream) <= work && this.system.machine.nowNs < this.limitNs) this.advance();
    return stream.filter((step) => step.work === work);
  }

  private advance(): void {
    const machine = this.system.machine;
    const stop = this.system.hypervisor.run({ untilNs: Math.min(this.limitNs, machine.nowNs + STEP_NS) });
    if (stop.kind !== 'timeReached') {
      throw new Error(`the golden reference of ${this.options.configuration} seed ${this.options.seed} did not run clean: ${stop.kind}`);
    }
    if (machine.nowNs >= this.limitNs) settle(this.system);
  }

  private log(kernel: GuestKernel, stream: ResultsStep[]): void {
    const results = resultsOf(kernel);
    if (results === undefined) return;
    const last = stream[stream.length - 1];
    if (last !== undefined && last.work === results.work && last.checksum === results.checksum) return;
    stream.push({ ...results, ...domainPages(this.system, kernel.domainId) });
  }
}

function lastWork(stream: readonly ResultsStep[]): number {
  return stream.length === 0 ? -1 : stream[stream.length - 1].work;
}

const cache = new Map<string, GoldenReference>();

export function goldenReference(options: SystemOptions): GoldenReference {
  const key = JSON.stringify([options.configuration, options.seed, options.runLengthNs ?? null, options.strictNetBench ?? false, ...(options.protectionKeys === true ? ['pkeys'] : [])]);
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const reference = new GoldenReference(options);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, reference);
  return reference;
}
