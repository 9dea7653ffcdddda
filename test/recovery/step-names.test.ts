/**
 * Step names have one source, the step definitions: StepName and stepNames are derived from them
 * and cover every mechanism's steps. A step switched off by a name the mechanism lacks (a
 * misspelling) is refused by recover() and runTrial() before any work, with a stable code,
 * instead of silently running every step.
 */
import { describe, expect, it } from 'vitest';
import type { Detection } from '../../src/hypervisor/detection.js';
import { NOMINAL_HOST } from '../../src/recovery/cost-model.js';
import { ablationStageNumber, ablationStages, mechanisms, UnknownStepError } from '../../src/recovery/mechanisms.js';
import { microreset } from '../../src/recovery/microreset.js';
import { recover } from '../../src/recovery/recover.js';
import { stepNames, type StepName } from '../../src/recovery/steps/index.js';
import { runTrial } from '../../src/trial/trial.js';
import { System } from '../../src/trial/system.js';

describe('ablation stage names', () => {
  it('read back to their position in the ladder, and no other stage name does', () => {
    for (const mechanism of mechanisms) {
      ablationStages(mechanism).forEach(({ stage }, position) => expect(ablationStageNumber(stage)).toBe(position));
    }
    for (const other of ['all', 'all+pkeys', '01 + leading-zero', '3 no repairs', '3 +', '', 'x 3 + y']) expect(ablationStageNumber(other)).toBeUndefined();
  });
});

describe('step names', () => {
  it('stepNames are exactly the names of the mechanisms\' steps, each once', () => {
    const used = new Set(mechanisms.flatMap((mechanism) => mechanism.steps.map(({ step }) => step.name)));
    expect(new Set(stepNames)).toEqual(used);
    expect(new Set(stepNames).size).toBe(stepNames.length);
    // a repair order names steps of its own mechanism
    for (const mechanism of mechanisms) for (const name of mechanism.repairOrder) expect(mechanism.steps.map(({ step }) => step.name)).toContain(name);
  });

  it('StepName is the union of the literal names', () => {
    const name: StepName = 'retry-hypercalls';
    // @ts-expect-error: a misspelt step name is not a StepName
    const misspelt: StepName = 'retry-hypercall';
    expect([name, misspelt]).toHaveLength(2);
  });
});

describe('an unknown step name is refused', () => {
  it('by runTrial, with code usage.invalidStep, for a mechanism and for none', () => {
    const spec = { configuration: '1AppVM', seed: 3, trialIndex: 0, faultType: 'failstop' as const, mechanism: 'microreset' as const, disabledSteps: ['retry-hypercall'] };
    expect(() => runTrial(spec)).toThrow(UnknownStepError);
    expect(() => runTrial(spec)).toThrow(/microreset has no step named "retry-hypercall"/);
    expect(() => runTrial({ ...spec, mechanism: 'none' })).toThrow(UnknownStepError);
    // a step of the other mechanism is unknown to this one
    expect(() => runTrial({ ...spec, disabledSteps: ['boot-new-instance'] })).toThrow(UnknownStepError);
    try {
      runTrial(spec);
    } catch (error) {
      expect((error as UnknownStepError).code).toBe('usage.invalidStep');
    }
  });

  it('by recover, before it touches the machine', () => {
    const system = new System({ configuration: '1AppVM', seed: 3 });
    system.start();
    system.machine.run(1_000_000);
    const before = system.snapshot();
    const detection: Detection = { detector: 'hang', cpu: 1, programCounter: 0, timeNs: system.machine.nowNs };
    const plan = { mechanism: microreset, disabledSteps: ['release-heap-lock'], host: NOMINAL_HOST };
    expect(() => recover(system.hypervisor, detection, plan)).toThrow(UnknownStepError);
    expect(system.snapshot()).toEqual(before);
  });
});
