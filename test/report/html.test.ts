/**
 * report.html is one self-contained file: inline CSS and SVG, nothing to fetch, one drawn SVG
 * per chart, and the main tables.
 */
import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/results/summary.js';
import { reportCharts } from '../../src/report/charts.js';
import { escapeHtml, inlineSvg, renderHtml } from '../../src/report/html.js';
import { ablationCampaign, pairedCampaign, undetectedCampaign } from './samples.js';

const context = { title: 'Reset <vs> reboot & co', generatedBy: 'ninelives run campaigns/test.json --out "reports/x"' };

function svgsOf(html: string): string[] {
  return html.match(/<svg\b[\s\S]*?<\/svg>/g) ?? [];
}

function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/https?:/i);
  expect(html).not.toMatch(/<script\b/i);
  expect(html).not.toMatch(/<link\b/i);
  expect(html).not.toMatch(/<img\b/i);
  expect(html).not.toMatch(/@import|url\((?!#)/i);
  expect(html).not.toContain('NaN');
}

describe('renderHtml', () => {
  it('is self-contained, with one drawn SVG per chart and the tables', async () => {
    const summary = summarize('paired', 42, [...pairedCampaign(), ...ablationCampaign()]);
    const html = await renderHtml(summary, context);
    expectSelfContained(html);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<style>');
    const charts = reportCharts(summary);
    expect(charts).toHaveLength(4);
    const svgs = svgsOf(html);
    expect(svgs).toHaveLength(charts.length);
    expect((html.match(/<svg\b/g) ?? []).length).toBe(charts.length);
    for (const svg of svgs) {
      expect(svg).toMatch(/<path\b/);
      expect(svg).toMatch(/<rect\b/);
      expect(svg).toContain('<text');
    }
    for (const chart of charts) expect(html).toContain(`id="figure-${chart.id}"`);
    // the title and command are escaped
    expect(html).toContain('<h1>Reset &lt;vs&gt; reboot &amp; co</h1>');
    expect(html).toContain('<code>ninelives run campaigns/test.json --out &quot;reports/x&quot;</code>');
    // the main table's numbers, as in the Markdown
    expect(html).toContain('<td class="right">83.3% [43.6, 97.0]</td>');
    expect(html).toContain('<td class="right">705.0</td>');
    expect(html).toContain('<h2>Ablation</h2>');
    expect(html).toContain('<h2>Paired comparisons</h2>');
  });

  it('ids are unique across the inline SVGs', async () => {
    const html = await renderHtml(summarize('paired', 42, [...pairedCampaign(), ...ablationCampaign()]), context);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((match) => match[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [, reference] of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(reference);
  });

  it('renders campaigns with no detections, and no trials at all', async () => {
    for (const entries of [undetectedCampaign(), []]) {
      const html = await renderHtml(summarize('undetected', 1, entries), context);
      expectSelfContained(html);
      expect(svgsOf(html)).toHaveLength(3);
    }
  });

  it('is deterministic', async () => {
    const summary = summarize('paired', 42, pairedCampaign());
    expect(await renderHtml(summary, context)).toBe(await renderHtml(summary, context));
  });
});

describe('inlineSvg', () => {
  it('drops namespace declarations and prefixes ids and their references', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10"><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use href="#clip1"/></g></svg>';
    expect(inlineSvg(svg, 'chart')).toBe(
      '<svg role="img" aria-label="chart chart" width="10"><defs><clipPath id="chart-clip1"><rect/></clipPath></defs><g clip-path="url(#chart-clip1)"><use href="#chart-clip1"/></g></svg>',
    );
  });

  it('escapeHtml escapes the five', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
