/**
 * Triage of silent data corruptions (`triage --sdc`): the SDC is stopped at the first checkpoint
 * after its fault, where re-running on unchanged reproduces it; its footprint there holds the
 * fault's own code word (an undetected code fault stays in place); and its diagnosis reads as
 * silent, with a restoring search bounded by the same re-runs.
 */
import { describe, expect, it } from 'vitest';
import { diagnoseSdc, SILENT, type SilentTrial } from '../../src/campaign/triage/diagnose.js';
import { clusterDiagnoses, isSilent } from '../../src/campaign/triage/cluster.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import { runOnFromSdcPoint, runToSdcPoint } from '../../src/trial/counterfactual.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial } from '../../src/trial/trial.js';

/** The first code fault of a small scan that ends as an SDC with a guest-visible symptom (not a runaway). */
function firstSdc(): SilentTrial {
  for (let trialIndex = 0; trialIndex < 100; trialIndex++) {
    const spec: TrialSpec = { configuration: '3AppVM', seed: 2018, trialIndex, faultType: 'code', mechanism: 'microreset' };
    const { record } = runTrial(spec);
    if (record.outcome === 'sdc' && !record.cause.startsWith('runaway') && runToSdcPoint(spec) !== undefined) {
      return { kind: 'sdc', id: `sdc-${trialIndex}`, spec, cause: record.cause, replay: record.replay, injection: record.injection };
    }
  }
  throw new Error('no SDC in 100 code faults');
}

let found: SilentTrial | undefined;

describe('SDC triage', () => {

  it('re-running on from the SDC point unchanged reproduces the SDC', () => {
    const trial = (found ??= firstSdc());
    const point = runToSdcPoint(trial.spec);
    if (point === undefined) throw new Error('no SDC point');
    expect(point.atNs).toBeGreaterThan(point.injection.timeNs);
    const record = runOnFromSdcPoint(point, () => undefined);
    expect(record.outcome).toBe('sdc');
    if (record.outcome === 'sdc') expect(record.cause).toBe(trial.cause);
  });

  it("has the fault's own code word in its footprint, reads as silent and clusters apart", () => {
    const diagnosis = diagnoseSdc((found ??= firstSdc()), { maxReruns: 6 });
    expect(diagnosis.detector).toBe(SILENT);
    expect(diagnosis.cause.startsWith('sdc: ')).toBe(true);
    expect(diagnosis.footprint.atDetection.map((difference) => difference.region)).toContain(`code:${diagnosis.faultFunction}`);
    expect(diagnosis.restoring.point).toBe('checkpoint');
    expect(diagnosis.reruns).toBeGreaterThan(0);
    expect(diagnosis.reruns).toBeLessThanOrEqual(6);
    expect(isSilent(diagnosis)).toBe(true);
    const triage = clusterDiagnoses('test', [diagnosis], recoverySteps, [], true);
    expect([triage.failed, triage.silent]).toEqual([0, 1]);
    expect(triage.clusters[0].reading).toMatch(/^silent corruption/);
  });
});
