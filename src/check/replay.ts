/**
 * Replaying: the command-line words that select a scenario space (so that a printed command
 * draws the very same scenarios), and reading a scenario back from its JSON.
 */
import { isFaultType, MAX_INSTRUCTIONS_AFTER_TRIGGER, registerNames, type FaultPlan, type FaultTarget, type RegisterName } from '../faults/fault.js';
import { isMechanismName } from '../recovery/mechanisms.js';
import { CHECKED_MECHANISMS, defaultScenarioSpace, scenarioSpace, type ScenarioSpace } from './arbitraries.js';
import type { Scenario } from './scenario.js';
import { NinelivesError } from '../errors.js';

function sameList(first: readonly unknown[], second: readonly unknown[]): boolean {
  return first.length === second.length && first.every((item, index) => item === second[index]);
}

/** `ninelives check` options for every way `space` differs from the default space. */
export function replayArguments(space: ScenarioSpace): string[] {
  const words: string[] = [];
  const fallback = defaultScenarioSpace;
  if (!sameList(space.configurations, fallback.configurations)) words.push(`--config ${space.configurations.join(',')}`);
  if (!sameList(space.workloadSeeds, fallback.workloadSeeds)) words.push(`--workload-seeds ${space.workloadSeeds.join(',')}`);
  if (space.runLengthNs !== fallback.runLengthNs) words.push(`--run-length-ms ${space.runLengthNs / 1_000_000}`);
  if (!sameList(space.mechanisms, fallback.mechanisms)) words.push(`--mechanism ${space.mechanisms.join(',')}`);
  if (space.disabledSteps === 'any') words.push('--ablate');
  else if (space.disabledSteps.length > 0) words.push(`--disable ${space.disabledSteps.join(',')}`);
  if (!sameList(space.faultTypes, fallback.faultTypes)) words.push(`--fault ${space.faultTypes.join(',')}`);
  if (space.maxFaults !== fallback.maxFaults) words.push(`--max-faults ${space.maxFaults}`);
  return words;
}

export class ScenarioFormatError extends NinelivesError {
  constructor(message: string) {
    super('usage.invalidScenario', `not a scenario: ${message}`);
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(value: unknown, what: string, minimum: number, maximum: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw new ScenarioFormatError(`${what} must be an integer from ${minimum} to ${maximum}`);
  }
  return value;
}

function target(value: unknown, what: string): FaultTarget {
  if (!isObject(value) || typeof value.type !== 'string' || !isFaultType(value.type)) throw new ScenarioFormatError(`${what}.type must be a fault type`);
  switch (value.type) {
    case 'failstop':
      return { type: 'failstop' };
    case 'hostFailstop':
      return { type: 'hostFailstop' };
    case 'register':
      if (!(registerNames as readonly unknown[]).includes(value.register)) throw new ScenarioFormatError(`${what}.register must be one of ${registerNames.join(', ')}`);
      return { type: 'register', register: value.register as RegisterName, bit: integer(value.bit, `${what}.bit`, 0, 31) };
    case 'code':
      return { type: 'code', wordOffset: integer(value.wordOffset, `${what}.wordOffset`, 0, 1_000), bit: integer(value.bit, `${what}.bit`, 0, 31) };
    case 'memory': {
      const fraction = value.fraction;
      if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) throw new ScenarioFormatError(`${what}.fraction must be a number in [0, 1)`);
      return { type: 'memory', fraction, bit: integer(value.bit, `${what}.bit`, 0, 31) };
    }
  }
}

function fault(value: unknown, index: number): FaultPlan {
  const what = `faults[${index}]`;
  if (!isObject(value) || !isObject(value.trigger)) throw new ScenarioFormatError(`${what}.trigger is missing`);
  const trigger = {
    timeNs: integer(value.trigger.timeNs, `${what}.trigger.timeNs`, 0, Number.MAX_SAFE_INTEGER),
    instructionsAfter: integer(value.trigger.instructionsAfter, `${what}.trigger.instructionsAfter`, 0, Number.MAX_SAFE_INTEGER),
  };
  return { trigger, target: target(value.target, `${what}.target`) };
}

/** The most faults one scenario holds: as many as `--max-faults` allows a search to draw. */
const MAX_SCENARIO_FAULTS = 16;

/** A scenario from its JSON text (as `ninelives check` prints it), checked field by field. */
export function parseScenario(text: string): Scenario {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ScenarioFormatError(`invalid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isObject(value)) throw new ScenarioFormatError('expected a JSON object');
  const mechanism = value.mechanism ?? 'none';
  if (typeof mechanism !== 'string' || !isMechanismName(mechanism) || !CHECKED_MECHANISMS.includes(mechanism)) throw new ScenarioFormatError(`mechanism must be ${CHECKED_MECHANISMS.join(', ')}`);
  const disabledSteps = value.disabledSteps ?? [];
  if (!Array.isArray(disabledSteps) || !disabledSteps.every((step) => typeof step === 'string')) throw new ScenarioFormatError('disabledSteps must be a list of step names');
  if (!Array.isArray(value.faults) || value.faults.length === 0) throw new ScenarioFormatError('faults must be a non-empty list');
  const faults = value.faults.map(fault);
  if (faults.some((plan, index) => index > 0 && plan.trigger.timeNs < faults[index - 1].trigger.timeNs)) throw new ScenarioFormatError('faults must be in trigger-time order');
  if (faults.length > MAX_SCENARIO_FAULTS) throw new ScenarioFormatError(`a scenario has at most ${MAX_SCENARIO_FAULTS} faults, not ${faults.length}`);
  if (typeof value.configuration !== 'string') throw new ScenarioFormatError('configuration must be a configuration name');
  const runLengthNs = integer(value.runLengthNs, 'runLengthNs', 1_000_000, 60_000_000_000);
  // a trigger at or after the end of the run never lands
  const late = faults.findIndex((plan) => plan.trigger.timeNs >= runLengthNs);
  if (late !== -1) throw new ScenarioFormatError(`faults[${late}].trigger.timeNs must be within the run (below runLengthNs, ${runLengthNs})`);
  if (faults.some((plan) => plan.trigger.instructionsAfter > MAX_INSTRUCTIONS_AFTER_TRIGGER)) throw new ScenarioFormatError(`a trigger's instructionsAfter is at most ${MAX_INSTRUCTIONS_AFTER_TRIGGER} (Gigan's window)`);
  const scenario: Scenario = {
    configuration: value.configuration,
    seed: integer(value.seed, 'seed', -0x80000000, 0xffffffff),
    runLengthNs,
    mechanism,
    disabledSteps: disabledSteps as string[],
    faults,
    ...(value.strictNetBench === true ? { strictNetBench: true } : {}),
    ...(value.pkeys === true ? { pkeys: true } : {}),
    ...(isObject(value.host) ? { host: { cpus: integer(value.host.cpus, 'host.cpus', 1, 1024), memoryGiB: integer(value.host.memoryGiB, 'host.memoryGiB', 1, 65536) } } : {}),
  };
  try {
    scenarioSpace({ configurations: [scenario.configuration], mechanisms: [scenario.mechanism], disabledSteps: scenario.disabledSteps, runLengthNs: scenario.runLengthNs });
  } catch (error) {
    throw new ScenarioFormatError(error instanceof Error ? error.message : String(error));
  }
  return scenario;
}
