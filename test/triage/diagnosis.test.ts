/**
 * Diagnosis of one trial: delta debugging finds what a predicate needs; the counterfactual re-run
 * from the detection snapshot reproduces the trial; the footprint names state the AddressNamer
 * names and nothing where there is no difference; and a failed recovery with a step switched off
 * is diagnosed as leaving the state that step declares it repairs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ddmin } from '../../src/campaign/triage/ddmin.js';
import { diagnoseTrial } from '../../src/campaign/triage/diagnose.js';
import { stepRepairs } from '../../src/campaign/triage/cluster.js';
import { compareWithGolden, kindOfRegion, regionOfName } from '../../src/campaign/triage/footprint.js';
import { scheduleLockAddress, timerLockAddress } from '../../src/hypervisor/layout.js';
import { AddressNamer } from '../../src/hypervisor/symbols.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import { goldenRun } from '../../src/trial/golden-cache.js';
import { goldenSystemAt, recoverFromDetection, runToDetectionPoint } from '../../src/trial/counterfactual.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial } from '../../src/trial/trial.js';

describe('ddmin', () => {
  it('finds exactly the items a monotone predicate needs, within its bound', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 24 }), fc.nat(), (items, pick) => {
        const needed = items.filter((_, index) => (pick >> index) % 3 === 0).slice(0, 3);
        const result = ddmin(items, (subset) => needed.every((item) => subset.includes(item)), 500);
        expect(result.kind).toBe('found');
        if (needed.length > 0) expect([...result.items].sort()).toEqual([...needed].sort());
        else expect(result.items).toHaveLength(1);
      }),
    );
  });

  it('says when its bound ran out, with a set that still passes', () => {
    const items = Array.from({ length: 32 }, (_, index) => index);
    const passes = (subset: readonly number[]) => subset.includes(3) && subset.includes(29);
    const result = ddmin(items, passes, 3);
    expect(result.kind).toBe('exhausted');
    expect(result.tests).toBe(3);
    expect(passes(result.items)).toBe(true);
  });
});

/**
 * The first trial of a small scan whose recovery fails with `step` switched off and succeeds with
 * every step on (a fail-stop can defeat every repair: one in vcpu_wake loses the wake-up).
 */
function firstFailed(step: string): { spec: TrialSpec; record: ReturnType<typeof runTrial>['record'] } {
  for (let trialIndex = 0; trialIndex < 20; trialIndex++) {
    const spec: TrialSpec = { configuration: '1AppVM', seed: 1, trialIndex, faultType: 'failstop', mechanism: 'microreset', disabledSteps: [step] };
    const { record } = runTrial(spec);
    if (record.outcome !== 'detected' || record.recovery?.result !== 'recoveryFailed') continue;
    const repaired = runTrial({ ...spec, disabledSteps: [] }).record;
    if (repaired.outcome === 'detected' && repaired.recovery?.result === 'recovered') return { spec, record };
  }
  throw new Error(`no recovery that fails without ${step} alone in 20 trials`);
}

describe('counterfactual re-runs', () => {
  it('recovering again from the detection snapshot, unchanged, reproduces the trial byte for byte', () => {
    // the per-CPU locks are in the heap since issue 15; the static ones rarely stay held
    const { spec, record } = firstFailed('release-heap-locks');
    const point = runToDetectionPoint(spec);
    expect(point).toBeDefined();
    if (point === undefined || record.outcome !== 'detected') return;
    expect(point.detection).toEqual(record.detection);
    expect(JSON.stringify(recoverFromDetection(point).recovery)).toBe(JSON.stringify(record.recovery));
    const enabled = recoverFromDetection(point, { disabledSteps: [] }).recovery;
    expect(enabled?.result).toBe('recovered');
  });
});

describe('footprints', () => {
  it('are empty between a state and itself, and name a changed word as the hypervisor names it', () => {
    const golden = goldenRun({ configuration: '1AppVM', seed: 7 });
    const atTime = goldenSystemAt(golden, 120_000_000);
    const start = goldenSystemAt(golden, 100_000_000);
    expect(compareWithGolden(atTime, goldenSystemAt(golden, 120_000_000), start).differences).toEqual([]);
    const changed = goldenSystemAt(golden, 120_000_000);
    const namer = new AddressNamer(changed.hypervisor.program, changed.hypervisor.layout);
    const address = changed.hypervisor.layout.domains[1] + 2;
    changed.machine.memory.words[address] ^= 1 << 12;
    const differences = compareWithGolden(changed, atTime, start).differences;
    expect(differences.map((difference) => difference.region)).toEqual([regionOfName(namer.name(address))]);
    expect(differences[0].kind).toBe(kindOfRegion(differences[0].region));
  });
});

describe('names of heap state', () => {
  it('the per-CPU schedule and timer locks in the heap are named, not raw addresses, and release-heap-locks declares them', () => {
    const golden = goldenRun({ configuration: '3AppVM', seed: 7 });
    const system = goldenSystemAt(golden, 0);
    const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
    const cpus = system.machine.cpus.length;
    const names = Array.from({ length: cpus }, (_, cpu) => [namer.name(scheduleLockAddress(system.hypervisor.layout.cpuLocks, cpu)), namer.name(timerLockAddress(system.hypervisor.layout.cpuLocks, cpu))]);
    expect(names).toEqual(Array.from({ length: cpus }, (_, cpu) => [`cpu_locks[${cpu}].schedule`, `cpu_locks[${cpu}].timers`]));
    const step = recoverySteps.find((candidate) => candidate.name === 'release-heap-locks');
    if (step === undefined) throw new Error('no release-heap-locks step');
    for (const name of names.flat()) expect(stepRepairs(step, kindOfRegion(name)), name).toBe(true);
    const statics = recoverySteps.find((candidate) => candidate.name === 'release-static-locks');
    if (statics === undefined) throw new Error('no release-static-locks step');
    for (const name of names.flat()) expect(stepRepairs(statics, kindOfRegion(name)), name).toBe(false);
  });
});

describe('diagnosis of a failed recovery', () => {
  it('without clear-irq-count: the counts are left half-done, the audit says so, the step repairs it and the restoring set is its state', () => {
    const { spec, record } = firstFailed('clear-irq-count');
    if (record.outcome !== 'detected' || record.recovery === undefined) throw new Error('expected a detected trial');
    const diagnosis = diagnoseTrial({ id: 'example', spec, recovery: record.recovery, replay: record.replay });
    const step = recoverySteps.find((candidate) => candidate.name === 'clear-irq-count');
    if (step === undefined) throw new Error('no clear-irq-count step');
    const repairedKinds = (regions: readonly string[]) => regions.filter((region) => stepRepairs(step, kindOfRegion(region)));
    expect(repairedKinds(diagnosis.footprint.leftHalfDone).length).toBeGreaterThan(0);
    expect(repairedKinds(diagnosis.footprint.atDetection.map((difference) => difference.region))).toEqual([]);
    expect(diagnosis.auditAfterRecovery.some((finding) => finding.startsWith('irqCountNonZero'))).toBe(true);
    expect(diagnosis.repairedBy).toEqual(['clear-irq-count']);
    expect(diagnosis.restoring.kind).toBe('found');
    if (diagnosis.restoring.kind === 'none') return;
    expect(diagnosis.restoring.regions.length).toBeGreaterThan(0);
    expect(repairedKinds(diagnosis.restoring.regions)).toEqual(diagnosis.restoring.regions);
  });
});
