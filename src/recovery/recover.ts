/**
 * Runs the recovery routine's entry in the machine (it must get going: see entry.ts), then the
 * mechanism's enabled steps over the stopped machine. The repairs are instantaneous in simulated
 * time; then the clock advances by the recovery latency of the cost model, with every CPU held,
 * before the CPUs are released. A step that faults or loops is the recovery crashing or hanging.
 */
import type { Detection } from '../hypervisor/detection.js';
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import { RecoveryContext, RecoveryCrash, RecoveryHang } from './context.js';
import { runRecoveryEntry } from './entry.js';
import { price, totalMs, type CostItem, type NominalHost } from './cost-model.js';
import { rejectUnknownSteps } from './mechanisms.js';
import type { Mechanism, StepWork } from './step.js';
import { resumeCpus } from './steps/resume-cpus.js';
import { nmiIpi } from './steps/stop-cpus.js';

export interface RecoveryPlan {
  readonly mechanism: Mechanism;
  readonly disabledSteps: readonly string[];
  readonly host: NominalHost;
  /** called before each enabled step runs, with its name (observation only: property checks) */
  readonly beforeStep?: (step: string) => void;
}

export interface StepReport {
  readonly step: string;
  readonly work: StepWork;
  readonly costs: readonly CostItem[];
  readonly ms: number;
}

export type RecoveryRun =
  | { readonly kind: 'resumed'; readonly steps: readonly StepReport[]; readonly latencyMs: number; readonly resumeNs: number }
  | {
      readonly kind: 'crashed' | 'hung';
      readonly step: string;
      readonly message: string;
      readonly steps: readonly StepReport[];
      readonly latencyMs: number;
    }
  /** the recovery routine never got going; `message` says what stopped it */
  | { readonly kind: 'neverRan'; readonly message: string; readonly steps: readonly StepReport[]; readonly latencyMs: number };

/** Recover per `plan`; a switched-off step the mechanism does not have is an UnknownStepError. */
export function recover(hypervisor: Hypervisor, detection: Detection, plan: RecoveryPlan): RecoveryRun {
  rejectUnknownSteps(plan.mechanism.name, plan.disabledSteps);
  const startNs = hypervisor.machine.nowNs;
  const sendsNmi = plan.mechanism.steps.some(({ step }) => step === nmiIpi) && !plan.disabledSteps.includes(nmiIpi.name);
  const entry = runRecoveryEntry(hypervisor, detection, { sendsNmi });
  if (entry.kind === 'neverRan') return { kind: 'neverRan', message: entry.detail, steps: [], latencyMs: elapsedMs(hypervisor, startNs) };
  const context = new RecoveryContext(hypervisor, detection);
  const reports: StepReport[] = [];
  for (const { step, costs } of plan.mechanism.steps) {
    if (plan.disabledSteps.includes(step.name) || step.appliesTo?.(context) === false) continue;
    const priced = costs.map((cost) => price(cost, plan.host));
    if (step === resumeCpus) holdCpusFor(hypervisor, startNs, totalMs([...reports.flatMap((report) => report.costs), ...priced]));
    plan.beforeStep?.(step.name);
    try {
      reports.push({ step: step.name, work: step.run(context), costs: priced, ms: totalMs(priced) });
    } catch (error) {
      if (!(error instanceof RecoveryCrash || error instanceof RecoveryHang)) throw error;
      const kind = error instanceof RecoveryCrash ? 'crashed' : 'hung';
      return { kind, step: step.name, message: error.message, steps: reports, latencyMs: elapsedMs(hypervisor, startNs) };
    }
  }
  return { kind: 'resumed', steps: reports, latencyMs: elapsedMs(hypervisor, startNs), resumeNs: hypervisor.machine.nowNs };
}

/** Advance simulated time to the end of the modelled recovery; held CPUs do not run. */
function holdCpusFor(hypervisor: Hypervisor, startNs: number, modelledMs: number): void {
  const machine = hypervisor.machine;
  const untilNs = Math.max(machine.nowNs, startNs + Math.round(modelledMs * 1_000_000));
  machine.run(untilNs);
}

function elapsedMs(hypervisor: Hypervisor, startNs: number): number {
  return (hypervisor.machine.nowNs - startNs) / 1_000_000;
}
