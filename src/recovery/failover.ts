/**
 * Failover (Remus, NiLiCon): the VMs are replicated to a backup host every epoch, and when the
 * primary fails the backup restores the last committed checkpoint and carries on. It repairs
 * nothing on the failed host, so it has no steps to run there: the run is in trial/failover.ts
 * (it needs both hosts), the costs are here.
 *
 * Calibration (reference, "Replication"): NiLiCon's stop time is 5-38 ms per 30 ms epoch and its
 * recovery 300-370 ms, mostly restoring the container; Remus's failover took about a second.
 * The pause is priced by the state the epoch actually captured, the restore by the state the
 * checkpoint holds; the per-unit costs put the golden 3AppVM run's stop time near the middle of
 * NiLiCon's range at 30 ms epochs and its restore near NiLiCon's recovery.
 */
import type { Mechanism } from './step.js';

export const failover: Mechanism = {
  name: 'failover',
  description: 'Remus/NiLiCon: checkpoint the VMs to a backup host every epoch, hold outputs until commit, resume there',
  steps: [],
  repairOrder: [],
};

/**
 * Replay-failover (HyCoR): failover's checkpoints, plus a log of the VMs' nondeterministic events
 * that lets an output leave as soon as the log up to it is on the backup; the backup replays the
 * log from the checkpoint. Its run is in trial/replay-failover.ts; it prices the restore as failover does.
 */
export const replayFailover: Mechanism = {
  name: 'replay-failover',
  description: 'HyCoR: checkpoints plus a log of nondeterministic events to a backup host; outputs leave once logged there; the backup replays the log',
  steps: [],
  repairOrder: [],
};

/** What an epoch's checkpoint captured (see replication/checkpoint.ts). */
export interface PausedState {
  readonly hypervisorPages: number;
  readonly guestBytes: number;
  readonly vcpus: number;
  readonly rings: number;
}

export const failoverCosts = {
  /** freeze the VMs and resume them (NiLiCon's fixed part of the stop time) */
  freezeMs: 2,
  /** copy one dirty hypervisor page into the staging buffer */
  pageMs: 1.2,
  /** copy one KiB of changed guest state: a modelled guest's state stands for a VM's dirty memory */
  guestKiBMs: 0.25,
  /** save one vCPU's context */
  vcpuMs: 0.2,
  /** save one ring's and its event channel's state */
  ringMs: 0.1,
  /** the backup's toolstack creates one domain (domctl create, vCPUs, event channels) */
  restoreDomainMs: 140,
  /** map one page of checkpointed state into the new domain */
  restorePageMs: 0.02,
  /** restore one KiB of guest state */
  restoreGuestKiBMs: 0.5,
  /** unpause the VMs and move the service address (gratuitous ARP) */
  resumeMs: 20,
};

/** The stop time of one epoch: freeze, copy what changed, resume. */
export function pauseMs(state: PausedState): number {
  const costs = failoverCosts;
  return costs.freezeMs + state.hypervisorPages * costs.pageMs + (state.guestBytes / 1_024) * costs.guestKiBMs + state.vcpus * costs.vcpuMs + state.rings * costs.ringMs;
}

/** What the backup restores: every domain of the checkpoint, its pages and guest state. */
export interface RestoredState {
  readonly domains: number;
  readonly pages: number;
  readonly guestBytes: number;
}

export function restoreMs(state: RestoredState): number {
  const costs = failoverCosts;
  return state.domains * costs.restoreDomainMs + state.pages * costs.restorePageMs + (state.guestBytes / 1_024) * costs.restoreGuestKiBMs;
}
