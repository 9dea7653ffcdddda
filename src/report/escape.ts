/**
 * Text from a campaign file (its description, its mechanism labels) shown in report.md as the
 * text it is: characters that Markdown or the HTML it may hold would read as markup are
 * escaped, and line breaks become spaces, so a label can neither format nor link nor inject.
 */
import type { Summary } from '../results/summary.js';

/**
 * Backslash-escape what Markdown reads as markup within a line (emphasis, code, links, images,
 * strikethrough, table pipes) and what starts a block at the start of one (headings, lists,
 * quotes); `<`, `>` and `&` become HTML entities, so no tag or autolink survives.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ')
    .replace(/[\\`*_[\]|~!]/g, (character) => `\\${character}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/^(\s*)([#+-]|\d+[.)])/, '$1\\$2');
}

/** The summary with the text that came from the campaign file escaped: the stage labels. */
/**
 * `text` as a Markdown code span that shows it exactly (CommonMark): fenced by one backtick more
 * than its longest run of them, and padded where it starts or ends with one (or with spaces at
 * both ends), so that a command
 * holding backticks is shown, and copied, as it is (they were replaced by quotes before, which
 * changed what the command does).
 */
export function codeSpan(text: string): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  // a reader takes one space off each end of a span that begins and ends with one
  const strippable = text.startsWith(' ') && text.endsWith(' ') && text.trim() !== '';
  const padding = text.startsWith('`') || text.endsWith('`') || strippable ? ' ' : '';
  return `${fence}${padding}${text}${padding}${fence}`;
}

export function escapeCampaignText(summary: Summary): Summary {
  return { ...summary, groups: summary.groups.map((group) => ({ ...group, stage: escapeMarkdown(group.stage) })) };
}
