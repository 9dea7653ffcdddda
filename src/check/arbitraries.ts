/**
 * fast-check arbitraries for fault scenarios. Every choice is a plain number or a pick from a
 * list, so that shrinking moves towards the simplest scenario: one fail-stop fault, early in the
 * run, few instructions after its trigger, low bits, register r0, the fewest repairs switched off.
 */
import fc from 'fast-check';
import {
  CODE_FAULT_WINDOW_WORDS,
  MAX_INSTRUCTIONS_AFTER_TRIGGER,
  hypervisorFaultTypes,
  registerNames,
  type FaultPlan,
  type FaultTarget,
  type FaultType,
  type Trigger,
} from '../faults/fault.js';
import { configurationNames } from '../guests/configurations.js';
import { mechanismNamed, unknownSteps, type MechanismName } from '../recovery/mechanisms.js';
import type { Scenario } from './scenario.js';
import { NinelivesError } from '../errors.js';

/** Which scenarios to draw from. */
export interface ScenarioSpace {
  readonly configurations: readonly string[];
  /** workload seeds; each (configuration, seed) costs one golden run, so keep the list short */
  readonly workloadSeeds: readonly number[];
  readonly runLengthNs: number;
  readonly mechanisms: readonly MechanismName[];
  /** repair steps switched off in every scenario, or 'any': each scenario switches off a subset */
  readonly disabledSteps: readonly string[] | 'any';
  readonly faultTypes: readonly FaultType[];
  /** each scenario has 1 to this many faults */
  readonly maxFaults: number;
}

export const defaultScenarioSpace: ScenarioSpace = {
  configurations: ['1AppVM'],
  workloadSeeds: [0, 1, 2, 3],
  runLengthNs: 300_000_000,
  mechanisms: ['microreset', 'microreboot'],
  disabledSteps: [],
  faultTypes: hypervisorFaultTypes,
  maxFaults: 2,
};

/** The mechanisms a scenario may recover with: the repairs of one host (failover needs a second). */
export const CHECKED_MECHANISMS: readonly MechanismName[] = ['none', 'microreset', 'microreboot'];

export class ScenarioSpaceError extends NinelivesError {
  constructor(message: string) {
    super('usage.invalidScenarioSpace', message);
  }
}

/** The default space with `overrides` applied, checked. */
export function scenarioSpace(overrides: Partial<ScenarioSpace> = {}): ScenarioSpace {
  const space = { ...defaultScenarioSpace, ...overrides };
  const nonEmpty = { configurations: space.configurations, workloadSeeds: space.workloadSeeds, mechanisms: space.mechanisms, faultTypes: space.faultTypes };
  for (const [key, list] of Object.entries(nonEmpty)) if (list.length === 0) throw new ScenarioSpaceError(`${key} must not be empty`);
  const unknownConfigurations = space.configurations.filter((name) => !configurationNames().includes(name));
  if (unknownConfigurations.length > 0) throw new ScenarioSpaceError(`unknown configuration ${unknownConfigurations.join(', ')}`);
  if (!Number.isSafeInteger(space.runLengthNs) || space.runLengthNs < 1_000_000) throw new ScenarioSpaceError('runLengthNs must be an integer of at least 1 ms');
  if (!Number.isSafeInteger(space.maxFaults) || space.maxFaults < 1) throw new ScenarioSpaceError('maxFaults must be at least 1');
  const uncheckable = space.mechanisms.filter((mechanism) => !CHECKED_MECHANISMS.includes(mechanism));
  if (uncheckable.length > 0) throw new ScenarioSpaceError(`scenarios recover with ${CHECKED_MECHANISMS.join(', ')}, not ${uncheckable.join(', ')}`);
  if (space.disabledSteps === 'any' || space.disabledSteps.length > 0) {
    if (space.mechanisms.includes('none')) throw new ScenarioSpaceError('repair steps can only be switched off with a recovery mechanism');
    if (space.disabledSteps !== 'any') {
      for (const mechanism of space.mechanisms as Exclude<MechanismName, 'none'>[]) {
        const unknown = unknownSteps(mechanismNamed(mechanism), space.disabledSteps);
        if (unknown.length > 0) throw new ScenarioSpaceError(`${mechanism} has no step named ${unknown.join(', ')}`);
      }
    }
  }
  return space;
}

export function triggerArbitrary(runLengthNs: number): fc.Arbitrary<Trigger> {
  return fc.record({
    timeNs: fc.integer({ min: 0, max: runLengthNs - 1 }),
    instructionsAfter: fc.integer({ min: 0, max: MAX_INSTRUCTIONS_AFTER_TRIGGER }),
  });
}

const bits = fc.integer({ min: 0, max: 31 });

export function faultTargetArbitrary(type: FaultType): fc.Arbitrary<FaultTarget> {
  switch (type) {
    case 'failstop':
      return fc.constant({ type: 'failstop' as const });
    case 'hostFailstop':
      return fc.constant({ type: 'hostFailstop' as const });
    case 'register':
      return fc.record({ type: fc.constant('register' as const), register: fc.constantFrom(...registerNames), bit: bits });
    case 'code':
      return fc.record({ type: fc.constant('code' as const), wordOffset: fc.integer({ min: 0, max: CODE_FAULT_WINDOW_WORDS - 1 }), bit: bits });
    case 'memory':
      return fc.record({ type: fc.constant('memory' as const), fraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), bit: bits });
  }
}

/** One fault of one of `types` (shrinking prefers the first type listed). */
export function faultPlanArbitrary(runLengthNs: number, types: readonly FaultType[] = hypervisorFaultTypes): fc.Arbitrary<FaultPlan> {
  return fc.record({ trigger: triggerArbitrary(runLengthNs), target: fc.oneof(...types.map(faultTargetArbitrary)) });
}

/** 1 to `maxFaults` faults, in trigger-time order. */
export function faultsArbitrary(runLengthNs: number, maxFaults: number, types: readonly FaultType[] = hypervisorFaultTypes): fc.Arbitrary<FaultPlan[]> {
  return fc
    .array(faultPlanArbitrary(runLengthNs, types), { minLength: 1, maxLength: maxFaults })
    .map((faults) => faults.slice().sort((first, second) => first.trigger.timeNs - second.trigger.timeNs));
}

function recoveryArbitrary(space: ScenarioSpace): fc.Arbitrary<{ mechanism: MechanismName; disabledSteps: readonly string[] }> {
  return fc.oneof(
    ...space.mechanisms.map((mechanism) => {
      const disabledSteps =
        space.disabledSteps !== 'any' || mechanism === 'none'
          ? fc.constant(space.disabledSteps === 'any' ? [] : space.disabledSteps)
          : fc.subarray([...mechanismNamed(mechanism).repairOrder]);
      return fc.record({ mechanism: fc.constant(mechanism), disabledSteps });
    }),
  );
}

export function scenarioArbitrary(overrides: Partial<ScenarioSpace> = {}): fc.Arbitrary<Scenario> {
  const space = scenarioSpace(overrides);
  return fc
    .record({
      configuration: fc.constantFrom(...space.configurations),
      seed: fc.constantFrom(...space.workloadSeeds),
      recovery: recoveryArbitrary(space),
      faults: faultsArbitrary(space.runLengthNs, space.maxFaults, space.faultTypes),
    })
    .map(({ configuration, seed, recovery, faults }) => ({
      configuration,
      seed,
      runLengthNs: space.runLengthNs,
      mechanism: recovery.mechanism,
      disabledSteps: recovery.disabledSteps,
      faults,
    }));
}
