/**
 * The runaway budget on the real hypervisor: a loop the NMI watchdog sees is detected even though
 * it spends the instruction budget long before; a loop it cannot see (NMIs blocked) is a runaway
 * once the watchdog's grace has passed, not before.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, ref } from '../../src/machine/assembler.js';
import { FLAG_INTERRUPT_ENABLE } from '../../src/machine/isa.js';
import { NMI_PERIOD_NS } from '../../src/machine/machine.js';
import { RunawayBudget, WATCHDOG_GRACE_NS } from '../../src/trial/budget.js';
import type { System } from '../../src/trial/system.js';
import { MS, runToQuiescence, startedSystem } from '../hypervisor/system-helpers.js';

const BUDGET = 2_000_000;
/** In 1AppVM, UnixBench runs on CPU 1. */
const UNIXBENCH_CPU = 1;

/** Make the routine at `label` jump to itself forever. */
function loopAt(system: System, label: string): number {
  const address = system.hypervisor.program.labels.get(label) ?? 0;
  system.machine.memory.words[address] = new Assembler(address).label('self').jmp(ref('self')).link().words[0];
  return address;
}

function systemAt(startNs: number): System {
  const system = startedSystem({ configuration: '1AppVM', seed: 7, runLengthNs: 2_000 * MS });
  runToQuiescence(system, startNs);
  return system;
}

describe('the runaway budget', () => {
  it('lets the watchdog declare a hypervisor loop hung long after the instruction budget is spent', () => {
    const system = systemAt(150 * MS);
    loopAt(system, 'do_mmu_update');
    const startInstructions = system.machine.hypervisorInstructions;
    const budget = new RunawayBudget(system.hypervisor, system.machine.hypervisorInstructions + BUDGET);
    const outcome = budget.run(system.runLengthNs);
    expect(outcome).toMatchObject({ kind: 'detected', detection: { detector: 'hang' } });
    expect(system.hypervisor.detections.map((detection) => detection.detector)).toEqual(['hang']);
    // the budget alone would have ended the trial within a few ms of the loop
    expect(system.machine.hypervisorInstructions - startInstructions).toBeGreaterThan(100 * BUDGET);
    expect(system.hypervisor.detections[0].timeNs - 150 * MS).toBeGreaterThan(3 * NMI_PERIOD_NS - 10 * MS);
  });

  it('calls a loop the watchdog cannot see (NMIs left blocked, interrupts disabled) a runaway, once the grace is over', () => {
    const system = systemAt(150 * MS);
    // UnixBench's CPU loops in mmu_update and, as if an NMI handler had been abandoned there with
    // interrupts masked, no interrupt or NMI reaches it any more
    const loop = loopAt(system, 'do_mmu_update');
    const cpu = system.machine.cpus[UNIXBENCH_CPU];
    while (cpu.programCounter !== loop) system.machine.run(system.machine.nowNs + 1 * MS);
    const loopedNs = system.machine.nowNs;
    cpu.flags &= ~FLAG_INTERRUPT_ENABLE;
    cpu.nmiBlocked = true;
    const budget = new RunawayBudget(system.hypervisor, system.machine.hypervisorInstructions + BUDGET);
    expect(budget.run(system.runLengthNs)).toBe('runaway');
    expect(system.hypervisor.detections).toEqual([]);
    // the loop spent the budget within a few ms, then the grace ran out
    expect(system.machine.nowNs).toBeGreaterThanOrEqual(loopedNs + WATCHDOG_GRACE_NS);
    expect(system.machine.nowNs).toBeLessThan(loopedNs + WATCHDOG_GRACE_NS + 5 * MS);
  });
});
