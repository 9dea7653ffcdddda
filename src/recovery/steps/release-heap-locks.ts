/**
 * Release heap locks: locks embedded in heap structures (each domain's, and each CPU's schedule
 * and timer locks, which Xen allocates with its per-CPU areas) that an abandoned thread held
 * would hang the hypervisor on their next use.
 */
import { cpuHeapLocks, domainHeapLocks } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { cpuCount, liveDomains } from './walk.js';

export const releaseHeapLocks = defineStep({
  name: 'release-heap-locks',
  fixes: 'releases locks in heap structures (every domain\'s big lock and event lock, per-CPU schedule and timer locks) that abandoned threads held',
  repairs: ['domain.lock', 'domain.eventLock', 'cpu_locks'],
  run(context) {
    const locks = [...domainHeapLocks(liveDomains(context)), ...cpuHeapLocks(context.hypervisor.layout.cpuLocks, cpuCount(context))];
    let released = 0;
    for (const { address } of locks) {
      if (context.read(address) !== 0) released++;
      context.write(address, 0);
    }
    return { locksReleased: released };
  },
});
