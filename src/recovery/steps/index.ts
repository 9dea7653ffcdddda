/**
 * Every recovery step, and the StepName type derived from their definitions: a step's name is
 * written once, in its own file.
 */
import { acknowledgeInterrupts } from './acknowledge-interrupts.js';
import { bootNewInstance } from './boot-new-instance.js';
import { clearIrqCount } from './clear-irq-count.js';
import { discardThreads } from './discard-threads.js';
import { frameTablePass } from './frame-table-pass.js';
import { reactivateRecurringTimers } from './reactivate-recurring-timers.js';
import { releaseHeapLocks } from './release-heap-locks.js';
import { releaseStaticLocks } from './release-static-locks.js';
import { reprogramTimers } from './reprogram-timers.js';
import { resetProtectionRights } from './reset-protection-rights.js';
import { resumeCpus } from './resume-cpus.js';
import { retryHypercalls } from './retry-hypercalls.js';
import { schedulerConsistency } from './scheduler-consistency.js';
import { nmiIpi, stopCpus } from './stop-cpus.js';
import { undoPartialUpdates } from './undo-partial-updates.js';

export const recoverySteps = [
  stopCpus,
  nmiIpi,
  clearIrqCount,
  releaseHeapLocks,
  releaseStaticLocks,
  retryHypercalls,
  undoPartialUpdates,
  acknowledgeInterrupts,
  frameTablePass,
  schedulerConsistency,
  reprogramTimers,
  reactivateRecurringTimers,
  discardThreads,
  bootNewInstance,
  resetProtectionRights,
  resumeCpus,
] as const;

export type StepName = (typeof recoverySteps)[number]['name'];

export const stepNames: readonly StepName[] = recoverySteps.map((step) => step.name);

export function isStepName(value: string): value is StepName {
  return (stepNames as readonly string[]).includes(value);
}
