/**
 * The golden run: a fault-free run of a configuration, with what a user needs to trust it —
 * counts of what happened, each guest's verdict, the audit, and a digest of the final state.
 */
import { hypercallNames } from '../hypervisor/abi.js';
import { audit, type AuditResult } from '../hypervisor/audit.js';
import { describeDetection, type Detection } from '../hypervisor/detection.js';
import { PerCpu, perCpuAddress } from '../hypervisor/layout.js';
import type { GuestVerdict } from '../guests/kernel.js';
import type { RunBounds, Tracer } from '../machine/machine.js';
import { hypervisorProfiler, type HypervisorProfile, type HypervisorProfiler } from './profile.js';
import { System, type SystemOptions } from './system.js';

export interface GuestReport {
  readonly domainId: number;
  readonly workload: string;
  readonly verdict: GuestVerdict;
  readonly summary: Readonly<Record<string, number>>;
}

export interface GoldenReport {
  readonly configuration: string;
  readonly seed: number;
  readonly simulatedNs: number;
  readonly hypervisorInstructions: number;
  readonly hypercalls: Readonly<Record<string, number>>;
  readonly interrupts: number;
  readonly contextSwitches: number;
  readonly detections: readonly string[];
  readonly guests: readonly GuestReport[];
  readonly audit: AuditResult;
  readonly digest: string;
  /** where the hypervisor spent its instructions, when asked for (it slows the run) */
  readonly profile?: HypervisorProfile;
}

/** Longest extra simulated time spent waiting for every CPU to leave the hypervisor. */
const SETTLE_LIMIT_NS = 1_000_000;
const SETTLE_STEP_NS = 1_000;

/**
 * Run on in small steps until no hypervisor thread is in flight, so the audit sees a quiescent
 * state, within the caller's instruction limit if it has one. Returns the detection that stopped
 * it, if one did.
 */
export function settle(system: System, limits: Omit<RunBounds, 'untilNs'> = {}): Detection | undefined {
  const limitNs = system.machine.nowNs + SETTLE_LIMIT_NS;
  while (!system.isQuiescent() && system.machine.nowNs < limitNs) {
    const stop = system.hypervisor.run({ untilNs: system.machine.nowNs + SETTLE_STEP_NS, ...limits });
    if (stop.kind === 'detected') return stop.detection;
    if (stop.kind !== 'timeReached') return undefined;
  }
  return undefined;
}

/** Golden runs step from checkpoint to checkpoint (golden-cache.ts keeps a snapshot at each). */
export const CHECKPOINT_INTERVAL_NS = 50_000_000;

export interface GoldenPlay {
  readonly system: System;
  /** false when the run stopped before its end (a detection) */
  readonly clean: boolean;
  readonly report: GoldenReport;
}

/** A golden run's report; with `profile`, where the hypervisor spent its instructions (slower: no translation). */
export function runGolden(options: SystemOptions, { profile = false }: { readonly profile?: boolean } = {}): GoldenReport {
  if (!profile) return playGolden(options).report;
  let profiler: HypervisorProfiler | undefined;
  const { report } = playGolden(options, undefined, (system) => (profiler = hypervisorProfiler(system)).tracer);
  return profiler === undefined ? report : { ...report, profile: profiler.profile() };
}

/**
 * The one way a golden run is run: from boot to the end of the run, a checkpoint interval at a
 * time, calling `atCheckpoint` at boot and after each interval; then settled and reported. The
 * tracer `tracerFor` gives sees every hypervisor instruction of the run (and of the settling).
 */
export function playGolden(
  options: SystemOptions,
  atCheckpoint: (system: System, timeNs: number) => void = () => undefined,
  tracerFor?: (system: System) => Tracer,
): GoldenPlay {
  const system = new System(options);
  system.machine.tracer = tracerFor?.(system);
  system.start();
  atCheckpoint(system, 0);
  let clean = true;
  for (let timeNs = CHECKPOINT_INTERVAL_NS; clean; timeNs = Math.min(timeNs + CHECKPOINT_INTERVAL_NS, system.runLengthNs)) {
    clean = system.hypervisor.run({ untilNs: timeNs }).kind === 'timeReached';
    if (clean) atCheckpoint(system, timeNs);
    if (timeNs >= system.runLengthNs) break;
  }
  settle(system);
  system.machine.tracer = undefined;
  return { system, clean, report: reportOf(system) };
}

export function reportOf(system: System): GoldenReport {
  const machine = system.machine;
  return {
    configuration: system.configuration.name,
    seed: system.seed,
    simulatedNs: machine.nowNs,
    hypervisorInstructions: machine.hypervisorInstructions,
    hypercalls: Object.fromEntries(hypercallNames.map((name, number) => [name, system.host.hypercallCounts[number]])),
    interrupts: machine.interruptsDelivered,
    contextSwitches: machine.cpus.reduce((sum, cpu) => sum + machine.memory.words[perCpuAddress(cpu.index) + PerCpu.offset.contextSwitches], 0),
    detections: system.hypervisor.detections.map(describeDetection),
    guests: system.kernels().map((kernel) => ({
      domainId: kernel.domainId,
      workload: kernel.name,
      verdict: kernel.verdict(machine.nowNs),
      summary: kernel.summary(),
    })),
    audit: audit(machine, system.hypervisor.layout),
    digest: system.digest(),
  };
}
