/**
 * Clusters of failed recoveries: diagnoses grouped by signature (failure cause, detector, the
 * kinds of state in the restoring set, and the hypervisor routine the fault landed in), ranked
 * by the size of their finding (the signature without the routine), then by their own size,
 * each with the steps that repair most of its trials and a one-line reading built from the step
 * definitions' own descriptions.
 */
import { functionOfSymbol } from '../../machine/disassembler.js';
import { mechanismNamed } from '../../recovery/mechanisms.js';
import type { RecoveryStep } from '../../recovery/step.js';
import type { RestoringSet, TrialDiagnosis, Triage, TriageCluster } from '../../results/triage.js';
import { kindOfRegion } from './footprint.js';
import { isGuestRegion } from './guest-footprint.js';

/** The kinds (indices dropped) of a restoring set's regions, sorted; empty when none was found. */
export function restoringKinds(restoring: RestoringSet): string[] {
  if (restoring.kind === 'none') return [];
  return [...new Set(restoring.regions.map(kindOfRegion))].sort();
}

export function signatureOf(diagnosis: TrialDiagnosis): string {
  return `${findingOf(diagnosis)} | fault in ${functionOfSymbol(diagnosis.faultFunction)}`;
}

/** The signature without the fault's routine: one finding, which the routines split into clusters. */
function findingOf(diagnosis: TrialDiagnosis): string {
  const kinds = restoringKinds(diagnosis.restoring);
  return `${diagnosis.mechanism} | ${diagnosis.cause} | ${diagnosis.detector} | restoring: ${kinds.length === 0 ? 'none found' : kinds.join(', ')}`;
}

/** True when `step` declares it repairs state of `kind` (the kind itself, or a prefix of it). */
export function stepRepairs(step: RecoveryStep, kind: string): boolean {
  return (step.repairs ?? []).some((declared) => kind === declared || kind.startsWith(`${declared}.`));
}

export function clusterDiagnoses(campaign: string, diagnoses: readonly TrialDiagnosis[], steps: readonly RecoveryStep[], disabledSteps: readonly string[], withSilent = false): Triage {
  const groups = new Map<string, TrialDiagnosis[]>();
  for (const diagnosis of diagnoses) {
    const signature = signatureOf(diagnosis);
    const group = groups.get(signature);
    if (group === undefined) groups.set(signature, [diagnosis]);
    else group.push(diagnosis);
  }
  const clusters = [...groups.entries()].map(([signature, members]) => clusterOf(signature, members, steps, disabledSteps));
  // ranked by the size of their finding (the clusters of one finding, split by routine, stay
  // together: the findings list reads in order of how much each explains), then by their own
  const findingCount = new Map<string, number>();
  const findings = new Map(clusters.map((cluster) => [cluster, findingOf(groups.get(cluster.signature)?.[0] as TrialDiagnosis)]));
  for (const cluster of clusters) findingCount.set(findings.get(cluster) as string, (findingCount.get(findings.get(cluster) as string) ?? 0) + cluster.count);
  const order = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  clusters.sort((x, y) => {
    const [findingX, findingY] = [findings.get(x) as string, findings.get(y) as string];
    return (findingCount.get(findingY) as number) - (findingCount.get(findingX) as number) || order(findingX, findingY) || y.count - x.count || order(x.signature, y.signature);
  });
  const silent = diagnoses.filter(isSilent).length;
  return withSilent ? { campaign, failed: diagnoses.length - silent, silent, clusters } : { campaign, failed: diagnoses.length, clusters };
}

/** A diagnosis of a silent data corruption (no detector fired, no recovery ran). */
export function isSilent(diagnosis: TrialDiagnosis): boolean {
  return diagnosis.restoring.point === 'checkpoint';
}

function clusterOf(signature: string, members: readonly TrialDiagnosis[], steps: readonly RecoveryStep[], disabledSteps: readonly string[]): TriageCluster {
  // in the results' canonical order: the first is the cluster's example
  const sorted = members;
  const restoring = restoringKinds(sorted[0].restoring);
  const stepCounts = new Map<string, number>();
  for (const member of sorted) for (const step of member.repairedBy) stepCounts.set(step, (stepCounts.get(step) ?? 0) + 1);
  // a step repairs the cluster when it repairs most of its trials
  const repairedBy = [...stepCounts.entries()].filter(([, count]) => count * 2 > sorted.length).map(([step]) => step).sort();
  return {
    signature,
    count: sorted.length,
    trials: sorted.map((member) => member.id),
    restoring,
    repairedBy,
    cause: sorted[0].cause,
    detector: sorted[0].detector,
    faultRoutine: functionOfSymbol(sorted[0].faultFunction),
    faultFunctions: [...new Set(sorted.map((member) => member.faultFunction))].sort(),
    replay: sorted[0].replay,
    reading: readingOf(restoring, repairedBy, sorted, steps, disabledSteps),
    exhausted: sorted.filter((member) => member.restoring.kind === 'exhausted').length,
  };
}

/** One line: what is left wrong, and which step repairs it, or that none does. */
function readingOf(restoring: readonly string[], repairedBy: readonly string[], members: readonly TrialDiagnosis[], steps: readonly RecoveryStep[], disabledSteps: readonly string[]): string {
  if (isSilent(members[0])) {
    if (restoring.length === 0) return 'silent corruption: no restoring set within the footprint at the first checkpoint after the fault';
    return `silent corruption of ${restoring.join(', ')}: no detector fired, and setting it back at the first checkpoint after the fault makes the run correct`;
  }
  if (restoring.length === 0) return 'no restoring set within the footprint: the failure is not in named hypervisor or guest state that setting back repairs';
  const guests = restoring.filter(isGuestRegion);
  if (guests.length === restoring.length) return `${guestDamage(guests, members)}: no hypervisor repair restores it`;
  if (guests.length > 0) {
    const hypervisorReading = readingOf(restoring.filter((kind) => !isGuestRegion(kind)), repairedBy, members, steps, disabledSteps);
    return `${hypervisorReading}; and ${guestDamage(guests, members)}, which no hypervisor repair restores`;
  }
  if (restoring.every(isRegisterKind) && members.every((member) => member.restoring.point === 'detection')) {
    return `${restoring.join(', ')} wrong at the detection: set back (the detecting CPU's at its trap, before its exception is delivered), recovery runs and succeeds; no step repairs a register before recovery starts`;
  }
  const halfDone = members.every((member) => member.restoring.kind !== 'none' && member.restoring.regions.every((region) => member.footprint.leftHalfDone.includes(region)));
  const state = `${restoring.join(', ')} ${halfDone ? 'left half-done by abandoned work' : 'left wrong'}`;
  const repairing = steps.filter((step) => repairedBy.includes(step.name));
  if (repairing.length > 0) return `${state}: ${repairing.map((step) => `${step.name} (switched off) ${step.fixes}`).join('; ')}`;
  const declared = steps.filter((step) => restoring.some((kind) => stepRepairs(step, kind)));
  const ofMechanism = new Set(mechanismStepNames(members[0].mechanism));
  const enabled = declared.filter((step) => ofMechanism.has(step.name) && !disabledSteps.includes(step.name));
  if (enabled.length > 0) return `${state}, although ${enabled.map((step) => step.name).join(', ')} is on: it does not set this case right`;
  return `${state}: no step repairs it`;
}

/**
 * Guest state in a restoring set: damaged before recovery when every trial's guest regions
 * differed already at the detection (or were set back there), else damaged after it (in recovery,
 * or by the hypervisor it left).
 */
function guestDamage(kinds: readonly string[], members: readonly TrialDiagnosis[]): string {
  const before = members.every((member) => {
    if (member.restoring.kind === 'none') return false;
    if (member.restoring.point !== 'afterRecovery') return true;
    const atDetection = new Set(member.footprint.atDetection.map((difference) => difference.region));
    return member.restoring.regions.filter(isGuestRegion).every((region) => atDetection.has(region));
  });
  return `guest kernel state damaged ${before ? 'before' : 'after'} recovery (${kinds.join(', ')})`;
}

/** A kind that is a CPU register (`cpu.sp`, `cpu.r5`, `cpu.pc`, `cpu.flags`), not a CPU field such as its timer. */
function isRegisterKind(kind: string): boolean {
  return /^cpu\.(pc|sp|flags|r\d+)$/.test(kind);
}

function mechanismStepNames(mechanism: string): string[] {
  return mechanism === 'microreset' || mechanism === 'microreboot' ? mechanismNamed(mechanism).steps.map((entry) => entry.step.name) : [];
}
