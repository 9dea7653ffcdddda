/**
 * Reprogram the hardware timer: a fault after a CPU's local timer fired and before the handler
 * reprogrammed it leaves that timer never firing again, and the CPU's timers with it.
 */
import { NO_DEADLINE } from '../../machine/cpu.js';
import { IDLE_TIMER_US, Timer } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { perCpuField } from './walk.js';

export const reprogramTimers = defineStep({
  name: 'reprogram-timers',
  fixes: 'programs every CPU\'s local timer for its earliest pending timer',
  repairs: ['cpu.timerDeadlineNs'],
  run(context) {
    let disarmed = 0;
    const nowNs = context.machine.nowNs;
    for (const cpu of context.machine.cpus) {
      if (cpu.timerDeadlineNs === NO_DEADLINE) disarmed++;
      const head = context.read(perCpuField(cpu.index, 'timerHead'));
      const deadlineNs = head === 0 ? nowNs + IDLE_TIMER_US * 1_000 : context.read(head + Timer.offset.expiresUs) * 1_000;
      cpu.timerDeadlineNs = Math.max(nowNs, deadlineNs);
    }
    return { timersReprogrammed: context.machine.cpus.length, wereDisarmed: disarmed };
  },
});
