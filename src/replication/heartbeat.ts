/**
 * Heartbeats: the primary sends one every `heartbeatMs` while it runs; the backup declares the
 * primary failed when `MISSED_HEARTBEATS` in a row have not arrived (NiLiCon: every 30 ms, 3
 * missed, about 90 ms). Whether a heartbeat was sent is read from the primary's run: a host
 * that retired no instruction in a period sent none.
 */
import type { Link } from './link.js';

export const MISSED_HEARTBEATS = 3;

/** The backup's view: when the last heartbeat arrived, and when silence becomes a failure. */
export class HeartbeatMonitor {
  private lastArrivalNs: number;

  constructor(
    private readonly heartbeatNs: number,
    private readonly link: Link,
    startNs: number,
  ) {
    this.lastArrivalNs = startNs;
  }

  /** The primary's tick at `tickNs`: whether it ran (and so sent its heartbeat) in the period before. */
  tick(tickNs: number, primaryRan: boolean): void {
    if (primaryRan) this.lastArrivalNs = tickNs + Math.round(this.link.latencyMs * 1_000_000);
  }

  /** When the backup declares the primary failed, if no heartbeat arrives after the last one. */
  declaredAtNs(): number {
    return this.lastArrivalNs + MISSED_HEARTBEATS * this.heartbeatNs;
  }

  /** True when, at `nowNs`, the backup has already declared the primary failed. */
  hasDeclared(nowNs: number): boolean {
    return nowNs >= this.declaredAtNs();
  }
}
