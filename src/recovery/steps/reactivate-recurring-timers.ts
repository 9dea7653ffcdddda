/**
 * Reactivate recurring timer events: a recurring handler abandoned after its timer was taken off
 * the list and before it re-armed itself leaves that timer (scheduler tick, watchdog tick, time
 * sync) gone for good. Each handler sets a flag on entry and clears it on exit; a timer whose
 * flag is still set is re-armed.
 */
import { TIME_SYNC_TIMER_POINTER, Timer } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';
import { cpuCount, insertTimer, perCpuField } from './walk.js';

export const reactivateRecurringTimers = defineStep({
  name: 'reactivate-recurring-timers',
  fixes: 're-arms recurring timers whose handler was abandoned (in-handler flag still set)',
  run(context) {
    let reactivated = 0;
    for (const timer of recurringTimers(context)) {
      if (context.read(timer + Timer.offset.inHandler) === 0) continue;
      context.write(timer + Timer.offset.inHandler, 0);
      if (context.read(timer + Timer.offset.active) === 0) {
        const nowUs = Math.floor(context.machine.nowNs / 1_000);
        context.write(timer + Timer.offset.expiresUs, nowUs + context.read(timer + Timer.offset.periodUs));
        insertTimer(context, context.read(timer + Timer.offset.cpu), timer);
      }
      reactivated++;
    }
    return { timersReactivated: reactivated };
  },
});

/** Found through the hypervisor's own pointers: per-CPU tick and watchdog timers, time sync. */
function recurringTimers(context: RecoveryContext): number[] {
  const timers: number[] = [];
  for (let cpu = 0; cpu < cpuCount(context); cpu++) {
    timers.push(context.read(perCpuField(cpu, 'schedulerTickTimer')), context.read(perCpuField(cpu, 'watchdogTimer')));
  }
  timers.push(context.read(TIME_SYNC_TIMER_POINTER));
  return timers;
}
