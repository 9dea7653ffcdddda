/**
 * Microreboot (ReHype): stop every CPU, preserve static data and the in-use heap, boot a fresh
 * instance over them, and apply the repairs that a reboot still needs. Repairs in the order
 * ReHype added them (reference: ReHype).
 */
import { rebootCosts } from './cost-model.js';
import type { Mechanism } from './step.js';
import { acknowledgeInterrupts } from './steps/acknowledge-interrupts.js';
import { bootNewInstance } from './steps/boot-new-instance.js';
import { discardThreads } from './steps/discard-threads.js';
import { frameTablePass } from './steps/frame-table-pass.js';
import { releaseHeapLocks } from './steps/release-heap-locks.js';
import { resetProtectionRights } from './steps/reset-protection-rights.js';
import { resumeCpus } from './steps/resume-cpus.js';
import { retryHypercalls } from './steps/retry-hypercalls.js';
import { nmiIpi, stopCpus } from './steps/stop-cpus.js';
import { undoPartialUpdates } from './steps/undo-partial-updates.js';

export const microreboot: Mechanism = {
  name: 'microreboot',
  description: 'ReHype: boot a fresh hypervisor instance that keeps the VMs (hundreds of ms)',
  steps: [
    { step: stopCpus, role: 'mechanism', costs: [] },
    { step: nmiIpi, role: 'repair', costs: [] },
    { step: discardThreads, role: 'mechanism', costs: [] },
    {
      step: bootNewInstance,
      role: 'mechanism',
      costs: [
        rebootCosts.earlyInit,
        rebootCosts.bringUpCpus,
        rebootCosts.setUpApics,
        rebootCosts.calibrateTimer,
        rebootCosts.recordHeapPages,
        rebootCosts.reinitUnpreserved,
        rebootCosts.recreateHeap,
        rebootCosts.smpInit,
        rebootCosts.identifyFrames,
      ],
    },
    { step: acknowledgeInterrupts, role: 'repair', costs: [] },
    { step: undoPartialUpdates, role: 'repair', costs: [] },
    { step: retryHypercalls, role: 'repair', costs: [] },
    { step: releaseHeapLocks, role: 'repair', costs: [] },
    { step: frameTablePass, role: 'repair', costs: [rebootCosts.restoreFrames] },
    // only in a hypervisor built with protection keys (appliesTo): no cost priced, a few register writes per CPU
    { step: resetProtectionRights, role: 'mechanism', costs: [] },
    { step: resumeCpus, role: 'mechanism', costs: [rebootCosts.other] },
  ],
  repairOrder: ['nmi-ipi', 'acknowledge-interrupts', 'retry-hypercalls', 'release-heap-locks', 'frame-table-pass', 'undo-partial-updates'],
};
