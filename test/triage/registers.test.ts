/**
 * Registers in the footprint: a CPU's register file is compared with the fault-free run's only
 * where both CPUs stand at the same point of their instruction stream (otherwise the values
 * differ for reasons of timing and are counted as progress), and a panic path run on a stray
 * stack pointer (which took its CPU for another) is diagnosed by rewinding the detecting CPU to
 * its trap, setting its stack pointer back, and letting the machine deliver the exception again.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diagnoseTrial } from '../../src/campaign/triage/diagnose.js';
import { compareRegisters, registersOf, setRegister } from '../../src/campaign/triage/footprint.js';
import { CpuState } from '../../src/machine/cpu.js';
import { recoverFromDetection, redeliverFromTrap, runToDetectionPoint } from '../../src/trial/counterfactual.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial } from '../../src/trial/trial.js';

function cpuWith(index: number, instructionsRetired: number, values: readonly number[]): CpuState {
  const cpu = new CpuState(index);
  cpu.instructionsRetired = instructionsRetired;
  registersOf(cpu).forEach(([register], position) => setRegister(cpu, register, values[position] ?? 0));
  return cpu;
}

const registerCount = registersOf(new CpuState(0)).length;

describe('register comparison', () => {
  it('names every register that differs at the same point of the stream, and lists none of a CPU out of step', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: registerCount, maxLength: registerCount }),
        fc.uniqueArray(fc.nat({ max: registerCount - 1 }), { minLength: 1, maxLength: 4 }),
        fc.nat({ max: 1000 }),
        (values, changed, retired) => {
          const golden = cpuWith(1, retired, values);
          const trialValues = values.map((value, position) => (changed.includes(position) ? value + 1 : value));
          const names = registersOf(golden).map(([register]) => register);
          const inStep = compareRegisters([cpuWith(0, 5, []), cpuWith(1, retired, trialValues)], (index) => (index === 0 ? cpuWith(0, 5, []) : golden), 1);
          expect(inStep.differences.map((difference) => difference.region).sort()).toEqual(changed.map((position) => `cpu[1].${names[position]}`).sort());
          for (const difference of inStep.differences) expect(difference.kind).toBe(difference.region.replace('cpu[1]', 'cpu'));
          expect([...inStep.places.values()].every((place) => place.kind === 'register' && place.atTrap)).toBe(true);
          const outOfStep = compareRegisters([cpuWith(1, retired + 1, trialValues)], () => golden, undefined);
          expect(outOfStep.differences).toEqual([]);
          expect(outOfStep.progressIgnored).toBe(changed.length);
        },
      ),
    );
  });
});

/** The first register-fault trial of a small scan whose recovery never ran because its stack pointer left its stacks (on this model, trial 371). */
let found: { spec: TrialSpec; record: ReturnType<typeof runTrial>['record'] } | undefined;
function firstStrayStack(): { spec: TrialSpec; record: ReturnType<typeof runTrial>['record'] } {
  found ??= scanForStrayStack();
  return found;
}

function scanForStrayStack(): { spec: TrialSpec; record: ReturnType<typeof runTrial>['record'] } {
  for (let trialIndex = 300; trialIndex < 500; trialIndex++) {
    const spec: TrialSpec = { configuration: '3AppVM', seed: 2018, trialIndex, faultType: 'register', mechanism: 'microreset' };
    const { record } = runTrial(spec);
    if (record.outcome === 'detected' && record.recovery?.cause === 'recoveryNeverRan' && (record.recovery.detail ?? '').includes('outside its stacks')) return { spec, record };
  }
  throw new Error('no stray stack pointer in 200 register faults');
}

describe('a panic path run on a stack pointer gone astray', () => {
  it('rewinding to the trap and delivering the exception again, with nothing changed, reproduces the trial byte for byte', () => {
    const { spec, record } = firstStrayStack();
    const point = runToDetectionPoint(spec);
    if (point === undefined || record.outcome !== 'detected') throw new Error('the trial did not reach its detection again');
    expect(point.cpuAtTrap?.index).toBe(point.detection.cpu);
    const rerun = recoverFromDetection(point, { change: (system) => redeliverFromTrap(system, point, () => undefined) });
    expect(JSON.stringify(rerun.recovery)).toBe(JSON.stringify(record.recovery));
  });

  it("has a restoring set at the detection that holds the detecting CPU's stack pointer", () => {
    const { spec, record } = firstStrayStack();
    if (record.outcome !== 'detected' || record.recovery === undefined) throw new Error('expected a detected trial');
    const diagnosis = diagnoseTrial({ id: 'example', spec, recovery: record.recovery, replay: record.replay });
    const stackPointer = `cpu[${record.detection.cpu}].sp`;
    expect(diagnosis.footprint.atDetection.map((difference) => difference.region)).toContain(stackPointer);
    expect(diagnosis.restoring.kind).toBe('found');
    if (diagnosis.restoring.kind !== 'found') return;
    expect(diagnosis.restoring.point).toBe('detection');
    expect(diagnosis.restoring.regions).toContain(stackPointer);
  });
});
