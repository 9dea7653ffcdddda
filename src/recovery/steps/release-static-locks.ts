/**
 * Release static locks: a reboot re-initialises static data, but a reset keeps it, so locks in
 * the static region (the domain-list and time locks) held by abandoned threads must be found and
 * released. They all sit in one region for this purpose.
 */
import { LOCKS_BASE, LOCKS_WORDS } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';

export const releaseStaticLocks = defineStep({
  name: 'release-static-locks',
  fixes: 'releases the static locks (domain list, time) that abandoned threads held',
  repairs: ['locks'],
  run(context) {
    let released = 0;
    for (let offset = 0; offset < LOCKS_WORDS; offset++) {
      if (context.read(LOCKS_BASE + offset) !== 0) released++;
      context.write(LOCKS_BASE + offset, 0);
    }
    return { locksReleased: released };
  },
});
