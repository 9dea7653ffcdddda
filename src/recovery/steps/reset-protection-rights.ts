/**
 * Reset protection-key rights (a hypervisor built with the intended-sharing policy only): a
 * discarded thread never released its locks through the release code, so its CPU's open-domain
 * counts and PKRU still open the domains of the locks it held (another repair released the
 * locks themselves); a microreboot's fresh instance has zeroed the counts, which would leave
 * even the CPU's own data closed. Every CPU gets the rights of a CPU holding no lock: its
 * private domain open, every other closed for writing, from the seed the lock code hashes with.
 */
import { OPEN_COUNTS_OFFSET, PROTECTION_SEED, idleCounts, pkruForCounts } from '../../hypervisor/protection-domains.js';
import { perCpuAddress } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';

export const resetProtectionRights = defineStep({
  name: 'reset-protection-rights',
  fixes: 'gives every CPU the protection-key rights of a CPU holding no lock, which a discarded thread or a fresh instance left wrong',
  repairs: ['percpu.reserved', 'cpu.pkru'],
  appliesTo: (context) => context.machine.protectionKeys,
  run(context) {
    const seed = context.read(PROTECTION_SEED);
    let corrected = 0;
    for (const cpu of context.machine.cpus) {
      const address = perCpuAddress(cpu.index) + OPEN_COUNTS_OFFSET;
      const counts = idleCounts(cpu.index, seed);
      if (context.read(address) !== counts || cpu.pkru !== pkruForCounts(counts)) corrected++;
      context.write(address, counts);
      cpu.pkru = pkruForCounts(counts);
    }
    return { cpusCorrected: corrected };
  },
});
