/**
 * Walks over hypervisor structures that several repair steps share, done through the recovery
 * context so that corrupted pointers crash or hang the recovery as they would the real routine.
 */
import { MAX_DOMAINS } from '../../hypervisor/abi.js';
import { DOMAIN_TABLE, Domain, PerCpu, Timer, perCpuAddress } from '../../hypervisor/layout.js';
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

/** Sorted insertion into a CPU's timer list, as timer_list_insert does, bounded. */
export function insertTimer(context: RecoveryContext, cpu: number, timer: number): void {
  const head = perCpuField(cpu, 'timerHead');
  const expires = context.read(timer + Timer.offset.expiresUs);
  let previous = 0;
  let current = context.read(head);
  for (let steps = 0; current !== 0; steps++) {
    context.bound(steps, 64, `cpu ${cpu}'s timer list`);
    if (context.read(current + Timer.offset.expiresUs) > expires) break;
    previous = current;
    current = context.read(current + Timer.offset.next);
  }
  context.write(timer + Timer.offset.previous, previous);
  context.write(timer + Timer.offset.next, current);
  context.write(previous === 0 ? head : previous + Timer.offset.next, timer);
  if (current !== 0) context.write(current + Timer.offset.previous, timer);
  context.write(timer + Timer.offset.active, 1);
}
