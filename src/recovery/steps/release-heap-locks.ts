/**
 * Release heap locks: locks embedded in heap structures (each domain's, and each CPU's schedule
 * and timer locks, which Xen allocates with its per-CPU areas) that an abandoned thread held
 * would hang the hypervisor on their next use.
 */
import { Domain, scheduleLockAddress, timerLockAddress } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { cpuCount, liveDomains } from './walk.js';

export const releaseHeapLocks = defineStep({
  name: 'release-heap-locks',
  fixes: 'releases locks in heap structures (every domain\'s big lock and event lock, per-CPU schedule and timer locks) that abandoned threads held',
  repairs: ['domain.lock', 'domain.eventLock', 'cpu_locks'],
  run(context) {
    const cpuLocks = context.hypervisor.layout.cpuLocks;
    const locks = [
      ...liveDomains(context).flatMap(({ domain }) => [domain + Domain.offset.lock, domain + Domain.offset.eventLock]),
      ...Array.from({ length: cpuCount(context) }, (_, cpu) => [scheduleLockAddress(cpuLocks, cpu), timerLockAddress(cpuLocks, cpu)]).flat(),
    ];
    let released = 0;
    for (const lock of locks) {
      if (context.read(lock) !== 0) released++;
      context.write(lock, 0);
    }
    return { locksReleased: released };
  },
});
