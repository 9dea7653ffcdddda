/**
 * A trial's timeline as ONE self-contained HTML page: an SVG (vega-lite, rendered headless as the
 * report's charts are) with a lane per CPU (guest, hypervisor handler by name, idle, held by
 * recovery), a row per recovery step with its modelled cost, and the fault, the detection and the
 * guest-visible events; then the events as a list, the footprint when triage computed one, and
 * the record.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Footprint, TrialDiagnosis } from '../results/triage.js';
import type { TrialRecord } from '../trial/record.js';
import type { TrialTimeline } from '../trial/timeline.js';
import { CHART_FONT, renderSvg } from './charts.js';
import { escapeHtml, inlineSvg } from './html.js';

const activityColors: Readonly<Record<string, string>> = {
  guest: '#8fbf7f',
  hypervisor: '#3b6fb6',
  idle: '#e3e5e8',
  recovery: '#d9822b',
  stopped: '#b33a3a',
};

/** A handler's name is drawn on its segment when the segment is at least this share of the window. */
const LABEL_SHARE = 0.04;

/** The layers of the timeline's top-level spec. */
type LayerSpecs = Extract<TopLevelSpec, { layer: unknown }>['layer'];

export function timelineSpec(timeline: TrialTimeline): TopLevelSpec {
  const ms = (ns: number): number => ns / 1_000_000;
  const times = [...timeline.segments.flatMap((segment) => [segment.startNs, segment.endNs]), ...timeline.events.flatMap((event) => [event.timeNs, event.endNs ?? event.timeNs])];
  const windowNs = Math.max(1, Math.max(...times) - Math.min(...times));
  const cpuLanes = Array.from({ length: timeline.cpuCount }, (_, cpu) => `cpu ${cpu}`);
  const steps = timeline.events.filter((event) => event.kind === 'recovery step');
  const marks = timeline.events.filter((event) => event.kind !== 'recovery step');
  const markLanes = uniqueNames(marks.map((event) => event.kind));
  const stepLanes = uniqueNames(steps.map((step) => step.label.replace(/ \(.*$/, '')));
  const lanes = [...cpuLanes, ...stepLanes, ...markLanes];
  const segments = timeline.segments.map((segment) => ({ lane: `cpu ${segment.cpu}`, start: ms(segment.startNs), end: ms(segment.endNs), activity: segment.activity, handler: segment.handler ?? '' }));
  const labels = timeline.segments
    .filter((segment) => segment.handler !== undefined && segment.endNs - segment.startNs >= LABEL_SHARE * windowNs)
    .map((segment) => ({ lane: `cpu ${segment.cpu}`, start: ms(segment.startNs), text: segment.handler }));
  const stepRows = steps.map((step, index) => ({ lane: stepLanes[index], start: ms(step.timeNs), end: ms(Math.max(step.endNs ?? step.timeNs, step.timeNs + windowNs / 400)), text: step.label }));
  const eventRows = marks.map((event, index) => ({ lane: markLanes[index], time: ms(event.timeNs), kind: event.kind, text: event.label }));
  const y = { field: 'lane', type: 'nominal' as const, sort: lanes, title: null, scale: { domain: lanes } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 900,
    height: 18 * lanes.length,
    // the legend below the lanes: to their right it covered the labels of events near the end
    config: { font: CHART_FONT, view: { stroke: null }, legend: { orient: 'bottom' } },
    // a layer without rows is left out (vega-lite warns of an infinite extent for it)
    layer: [
      {
        data: { values: segments },
        mark: { type: 'bar', height: 14 },
        encoding: {
          x: { field: 'start', type: 'quantitative', title: 'simulated time (ms)', scale: { zero: false } },
          x2: { field: 'end' },
          y,
          color: { field: 'activity', type: 'nominal', title: 'CPU', scale: { domain: Object.keys(activityColors), range: Object.values(activityColors) } },
        },
      },
      { data: { values: labels }, mark: { type: 'text', align: 'left', dx: 2, fontSize: 9, color: 'white' }, encoding: { x: { field: 'start', type: 'quantitative' }, y, text: { field: 'text' } } },
      { data: { values: stepRows }, mark: { type: 'bar', height: 12, color: activityColors.recovery }, encoding: { x: { field: 'start', type: 'quantitative' }, x2: { field: 'end' }, y } },
      { data: { values: stepRows }, mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, limit: LABEL_LIMIT_PX }, encoding: { x: { field: 'end', type: 'quantitative' }, y, text: { field: 'text' } } },
      { data: { values: eventRows }, mark: { type: 'rule', strokeDash: [3, 3], color: '#5b616b' }, encoding: { x: { field: 'time', type: 'quantitative' } } },
      { data: { values: eventRows }, mark: { type: 'point', filled: true, size: 50, color: '#1f2329' }, encoding: { x: { field: 'time', type: 'quantitative' }, y } },
      { data: { values: eventRows }, mark: { type: 'text', align: 'left', dx: 6, fontSize: 10, limit: LABEL_LIMIT_PX }, encoding: { x: { field: 'time', type: 'quantitative' }, y, text: { field: 'text' } } },
    ].filter((layer) => layer.data.values.length > 0) as LayerSpecs,
  };
}

/** Labels in the chart are cut at this width (the events list below the chart has them whole). */
const LABEL_LIMIT_PX = 320;

/** Names made unique by numbering repeats (`guest`, `guest 2`). */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name} ${count}`;
  });
}

export interface TimelinePageOptions {
  readonly title: string;
  readonly footprint?: Footprint;
  /** the trial's restoring set and repairing steps, when triage found them */
  readonly diagnosis?: TrialDiagnosis;
  /** the other mechanisms' records for the same fault, shown side by side */
  readonly others?: readonly { readonly label: string; readonly record: TrialRecord }[];
}

const restoringPointText = {
  detection: "at the detection (the detecting CPU's registers at its trap, before its exception is delivered)",
  afterRecovery: 'just before the CPUs run again',
  checkpoint: 'at the first checkpoint after the fault, then run on to the end',
} as const;

export async function renderTimelinePage(timeline: TrialTimeline, options: TimelinePageOptions): Promise<string> {
  const svg = timeline.segments.length === 0 && timeline.events.length === 0 ? '<p>The fault was not injected: nothing to show.</p>' : inlineSvg(await renderSvg(timelineSpec(timeline)), 'timeline');
  const body = [
    `<h1>${escapeHtml(options.title)}</h1>`,
    `<p class="note">Replay: <code>${escapeHtml(timeline.record.replay)}</code></p>`,
    `<figure>${svg}<figcaption>Lanes: what each CPU was doing (sampled), each recovery step over its modelled cost, and the events. Time is simulated.</figcaption></figure>`,
    '<h2>Events</h2>',
    '<ol>',
    ...timeline.events.map((event) => `<li><span class="time">${(event.timeNs / 1_000_000).toFixed(4)} ms</span> ${escapeHtml(event.label)}</li>`),
    '</ol>',
    ...(options.footprint === undefined ? [] : footprintHtml(options.footprint)),
    ...(options.diagnosis === undefined ? [] : diagnosisHtml(options.diagnosis)),
    ...recordsHtml(timeline.record, options.others ?? []),
  ];
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escapeHtml(options.title)}</title>`,
    `<style>body { font: 14px/1.5 ${CHART_FONT}; margin: 32px; color: #1f2329; } svg { max-width: 100%; height: auto; } pre { background: #f6f7f9; padding: 12px; overflow-x: auto; } .time { font-variant-numeric: tabular-nums; color: #5b616b; } .note { color: #5b616b; } .records { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function diagnosisHtml(diagnosis: TrialDiagnosis): string[] {
  const restoring = diagnosis.restoring;
  const regions = restoring.kind === 'none' ? 'none within the footprint' : restoring.regions.map((region) => `<code>${escapeHtml(region)}</code>`).join(' ');
  const bound = restoring.kind === 'exhausted' ? ` (search out of bounds: ${escapeHtml(restoring.reason)})` : '';
  return [
    '<h2>Counterfactual repair</h2>',
    `<p><strong>Minimal restoring set</strong> (set back ${restoringPointText[restoring.point]}): ${regions}${bound}; ${restoring.reruns} re-runs.</p>`,
    `<p><strong>Repaired by</strong> (a switched-off step switched on alone): ${diagnosis.repairedBy.length === 0 ? 'none' : diagnosis.repairedBy.map((step) => `<code>${escapeHtml(step)}</code>`).join(' ')}</p>`,
    `<p><strong>Audit after recovery:</strong> ${diagnosis.auditAfterRecovery.length === 0 ? 'clean' : escapeHtml(diagnosis.auditAfterRecovery.join('; '))}</p>`,
  ];
}

/** The trial's record, and beside it the other mechanisms' records for the same fault. */
function recordsHtml(record: TrialRecord, others: readonly { readonly label: string; readonly record: TrialRecord }[]): string[] {
  const column = (label: string, shown: TrialRecord): string => `<div><h3>${escapeHtml(label)}</h3><pre>${escapeHtml(JSON.stringify(shown, null, 2))}</pre></div>`;
  return ['<h2>Records</h2>', `<div class="records">${[column(`${record.mechanism} (this trial)`, record), ...others.map((other) => column(other.label, other.record))].join('')}</div>`];
}

function footprintHtml(footprint: Footprint): string[] {
  const hex = (value: number | string): string => (typeof value === 'number' ? `0x${(value >>> 0).toString(16)}` : value);
  const differences = (title: string, regions: Footprint['atDetection']): string =>
    `<p><strong>${escapeHtml(title)}:</strong> ${regions.length === 0 ? 'none' : regions.map((difference) => `<code title="${escapeHtml(`${difference.words} word(s) differ`)}">${escapeHtml(difference.region)}</code> <span class="note">${hex(difference.trialValue)} → ${hex(difference.goldenValue)}</span>`).join('; ')}</p>`;
  const list = (title: string, regions: readonly string[]): string => `<p><strong>${escapeHtml(title)}:</strong> ${regions.length === 0 ? 'none' : regions.map((region) => `<code>${escapeHtml(region)}</code>`).join(' ')}</p>`;
  return [
    '<h2>Footprint</h2>',
    '<p class="note">State that differs from the fault-free run at the same point (progress of clocks and counters, and of CPUs out of step, left out); each region with its first differing word, this trial\'s value → the fault-free run\'s.</p>',
    differences('At the detection', footprint.atDetection),
    differences('After recovery', footprint.afterRecovery ?? []),
    list('Touched by the fault', footprint.touchedByFault),
    list('Left half-done by abandoned work', footprint.leftHalfDone),
  ];
}
