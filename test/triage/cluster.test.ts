/**
 * Cluster signatures: the hypervisor routine the fault landed in is part of a cluster's
 * signature (the same failure from faults in two routines is two findings), while the code
 * labels within one routine are listed, not split.
 */
import { describe, expect, it } from 'vitest';
import { clusterDiagnoses, routineOf } from '../../src/campaign/triage/cluster.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import type { TrialDiagnosis } from '../../src/results/triage.js';

function diagnosis(id: string, faultFunction: string): TrialDiagnosis {
  return {
    id,
    replay: `ninelives inject ${id}`,
    mechanism: 'microreset',
    cause: 'recoveryNeverRan: double fault',
    detector: 'exception pageFault',
    faultFunction,
    footprint: { atDetection: [], touchedByFault: [], leftHalfDone: [], progressIgnored: 0 },
    auditAfterRecovery: [],
    restoring: { kind: 'found', regions: ['cpu[0].sp'], reruns: 3, point: 'detection' },
    repairedBy: [],
    reruns: 3,
  };
}

describe('cluster signatures', () => {
  it('split by the routine the fault landed in, and list the labels within one routine', () => {
    expect(routineOf('raise_softirq.retry')).toBe('raise_softirq');
    expect(routineOf('schedule')).toBe('schedule');
    const triage = clusterDiagnoses('test', [diagnosis('a', 'raise_softirq'), diagnosis('b', 'schedule.pick'), diagnosis('c', 'raise_softirq.retry')], recoverySteps, []);
    expect(triage.clusters.map((cluster) => [cluster.faultRoutine, cluster.count, cluster.trials])).toEqual([
      ['raise_softirq', 2, ['a', 'c']],
      ['schedule', 1, ['b']],
    ]);
    expect(triage.clusters[0].faultFunctions).toEqual(['raise_softirq', 'raise_softirq.retry']);
    expect(triage.clusters[0].signature).toContain('fault in raise_softirq');
    expect(triage.clusters[0].restoring).toEqual(['cpu.sp']);
    expect(triage.clusters[0].reading).toMatch(/^cpu\.sp wrong at the detection/);
  });

  it('rank by the size of their finding first: the routines of one finding stay together', () => {
    const other = (id: string): TrialDiagnosis => ({ ...diagnosis(id, 'evtchn_send'), cause: 'secondFailure: watchdog hang' });
    const triage = clusterDiagnoses('test', [diagnosis('a', 'raise_softirq'), diagnosis('b', 'schedule'), diagnosis('c', 'do_mmu_update'), other('d'), other('e')], recoverySteps, []);
    // the hang's cluster (2) is the largest, but the double fault's finding (3, in three routines) ranks first
    expect(triage.clusters.map((cluster) => cluster.count)).toEqual([1, 1, 1, 2]);
    expect(triage.clusters.slice(0, 3).every((cluster) => cluster.cause === 'recoveryNeverRan: double fault')).toBe(true);
  });
});
