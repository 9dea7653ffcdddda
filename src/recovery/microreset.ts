/**
 * Microreset (NiLiHype): stop every CPU, discard every hypervisor thread, keep all hypervisor
 * memory, repair the inconsistencies this leaves, resume. Repairs in the order the real system
 * added them (reference: NiLiHype).
 */
import { resetCosts } from './cost-model.js';
import type { Mechanism } from './step.js';
import { acknowledgeInterrupts } from './steps/acknowledge-interrupts.js';
import { clearIrqCount } from './steps/clear-irq-count.js';
import { discardThreads } from './steps/discard-threads.js';
import { frameTablePass } from './steps/frame-table-pass.js';
import { reactivateRecurringTimers } from './steps/reactivate-recurring-timers.js';
import { releaseHeapLocks } from './steps/release-heap-locks.js';
import { releaseStaticLocks } from './steps/release-static-locks.js';
import { reprogramTimers } from './steps/reprogram-timers.js';
import { resetProtectionRights } from './steps/reset-protection-rights.js';
import { resumeCpus } from './steps/resume-cpus.js';
import { retryHypercalls } from './steps/retry-hypercalls.js';
import { schedulerConsistency } from './steps/scheduler-consistency.js';
import { nmiIpi, stopCpus } from './steps/stop-cpus.js';
import { undoPartialUpdates } from './steps/undo-partial-updates.js';

export const microreset: Mechanism = {
  name: 'microreset',
  description: 'NiLiHype: abandon in-flight work, reset to a quiescent state, repair the inconsistencies (tens of ms)',
  steps: [
    { step: stopCpus, role: 'mechanism', costs: [resetCosts.stopCpus] },
    { step: nmiIpi, role: 'mechanism', costs: [] },
    { step: discardThreads, role: 'mechanism', costs: [resetCosts.discardThreads] },
    { step: clearIrqCount, role: 'repair', costs: [resetCosts.clearIrqCount] },
    { step: releaseHeapLocks, role: 'repair', costs: [resetCosts.releaseHeapLocks] },
    { step: undoPartialUpdates, role: 'repair', costs: [resetCosts.undoPartialUpdates] },
    { step: retryHypercalls, role: 'repair', costs: [resetCosts.retryHypercalls] },
    { step: acknowledgeInterrupts, role: 'repair', costs: [resetCosts.acknowledgeInterrupts] },
    { step: frameTablePass, role: 'repair', costs: [resetCosts.frameTablePass] },
    { step: schedulerConsistency, role: 'repair', costs: [resetCosts.schedulerConsistency] },
    { step: reprogramTimers, role: 'repair', costs: [resetCosts.reprogramTimers] },
    { step: releaseStaticLocks, role: 'repair', costs: [resetCosts.releaseStaticLocks] },
    { step: reactivateRecurringTimers, role: 'repair', costs: [resetCosts.reactivateTimers] },
    // only in a hypervisor built with protection keys (appliesTo): no cost priced, a few register writes per CPU
    { step: resetProtectionRights, role: 'mechanism', costs: [] },
    { step: resumeCpus, role: 'mechanism', costs: [resetCosts.resumeCpus] },
  ],
  repairOrder: [
    'clear-irq-count',
    'release-heap-locks',
    'retry-hypercalls',
    'undo-partial-updates',
    'acknowledge-interrupts',
    'frame-table-pass',
    'scheduler-consistency',
    'reprogram-timers',
    'release-static-locks',
    'reactivate-recurring-timers',
  ],
};
