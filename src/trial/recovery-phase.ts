/**
 * After a detection, with a recovery mechanism: recover, run on (the liveness phase), create a
 * new VM where the configuration asks for it, and decide whether recovery succeeded as the real
 * experiments define it: at most one AppVM affected (none in 1AppVM) and the hypervisor still
 * working (3AppVM: a new VM is created and completes BlkBench).
 */
import { audit } from '../hypervisor/audit.js';
import { describeDetection } from '../hypervisor/detection.js';
import { PRIVILEGED_DOMAIN_ID } from '../hypervisor/abi.js';
import type { NominalHost } from '../recovery/cost-model.js';
import type { MechanismName } from '../recovery/mechanisms.js';
import { mechanismNamed } from '../recovery/mechanisms.js';
import { recover } from '../recovery/recover.js';
import type { Injection } from '../faults/fault.js';
import { settle } from './golden.js';
import type { FailedVm, RecoveryFailureCause, RecoveryRecord } from './record.js';
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

export function recoverAndRun(
  system: System,
  injection: Injection,
  request: RecoveryRequest,
  instructionBudget: number,
  observer: RecoveryObserver = {},
): RecoveryRecord {
  const hypervisor = system.hypervisor;
  const detection = hypervisor.detections[0];
  const beforeStep = observer.beforeStep === undefined ? undefined : (step: string) => observer.beforeStep?.(step, system);
  const run = recover(hypervisor, detection, { mechanism: mechanismNamed(request.mechanism), disabledSteps: request.disabledSteps, host: request.host, beforeStep });
  const steps = run.steps.map((report) => ({ step: report.step, work: report.work, ms: report.ms }));
  const timing = {
    recoveryLatencyMs: run.latencyMs,
    serviceInterruptionMs: (detection.timeNs - injection.timeNs) / 1_000_000 + run.latencyMs,
  };
  if (run.kind !== 'resumed') {
    const cause = run.kind === 'crashed' ? 'recoveryCrashed' : 'recoveryHung';
    return failedRecord(cause, `${run.step}: ${run.message}`, [], steps, timing);
  }
  observer.onRecovered?.(system);
  const paused = [{ startNs: injection.timeNs, endNs: run.resumeNs }];
  for (const kernel of system.kernels()) kernel.setServiceInterruptions(paused);
  if (system.configuration.createsVmAfterRecovery) system.requestNewVm();
  const ending = runLiveness(system, run.resumeNs, instructionBudget);
  const failedVms = failedAppVms(system);
  const cause = firstCause(system, ending, failedVms);
  if (cause !== undefined) return failedRecord(cause.cause, cause.detail, failedVms, steps, timing);
  return { result: 'recovered', noVmFailure: failedVms.length === 0, failedVms, cause: null, detail: null, steps, ...timing };
}

type LivenessEnding = 'ran' | 'secondFailure' | 'runaway';

function runLiveness(system: System, resumeNs: number, instructionBudget: number): LivenessEnding {
  const machine = system.machine;
  const detectionsBefore = system.hypervisor.detections.length;
  system.hypervisor.recoveryHook = (_detection, hypervisor) => hypervisor.machine.stop('second failure');
  machine.instructionStop = machine.hypervisorInstructions + instructionBudget;
  const outcome = machine.run(Math.max(system.runLengthNs, resumeNs + LIVENESS_NS));
  if (system.hypervisor.detections.length > detectionsBefore) return 'secondFailure';
  if (outcome.kind === 'instructionReached') return 'runaway';
  settle(system);
  return system.hypervisor.detections.length > detectionsBefore ? 'secondFailure' : 'ran';
}

function failedAppVms(system: System): FailedVm[] {
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
function firstCause(system: System, ending: LivenessEnding, failedVms: readonly FailedVm[]): { cause: RecoveryFailureCause; detail: string } | undefined {
  const nowNs = system.machine.nowNs;
  const detections = system.hypervisor.detections;
  if (ending === 'secondFailure') return { cause: 'secondFailure', detail: describeDetection(detections[detections.length - 1]) };
  if (ending === 'runaway') return { cause: 'hypervisorRunaway', detail: 'instruction budget exhausted after recovery' };
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
