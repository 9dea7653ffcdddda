/**
 * Issue 14, points 7 and 8: output formats are safe to open, and every variant is shown.
 * - A CSV text cell never begins with what a spreadsheet runs as a formula (=, +, -, @, tab,
 *   carriage return), whatever the text; numbers keep their sign.
 * - Text from a campaign file (stage labels, the description) cannot add rows, cells, links,
 *   images, tags or headings to report.md, whatever it holds.
 * - Labelled mechanism variants each get their own labelled row in the main table and their own
 *   series in the charts; a campaign without `ablation: true` has no Ablation section.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { summarize, type CampaignRecord } from '../../src/results/summary.js';
import { serviceInterruptionChart, recoveryRateChart } from '../../src/report/charts.js';
import { csvField, csvLine } from '../../src/report/csv.js';
import { codeSpan, escapeMarkdown } from '../../src/report/escape.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { detected, nonManifested } from './fixtures.js';

const context = { title: 'labels', generatedBy: 'ninelives run labels.yaml' };

/** An unquoted CSV field's text: RFC 4180 quotes removed. */
function unquoted(field: string): string {
  return field.startsWith('"') ? field.slice(1, -1).replace(/""/g, '"') : field;
}

describe('CSV cells', () => {
  it('a text cell never begins with a formula character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(unquoted(csvField(text))).not.toMatch(/^[=+\-@\t\r]/);
      }),
    );
  });

  it('keeps text that is not a formula as it is, and numbers with their sign', () => {
    fc.assert(
      fc.property(fc.string().filter((text) => !/^[=+\-@\t\r]/.test(text)), (text) => {
        expect(unquoted(csvField(text))).toBe(text);
      }),
    );
    expect(csvField(-5)).toBe('-5');
    expect(csvField('-5')).toBe("'-5");
  });

  it('a stage label from a campaign file is neutralised in its row', () => {
    const entry = labelled('=HYPERLINK("http://example.com")', 0);
    const stage = csvLine(entry).split(',')[4];
    expect(unquoted(stage)).toBe('\'=HYPERLINK("http://example.com")');
  });
});

/** A microreset trial under a stage label, detected and recovered. */
function labelled(stage: string, trialIndex: number): CampaignRecord {
  const entry = detected({ mechanism: 'microreset', stage, trialIndex, disabledSteps: ['clear-irq-count'] }, { recovered: true, serviceInterruptionMs: 30 });
  return { ...entry, id: `1AppVM/register/microreset/${stage}/${trialIndex}`, stage };
}

/** The main table's rows of report.md: the first table after "## Results", without its header. */
function mainTableRows(markdown: string): string[] {
  const lines = markdown.slice(markdown.indexOf('## Results')).split('\n');
  const start = lines.findIndex((line) => line.startsWith('| '));
  const end = lines.findIndex((line, index) => index > start && !line.startsWith('| '));
  return lines.slice(start + 2, end);
}

/** Cells of a Markdown table row, splitting on pipes that are not escaped. */
function cells(row: string): string[] {
  return row.slice(2, -2).split(/(?<!\\) \| /);
}

describe('campaign text in report.md', () => {
  it('a stage label stays in its one cell and adds no markup', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }).filter((text) => text.trim() !== '' && text !== 'all'), (label) => {
        const entries = [detected({ mechanism: 'microreset', trialIndex: 0 }, { recovered: true, serviceInterruptionMs: 20 }), labelled(label, 0)];
        const markdown = renderMarkdown(summarize('labels', 1, entries), context);
        const rows = mainTableRows(markdown).slice(0, 2);
        expect(rows).toHaveLength(2);
        for (const row of rows) expect(cells(row)).toHaveLength(13);
        const labelCell = cells(rows[1])[1];
        expect(labelCell).not.toMatch(/<|>|(?<!\\)\[|(?<!\\)`|(?<!\\)\*/);
      }),
    );
  });

  it('the description is one escaped paragraph, never a heading, a tag or a link', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (description) => {
        const escaped = escapeMarkdown(description);
        expect(escaped).not.toMatch(/[\r\n<>]/);
        expect(escaped).not.toMatch(/^\s*(#|[-+] |\d+[.)])/);
        expect(escaped).not.toMatch(/(?<!\\)[[\]`*_|]/);
      }),
    );
    const markdown = renderMarkdown(summarize('labels', 1, [nonManifested({ trialIndex: 0 })]), { ...context, description: '# Big <script>x</script> [link](http://e)' });
    expect(markdown).toContain('\\# Big &lt;script&gt;x&lt;/script&gt; \\[link\\](http://e)');
  });
});

describe('a command shown as a code span', () => {
  /** What CommonMark reads from a code span: between the fences, one padding space off each end. */
  function readCodeSpan(span: string): string {
    const fence = /^`+/.exec(span)?.[0] ?? '';
    const inner = span.slice(fence.length, span.length - fence.length);
    expect(span.endsWith(fence)).toBe(true);
    // the fence's run appears nowhere inside, so the span ends where it should
    expect(inner.match(/`+/g)?.every((run) => run.length !== fence.length) ?? true).toBe(true);
    return inner.length >= 2 && inner.startsWith(' ') && inner.endsWith(' ') && inner.trim() !== '' ? inner.slice(1, -1) : inner;
  }

  it('shows any command exactly, backticks and all (they were turned into quotes, which changed the command)', () => {
    expect(codeSpan("ninelives run c.yaml --out 'inj`;touch PWNED;`'")).toBe("``ninelives run c.yaml --out 'inj`;touch PWNED;`'``");
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('`', ' ', 'a', "'", ';') }).filter((text) => text.trim() !== ''), (text) => {
        expect(readCodeSpan(codeSpan(text))).toBe(text);
      }),
    );
  });
});

describe('labelled mechanism variants', () => {
  const entries: CampaignRecord[] = [];
  for (let trialIndex = 0; trialIndex < 3; trialIndex++) {
    entries.push(detected({ mechanism: 'microreset', trialIndex }, { recovered: true, serviceInterruptionMs: 20 }));
    entries.push(labelled('no irq count', trialIndex));
    entries.push(detected({ mechanism: 'microreboot', trialIndex }, { recovered: true, serviceInterruptionMs: 700 }));
  }
  const summary = summarize('labels', 1, entries);

  it('each has its own labelled row, the full mechanism first, and there is no Ablation section', () => {
    const markdown = renderMarkdown(summary, context);
    expect(mainTableRows(markdown).slice(0, 3).map((row) => cells(row)[1])).toEqual(['microreset', 'microreset (no irq count)', 'microreboot']);
    expect(markdown).not.toContain('## Ablation');
  });

  it('each is its own series in the recovery-rate and service-interruption charts', () => {
    for (const chart of [recoveryRateChart(summary), serviceInterruptionChart(summary)]) {
      const values = (chart as unknown as { data: { values: { mechanism: string }[] } }).data.values;
      expect([...new Set(values.map((value) => value.mechanism))]).toEqual(['microreset', 'microreset (no irq count)', 'microreboot']);
    }
  });
});
