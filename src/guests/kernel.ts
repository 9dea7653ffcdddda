/**
 * The contract between a guest kernel (a deterministic state machine) and the guest host that
 * runs it on the simulated machine. Guests know the hypervisor only through hypervisor/abi.ts.
 */

/** A shared page a guest can read and write (its multicall buffer, an I/O ring). */
export interface SharedRegion {
  readonly sizeWords: number;
  read(offset: number): number;
  write(offset: number, value: number): void;
}

/** What the guest does next: compute for a while, then make one hypercall. */
export interface GuestAction {
  readonly computeNs: number;
  readonly hypercall: number;
  readonly args: readonly [number, number, number];
}

export type GuestVerdict =
  | { readonly kind: 'correct' }
  | { readonly kind: 'failed'; readonly reason: string; readonly atNs: number };

export interface GuestKernel {
  readonly name: string;
  readonly domainId: number;
  /** First entry into the guest. */
  boot(nowNs: number): GuestAction;
  /** The pending hypercall returned `returnValue`; `events` are ports that became pending. */
  resume(returnValue: number, events: number, nowNs: number): GuestAction;
  /** Re-entered after an interrupt exit: no hypercall returned, but events may have arrived. */
  deliverEvents(events: number, nowNs: number): void;
  /** The guest crashed (its context was corrupted, say); it stops doing useful work. */
  crash(reason: string, nowNs: number): void;
  /**
   * Recovery paused every VM for these intervals (from the fault to the release of the CPUs): a
   * benchmark owes no progress inside them.
   */
  setServiceInterruptions(intervals: readonly { readonly startNs: number; readonly endNs: number }[]): void;
  /** Final verdict at `nowNs` (end of run): correct, or failed with the first cause. */
  verdict(nowNs: number): GuestVerdict;
  /** Counters for reports (operations done, bytes verified, ...). */
  summary(): Readonly<Record<string, number>>;
  /** Plain-data state for snapshots; loadState(saveState()) must restore the kernel exactly. */
  saveState(): unknown;
  loadState(state: unknown): void;
}
