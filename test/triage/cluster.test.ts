/**
 * Cluster signatures: the hypervisor routine the fault landed in is part of a cluster's
 * signature (the same failure from faults in two routines is two findings), while the code
 * labels within one routine are listed, not split.
 */
import { describe, expect, it } from 'vitest';
import { clusterDiagnoses } from '../../src/campaign/triage/cluster.js';
import { functionOfSymbol } from '../../src/machine/disassembler.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import type { TrialDiagnosis } from '../../src/results/triage.js';

function diagnosis(id: string, faultFunction: string): TrialDiagnosis {
  return {
    id,
    replay: `ninelives inject ${id}`,
    mechanism: 'microreset',
    cause: 'recoveryNeverRan: cpu N ran its panic path on stack pointer N, outside its stacks, as cpu N',
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
    expect(functionOfSymbol('raise_softirq.retry')).toBe('raise_softirq');
    expect(functionOfSymbol('schedule')).toBe('schedule');
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
    // the hang's cluster (2) is the largest, but the stray stack's finding (3, in three routines) ranks first
    expect(triage.clusters.map((cluster) => cluster.count)).toEqual([1, 1, 1, 2]);
    expect(triage.clusters.slice(0, 3).every((cluster) => cluster.cause === 'recoveryNeverRan: cpu N ran its panic path on stack pointer N, outside its stacks, as cpu N')).toBe(true);
  });

  it('read a restoring set of guest state as guest damage, before or after recovery, and a mixed one as both', () => {
    const guest = (id: string, point: 'detection' | 'afterRecovery', regions: string[], atDetection: string[]): TrialDiagnosis => ({
      ...diagnosis(id, 'do_sched_op'),
      cause: 'privVmFailed: crashed: resume token corrupted',
      footprint: { atDetection: atDetection.map((region) => ({ region, kind: region, words: 1, trialValue: 1, goldenValue: 0 })), touchedByFault: [], leftHalfDone: [], progressIgnored: 0 },
      restoring: { kind: 'found', regions, reruns: 9, point },
    });
    const before = clusterDiagnoses('test', [guest('a', 'afterRecovery', ['guest[unixbench].crashed'], ['guest[unixbench].crashed'])], recoverySteps, []).clusters[0];
    expect(before.reading).toBe('guest kernel state damaged before recovery (guest[unixbench].crashed): no hypervisor repair restores it');
    expect(before.restoring).toEqual(['guest[unixbench].crashed']);
    const after = clusterDiagnoses('test', [guest('b', 'afterRecovery', ['guest[netbench].ring.responseConsumer'], [])], recoverySteps, []).clusters[0];
    expect(after.reading).toMatch(/^guest kernel state damaged after recovery \(guest\[netbench\]\.ring\.responseConsumer\)/);
    const mixed = clusterDiagnoses('test', [guest('c', 'afterRecovery', ['vcpu[0].resumeToken', 'guest[privvm].crashed'], ['guest[privvm].crashed'])], recoverySteps, []).clusters[0];
    expect(mixed.reading).toMatch(/^vcpu\.resumeToken left wrong.*; and guest kernel state damaged before recovery \(guest\[privvm\]\.crashed\), which no hypervisor repair restores$/);
  });
});

