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
export function escapeCampaignText(summary: Summary): Summary {
  return { ...summary, groups: summary.groups.map((group) => ({ ...group, stage: escapeMarkdown(group.stage) })) };
}
