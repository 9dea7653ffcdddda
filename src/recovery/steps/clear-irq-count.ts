/**
 * Clear IRQ counts: the recovery IPI incremented every CPU's irq_count and the abandoned threads
 * never decrement theirs, so the scheduler's assertion would fail after recovery.
 */
import { defineStep } from '../step.js';
import { cpuCount, perCpuField } from './walk.js';

export const clearIrqCount = defineStep({
  name: 'clear-irq-count',
  fixes: 'resets each CPU\'s irq_count, left non-zero by the recovery IPI and abandoned handlers',
  repairs: ['percpu.irqCount'],
  run(context) {
    let cleared = 0;
    for (let cpu = 0; cpu < cpuCount(context); cpu++) {
      const address = perCpuField(cpu, 'irqCount');
      if (context.read(address) !== 0) cleared++;
      context.write(address, 0);
    }
    return { countsCleared: cleared };
  },
});
