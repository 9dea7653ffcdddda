/**
 * Phase 4 of a trial: recover and run on. After a detection, with a recovery mechanism: recover,
 * resume the hypervisor, run on (the liveness phase), create a new VM where the configuration
 * asks for it, and decide whether recovery succeeded as the real experiments define it: at most one AppVM affected (none in 1AppVM) and the hypervisor still
 * working (3AppVM: a new VM is created and completes BlkBench).
 */
import { audit } from '../hypervisor/audit.js';
import { describeDetection, type Detection } from '../hypervisor/detection.js';
import { PRIVILEGED_DOMAIN_ID } from '../hypervisor/abi.js';
import { NOMINAL_HOST, type NominalHost } from '../recovery/cost-model.js';
import type { MechanismName } from '../recovery/mechanisms.js';
import { mechanismNamed } from '../recovery/mechanisms.js';
import { recover } from '../recovery/recover.js';
import type { Injection } from '../faults/fault.js';
import { RunawayBudget } from './budget.js';
import { settle } from './golden.js';
import type { GoldenRun } from './golden-cache.js';
import type { FailedVm, RecoveryFailureCause, RecoveryRecord, TrialSpec } from './record.js';
import { instructionBudget } from './run-to-detection.js';
import type { System } from './system.js';

/** The liveness phase lasts at least this long after the CPUs are released. */
export const LIVENESS_NS = 300_000_000;

export interface RecoveryRequest {
  readonly mechanism: Exclude<MechanismName, 'none'>;
  readonly disabledSteps: readonly string[];
  readonly host: NominalHost;
}

/** Observation points of a recovery, for property checks; neither may change the system. */
export interface RecoveryObserver {
  /** before each enabled step of the mechanism runs */
  readonly beforeStep?: (step: string, system: System) => void;
  /** the mechanism reported success: every CPU released at its resume point, nothing run yet */
  readonly onRecovered?: (system: System) => void;
}

/** With a mechanism, recover from the detection and judge the recovery; without, nothing. */
export function recoveryOf(system: System, spec: TrialSpec, injection: Injection, detection: Detection, golden: GoldenRun, observer: RecoveryObserver): RecoveryRecord | undefined {
  const mechanism = spec.mechanism ?? 'none';
  if (mechanism === 'none') return undefined;
  const request = { mechanism, disabledSteps: spec.disabledSteps ?? [], host: spec.host ?? NOMINAL_HOST };
  return recoverAndRun(system, { injection, detection }, request, instructionBudget(golden), observer);
}

/**
 * Recover from `detection` (the hypervisor stopped there), resume the hypervisor and run on for
 * at least the liveness phase, within `budget` more hypervisor instructions.
 */
export function recoverAndRun(
  system: System,
  { injection, detection }: { readonly injection: Injection; readonly detection: Detection },
  request: RecoveryRequest,
  budget: number,
  observer: RecoveryObserver = {},
): RecoveryRecord {
  const hypervisor = system.hypervisor;
  const beforeStep = observer.beforeStep === undefined ? undefined : (step: string) => observer.beforeStep?.(step, system);
  const run = recover(hypervisor, detection, { mechanism: mechanismNamed(request.mechanism), disabledSteps: request.disabledSteps, host: request.host, beforeStep });
  const steps = run.steps.map((report) => ({ step: report.step, work: report.work, ms: report.ms }));
  const timing = {
    recoveryLatencyMs: run.latencyMs,
    serviceInterruptionMs: (detection.timeNs - injection.timeNs) / 1_000_000 + run.latencyMs,
  };
  if (run.kind !== 'resumed') {
    if (run.kind === 'neverRan') return failedRecord('recoveryNeverRan', run.message, [], steps, timing);
    const cause = run.kind === 'crashed' ? 'recoveryCrashed' : 'recoveryHung';
    return failedRecord(cause, `${run.step}: ${run.message}`, [], steps, timing);
  }
  observer.onRecovered?.(system);
  const paused = [{ startNs: injection.timeNs, endNs: run.resumeNs }];
  for (const kernel of system.kernels()) kernel.setServiceInterruptions(paused);
  if (system.configuration.createsVmAfterRecovery) system.requestNewVm();
  const ending = runLiveness(system, run.resumeNs, budget);
  const failedVms = failedAppVms(system);
  const cause = firstCause(system, ending, failedVms);
  if (cause !== undefined) return failedRecord(cause.cause, cause.detail, failedVms, steps, timing);
  return { result: 'recovered', noVmFailure: failedVms.length === 0, failedVms, cause: null, detail: null, steps, ...timing };
}

export type LivenessEnding =
  | { readonly kind: 'ran' }
  | { readonly kind: 'runaway'; readonly cause: string }
  | { readonly kind: 'secondFailure'; readonly detection: Detection };

export function runLiveness(system: System, resumeNs: number, instructions: number): LivenessEnding {
  system.hypervisor.resume();
  const budget = new RunawayBudget(system.hypervisor, system.machine.hypervisorInstructions + instructions);
  const stop = budget.run(Math.max(system.runLengthNs, resumeNs + LIVENESS_NS));
  if (stop === 'runaway') return { kind: 'runaway', cause: budget.runawayCause };
  if (stop.kind === 'detected') return { kind: 'secondFailure', detection: stop.detection };
  const detection = settle(system, budget.bounds());
  return detection === undefined ? { kind: 'ran' } : { kind: 'secondFailure', detection };
}

export function failedAppVms(system: System): FailedVm[] {
  const nowNs = system.machine.nowNs;
  const original = new Set(system.configuration.domains.map((domain) => domain.domainId));
  return system
    .kernels()
    .filter((kernel) => kernel.domainId !== PRIVILEGED_DOMAIN_ID && original.has(kernel.domainId))
    .flatMap((kernel) => {
      const verdict = kernel.verdict(nowNs);
      return verdict.kind === 'failed' ? [{ domainId: kernel.domainId, workload: kernel.name, reason: verdict.reason }] : [];
    });
}

/** The first reason recovery did not succeed, in order of precedence; undefined if it did. */
export function firstCause(system: System, ending: LivenessEnding, failedVms: readonly FailedVm[]): { cause: RecoveryFailureCause; detail: string } | undefined {
  const nowNs = system.machine.nowNs;
  if (ending.kind === 'secondFailure') return { cause: 'secondFailure', detail: describeDetection(ending.detection) };
  if (ending.kind === 'runaway') return { cause: 'hypervisorRunaway', detail: `${ending.cause}, after recovery` };
  const privVm = system.privVm().verdict(nowNs);
  if (privVm.kind === 'failed') return { cause: 'privVmFailed', detail: privVm.reason };
  const allowed = system.configuration.createsVmAfterRecovery ? 1 : 0;
  if (failedVms.length > allowed) {
    const cause = allowed === 0 ? 'appVmFailed' : 'multipleVmFailures';
    return { cause, detail: failedVms.map((vm) => `${vm.workload}: ${vm.reason}`).join('; ') };
  }
  if (system.configuration.createsVmAfterRecovery) {
    const newVm = newVmProblem(system);
    if (newVm !== undefined) return { cause: 'newVmFailed', detail: newVm };
  }
  const result = audit(system.machine, system.hypervisor.layout);
  if (!result.clean) return { cause: 'hypervisorInconsistent', detail: `${result.findings[0].invariant}: ${result.findings[0].detail}` };
  return undefined;
}

function newVmProblem(system: System): string | undefined {
  const created = system.createdDomainIds();
  if (created.length === 0) return 'the new VM was not created';
  const kernel = system.host.kernel(created[0]);
  const verdict = kernel?.verdict(system.machine.nowNs);
  if (verdict === undefined) return 'the new VM has no guest';
  return verdict.kind === 'failed' ? `${kernel?.name}: ${verdict.reason}` : undefined;
}

function failedRecord(
  cause: RecoveryFailureCause,
  detail: string,
  failedVms: readonly FailedVm[],
  steps: RecoveryRecord['steps'],
  timing: Pick<RecoveryRecord, 'recoveryLatencyMs' | 'serviceInterruptionMs'>,
): RecoveryRecord {
  return { result: 'recoveryFailed', noVmFailure: false, failedVms, cause, detail, steps, ...timing };
}
