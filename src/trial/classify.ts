/**
 * Phase 5 of a trial: classify. The record says what the run showed: not injected, detected
 * (with its recovery), a silent data corruption, or non-manifested. It reads the system the
 * trial leaves; nothing here looks at the fault to decide.
 */
import type { FaultPlan, Injection } from '../faults/fault.js';
import { audit } from '../hypervisor/audit.js';
import { getConfiguration } from '../guests/configurations.js';
import { replayCommand, specFields, type RecoveryRecord, type TrialRecord, type TrialSpec } from './record.js';
import { finalSystem, type Ending } from './run-to-detection.js';
import type { System } from './system.js';

/** The fields every record of a spec has, whatever its outcome. */
export type Common = Omit<Extract<TrialRecord, { outcome: 'notInjected' }>, 'outcome'>;

export function commonFields(spec: TrialSpec, seedOfTrial: number, plan: FaultPlan): Common {
  return {
    ...specFields(spec),
    trialSeed: seedOfTrial,
    plan,
    replay: replayCommand(spec, getConfiguration(spec.configuration).runLengthNs),
  };
}

export function classify(system: System, ending: Ending, injection: Injection, common: Common, recovery: RecoveryRecord | undefined): TrialRecord {
  switch (ending.kind) {
    case 'detected': {
      const detection = ending.detection;
      const detected = { ...common, outcome: 'detected' as const, injection, detection, detectionLatencyNs: detection.timeNs - injection.timeNs };
      return recovery === undefined ? detected : { ...detected, recovery };
    }
    case 'runaway':
      return { ...common, outcome: 'sdc', injection, cause: `runaway: ${ending.cause}` };
    case 'matchedGolden':
      return { ...common, outcome: 'nonManifested', injection, matchedGoldenAtNs: ending.timeNs };
    case 'endOfRun': {
      const cause = firstSymptom(finalSystem(system, ending));
      if (cause === undefined) return { ...common, outcome: 'nonManifested', injection, matchedGoldenAtNs: null };
      return { ...common, outcome: 'sdc', injection, cause };
    }
  }
}

/** A guest's failure (the earliest), else a broken hypervisor; undefined when all is well. */
function firstSymptom(system: System): string | undefined {
  const nowNs = system.machine.nowNs;
  const failures = system
    .kernels()
    .map((kernel) => ({ kernel, verdict: kernel.verdict(nowNs) }))
    .flatMap(({ kernel, verdict }) => (verdict.kind === 'failed' ? [{ text: `${kernel.name} (domain ${kernel.domainId}) failed: ${verdict.reason}`, atNs: verdict.atNs }] : []))
    .sort((x, y) => x.atNs - y.atNs);
  if (failures.length > 0) return failures[0].text;
  if (!system.isQuiescent()) return 'hypervisor still busy at the end of the run';
  const result = audit(system.machine, system.hypervisor.layout);
  if (!result.clean) return `audit: ${result.findings[0].invariant}: ${result.findings[0].detail}`;
  return undefined;
}
