/**
 * The recovery mechanisms by name, and the names of their steps.
 */
import { NinelivesError } from '../errors.js';
import { failover, replayFailover } from './failover.js';
import { microreboot } from './microreboot.js';
import { microreset } from './microreset.js';
import type { Mechanism } from './step.js';

export const mechanismNames = ['none', 'microreset', 'microreboot', 'failover', 'replay-failover'] as const;
export type MechanismName = (typeof mechanismNames)[number];

export const mechanisms: readonly Mechanism[] = [microreset, microreboot, failover, replayFailover];

export function isMechanismName(value: string): value is MechanismName {
  return (mechanismNames as readonly string[]).includes(value);
}

export function mechanismNamed(name: Exclude<MechanismName, 'none'>): Mechanism {
  if (name === 'failover') return failover;
  if (name === 'replay-failover') return replayFailover;
  return name === 'microreset' ? microreset : microreboot;
}

/** Names in `disabled` that are not steps of `mechanism`. */
export function unknownSteps(mechanism: Mechanism, disabled: readonly string[]): string[] {
  const names = new Set(mechanism.steps.map(({ step }) => step.name));
  return disabled.filter((name) => !names.has(name));
}

/** A step switched off by a name the mechanism has no step of (a misspelling, say). */
export class UnknownStepError extends NinelivesError {
  constructor(
    readonly mechanism: MechanismName,
    readonly unknown: readonly string[],
  ) {
    super('usage.invalidStep', `${mechanism} has no step named ${unknown.map((name) => `"${name}"`).join(', ')}`);
  }
}

/** Throws UnknownStepError unless every name in `disabled` is a step of `mechanism` ('none' has none). */
export function rejectUnknownSteps(mechanism: MechanismName, disabled: readonly string[]): void {
  const unknown = mechanism === 'none' ? disabled : unknownSteps(mechanismNamed(mechanism), disabled);
  if (unknown.length > 0) throw new UnknownStepError(mechanism, unknown);
}

/**
 * The cumulative ablation stages: stage 0 has every repair off, stage k the first k repairs on.
 * Each stage is named after the repair it adds, and lists the steps switched off.
 */
export function ablationStages(mechanism: Mechanism): { readonly stage: string; readonly disabledSteps: readonly string[] }[] {
  return [0, ...mechanism.repairOrder.map((_, index) => index + 1)].map((enabled) => ({
    stage: enabled === 0 ? '0 no repairs' : `${enabled} + ${mechanism.repairOrder[enabled - 1]}`,
    disabledSteps: mechanism.repairOrder.slice(enabled),
  }));
}

/** A stage name ablationStages gives, read back: its position in the ladder ("0 no repairs" -> 0, "3 + scheduler" -> 3); undefined for any other stage. */
export function ablationStageNumber(stage: string): number | undefined {
  const match = /^(0) no repairs$|^([1-9]\d*) \+ \S.*$/.exec(stage);
  return match === null ? undefined : Number(match[1] ?? match[2]);
}
