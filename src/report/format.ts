/**
 * Numbers for humans: percentages with one decimal, milliseconds with one to three decimals by
 * magnitude, p-values, and counts with thousands separators. A missing value (NaN) is a dash,
 * never "NaN%".
 */
import type { Interval } from '../results/statistics.js';

export const MISSING = '—';

/** 0.9234 -> "92.3%" */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return MISSING;
  return `${(fraction * 100).toFixed(1)}%`;
}

/** A share of a whole, or a dash when the whole is empty. */
export function formatShare(part: number, whole: number): string {
  return whole === 0 ? MISSING : formatPercent(part / whole);
}

/** The point estimate with its interval: "92.3% [88.1, 95.2]". */
export function formatInterval(interval: Interval): string {
  if (!Number.isFinite(interval.value)) return MISSING;
  return `${formatPercent(interval.value)} [${(interval.low * 100).toFixed(1)}, ${(interval.high * 100).toFixed(1)}]`;
}

/** Milliseconds: 712.4, 22.3, 4.57, 0.083 (one to three decimals, more for small values). */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return MISSING;
  const magnitude = Math.abs(ms);
  const decimals = magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return ms.toFixed(decimals);
}

/** Milliseconds with their unit: "22.3 ms". */
export function formatMsUnit(ms: number): string {
  const text = formatMs(ms);
  return text === MISSING ? text : `${text} ms`;
}

/** Exact p-values: "< 0.001", "0.031", "1.000". */
export function formatPValue(p: number): string {
  if (!Number.isFinite(p)) return MISSING;
  if (p < 0.001) return '< 0.001';
  return p.toFixed(3);
}

/** 12345 -> "12,345" (fixed locale, so reports do not depend on the machine's). */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return MISSING;
  return Math.round(count).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Percentage points between two rates: "+12.3 pp", "−4.0 pp". */
export function formatPointDifference(fraction: number): string {
  if (!Number.isFinite(fraction)) return MISSING;
  const points = fraction * 100;
  const rounded = Number(points.toFixed(1));
  if (rounded === 0) return '±0.0 pp';
  return `${rounded > 0 ? '+' : '−'}${Math.abs(rounded).toFixed(1)} pp`;
}
