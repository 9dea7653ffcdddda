/**
 * Walks over hypervisor structures that several repair steps share, done through the recovery
 * context so that corrupted pointers crash or hang the recovery as they would the real routine.
 */
import { MAX_DOMAINS } from '../../hypervisor/abi.js';
import { appendRunqueue as appendToRunqueue, insertTimer as insertIntoTimerList, type WordAccess } from '../../hypervisor/lists.js';
import { DOMAIN_TABLE, Domain, PerCpu, perCpuAddress } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';

export interface LiveDomain {
  readonly id: number;
  readonly domain: number;
  readonly vcpu: number;
}

/** Domains published in the domain table, with their vCPU pointers. */
export function liveDomains(context: RecoveryContext): LiveDomain[] {
  const live: LiveDomain[] = [];
  for (let id = 0; id < MAX_DOMAINS; id++) {
    const domain = context.read(DOMAIN_TABLE + id);
    if (domain === 0) continue;
    live.push({ id, domain, vcpu: context.read(domain + Domain.offset.vcpu) });
  }
  return live;
}

export function cpuCount(context: RecoveryContext): number {
  return context.machine.cpus.length;
}

export function perCpuField(cpu: number, field: keyof typeof PerCpu.offset): number {
  return perCpuAddress(cpu) + PerCpu.offset[field];
}

/** The context as a word accessor whose list walks give up (a hang) after `limit` steps. */
export function boundedWalk(context: RecoveryContext, limit: number, what: string): WordAccess {
  return {
    read: (address) => context.read(address),
    write: (address, value) => context.write(address, value),
    step: (steps) => context.bound(steps, limit, what),
  };
}

/** Sorted insertion into a CPU's timer list, as timer_list_insert does, bounded. */
export function insertTimer(context: RecoveryContext, cpu: number, timer: number): void {
  insertIntoTimerList(boundedWalk(context, 64, `cpu ${cpu}'s timer list`), perCpuAddress(cpu), timer);
}

/** Append to the tail of a CPU's runqueue (callers queue its idle vCPU last, where runqueue_insert keeps it). */
export function appendRunqueue(context: RecoveryContext, cpu: number, vcpu: number): void {
  appendToRunqueue(boundedWalk(context, 64, `cpu ${cpu}'s runqueue`), perCpuAddress(cpu), vcpu);
}
