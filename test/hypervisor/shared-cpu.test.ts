/**
 * Scripted guests on the real hypervisor, two of them sharing CPU 1: every answer is the one a
 * model of the script predicts, both vCPUs make progress, and the state audits clean.
 */
import { expect, it } from 'vitest';
import { audit } from '../../src/hypervisor/audit.js';
import { GuestHost } from '../../src/guests/host.js';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import { PerCpu, perCpuAddress } from '../../src/hypervisor/layout.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { ScriptedKernel } from './scripted-kernel.js';

const MS = 1_000_000;

/**
 * What ScriptedKernel must get back from mmu_update, in order, for its first `steps` steps:
 * step 4k maps its first frame into slot (4k mod 3), step 4k+2 unmaps slot ((4k+2) mod 3).
 * The map returns the frame's new use count; every other answer is 0.
 */
function expectedMapCounts(steps: number): number[] {
  const slots = [0, 0, 0];
  const counts: number[] = [];
  for (let step = 0; step < steps; step++) {
    if (step % 4 === 0) {
      slots[step % 3] = 1;
      counts.push(slots.reduce((sum, mapped) => sum + mapped, 0));
    } else if (step % 4 === 2) {
      slots[step % 3] = 0;
    }
  }
  return counts;
}

it('answers two scripted guests that share a CPU exactly as the script predicts', () => {
  const host = new GuestHost(4);
  const hypervisor = new Hypervisor({ cpuCount: 4, domains: [{ domainId: 0, cpu: 0 }, { domainId: 1, cpu: 1 }, { domainId: 2, cpu: 1 }] }, host);
  const kernels = [0, 1, 2].map((id) => new ScriptedKernel(id));
  kernels.forEach((kernel, id) => host.attach(id, kernel));
  hypervisor.start();
  const machine = hypervisor.machine;
  expect(machine.run(200 * MS).kind).toBe('timeReached');
  while (!machine.cpus.every((cpu) => cpu.mode === CpuMode.Guest || cpu.mode === CpuMode.Halted)) machine.run(machine.nowNs + 1_000);

  expect(hypervisor.detections).toEqual([]);
  for (const kernel of kernels) {
    expect(kernel.verdict(machine.nowNs)).toEqual({ kind: 'correct' });
    const { step, returns } = kernel.state;
    expect(step).toBeGreaterThan(100);
    // The last step issued may still be unanswered.
    const answeredMaps = returns.filter((value) => value !== 0);
    const predicted = expectedMapCounts(step);
    expect(answeredMaps.length).toBeGreaterThanOrEqual(predicted.length - 1);
    expect(answeredMaps).toEqual(predicted.slice(0, answeredMaps.length));
  }
  // CPU 1 is shared fairly enough that neither guest starves.
  const [, first, second] = kernels.map((kernel) => kernel.state.step);
  expect(Math.max(first, second) / Math.min(first, second)).toBeLessThan(1.5);
  expect(machine.memory.words[perCpuAddress(1) + PerCpu.offset.contextSwitches]).toBeGreaterThan(100);
  expect(audit(machine, hypervisor.layout)).toEqual({ clean: true });
});
