/**
 * Failover's latency, step by step, from the cost model (for `ninelives latency`): detection by
 * heartbeat, restore of a checkpoint of the configuration's VMs on the backup, resume; and the
 * cost of replication when nothing fails at epochs of 10, 30 and 100 ms, measured on the golden run.
 */
import { failoverCosts, restoreMs } from '../recovery/failover.js';
import { MISSED_HEARTBEATS } from '../replication/heartbeat.js';
import { DEFAULT_REPLICATION, measureReplicationCost } from './failover.js';
import { restoredState } from './backup.js';
import { System } from './system.js';

export interface FailoverBreakdown {
  readonly heartbeatMs: number;
  readonly items: readonly { readonly label: string; readonly ms: number }[];
  readonly totalMs: number;
  readonly costs: readonly { readonly epochMs: number; readonly pauseMs: number; readonly overheadPercent: number; readonly outputDelayMs: { readonly p50: number; readonly p99: number } }[];
}

export const BREAKDOWN_EPOCHS_MS = [10, 30, 100] as const;

export function failoverBreakdown(configuration: string, seed: number): FailoverBreakdown {
  const system = new System({ configuration, seed });
  system.start();
  const snapshot = system.snapshot();
  const restored = restoredState(system.hypervisor.layout, system.configuration, snapshot);
  const domains = restored.domains;
  const restore = restoreMs(restored);
  const items = [
    { label: `detection: ${MISSED_HEARTBEATS} heartbeats missed`, ms: MISSED_HEARTBEATS * DEFAULT_REPLICATION.heartbeatMs },
    { label: `restore the checkpoint (${domains} domains)`, ms: restore },
    { label: 'resume the VMs, take over the address', ms: failoverCosts.resumeMs },
  ];
  const costs = BREAKDOWN_EPOCHS_MS.map((epochMs) => {
    const cost = measureReplicationCost({ configuration, seed }, { ...DEFAULT_REPLICATION, epochMs });
    return { epochMs, pauseMs: cost.pauseMs.mean, overheadPercent: cost.overheadPercent, outputDelayMs: cost.outputDelayMs };
  });
  return { heartbeatMs: DEFAULT_REPLICATION.heartbeatMs, items, totalMs: items.reduce((sum, item) => sum + item.ms, 0), costs };
}
