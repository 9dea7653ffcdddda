/**
 * What one epoch's checkpoint captures, measured on the primary's state at the start and end
 * of the epoch: the hypervisor memory pages written (domain, vCPU, frame-table, ring and event
 * channel state live there), the guest state that changed (each VM's memory and vCPU contexts
 * stand in as the guest's saved state), the vCPUs and rings to recreate. The pause it costs
 * and the time to send it follow from that state through the cost model (epoch-costs.ts).
 */

export const PAGE_WORDS = 1_024;
export const PAGE_BYTES = PAGE_WORDS * 4;

export interface CapturedState {
  /** hypervisor memory pages with at least one word changed in the epoch */
  readonly hypervisorPages: number;
  /** bytes of guest state (saved state of every AppVM and its vCPU) that changed */
  readonly guestBytes: number;
  readonly vcpus: number;
  readonly rings: number;
}

/** Pages of `next` that differ from `previous` (same length). */
export function changedPages(previous: Int32Array, next: Int32Array): number {
  let pages = 0;
  for (let base = 0; base < next.length; base += PAGE_WORDS) {
    const end = Math.min(next.length, base + PAGE_WORDS);
    for (let index = base; index < end; index++) {
      if (previous[index] !== next[index]) {
        pages++;
        break;
      }
    }
  }
  return pages;
}

/** Bytes of guest state that changed: each guest whose saved state differs counts in full. */
export function changedGuestBytes(previous: readonly string[], next: readonly string[]): number {
  return next.reduce((sum, text, index) => (text === previous[index] ? sum : sum + text.length), 0);
}

/** The bytes a checkpoint sends: dirty pages, changed guest state and one context per vCPU. */
export function checkpointBytes(state: CapturedState): number {
  const VCPU_CONTEXT_BYTES = 4_096;
  return state.hypervisorPages * PAGE_BYTES + state.guestBytes + state.vcpus * VCPU_CONTEXT_BYTES;
}
