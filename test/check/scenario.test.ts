/**
 * Scenarios: trials with explicit faults. An explicit plan runs exactly as the drawn one does;
 * several faults land in turn until a detection; the record names the command that replays the
 * scenario; the arbitraries draw valid scenarios; a scenario reads back from its JSON.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultScenarioSpace, scenarioArbitrary, scenarioSpace, ScenarioSpaceError } from '../../src/check/arbitraries.js';
import { parseScenario, replayArguments, ScenarioFormatError } from '../../src/check/replay.js';
import { runScenario, trialSpecOf, type Scenario } from '../../src/check/scenario.js';
import { planFault } from '../../src/faults/plan.js';
import { trialSeed } from '../../src/faults/random.js';
import { runTrial } from '../../src/trial/trial.js';

const MS = 1_000_000;
const base = { configuration: '1AppVM', seed: 2, runLengthNs: 300 * MS, mechanism: 'microreset', disabledSteps: [] } as const;

describe('a trial with explicit faults', () => {
  it('runs an explicit plan exactly as the plan drawn from the trial seed (only the replay command differs)', () => {
    for (const [trialIndex, faultType] of [[3, 'failstop'], [8, 'register'], [5, 'code'], [6, 'memory']] as const) {
      const spec = { ...base, trialIndex, faultType };
      const drawn = runTrial(spec).record;
      const explicit = runTrial({ ...spec, faults: [planFault(trialSeed(spec.seed, trialIndex), faultType, spec.runLengthNs)] }).record;
      expect({ ...explicit, replay: drawn.replay }).toEqual(drawn);
      expect(explicit.replay).toMatch(/^ninelives check --scenario '\{.*\}'$/);
      expect(explicit).not.toHaveProperty('laterFaults');
    }
  });

  it('lands a second fault after the first when nothing was detected in between', () => {
    const scenario: Scenario = {
      ...base,
      faults: [
        { trigger: { timeNs: 20 * MS, instructionsAfter: 0 }, target: { type: 'register', register: 'r15', bit: 31 } },
        { trigger: { timeNs: 100 * MS, instructionsAfter: 500 }, target: { type: 'failstop' } },
      ],
    };
    const { record } = runScenario(scenario);
    expect(record.outcome).toBe('detected');
    if (record.outcome !== 'detected') return;
    expect(record.injection.location.type).toBe('register');
    expect(record.laterFaults).toHaveLength(1);
    const later = record.laterFaults?.[0].injection;
    expect(later?.location.type).toBe('failstop');
    expect(later?.timeNs).toBeGreaterThanOrEqual(100 * MS);
    expect(record.detection.timeNs).toBeGreaterThanOrEqual(later?.timeNs ?? Infinity);
  });

  it('does not inject a fault whose turn comes after a detection', () => {
    const scenario: Scenario = {
      ...base,
      faults: [
        { trigger: { timeNs: 20 * MS, instructionsAfter: 0 }, target: { type: 'failstop' } },
        { trigger: { timeNs: 250 * MS, instructionsAfter: 0 }, target: { type: 'failstop' } },
      ],
    };
    const { record } = runScenario(scenario);
    expect(record.outcome).toBe('detected');
    expect(record.laterFaults).toEqual([{ plan: scenario.faults[1], injection: null }]);
  });

  it('refuses faults out of trigger-time order, or a first fault of another type than the spec says', () => {
    const failstop = { trigger: { timeNs: 20 * MS, instructionsAfter: 0 }, target: { type: 'failstop' as const } };
    const earlier = { ...failstop, trigger: { timeNs: 10 * MS, instructionsAfter: 0 } };
    expect(() => runTrial({ ...base, trialIndex: 0, faultType: 'failstop', faults: [failstop, earlier] })).toThrow(/trigger-time order/);
    expect(() => runTrial({ ...base, trialIndex: 0, faultType: 'register', faults: [failstop] })).toThrow(/failstop fault/);
  });

  it('observes the run at detection, once the CPUs are stopped, and when they are released', () => {
    const run = runScenario({ ...base, faults: [{ trigger: { timeNs: 50 * MS, instructionsAfter: 100 }, target: { type: 'failstop' } }] });
    expect(run.record.outcome).toBe('detected');
    expect(run.atDetection?.timeNs).toBeLessThanOrEqual(run.atStop?.timeNs ?? 0);
    expect(run.atStop?.timeNs).toBeLessThan(run.atRecovery?.timeNs ?? 0);
    expect(run.atRecovery?.audit).toEqual({ clean: true });
    expect(run.atRecovery?.vms.map((vm) => vm.workload)).toEqual(['privvm', 'unixbench']);
    expect(run.system.machine.nowNs).toBeGreaterThan(run.atRecovery?.timeNs ?? Infinity);
  });
});

describe('scenario arbitraries', () => {
  it('draw scenarios of the space: faults in trigger order within the run, steps of the mechanism', () => {
    const space = scenarioSpace({ mechanisms: ['microreset', 'microreboot'], disabledSteps: 'any', maxFaults: 3 });
    fc.assert(
      fc.property(scenarioArbitrary(space), (scenario) => {
        expect(space.configurations).toContain(scenario.configuration);
        expect(space.workloadSeeds).toContain(scenario.seed);
        expect(scenario.faults.length).toBeGreaterThanOrEqual(1);
        expect(scenario.faults.length).toBeLessThanOrEqual(3);
        const times = scenario.faults.map((fault) => fault.trigger.timeNs);
        expect(times).toEqual([...times].sort((first, second) => first - second));
        expect(Math.max(...times)).toBeLessThan(scenario.runLengthNs);
        expect(() => trialSpecOf(scenario)).not.toThrow();
        expect(() => scenarioSpace({ mechanisms: [scenario.mechanism], disabledSteps: scenario.disabledSteps })).not.toThrow();
      }),
      { numRuns: 200, seed: 1 },
    );
  });

  it('refuse a space that cannot be drawn from', () => {
    expect(() => scenarioSpace({ configurations: ['2AppVM'] })).toThrow(ScenarioSpaceError);
    expect(() => scenarioSpace({ mechanisms: ['microreboot'], disabledSteps: ['clear-irq-count'] })).toThrow(/microreboot has no step named clear-irq-count/);
    expect(() => scenarioSpace({ mechanisms: ['none'], disabledSteps: 'any' })).toThrow(/recovery mechanism/);
    expect(() => scenarioSpace({ maxFaults: 0 })).toThrow(ScenarioSpaceError);
  });

  it('replay arguments name exactly how a space differs from the default one', () => {
    expect(replayArguments(defaultScenarioSpace)).toEqual([]);
    expect(replayArguments(scenarioSpace({ mechanisms: ['microreset'], disabledSteps: 'any', runLengthNs: 200 * MS, maxFaults: 1 }))).toEqual([
      '--run-length-ms 200',
      '--mechanism microreset',
      '--ablate',
      '--max-faults 1',
    ]);
  });
});

describe('a scenario as JSON', () => {
  it('reads back to the same scenario, whatever the arbitrary drew', () => {
    fc.assert(
      fc.property(scenarioArbitrary({ disabledSteps: 'any' }), (scenario) => {
        expect(parseScenario(JSON.stringify(scenario))).toEqual(scenario);
      }),
      { numRuns: 200, seed: 2 },
    );
  });

  it('is the JSON in the replay command of a trial with explicit faults', () => {
    const scenario: Scenario = { ...base, faults: [{ trigger: { timeNs: 7, instructionsAfter: 8 }, target: { type: 'memory', fraction: 0.25, bit: 3 } }] };
    const { record } = runTrial(trialSpecOf(scenario));
    const json = /--scenario '(.*)'$/.exec(record.replay)?.[1] ?? '';
    expect(parseScenario(json)).toEqual(scenario);
  });

  it('is refused with a message naming the field', () => {
    const good = JSON.stringify({ ...base, faults: [{ trigger: { timeNs: 1, instructionsAfter: 2 }, target: { type: 'failstop' } }] });
    expect(() => parseScenario('{')).toThrow(ScenarioFormatError);
    expect(() => parseScenario(good.replace('"failstop"', '"cosmic-ray"'))).toThrow(/faults\[0\]\.target\.type/);
    expect(() => parseScenario(good.replace('"timeNs":1', '"timeNs":-1'))).toThrow(/faults\[0\]\.trigger\.timeNs/);
    expect(() => parseScenario(good.replace('"1AppVM"', '"9AppVM"'))).toThrow(/unknown configuration/);
    expect(() => parseScenario(good.replace('"disabledSteps":[]', '"disabledSteps":["no-such-step"]'))).toThrow(/no step named no-such-step/);
  });
});
