/**
 * The golden run: a fault-free run of a configuration, with what a user needs to trust it —
 * counts of what happened, each guest's verdict, the audit, and a digest of the final state.
 */
import { hypercallNames } from '../hypervisor/abi.js';
import { audit, type AuditResult } from '../hypervisor/audit.js';
import { describeDetection } from '../hypervisor/detection.js';
import { PerCpu, perCpuAddress } from '../hypervisor/layout.js';
import type { GuestVerdict } from '../guests/kernel.js';
import { profileHypervisor, type HypervisorProfile } from './profile.js';
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

/** Run on in small steps until no hypervisor thread is in flight, so the audit sees a quiescent state. */
export function settle(system: System): void {
  const limitNs = system.machine.nowNs + SETTLE_LIMIT_NS;
  while (!system.isQuiescent() && system.machine.nowNs < limitNs) {
    const outcome = system.machine.run(system.machine.nowNs + SETTLE_STEP_NS);
    if (outcome.kind !== 'timeReached') return;
  }
}

export function runGolden(options: SystemOptions, { profile = false }: { readonly profile?: boolean } = {}): GoldenReport {
  const system = new System(options);
  system.start();
  const run = (): void => {
    system.machine.run(system.runLengthNs);
    settle(system);
  };
  if (!profile) {
    run();
    return reportOf(system);
  }
  const measured = profileHypervisor(system, run);
  return { ...reportOf(system), profile: measured };
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
