/**
 * Release heap locks: locks embedded in heap structures (each domain's) that an abandoned thread
 * held would hang the hypervisor on their next use.
 */
import { Domain } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { liveDomains } from './walk.js';

export const releaseHeapLocks = defineStep({
  name: 'release-heap-locks',
  fixes: 'releases locks in heap structures (per-domain locks) that abandoned threads held',
  repairs: ['domain.lock'],
  run(context) {
    let released = 0;
    for (const { domain } of liveDomains(context)) {
      const lock = domain + Domain.offset.lock;
      if (context.read(lock) !== 0) released++;
      context.write(lock, 0);
    }
    return { locksReleased: released };
  },
});
