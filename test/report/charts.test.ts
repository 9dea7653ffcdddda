/**
 * Chart specs are built from the summary's groups, compile, and render to SVG headless; a chart
 * with nothing to show renders a message instead of throwing.
 */
import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/results/summary.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ablationChart, logTicks, mechanismScale, outcomeSharesChart, recoveryRateChart, renderSvg, reportCharts, serviceInterruptionChart } from '../../src/report/charts.js';
import { tradeoffChart } from '../../src/report/tradeoff-chart.js';
import type { Summary } from '../../src/results/summary.js';
import { detected } from './fixtures.js';
import { ablationCampaign, pairedCampaign, undetectedCampaign } from './samples.js';

function valuesOf(spec: unknown): Record<string, unknown>[] {
  return ((spec as { data: { values: Record<string, unknown>[] } }).data.values ?? []).slice();
}

/** Drawn marks: paths (symbols, bars, error bars, lines) or rects, beyond the background. */
function countMarks(svg: string): number {
  return (svg.match(/<path\b/g) ?? []).length + (svg.match(/<line\b/g) ?? []).length + (svg.match(/<rect\b/g) ?? []).length - 1;
}

describe('chart specs', () => {
  const summary = summarize('paired', 42, pairedCampaign());

  it('recovery rate: one point per mechanism and fault type, with its Wilson interval', () => {
    const values = valuesOf(recoveryRateChart(summary));
    expect(values.map((value) => value.mechanism)).toEqual(['microreset', 'microreboot']);
    expect(values[0]).toMatchObject({ faultType: 'register', rate: 5 / 6, label: '83.3%', n: 6 });
    expect(values[0].low as number).toBeCloseTo(0.4365, 3);
    expect(values[0].high as number).toBeCloseTo(0.9699, 3);
  });

  it('outcome shares: each bar sums to the injected faults', () => {
    const values = valuesOf(outcomeSharesChart(summary)).filter((value) => value.placeholder === false);
    for (const mechanism of ['microreset', 'microreboot']) {
      const shares = values.filter((value) => value.mechanism === mechanism);
      expect(shares.reduce((sum, value) => sum + (value.share as number), 0)).toBeCloseTo(1, 12);
      expect(shares.map((value) => value.outcome)).toEqual(['non-manifested', 'SDC', 'detected, recovered', 'detected, recovery failed']);
    }
  });

  it('service interruption: the percentiles of each group', () => {
    const values = valuesOf(serviceInterruptionChart(summary));
    expect(values.map(({ mechanism, p50, p90, p99, max }) => ({ mechanism, p50, p90, p99, max }))).toEqual([
      { mechanism: 'microreset', p50: 24, p90: 40, p99: 40, max: 40 },
      { mechanism: 'microreboot', p50: 705, p90: 730, p99: 730, max: 730 },
    ]);
  });

  it('ablation: none without stages; the stages in order otherwise', () => {
    expect(ablationChart(summary)).toBeNull();
    const spec = ablationChart(summarize('ablation', 7, ablationCampaign())) as unknown as { vconcat: { data: { values: { stage: string; rate: number }[] } }[] };
    expect(spec.vconcat).toHaveLength(1);
    expect(spec.vconcat[0].data.values.map(({ stage, rate }) => [stage, rate])).toEqual([
      ['0 no repairs', 0.25],
      ['1 + clear-irq-count', 0.5],
      ['2 + release-heap-locks', 1],
    ]);
  });

  it('reportCharts: three charts, four with ablation', () => {
    expect(reportCharts(summary).map((chart) => chart.id)).toEqual(['recovery-rate', 'outcomes', 'service-interruption']);
    expect(reportCharts(summarize('ablation', 7, [...pairedCampaign(), ...ablationCampaign()])).map((chart) => chart.id)).toEqual(['recovery-rate', 'outcomes', 'service-interruption', 'ablation']);
  });

  it('log ticks run 1-2-5 around the data', () => {
    expect(logTicks(19, 1180)).toEqual([10, 20, 50, 100, 200, 500, 1000, 2000]);
    expect(logTicks(0.5, 0.9)).toEqual([0.5, 1]);
  });
});

describe('renderSvg', () => {
  it('draws every chart of a campaign with marks', async () => {
    const summary = summarize('both', 42, [...pairedCampaign(), ...ablationCampaign(), detected({ trialIndex: 0, config: '3AppVM', faultType: 'memory' }, { recovered: true, serviceInterruptionMs: 19 })]);
    for (const chart of reportCharts(summary)) {
      const svg = await renderSvg(chart.spec);
      expect(svg.startsWith('<svg'), chart.id).toBe(true);
      expect(svg.endsWith('</svg>'), chart.id).toBe(true);
      expect(countMarks(svg), chart.id).toBeGreaterThan(4);
      expect(svg, chart.id).toContain('<text');
    }
  });

  it('is deterministic', async () => {
    const spec = recoveryRateChart(summarize('paired', 42, pairedCampaign()));
    expect(await renderSvg(spec)).toBe(await renderSvg(spec));
  });

  it('no detections, or no trials at all: charts say so instead of throwing', async () => {
    for (const entries of [undetectedCampaign(), []]) {
      const summary = summarize('undetected', 1, entries);
      const charts = reportCharts(summary);
      expect(charts).toHaveLength(3);
      for (const chart of charts) {
        const svg = await renderSvg(chart.spec);
        expect(svg).toContain('<svg');
      }
      expect(await renderSvg(recoveryRateChart(summary))).toContain('No detected faults');
      expect(await renderSvg(serviceInterruptionChart(summary))).toContain('No recoveries');
    }
  });
});

describe('the repair-or-replace chart', () => {
  const summary = JSON.parse(readFileSync(join(import.meta.dirname, '../../reports/replication/summary.json'), 'utf8')) as Summary;
  const style = { config: {}, schema: 'schema', mechanismScale, logTicks };
  type Layer = { data: { values: { mechanism: string; interruptionMs: number; recoveredAny?: boolean; label: string }[] }; encoding: { x: { scale: { domain: number[] } }; color?: { scale: { domain: string[]; range: string[] } } } };

  it('puts a group that recovered nothing at the log axis\'s left edge, hollow and named, never at 0 ms', () => {
    const spec = tradeoffChart(summary, style) as unknown as { layer: Layer[] };
    const [points] = spec.layer;
    const [leftEdge] = points.encoding.x.scale.domain;
    expect(leftEdge).toBeGreaterThan(0);
    expect(points.data.values.every((value) => value.interruptionMs >= leftEdge)).toBe(true);
    const none = points.data.values.filter((value) => value.recoveredAny === false);
    for (const value of none) expect(value.interruptionMs).toBe(leftEdge);
    const labels = spec.layer.flatMap((layer) => layer.data.values.map((value) => value.label));
    for (const value of none) expect(labels.some((label) => label.includes(value.mechanism) && label.includes('recovered none'))).toBe(true);
  });

  it('gives each mechanism the colour it has in the other charts', () => {
    const spec = tradeoffChart(summary, style) as unknown as { layer: Layer[] };
    const scale = spec.layer[0].encoding.color?.scale;
    const mechanisms = scale?.domain ?? [];
    expect(mechanisms.length).toBeGreaterThan(1);
    expect(scale).toEqual(mechanismScale(mechanisms));
  });
});
