/**
 * Properties of whole trials with recovery: after every recovery that reports success the
 * hypervisor's state passes the audit and every guest that did not fail has the results its
 * own checks (mirroring the golden run) expect; and a trial with recovery gives the same record,
 * byte for byte, every time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FaultType } from '../../src/faults/fault.js';
import type { TrialRecord, TrialSpec } from '../../src/trial/record.js';
import type { System } from '../../src/trial/system.js';
import { runTrial } from '../../src/trial/trial.js';
import { MS, auditInvariants, type MechanismChoice } from './scenario.js';

/** Fault types weighted towards those that are detected, so that recoveries are frequent. */
const faultTypes: fc.Arbitrary<FaultType> = fc.oneof(
  { arbitrary: fc.constant<FaultType>('failstop'), weight: 3 },
  { arbitrary: fc.constant<FaultType>('code'), weight: 2 },
  { arbitrary: fc.constant<FaultType>('register'), weight: 1 },
);
const mechanismsArbitrary = fc.constantFrom<MechanismChoice>('microreset', 'microreboot');
const trialIndexes = fc.integer({ min: 0, max: 99_999 });

interface Finished {
  readonly record: TrialRecord;
  readonly system: System;
}

function finishedTrial(spec: TrialSpec): Finished {
  let finished: System | undefined;
  const { record } = runTrial(spec, { onFinished: (system) => (finished = system) });
  if (finished === undefined) throw new Error('runTrial did not report its final system');
  return { record, system: finished };
}

/** Checks the property on one trial; returns whether it was a recovery that reported success. */
function checkRecovered({ record, system }: Finished): boolean {
  if (record.outcome !== 'detected' || record.recovery?.result !== 'recovered') return false;
  expect(auditInvariants(system)).toEqual([]);
  const failed = new Set(record.recovery.failedVms.map((vm) => vm.domainId));
  const survivors = system.kernels().filter((kernel) => !failed.has(kernel.domainId));
  expect(survivors.length).toBeGreaterThan(0);
  for (const kernel of survivors) {
    expect({ domainId: kernel.domainId, verdict: kernel.verdict(system.machine.nowNs) }).toEqual({ domainId: kernel.domainId, verdict: { kind: 'correct' } });
  }
  expect(record.recovery.noVmFailure).toBe(failed.size === 0);
  return true;
}

describe('after a recovery that reports success', () => {
  it('1AppVM: the audit is clean and every guest is correct, and the record is the same on a second run', () => {
    const recovered = { microreset: 0, microreboot: 0 };
    fc.assert(
      fc.property(trialIndexes, faultTypes, mechanismsArbitrary, (trialIndex, faultType, mechanism) => {
        const spec: TrialSpec = { configuration: '1AppVM', seed: 9, trialIndex, faultType, runLengthNs: 400 * MS, mechanism };
        const first = finishedTrial(spec);
        expect(JSON.stringify(runTrial(spec).record)).toBe(JSON.stringify(first.record));
        if (checkRecovered(first)) recovered[mechanism]++;
      }),
      { numRuns: 36 },
    );
    // not vacuous: each mechanism reported success several times (about a quarter of the runs each)
    expect(recovered.microreset).toBeGreaterThanOrEqual(2);
    expect(recovered.microreboot).toBeGreaterThanOrEqual(2);
  });

  it('3AppVM: the same, with at most one AppVM failed and the new VM created after recovery among the guests checked', () => {
    let recovered = 0;
    fc.assert(
      fc.property(trialIndexes, mechanismsArbitrary, (trialIndex, mechanism) => {
        const spec: TrialSpec = { configuration: '3AppVM', seed: 9, trialIndex, faultType: 'failstop', runLengthNs: 500 * MS, mechanism };
        const first = finishedTrial(spec);
        expect(JSON.stringify(runTrial(spec).record)).toBe(JSON.stringify(first.record));
        if (!checkRecovered(first)) return;
        recovered++;
        expect(first.system.createdDomainIds()).toHaveLength(1);
        expect(first.system.kernels().map((kernel) => kernel.domainId)).toContain(first.system.createdDomainIds()[0]);
      }),
      { numRuns: 6 },
    );
    expect(recovered).toBeGreaterThan(2);
  });
});
