/**
 * Repair against replace: per mechanism and fault type, the recovery rate (share of injected
 * faults recovered, so that a fault nothing detected counts as not recovered) against the median
 * service interruption, with the overhead when nothing fails as the point's size. Drawn for
 * summaries that carry the cost (campaigns with failover).
 *
 * The x axis is logarithmic, as in the service-interruption chart: microreset's tens of
 * milliseconds and failover's hundreds are both readable. A group that recovered nothing has no
 * service interruption: it is drawn hollow at the axis's left edge, labelled, rather than at a
 * made-up 0 ms.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Summary } from '../results/summary.js';
import { formatMs } from './format.js';
import { injected, mainLabels, mainRows } from './groups.js';

/** What the other charts share, so that a mechanism has one colour in every chart. */
export interface ChartStyle {
  readonly config: unknown;
  readonly schema: string;
  readonly mechanismScale: (mechanisms: readonly string[]) => { domain: string[]; range: string[] };
  readonly logTicks: (low: number, high: number) => number[];
}

interface Point {
  readonly config: string;
  readonly mechanism: string;
  readonly faultType: string;
  readonly recovered: number;
  readonly interruptionMs: number;
  readonly overheadPercent: number;
  readonly recoveredAny: boolean;
  readonly label: string;
}

export function tradeoffChart(summary: Summary, style: ChartStyle): TopLevelSpec | null {
  const rows = mainRows(summary);
  if (!rows.some(({ group }) => group.overheadPercent !== undefined)) return null;
  const measured = rows.filter(({ group }) => injected(group) > 0);
  const interruptions = measured.map(({ group }) => group.serviceInterruptionMs.p50).filter((ms) => Number.isFinite(ms) && ms > 0);
  const ticks = style.logTicks(Math.min(10, ...interruptions) / 1.25, Math.max(100, ...interruptions) * 1.25);
  const leftEdge = ticks[0];
  const values: Point[] = measured.map(({ group, label }) => {
    const recoveredAny = group.recovery.success > 0 && Number.isFinite(group.serviceInterruptionMs.p50) && group.serviceInterruptionMs.p50 > 0;
    const recovered = group.recovery.success / injected(group);
    return {
      config: group.config,
      mechanism: label,
      faultType: group.faultType,
      recovered,
      interruptionMs: recoveredAny ? group.serviceInterruptionMs.p50 : leftEdge,
      overheadPercent: group.overheadPercent ?? 0,
      recoveredAny,
      label: recoveredAny ? `${Math.round(recovered * 100)}%, ${formatMs(group.serviceInterruptionMs.p50)} ms` : 'none recovered',
    };
  });
  const mechanisms = mainLabels(summary).filter((name) => values.some((value) => value.mechanism === name));
  const scale = style.mechanismScale(mechanisms);
  // room on the right for the last point's label
  const rightEdge = style.logTicks(ticks[ticks.length - 1], ticks[ticks.length - 1] * 1.6).at(-1) ?? ticks[ticks.length - 1];
  const axisTicks = style.logTicks(leftEdge, rightEdge);
  const x = { field: 'interruptionMs', type: 'quantitative', title: 'service interruption p50 (ms, log scale)', scale: { type: 'log', domain: [leftEdge, rightEdge] }, axis: { values: axisTicks, format: ',~g', grid: true } };
  const y = { field: 'recovered', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'recovered / injected' } };
  const greyLegend = { symbolFillColor: '#8a8f98', symbolStrokeColor: '#8a8f98' };
  const tooltip = [
    { field: 'config', title: 'configuration' },
    { field: 'mechanism' },
    { field: 'faultType', title: 'fault type' },
    { field: 'recovered', format: '.1%', title: 'recovered / injected' },
    { field: 'label', title: 'service interruption p50' },
    { field: 'overheadPercent', format: '.1f', title: 'overhead (%)' },
  ];
  return {
    $schema: style.schema,
    config: style.config,
    width: 520,
    height: 300,
    layer: [
      {
        data: { values },
        mark: { type: 'point', filled: true, opacity: 0.85, strokeWidth: 2 },
        encoding: {
          x,
          y,
          color: { field: 'mechanism', type: 'nominal', title: 'mechanism', scale, legend: { symbolOpacity: 1 } },
          fillOpacity: { condition: { test: 'datum.recoveredAny', value: 0.85 }, value: 0 },
          size: { field: 'overheadPercent', type: 'quantitative', title: 'overhead (%)', scale: { range: [60, 600], zero: true }, legend: greyLegend },
          shape: { field: 'faultType', type: 'nominal', title: 'fault type', legend: greyLegend },
          tooltip,
        },
      },
      {
        data: { values: values.filter((value) => !value.recoveredAny) },
        mark: { type: 'point', filled: false, opacity: 1, strokeWidth: 2, size: 80 },
        encoding: { x, y, color: { field: 'mechanism', type: 'nominal', scale, legend: null }, shape: { field: 'faultType', type: 'nominal', legend: null }, tooltip },
      },
      ...[true, false].map((above) => ({
        data: { values: labelPlaces(values).filter((place) => place.above === above) },
        mark: { type: 'text', align: 'left', dx: 12, dy: above ? -8 : 12, fontSize: 10, color: '#30343b' },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      })),
      {
        data: { values: noneRecoveredLabels(values, leftEdge) },
        mark: { type: 'text', align: 'left', dx: 10, fontSize: 10, fontStyle: 'italic', color: '#6b6f76' },
        encoding: { x, y, text: { field: 'label', type: 'nominal' } },
      },
    ],
  } as unknown as TopLevelSpec;
}

/**
 * Where each recovered group's label goes: above its point, or below it when a label placed
 * before it (left to right) is at about the same height and near enough to collide.
 */
function labelPlaces(values: readonly Point[]): (Point & { above: boolean })[] {
  const sorted = values.filter((value) => value.recoveredAny).sort((first, second) => first.interruptionMs - second.interruptionMs);
  const places: (Point & { above: boolean })[] = [];
  for (const value of sorted) {
    const collides = places.some((placed) => placed.above && Math.abs(placed.recovered - value.recovered) < 0.06 && value.interruptionMs / placed.interruptionMs < 4);
    places.push({ ...value, above: !collides });
  }
  return places;
}

/** One line per fault type naming the mechanisms that recovered none of it, stacked above the left corner. */
function noneRecoveredLabels(values: readonly Point[], leftEdge: number): { interruptionMs: number; recovered: number; label: string }[] {
  const faultTypes = [...new Set(values.filter((value) => !value.recoveredAny).map((value) => value.faultType))];
  return faultTypes.map((faultType, index) => ({
    interruptionMs: leftEdge,
    recovered: 0.03 + 0.06 * index,
    label: `${faultType}: ${values.filter((value) => !value.recoveredAny && value.faultType === faultType).map((value) => value.mechanism).join(', ')} recovered none`,
  }));
}
