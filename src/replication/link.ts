/**
 * The link between the primary and the backup host, through which checkpoints,
 * acknowledgements and heartbeats travel: a one-way latency and a bandwidth.
 */

export interface Link {
  readonly latencyMs: number;
  /** megabytes (10^6 bytes) per second */
  readonly bandwidthMBps: number;
}

/** A dedicated 1 Gbit/s link in one rack, as in the Remus and NiLiCon set-ups. */
export const DEFAULT_LINK: Link = { latencyMs: 0.1, bandwidthMBps: 125 };

/** From the first byte sent to the last byte held on the other side. */
export function transferMs(link: Link, bytes: number): number {
  return link.latencyMs + bytes / (link.bandwidthMBps * 1_000);
}
