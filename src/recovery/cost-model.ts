/**
 * Recovery latency is not simulated (no real hardware is timed here): each step reports the work
 * it does on the nominal host, and each unit of work has a calibrated cost. The costs are set so
 * that the nominal host of the real experiments (8 CPUs, 8 GiB) reproduces the published
 * per-step breakdowns: about 713 ms for ReHype's microreboot and about 22 ms for NiLiHype's
 * microreset, whose page-frame pass alone takes 21 ms.
 */

export interface NominalHost {
  readonly cpus: number;
  readonly memoryGiB: number;
}

export const NOMINAL_HOST: NominalHost = { cpus: 8, memoryGiB: 8 };

const FRAMES_PER_GIB = 262_144;

export type WorkUnit = 'fixed' | 'cpu' | 'otherCpu' | 'frame';

/** One line of a step's cost: what work, how much of it, what it costs. */
export interface CostItem {
  readonly label: string;
  readonly unit: WorkUnit;
  readonly units: number;
  readonly msPerUnit: number;
  readonly ms: number;
}

export function unitsOn(host: NominalHost, unit: WorkUnit): number {
  switch (unit) {
    case 'fixed':
      return 1;
    case 'cpu':
      return host.cpus;
    case 'otherCpu':
      return Math.max(0, host.cpus - 1);
    case 'frame':
      return Math.round(host.memoryGiB * FRAMES_PER_GIB);
  }
}

/** A cost line calibrated so that the nominal host pays `nominalMs` for it. */
export interface CalibratedCost {
  readonly label: string;
  readonly unit: WorkUnit;
  readonly nominalMs: number;
}

export function price(cost: CalibratedCost, host: NominalHost): CostItem {
  const msPerUnit = cost.nominalMs / unitsOn(NOMINAL_HOST, cost.unit);
  const units = unitsOn(host, cost.unit);
  return { label: cost.label, unit: cost.unit, units, msPerUnit, ms: units * msPerUnit };
}

export function totalMs(items: readonly CostItem[]): number {
  return items.reduce((sum, item) => sum + item.ms, 0);
}

/** ReHype's measured breakdown (reference, "Recovery latency, measured"). */
export const rebootCosts = {
  earlyInit: { label: 'early init of the boot CPU', unit: 'fixed', nominalMs: 12 },
  bringUpCpus: { label: 'bring up the other CPUs', unit: 'otherCpu', nominalMs: 150 },
  setUpApics: { label: 'set up local APICs and IO-APIC', unit: 'cpu', nominalMs: 200 },
  calibrateTimer: { label: 'calibrate the TSC timer', unit: 'fixed', nominalMs: 50 },
  recordHeapPages: { label: 'record allocated pages of the old heap', unit: 'frame', nominalMs: 21 },
  restoreFrames: { label: 'restore and check page-frame entries', unit: 'frame', nominalMs: 21 },
  reinitUnpreserved: { label: 're-initialise descriptors of unpreserved pages', unit: 'frame', nominalMs: 13 },
  recreateHeap: { label: 'recreate the heap', unit: 'frame', nominalMs: 211 },
  smpInit: { label: 'SMP init', unit: 'cpu', nominalMs: 20 },
  identifyFrames: { label: 'identify valid frames, relocate boot modules', unit: 'fixed', nominalMs: 2 },
  other: { label: 'other', unit: 'fixed', nominalMs: 13 },
} as const satisfies Record<string, CalibratedCost>;

/**
 * NiLiHype's: the page-frame pass is 21 ms of the 22; the other repairs share the last 1 ms,
 * split here in proportion to the work each does (per CPU, or once).
 */
export const resetCosts = {
  stopCpus: { label: 'stop the CPUs (IPI, NMI where masked)', unit: 'cpu', nominalMs: 0.24 },
  discardThreads: { label: 'discard hypervisor threads', unit: 'cpu', nominalMs: 0.08 },
  clearIrqCount: { label: 'clear IRQ counts', unit: 'cpu', nominalMs: 0.02 },
  releaseHeapLocks: { label: 'release heap locks', unit: 'fixed', nominalMs: 0.1 },
  retryHypercalls: { label: 'set up hypercall retries', unit: 'cpu', nominalMs: 0.04 },
  undoPartialUpdates: { label: 'undo logged partial updates', unit: 'cpu', nominalMs: 0.04 },
  acknowledgeInterrupts: { label: 'acknowledge interrupts, unblock NMIs', unit: 'cpu', nominalMs: 0.08 },
  frameTablePass: { label: 'restore and check page-frame entries', unit: 'frame', nominalMs: 21 },
  schedulerConsistency: { label: 'make scheduler metadata consistent', unit: 'cpu', nominalMs: 0.16 },
  reprogramTimers: { label: 'reprogram local timers', unit: 'cpu', nominalMs: 0.08 },
  releaseStaticLocks: { label: 'release static locks', unit: 'fixed', nominalMs: 0.04 },
  reactivateTimers: { label: 'reactivate recurring timers', unit: 'cpu', nominalMs: 0.04 },
  resumeCpus: { label: 'release the CPUs', unit: 'cpu', nominalMs: 0.08 },
} as const satisfies Record<string, CalibratedCost>;
