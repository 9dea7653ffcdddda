/**
 * The report's tables as plain data (header, alignment, text cells), built once from a Summary
 * and rendered by both the Markdown and the HTML writers, so the two always show the same
 * numbers.
 */
import type { Triage } from '../results/triage.js';
import type { Comparison, Summary, SummaryGroup } from '../results/summary.js';
import type { Stopping } from '../results/stopping.js';
import type { StageGain } from '../results/stage-gains.js';
import { formatCount, formatInterval, formatMs, formatPValue, formatPercent, formatPointDifference, formatShare, MISSING } from './format.js';
import { ablationCells, attempted, configurations, faultTypesOf, FULL_STAGE, injected, mainRows, mechanismsOf, type Cell } from './groups.js';

export interface ReportContext {
  /** the report's heading */
  readonly title: string;
  /** the command that produced the data, to repeat it */
  readonly generatedBy: string;
  /** the campaign file's description, as written there */
  readonly description?: string;
  /** the campaign's triage, when `ninelives triage` has run: a section of its own */
  readonly triage?: Triage;
}

export interface Column {
  readonly label: string;
  readonly align: 'left' | 'right';
}

export interface Table {
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly string[])[];
}

export interface OverviewItem {
  readonly label: string;
  readonly value: string;
}

export interface ConfigurationTable {
  readonly config: string;
  readonly table: Table;
}

export interface AblationTable {
  readonly config: string;
  readonly faultType: string;
  readonly mechanism: string;
  readonly table: Table;
}

export interface ReportTables {
  readonly overview: readonly OverviewItem[];
  /** mechanism × fault type, one table per configuration */
  readonly main: readonly ConfigurationTable[];
  /** one per (configuration, fault type, mechanism) with stages other than 'all' */
  readonly ablation: readonly AblationTable[];
  /** null when no two mechanisms ran on the same faults */
  readonly comparisons: Table | null;
  /** failure causes and detectors per group, one table per configuration (groups with detections) */
  readonly failures: readonly ConfigurationTable[];
  /** where each cell stopped and why; null for a campaign of fixed size */
  readonly stopping: Table | null;
}

const left = (label: string): Column => ({ label, align: 'left' });
const right = (label: string): Column => ({ label, align: 'right' });

export const notes = {
  main:
    'Outcome shares are of injected faults. Recovery rate = recovered / detected faults on which recovery ran, with its 95% Wilson interval in brackets; ' +
    '"no VM failure" counts recoveries after which no AppVM failed. SI = service interruption (detection latency + recovery latency), in ms, over every recovery attempt.',
  ablation:
    'Cumulative stages in campaign order: each row adds one repair to the row above it, on the same faults. Δ is the change in recovery rate from the previous row; ' +
    '"gained / lost" counts the detected faults this row recovers and the one above did not, and the other way round, and "gains landed in" names the hypervisor routines (for a code fault, the flipped word\'s) where the gained faults landed, most first.',
  comparisons:
    'Paired on the same faults (same trial index): only detections recovered by one mechanism and not the other (discordant pairs) carry information. p is the exact two-sided McNemar test.',
  failures: 'First cause of each failed recovery, and the detector that caught each detected fault.',
  stopping:
    'Each cell ran until its recovery rate\'s Wilson interval was within the margin of the estimate (checked every few trial indexes, after a floor of attempted recoveries), or until the campaign\'s trial count. Baselines without a mechanism run as long as their fault type\'s mechanisms.',
} as const;

export function buildTables(summary: Summary): ReportTables {
  return {
    overview: overview(summary),
    main: configurations(summary).map((config) => ({ config, table: mainTable(summary, config) })),
    ablation: ablationCells(summary).map((cell) => ({ config: cell.config, faultType: cell.faultType, mechanism: cell.mechanism, table: ablationTable(cell, ladderOf(summary, cell)) })),
    comparisons: summary.comparisons.length === 0 ? null : comparisonTable(summary.comparisons),
    failures: configurations(summary)
      .map((config) => ({ config, table: failureTable(summary, config) }))
      .filter(({ table }) => table.rows.length > 0),
    stopping: summary.stopping === undefined ? null : stoppingTable(summary.stopping),
  };
}

function overview(summary: Summary): OverviewItem[] {
  const groups = summary.groups;
  const total = (pick: (group: SummaryGroup) => number): number => groups.reduce((sum, group) => sum + pick(group), 0);
  const injectedTotal = total(injected);
  const detected = total((group) => group.outcomes.detected);
  const stages = [...new Set(groups.map((group) => group.stage))];
  const items: OverviewItem[] = [
    { label: 'Campaign', value: summary.campaign },
    { label: 'Seed', value: String(summary.seed) },
    { label: 'Trials', value: formatCount(summary.trials) },
    { label: 'Injected', value: `${formatCount(injectedTotal)} (${formatShare(injectedTotal, summary.trials)})` },
    { label: 'Detected', value: `${formatCount(detected)} (${formatShare(detected, injectedTotal)} of injected)` },
    { label: 'Configurations', value: configurations(summary).join(', ') || MISSING },
    { label: 'Fault types', value: faultTypesOf(summary).join(', ') || MISSING },
    { label: 'Mechanisms', value: mechanismsOf(summary).join(', ') || MISSING },
  ];
  if (stages.some((stage) => stage !== FULL_STAGE)) items.push({ label: 'Stages', value: formatCount(stages.length) });
  return items;
}

function mainTable(summary: Summary, config: string): Table {
  const rows = mainRows(summary).filter((row) => row.group.config === config);
  // campaigns with failover also say what each mechanism costs when nothing fails
  const costs = rows.some(({ group }) => group.overheadPercent !== undefined);
  const costColumns = costs ? [right('Overhead'), right('Output delay p50'), right('Output delay p99')] : [];
  return {
    columns: [
      left('Fault'),
      left('Mechanism'),
      right('Trials'),
      right('Injected'),
      right('Non-manifested'),
      right('SDC'),
      right('Detected'),
      right('Recovered'),
      right('Recovery rate [95% CI]'),
      right('No VM failure [95% CI]'),
      right('SI p50'),
      right('SI p90'),
      right('SI max'),
      ...costColumns,
    ],
    rows: rows.map(({ group, label }) => {
      const shown = injected(group);
      const costCells = costs ? [`${(group.overheadPercent ?? 0).toFixed(1)}%`, formatMs(group.outputDelayMs?.p50 ?? 0), formatMs(group.outputDelayMs?.p99 ?? 0)] : [];
      return [
        group.faultType,
        label,
        formatCount(group.trials),
        formatCount(shown),
        formatShare(group.outcomes.nonManifested, shown),
        formatShare(group.outcomes.sdc, shown),
        formatShare(group.outcomes.detected, shown),
        recoveredCount(group),
        formatInterval(group.recoveryRate),
        formatInterval(group.noVmFailureRate),
        formatMs(group.serviceInterruptionMs.p50),
        formatMs(group.serviceInterruptionMs.p90),
        formatMs(group.serviceInterruptionMs.max),
        ...costCells,
      ];
    }),
  };
}

function recoveredCount(group: SummaryGroup): string {
  const tried = attempted(group);
  return tried === 0 ? MISSING : `${formatCount(group.recovery.success)}/${formatCount(tried)}`;
}

/** The cell's stage gains (stage-gains.ts), by stage name; empty for a summary without them. */
function ladderOf(summary: Summary, cell: Cell): ReadonlyMap<string, StageGain> {
  const ladder = summary.stageGains?.find((gains) => gains.config === cell.config && gains.faultType === cell.faultType && gains.mechanism === cell.mechanism);
  return new Map((ladder?.stages ?? []).map((gain) => [gain.stage, gain]));
}

function ablationTable(cell: Cell, gains: ReadonlyMap<string, StageGain>): Table {
  return {
    columns: [
      left('Stage'), right('Trials'), right('Detected'), right('Recovered'), right('Recovery rate [95% CI]'), right('Δ rate'), right('Gained / lost'), left('Gains landed in'),
      right('No VM failure [95% CI]'), right('SI p50'), right('SI max'),
    ],
    rows: cell.groups.map((group, index) => {
      const previous = index === 0 ? undefined : cell.groups[index - 1];
      const change = previous === undefined ? Number.NaN : group.recoveryRate.value - previous.recoveryRate.value;
      const gain = gains.get(group.stage);
      return [
        group.stage,
        formatCount(group.trials),
        formatCount(group.outcomes.detected),
        recoveredCount(group),
        formatInterval(group.recoveryRate),
        formatPointDifference(change),
        gain === undefined ? MISSING : `+${formatCount(gain.gained)} / -${formatCount(gain.lost)}`,
        gain === undefined || gain.gainedIn.length === 0 ? MISSING : gain.gainedIn.map(({ routine, faults }) => `${routine} ${formatCount(faults)}`).join(', '),
        formatInterval(group.noVmFailureRate),
        formatMs(group.serviceInterruptionMs.p50),
        formatMs(group.serviceInterruptionMs.max),
      ];
    }),
  };
}

const stopReasons = { margin: 'margin reached', limit: 'trial limit', paired: 'ran with its mechanisms' } as const;

function stoppingTable(stopping: Stopping): Table {
  const { rule } = stopping;
  return {
    columns: [left('Configuration'), left('Fault'), left('Mechanism'), left('Stage'), right('Trials'), right('Recoveries attempted'), right(`± at ${formatPercent(rule.confidence)}`), left('Why it stopped')],
    rows: stopping.cells.map((cell) => [
      cell.config,
      cell.faultType,
      cell.mechanism,
      cell.stage,
      formatCount(cell.trials),
      formatCount(cell.attempted),
      Number.isNaN(cell.halfWidth) ? MISSING : formatPercent(cell.halfWidth),
      `${stopReasons[cell.reason]}${cell.reason === 'margin' ? ` (±${formatPercent(rule.margin)})` : ''}`,
    ]),
  };
}

function comparisonTable(comparisons: readonly Comparison[]): Table {
  return {
    columns: [
      left('Configuration'),
      left('Fault'),
      left('First vs second'),
      right('Paired detections'),
      right('Both recovered'),
      right('Neither'),
      right('Only first'),
      right('Only second'),
      right('First rate'),
      right('Second rate'),
      right('p (McNemar)'),
    ],
    rows: comparisons.map((comparison) => [
      comparison.config,
      comparison.faultType,
      `${comparison.first} vs ${comparison.second}`,
      formatCount(comparison.pairs),
      formatCount(comparison.bothRecovered),
      formatCount(comparison.neitherRecovered),
      formatCount(comparison.onlyFirst),
      formatCount(comparison.onlySecond),
      formatShare(comparison.bothRecovered + comparison.onlyFirst, comparison.pairs),
      formatShare(comparison.bothRecovered + comparison.onlySecond, comparison.pairs),
      formatPValue(comparison.pValue),
    ]),
  };
}

function failureTable(summary: Summary, config: string): Table {
  const groups = summary.groups.filter((group) => group.config === config && group.outcomes.detected > 0);
  const staged = groups.some((group) => group.stage !== FULL_STAGE);
  const ordered = mainOrder(summary, groups);
  return {
    columns: [left('Fault'), left('Mechanism'), ...(staged ? [left('Stage')] : []), right('Failed recoveries'), left('Failure causes'), left('Detectors')],
    rows: ordered.map((group) => [
      group.faultType,
      group.mechanism,
      ...(staged ? [group.stage] : []),
      attempted(group) === 0 ? MISSING : `${formatCount(group.recovery.failure)}/${formatCount(attempted(group))}`,
      tally(group.failureCauses),
      tally(group.detectors),
    ]),
  };
}

/** The groups in the order of the main table, each cell's stages in order of appearance. */
function mainOrder(summary: Summary, groups: readonly SummaryGroup[]): SummaryGroup[] {
  const order = mainRows(summary).map((row) => [row.group.config, row.group.faultType, row.group.mechanism].join('\u0000'));
  const rank = (group: SummaryGroup): number => order.indexOf([group.config, group.faultType, group.mechanism].join('\u0000'));
  return groups
    .map((group, index) => ({ group, index }))
    .sort((x, y) => rank(x.group) - rank(y.group) || x.index - y.index)
    .map(({ group }) => group);
}

/** "recoveryHung 3 (60.0%), appVmFailed 2 (40.0%)", most frequent first. */
export function tally(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  if (entries.length === 0) return MISSING;
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  return entries
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([name, count]) => `${name} ${formatCount(count)} (${formatPercent(count / total)})`)
    .join(', ');
}
