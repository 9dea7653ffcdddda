/**
 * Vega-Lite specifications of the report's charts, as pure functions of a Summary, and their
 * rendering to SVG strings, headless, in Node (vega's View with no renderer, no canvas).
 *
 * The charts show the same groups as the tables (see groups.ts). A chart with nothing to show
 * (no detected faults, hence no rates) is a short message drawn in place of the chart, never an
 * error.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { tradeoffChart } from './tradeoff-chart.js';
import type { Summary, SummaryGroup } from '../results/summary.js';
import { formatMs, formatPercent } from './format.js';
import { ablationCells, attempted, configurations, faultTypesOf, injected, mainLabels, mainRows } from './groups.js';

/** A sans-serif stack whose metrics match the width table below (Helvetica/Arial/Liberation Sans). */
export const CHART_FONT = 'Helvetica Neue, Helvetica, Arial, Liberation Sans, sans-serif';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

const mechanismColours: Readonly<Record<string, string>> = { microreset: '#3b6fb6', microreboot: '#e07b25', none: '#9a9a9a' };
const otherColours = ['#4a9a5b', '#9c5fa8', '#c4484f', '#4fa3a5', '#8c6d31'];

const outcomeCategories = [
  { name: 'non-manifested', colour: '#cfd3d8' },
  { name: 'SDC', colour: '#c8343e' },
  { name: 'detected, recovered', colour: '#3a8a4f' },
  { name: 'detected, recovery failed', colour: '#e39b2d' },
  { name: 'detected, no recovery', colour: '#6b6f76' },
] as const;

const faultColours = ['#3b6fb6', '#c8343e', '#3a8a4f', '#9c5fa8'];

const config = {
  font: CHART_FONT,
  background: 'white',
  view: { stroke: '#d9dce1' },
  axis: {
    labelFontSize: 11,
    titleFontSize: 11,
    titleFontWeight: 600,
    titleColor: '#30343b',
    labelColor: '#30343b',
    gridColor: '#eceef1',
    domainColor: '#8a8f98',
    tickColor: '#8a8f98',
  },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 600, labelColor: '#30343b', titleColor: '#30343b', symbolSize: 80 },
  header: { labelFontSize: 12, labelFontWeight: 600, labelColor: '#30343b', titleFontSize: 12 },
  text: { font: CHART_FONT },
} as const;

export function mechanismScale(mechanisms: readonly string[]): { domain: string[]; range: string[] } {
  let other = 0;
  return { domain: [...mechanisms], range: mechanisms.map((name) => mechanismColours[name] ?? otherColours[other++ % otherColours.length]) };
}

/** The spec drawn when a chart has no data: a message, so the figure is never blank or broken. */
export function emptyChart(message: string): TopLevelSpec {
  return {
    $schema: SCHEMA,
    config,
    width: 480,
    height: 40,
    data: { values: [{ message }] },
    mark: { type: 'text', fontSize: 13, color: '#6b6f76', fontStyle: 'italic' },
    encoding: { text: { field: 'message', type: 'nominal' } },
  };
}

/** Facet by configuration only when there are several. */
function columnFacet(summary: Summary): { column?: { field: string; type: 'nominal'; title: null; sort: string[] } } {
  const configs = configurations(summary);
  return configs.length > 1 ? { column: { field: 'config', type: 'nominal', title: null, sort: configs } } : {};
}

/**
 * A layered chart, faceted into one column per configuration when there are several (Vega-Lite
 * rejects an empty facet, so a single configuration gets the plain layered spec).
 */
function perConfiguration(summary: Summary, top: Record<string, unknown>, inner: Record<string, unknown>): TopLevelSpec {
  const facet = columnFacet(summary);
  if (facet.column === undefined) return { ...top, ...inner } as unknown as TopLevelSpec;
  return { ...top, facet, spec: inner } as unknown as TopLevelSpec;
}

/** Wide when alone; narrower side by side, one panel per configuration. */
function panelWidth(summary: Summary): number {
  return configurations(summary).length > 1 ? 480 : 760;
}

function mainGroups(summary: Summary): { group: SummaryGroup; mechanism: string }[] {
  // each variant is its own series, named as in the table
  return mainRows(summary).map(({ group, label }) => ({ group, mechanism: label }));
}

/** Recovery rate with its 95% Wilson interval, per mechanism (colour) and fault type (x). */
export function recoveryRateChart(summary: Summary): TopLevelSpec {
  const values = mainGroups(summary)
    .filter(({ group }) => attempted(group) > 0)
    .map(({ group, mechanism }) => ({
      config: group.config,
      faultType: group.faultType,
      mechanism,
      rate: group.recoveryRate.value,
      low: group.recoveryRate.low,
      high: group.recoveryRate.high,
      label: formatPercent(group.recoveryRate.value),
      n: attempted(group),
    }));
  if (values.length === 0) return emptyChart('No detected faults with a recovery attempt: no recovery rates to show.');
  const faults = faultTypesOf(summary);
  const mechanisms = mainLabels(summary).filter((name) => values.some((value) => value.mechanism === name));
  return perConfiguration(summary, { $schema: SCHEMA, config, data: { values } }, {
      width: Math.min(panelWidth(summary), Math.max(360, faults.length * (mechanisms.length * 40 + 60))),
      height: 240,
      encoding: {
        x: { field: 'faultType', type: 'nominal', title: 'fault type', sort: faults, axis: { labelAngle: 0, labelFontSize: 12 } },
        xOffset: { field: 'mechanism', type: 'nominal', sort: mechanisms },
        color: { field: 'mechanism', type: 'nominal', title: 'mechanism', scale: mechanismScale(mechanisms), legend: { orient: 'top', direction: 'horizontal', symbolOpacity: 1 } },
      },
      layer: [
        {
          mark: { type: 'errorbar', ticks: { size: 8 }, thickness: 1.6 },
          encoding: {
            y: { field: 'low', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'recovery rate (95% Wilson CI)', tickCount: 5 } },
            y2: { field: 'high' },
          },
        },
        { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { y: { field: 'rate', type: 'quantitative' } } },
        {
          mark: { type: 'text', dy: -9, fontSize: 10, color: '#30343b' },
          encoding: { y: { field: 'high', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } },
        },
      ],
  });
}

/**
 * Outcome shares of injected faults, stacked, per fault type (rows) and mechanism (bars):
 * non-manifested, SDC, and detected split by what recovery did.
 */
export function outcomeSharesChart(summary: Summary): TopLevelSpec {
  const values = mainGroups(summary)
    .filter(({ group }) => injected(group) > 0)
    .flatMap(({ group, mechanism }) => {
      const total = injected(group);
      const unrecovered = group.outcomes.detected - group.recovery.success - group.recovery.failure;
      const counts = [group.outcomes.nonManifested, group.outcomes.sdc, group.recovery.success, group.recovery.failure, unrecovered];
      return counts.map((count, order) => ({
        config: group.config,
        faultType: group.faultType,
        mechanism,
        outcome: outcomeCategories[order].name,
        order,
        count,
        share: count / total,
        label: formatPercent(count / total),
      }));
    })
    .filter((value) => value.count > 0);
  if (values.length === 0) return emptyChart('No injected faults: no outcomes to show.');
  const faults = faultTypesOf(summary).filter((type) => values.some((value) => value.faultType === type));
  const mechanisms = mainLabels(summary);
  const present = outcomeCategories.filter((category) => values.some((value) => value.outcome === category.name));
  // Vega lays a row × column facet out as a full grid and misplaces cells when a combination is
  // missing: give every (configuration, fault type) a cell, drawn as "no trials" when empty.
  const placeholders = configurations(summary).flatMap((configuration) =>
    faults
      .filter((faultType) => !values.some((value) => value.config === configuration && value.faultType === faultType))
      .map((faultType) => ({ config: configuration, faultType, mechanism: mechanisms[0], outcome: present[0].name, order: 0, count: 0, share: 0, label: 'no injected faults', placeholder: true })),
  );
  return {
    $schema: SCHEMA,
    config,
    data: { values: [...values.map((value) => ({ ...value, placeholder: false })), ...placeholders] },
    transform: [
      { stack: 'share', groupby: ['config', 'faultType', 'mechanism'], sort: [{ field: 'order', order: 'ascending' }], as: ['start', 'end'] },
      { calculate: '(datum.start + datum.end) / 2', as: 'middle' },
    ],
    facet: {
      row: { field: 'faultType', type: 'nominal', sort: faults, title: null, header: { labelAngle: 0, labelAlign: 'right', labelPadding: 8 } },
      ...columnFacet(summary),
    },
    spec: {
      width: panelWidth(summary),
      height: { step: 24 },
      encoding: { y: { field: 'mechanism', type: 'nominal', title: null, sort: mechanisms } },
      layer: [
        {
          mark: { type: 'bar', stroke: 'white', strokeWidth: 1 },
          encoding: {
            x: { field: 'start', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'share of injected faults', tickCount: 5 } },
            x2: { field: 'end' },
            color: {
              field: 'outcome',
              type: 'nominal',
              title: null,
              sort: present.map((category) => category.name),
              scale: { domain: present.map((category) => category.name), range: present.map((category) => category.colour) },
              legend: { orient: 'top', direction: 'horizontal', columns: 5 },
            },
          },
        },
        {
          transform: [{ filter: '!datum.placeholder && datum.share >= 0.08' }],
          mark: { type: 'text', fontSize: 10 },
          encoding: {
            x: { field: 'middle', type: 'quantitative' },
            text: { field: 'label', type: 'nominal' },
            color: { condition: { test: "datum.outcome === 'non-manifested'", value: '#30343b' }, value: 'white' },
          },
        },
        {
          transform: [{ filter: 'datum.placeholder' }],
          mark: { type: 'text', fontSize: 11, fontStyle: 'italic', color: '#6b6f76', align: 'left', dx: 8 },
          encoding: { x: { datum: 0, type: 'quantitative' }, text: { field: 'label', type: 'nominal' } },
        },
      ],
    },
  } as TopLevelSpec;
}

/**
 * Service interruption (detection + recovery latency) per mechanism and fault type: a bar from
 * the median to the maximum, with marks at p50, p90, p99 and max, on a log scale (a reboot takes
 * hundreds of milliseconds, a reset tens).
 */
export function serviceInterruptionChart(summary: Summary): TopLevelSpec {
  const statistics = ['p50', 'p90', 'p99', 'max'] as const;
  const values = mainGroups(summary)
    .filter(({ group }) => attempted(group) > 0 && statistics.every((name) => Number.isFinite(group.serviceInterruptionMs[name]) && group.serviceInterruptionMs[name] > 0))
    .map(({ group, mechanism }) => ({
      config: group.config,
      faultType: group.faultType,
      mechanism,
      p50: group.serviceInterruptionMs.p50,
      p90: group.serviceInterruptionMs.p90,
      p99: group.serviceInterruptionMs.p99,
      max: group.serviceInterruptionMs.max,
      label: `${formatMs(group.serviceInterruptionMs.p50)} ms`,
    }));
  if (values.length === 0) return emptyChart('No recoveries: no service interruption to show.');
  const faults = faultTypesOf(summary).filter((type) => values.some((value) => value.faultType === type));
  const mechanisms = mainLabels(summary).filter((name) => values.some((value) => value.mechanism === name));
  const low = Math.min(...values.map((value) => value.p50));
  const high = Math.max(...values.map((value) => value.max));
  const ticks = logTicks(low / 1.25, high * 1.1);
  const domain = [ticks[0], ticks[ticks.length - 1]];
  const x = { type: 'quantitative' as const, scale: { type: 'log' as const, domain }, axis: { title: 'service interruption (ms, log scale)', values: ticks, format: ',~g', grid: true } };
  return perConfiguration(summary, { $schema: SCHEMA, config, data: { values }, resolve: { scale: { shape: 'shared', color: 'shared' } } }, {
      width: panelWidth(summary),
      height: { step: 22 },
      encoding: {
        y: { field: 'faultType', type: 'nominal', sort: faults, title: 'fault type' },
        yOffset: { field: 'mechanism', type: 'nominal', sort: mechanisms },
        color: { field: 'mechanism', type: 'nominal', title: 'mechanism', scale: mechanismScale(mechanisms), legend: { orient: 'top', direction: 'horizontal', symbolOpacity: 1 } },
      },
      layer: [
        { mark: { type: 'rule', strokeWidth: 3, opacity: 0.45 }, encoding: { x: { field: 'p50', ...x }, x2: { field: 'max' } } },
        {
          transform: [{ fold: [...statistics], as: ['statistic', 'ms'] }],
          mark: { type: 'point', filled: true, size: 55, opacity: 1 },
          encoding: {
            x: { field: 'ms', ...x },
            shape: {
              field: 'statistic',
              type: 'nominal',
              title: 'percentile',
              sort: [...statistics],
              scale: { domain: [...statistics], range: ['circle', 'diamond', 'triangle-up', 'square'] },
              legend: { orient: 'top', direction: 'horizontal' },
            },
          },
        },
        { mark: { type: 'text', align: 'right', dx: -8, fontSize: 10, color: '#30343b' }, encoding: { x: { field: 'p50', ...x }, text: { field: 'label', type: 'nominal' } } },
      ],
  });
}

/** 1-2-5 ticks covering [low, high] (0 < low <= high): ..., 10, 20, 50, 100, 200, ... */
export function logTicks(low: number, high: number): number[] {
  const candidates: number[] = [];
  for (let exponent = Math.floor(Math.log10(low)) - 1; exponent <= Math.ceil(Math.log10(high)) + 1; exponent++) {
    for (const step of [1, 2, 5]) candidates.push(Number((step * 10 ** exponent).toPrecision(1)));
  }
  const first = candidates.findLastIndex((tick) => tick <= low);
  const last = candidates.findIndex((tick) => tick >= high);
  return candidates.slice(Math.max(0, first), last === -1 ? candidates.length : last + 1);
}

/**
 * Ablation: recovery rate with its interval at each cumulative stage (rows, in order of
 * appearance), one panel per (configuration, mechanism) stacked vertically, colour per fault
 * type. Null when no group has a stage other than 'all'.
 */
export function ablationChart(summary: Summary): TopLevelSpec | null {
  const ablation = ablationCells(summary);
  if (ablation.length === 0) return null;
  const multipleConfigs = configurations(summary).length > 1;
  const panels = new Map<string, { stage: string; faultType: string; attempted: number; rate: number; low: number; high: number; label: string }[]>();
  for (const cell of ablation) {
    const panel = multipleConfigs ? `${cell.config} · ${cell.mechanism}` : cell.mechanism;
    const rows = panels.get(panel) ?? [];
    for (const group of cell.groups) {
      if (attempted(group) === 0) continue;
      rows.push({
        stage: group.stage,
        faultType: group.faultType,
        attempted: attempted(group),
        rate: group.recoveryRate.value,
        low: group.recoveryRate.low,
        high: group.recoveryRate.high,
        label: formatPercent(group.recoveryRate.value),
      });
    }
    panels.set(panel, rows);
  }
  const drawn = [...panels].filter(([, rows]) => rows.length > 0);
  if (drawn.length === 0) return emptyChart('No detected faults with a recovery attempt in the ablation stages.');
  const faults = faultTypesOf(summary).filter((type) => drawn.some(([, rows]) => rows.some((row) => row.faultType === type)));
  const colour = { field: 'faultType', type: 'nominal', title: 'fault type', sort: faults, scale: { domain: faults, range: faultColours.slice(0, faults.length) }, legend: { orient: 'top', direction: 'horizontal', symbolOpacity: 1 } };
  const panel = (title: string, rows: readonly { stage: string }[]) => ({
    title: { text: title, anchor: 'start', fontSize: 12, fontWeight: 600, color: '#30343b', font: CHART_FONT },
    data: { values: rows },
    width: 640,
    // with an offset channel the step is per fault type within a stage
    height: { step: faults.length > 1 ? 13 : 22 },
    encoding: {
      y: { field: 'stage', type: 'nominal', sort: [...new Set(rows.map((row) => row.stage))], title: null, axis: { labelLimit: 280 } },
      ...(faults.length > 1 ? { yOffset: { field: 'faultType', type: 'nominal', sort: faults } } : {}),
      color: colour,
    },
    layer: [
      {
        mark: { type: 'errorbar', ticks: { size: 6 }, thickness: 1.4 },
        encoding: {
          x: { field: 'low', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'recovery rate (95% Wilson CI)', tickCount: 5 } },
          x2: { field: 'high' },
        },
      },
      { mark: { type: 'point', filled: true, size: 50, opacity: 1 }, encoding: { x: { field: 'rate', type: 'quantitative' } } },
      { mark: { type: 'text', align: 'left', dx: 6, fontSize: 10, color: '#30343b' }, encoding: { x: { field: 'high', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } } },
    ],
  });
  return { $schema: SCHEMA, config, vconcat: drawn.map(([title, rows]) => panel(title, rows)), spacing: 24 } as unknown as TopLevelSpec;
}

export interface ReportChart {
  /** a short identifier, unique in a report (used to namespace the SVG's ids) */
  readonly id: string;
  readonly title: string;
  readonly caption: string;
  readonly spec: TopLevelSpec;
}

/** Every chart of a report, in order; the ablation chart only when there are stages. */
export function reportCharts(summary: Summary): ReportChart[] {
  const charts: ReportChart[] = [
    {
      id: 'recovery-rate',
      title: 'Recovery rate',
      caption: 'Recovered / detected faults on which recovery ran, per mechanism and fault type; bars are 95% Wilson intervals.',
      spec: recoveryRateChart(summary),
    },
    {
      id: 'outcomes',
      title: 'Outcomes',
      caption: 'What became of every injected fault: masked (non-manifested), silent data corruption, or detected, with what recovery did.',
      spec: outcomeSharesChart(summary),
    },
    {
      id: 'service-interruption',
      title: 'Service interruption',
      caption: 'Detection latency plus recovery latency over all recovery attempts: the line runs from the median to the maximum; log scale.',
      spec: serviceInterruptionChart(summary),
    },
  ];
  const tradeoff = tradeoffChart(summary, { config, schema: SCHEMA, mechanismScale, logTicks });
  if (tradeoff !== null) {
    charts.push({
      id: 'tradeoff',
      title: 'Repair or replace',
      caption: 'Recovered / injected faults against the median service interruption (log scale), per mechanism and fault type; point size is the overhead when nothing fails (failover: replication to a backup host); a hollow point at the left edge recovered nothing, so it has no service interruption.',
      spec: tradeoff,
    });
  }
  const ablation = ablationChart(summary);
  if (ablation !== null) {
    charts.push({
      id: 'ablation',
      title: 'Ablation',
      caption: 'Recovery rate at each cumulative stage of a mechanism’s repairs, on the same faults; bars are 95% Wilson intervals.',
      spec: ablation,
    });
  }
  return charts;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/**
 * Advance widths of Helvetica (and its metric twins Arial and Liberation Sans), in 1/1000 em,
 * for ASCII 32-126. Without a canvas vega estimates every character at 0.8 em, which makes axis
 * labels and legends far wider than drawn and the layout loose; this table fixes that.
 */
const helveticaWidths = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611,
  778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556,
  556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

function textWidth(text: string, fontSize: number, bold: boolean): number {
  let units = 0;
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    units += code >= 32 && code <= 126 ? helveticaWidths[code - 32] : 600;
  }
  return (units / 1000) * fontSize * (bold ? 1.06 : 1);
}

interface TextItem {
  readonly text?: unknown;
  readonly fontSize?: number;
  readonly fontWeight?: string | number;
}

interface TextMetrics {
  width: (item: TextItem, text?: unknown) => number;
}

let metricsInstalled = false;

/** Replaces vega's text width estimate (a module-level hook vega offers for this purpose). */
function installTextMetrics(): void {
  if (metricsInstalled) return;
  const metrics = (vega as unknown as { textMetrics?: TextMetrics }).textMetrics;
  if (metrics === undefined) return;
  metrics.width = (item, text) => {
    const value = text ?? item.text;
    const line = Array.isArray(value) ? value.map(String).reduce((a, b) => (a.length >= b.length ? a : b), '') : value === undefined || value === null ? '' : String(value);
    const weight = item.fontWeight;
    const bold = weight === 'bold' || (typeof weight === 'number' && weight >= 600) || (typeof weight === 'string' && Number(weight) >= 600);
    return textWidth(line, item.fontSize ?? 11, bold);
  };
  metricsInstalled = true;
}

/**
 * Renders a Vega-Lite spec to a standalone SVG document string, headless (no DOM, no canvas).
 * Deterministic: the SVG's clip and gradient ids restart at each call.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  installTextMetrics();
  // Vega-Lite's warnings (layout hints) are not the report's business; errors still throw.
  const compiled = compile(spec, { logger: vega.logger(vega.Error) }).spec;
  (vega as unknown as { resetSVGDefIds?: () => void }).resetSVGDefIds?.();
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
