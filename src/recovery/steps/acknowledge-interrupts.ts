/**
 * Acknowledge interrupts and unblock NMIs: an interrupt whose handler was abandoned stays in
 * service and blocks every interrupt at or below its priority; an abandoned NMI handler leaves
 * NMIs blocked (no iret), silencing the watchdog.
 */
import { defineStep } from '../step.js';

export const acknowledgeInterrupts = defineStep({
  name: 'acknowledge-interrupts',
  fixes: 'sends end-of-interrupt for every vector left in service and unblocks NMIs',
  repairs: ['cpu.inServiceVectors'],
  run(context) {
    let acknowledged = 0;
    let unblocked = 0;
    for (const cpu of context.machine.cpus) {
      for (let mask = cpu.inServiceVectors; mask !== 0; mask &= mask - 1) acknowledged++;
      cpu.inServiceVectors = 0;
      if (cpu.nmiBlocked) unblocked++;
      cpu.nmiBlocked = false;
    }
    return { vectorsAcknowledged: acknowledged, nmisUnblocked: unblocked };
  },
});
