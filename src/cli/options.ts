/**
 * Parsers for command-line values: each returns the typed value or throws a UsageError that
 * names the option and what was expected.
 */
import { configurationNames } from '../guests/configurations.js';
import { faultTypes, isFaultType, type FaultType } from '../faults/fault.js';
import { isMechanismName, mechanismNamed, mechanismNames, unknownSteps, type MechanismName } from '../recovery/mechanisms.js';
import { MAX_LIST_LENGTH } from '../campaign/limits.js';
import { UsageError } from './errors.js';

export function parseInteger(option: string, minimum = 0, maximum = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
      throw new UsageError('usage.invalidNumber', `${option} expects an integer from ${minimum} to ${maximum}, got "${text}"`);
    }
    return value;
  };
}

/** A decimal number in [minimum, maximum], written as JSON writes numbers (so a printed command reads back the same value). */
export function parseDecimal(option: string, minimum: number, maximum: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+(\.\d+)?(e-?\d+)?$/.test(text.trim()) || !Number.isFinite(value) || value < minimum || value > maximum) {
      throw new UsageError('usage.invalidNumber', `${option} expects a number from ${minimum} to ${maximum}, got "${text}"`);
    }
    return value;
  };
}

/** One of a few words, as `option` accepts them. */
export function parseChoice<const Word extends string>(option: string, words: readonly Word[]): (text: string) => Word {
  return (text) => {
    const word = words.find((candidate) => candidate === text);
    if (word === undefined) throw new UsageError('usage.invalidChoice', `${option} expects one of ${words.join(', ')}, got "${text}"`);
    return word;
  };
}

/** `--config`'s help: every configuration by name, so the list cannot go stale. */
export function configurationHelp(): string {
  return `configuration: ${configurationNames().join(', ')}`;
}

export function parseConfiguration(text: string): string {
  if (!configurationNames().includes(text)) {
    throw new UsageError('usage.invalidConfig', `--config expects one of ${configurationNames().join(', ')}, got "${text}"`);
  }
  return text;
}

export function parseFaultType(text: string): FaultType {
  if (!isFaultType(text)) throw new UsageError('usage.invalidFault', `--fault expects one of ${faultTypes.join(', ')}, got "${text}"`);
  return text;
}

/** Milliseconds of simulated time, as nanoseconds. */
export function parseRunLengthMs(text: string): number {
  // as in campaign files: a shorter run does not get through boot
  return parseInteger('--run-length-ms', 10, 60_000)(text) * 1_000_000;
}

export function parseMechanism(text: string): MechanismName {
  if (!isMechanismName(text)) throw new UsageError('usage.invalidMechanism', `--mechanism expects one of ${mechanismNames.join(', ')}, got "${text}"`);
  return text;
}

/** The words of a comma-separated list, trimmed, empty ones dropped. */
function commaSeparated(text: string): string[] {
  return text.split(',').map((name) => name.trim()).filter((name) => name !== '');
}

/**
 * A comma-separated list option: at least one value, at most MAX_LIST_LENGTH, none twice, each
 * one `accept` takes.
 */
export function parseList<T>(option: string, accept: (word: string) => T | undefined, expected: string): (text: string) => T[] {
  return (text) => {
    const words = commaSeparated(text);
    if (words.length === 0) throw new UsageError('usage.invalidList', `${option} expects ${expected}, got "${text}"`);
    if (words.length > MAX_LIST_LENGTH) throw new UsageError('usage.invalidList', `${option} names ${words.length} values, more than ${MAX_LIST_LENGTH}`);
    const repeated = words.find((word, index) => words.indexOf(word) !== index);
    if (repeated !== undefined) throw new UsageError('usage.invalidList', `${option} names ${repeated} twice`);
    return words.map((word) => {
      const value = accept(word);
      if (value === undefined) throw new UsageError('usage.invalidList', `${option} expects ${expected}, got "${word}"`);
      return value;
    });
  };
}

/** Every switched-off step must belong to the mechanism. */
export function checkSteps(mechanism: MechanismName, disabled: readonly string[]): void {
  if (disabled.length === 0) return;
  if (mechanism === 'none') throw new UsageError('usage.invalidStep', '--disable needs --mechanism microreset or microreboot');
  const unknown = unknownSteps(mechanismNamed(mechanism), disabled);
  if (unknown.length > 0) throw new UsageError('usage.invalidStep', `${mechanism} has no step named ${unknown.map((name) => `"${name}"`).join(', ')} (see \`ninelives mechanisms\`)`);
}
