/**
 * Repair against replace: per mechanism and fault type, the recovery rate (share of injected
 * faults recovered, so that a fault nothing detected counts as not recovered) against the median
 * service interruption, with the overhead when nothing fails as the point's size. Drawn for
 * summaries that carry the cost (campaigns with failover).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Summary } from '../results/summary.js';
import { injected, mainRows } from './groups.js';

export function tradeoffChart(summary: Summary, config: unknown, schema: string): TopLevelSpec | null {
  const groups = mainRows(summary).map(({ group }) => group);
  if (!groups.some((group) => group.overheadPercent !== undefined)) return null;
  const values = groups
    .filter((group) => injected(group) > 0)
    .map((group) => ({
      config: group.config,
      mechanism: group.mechanism,
      faultType: group.faultType,
      recovered: group.recovery.success / injected(group),
      interruptionMs: Number.isFinite(group.serviceInterruptionMs.p50) ? group.serviceInterruptionMs.p50 : 0,
      overheadPercent: group.overheadPercent ?? 0,
    }));
  return {
    $schema: schema,
    config,
    width: 520,
    height: 280,
    data: { values },
    mark: { type: 'point', filled: true, opacity: 0.8 },
    encoding: {
      x: { field: 'interruptionMs', type: 'quantitative', title: 'service interruption p50 (ms)' },
      y: { field: 'recovered', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'recovered / injected' } },
      size: { field: 'overheadPercent', type: 'quantitative', title: 'overhead (%)', scale: { range: [60, 600] } },
      color: { field: 'mechanism', type: 'nominal', title: 'mechanism' },
      shape: { field: 'faultType', type: 'nominal', title: 'fault type' },
    },
  } as unknown as TopLevelSpec;
}
