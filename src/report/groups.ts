/**
 * Which summary groups each part of a report shows. Tables and charts share these choices, so a
 * number in a chart is always the one in the table beside it.
 *
 * - The main results show one group per (configuration, fault type, mechanism): the one at stage
 *   'all' (every repair on), or, in a campaign that only ran ablation stages, the last stage in
 *   campaign order (the most complete one), labelled with its stage.
 * - Ablation shows every (configuration, fault type, mechanism) cell that has any stage other
 *   than 'all', with its stages in their order of appearance (the campaign's order).
 */
import type { Summary, SummaryGroup } from '../results/summary.js';
import { faultTypes } from '../faults/fault.js';
import { ablationStageNumber } from '../recovery/mechanisms.js';

export const FULL_STAGE = 'all';

export interface Cell {
  readonly config: string;
  readonly faultType: SummaryGroup['faultType'];
  readonly mechanism: string;
  /** in order of appearance */
  readonly groups: readonly SummaryGroup[];
}

function cellKey(group: SummaryGroup): string {
  return JSON.stringify([group.config, group.faultType, group.mechanism]);
}

/** Groups by (configuration, fault type, mechanism): configurations in the summary's order, then
 * fault types in canonical order, then mechanisms (microreset, microreboot, others, none). */
export function cells(summary: Summary): Cell[] {
  const byKey = new Map<string, SummaryGroup[]>();
  for (const group of summary.groups) {
    const key = cellKey(group);
    const list = byKey.get(key) ?? [];
    list.push(group);
    byKey.set(key, list);
  }
  const configOrder = configurations(summary);
  return [...byKey.values()]
    .map((groups) => ({ config: groups[0].config, faultType: groups[0].faultType, mechanism: groups[0].mechanism, groups }))
    .sort(
      (x, y) =>
        configOrder.indexOf(x.config) - configOrder.indexOf(y.config) ||
        faultTypes.indexOf(x.faultType) - faultTypes.indexOf(y.faultType) ||
        (mechanismRank[x.mechanism] ?? 2) - (mechanismRank[y.mechanism] ?? 2) ||
        x.mechanism.localeCompare(y.mechanism),
    );
}

export interface MainRow {
  readonly group: SummaryGroup;
  /** the mechanism, with its stage when that is not 'all' */
  readonly label: string;
}

/**
 * Every variant a campaign names gets its own labelled row; a cumulative ablation series (the
 * stages of `ablation: true`) is shown by its most complete stage, unless the cell also has the
 * mechanism with every repair on.
 */
export function mainRows(summary: Summary): MainRow[] {
  return cells(summary).flatMap((cell) => {
    const series = cell.groups.filter((group) => isAblationStage(group.stage));
    // the mechanism with every repair on first, then the variants in campaign order
    const variants = cell.groups.filter((group) => !isAblationStage(group.stage)).sort((x, y) => Number(y.stage === FULL_STAGE) - Number(x.stage === FULL_STAGE));
    const shown = series.length > 0 && !variants.some((group) => group.stage === FULL_STAGE) ? [...variants, series[series.length - 1]] : variants;
    return shown.map((group) => ({ group, label: group.stage === FULL_STAGE ? group.mechanism : `${group.mechanism} (${group.stage})` }));
  });
}

/** The main rows' labels, in table order, once each: the series of the charts beside the table. */
export function mainLabels(summary: Summary): string[] {
  return unique(mainRows(summary).map((row) => row.label));
}

/** Cells with a cumulative ablation series, showing only its stages (campaign order). */
export function ablationCells(summary: Summary): Cell[] {
  return cells(summary)
    .map((cell) => ({ ...cell, groups: cell.groups.filter((group) => isAblationStage(group.stage)) }))
    .filter((cell) => cell.groups.length > 0);
}

/** The stage names `ablation: true` gives (ablationStages): "0 no repairs", "3 + scheduler". */
export function isAblationStage(stage: string): boolean {
  return ablationStageNumber(stage) !== undefined;
}

/** Configurations in the summary's order. */
export function configurations(summary: Summary): string[] {
  return unique(summary.groups.map((group) => group.config));
}

/** Fault types in their canonical order (failstop, register, code, memory). */
export function faultTypesOf(summary: Summary): string[] {
  const present = new Set(summary.groups.map((group) => group.faultType as string));
  return (faultTypes as readonly string[]).filter((type) => present.has(type));
}

/** Mechanisms: microreset, microreboot, then others alphabetically, 'none' last. */
export function mechanismsOf(summary: Summary): string[] {
  return orderMechanisms(unique(summary.groups.map((group) => group.mechanism)));
}

const mechanismRank: Readonly<Record<string, number>> = { microreset: 0, microreboot: 1, none: 3 };

export function orderMechanisms(names: readonly string[]): string[] {
  return names.slice().sort((x, y) => (mechanismRank[x] ?? 2) - (mechanismRank[y] ?? 2) || x.localeCompare(y));
}

/** Stages in their order of first appearance. */
export function stagesOf(summary: Summary): string[] {
  return unique(summary.groups.map((group) => group.stage));
}

/** Faults that were actually injected (a trigger past the end of the run is not). */
export function injected(group: SummaryGroup): number {
  return group.trials - group.outcomes.notInjected;
}

/** Detected faults that a recovery was attempted on: the recovery rate's denominator. */
export function attempted(group: SummaryGroup): number {
  return group.recovery.success + group.recovery.failure;
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
