/**
 * Acknowledge interrupts and unblock NMIs: an interrupt whose handler was abandoned stays in
 * service and blocks every interrupt at or below its priority; so does a guest-bound device
 * interrupt whose EOI the hypervisor was deferring to its guest, once a reboot has forgotten it
 * (or a microreset abandoned the handler before it recorded it). An abandoned NMI handler leaves
 * NMIs blocked (no iret), silencing the watchdog. The hypervisor's record of deferred EOIs (each
 * CPU's pending-EOI stack, the per-vector in-flight table) is cleared with them, so that a guest's
 * later EOI ends nothing that was not in service.
 */
import { IRQ_EOI_CPU_TABLE, IRQ_EOI_READY_TABLE, VECTOR_COUNT } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { perCpuField } from './walk.js';

export const acknowledgeInterrupts = defineStep({
  name: 'acknowledge-interrupts',
  fixes: 'sends end-of-interrupt for every vector left in service, forgets deferred EOIs and unblocks NMIs',
  repairs: ['cpu.inServiceVectors', 'percpu.pendingEoiCount', 'percpu.pendingEoi', 'static.irqEoiCpu', 'static.irqEoiReady'],
  run(context) {
    let acknowledged = 0;
    let unblocked = 0;
    for (const cpu of context.machine.cpus) {
      for (let mask = cpu.inServiceVectors; mask !== 0; mask &= mask - 1) acknowledged++;
      cpu.inServiceVectors = 0;
      if (cpu.nmiBlocked) unblocked++;
      cpu.nmiBlocked = false;
      context.write(perCpuField(cpu.index, 'pendingEoiCount'), 0);
    }
    for (let vector = 0; vector < VECTOR_COUNT; vector++) {
      context.write(IRQ_EOI_CPU_TABLE + vector, 0);
      context.write(IRQ_EOI_READY_TABLE + vector, 0);
    }
    return { vectorsAcknowledged: acknowledged, nmisUnblocked: unblocked };
  },
});
