/**
 * Interrupt and NMI handlers may interrupt any hypervisor instruction, so they must give the
 * interrupted code back every register (a handler that used r14, the routines' scratch register,
 * without saving it once corrupted whatever it interrupted). Shown through the machine: a CPU
 * spins in the hypervisor with interrupts enabled and every register holding a value of its own,
 * while timer interrupts, event-check IPIs and watchdog NMIs come and go.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler, ref } from '../../src/machine/assembler.js';
import { NMI_PERIOD_NS } from '../../src/machine/machine.js';
import { VECTOR_EVENT_CHECK } from '../../src/hypervisor/layout.js';
import { MS, runToQuiescence, startedSystem } from './system-helpers.js';

const seeds = fc.integer({ min: 0, max: 0x7fffffff });
const registerFiles = fc.array(fc.integer({ min: -0x80000000, max: 0x7fffffff }), { minLength: 16, maxLength: 16 });
/** In 1AppVM, UnixBench runs on CPU 1. */
const UNIXBENCH_CPU = 1;

describe('interrupt handlers', () => {
  it('give the interrupted hypervisor code back every register', () => {
    fc.assert(
      fc.property(seeds, registerFiles, (seed, values) => {
        const system = startedSystem({ configuration: '1AppVM', seed });
        runToQuiescence(system, 50 * MS);
        // UnixBench's next mmu_update, entered with interrupts enabled, spins on its first word
        const words = system.machine.memory.words;
        const loop = system.hypervisor.program.labels.get('do_mmu_update') ?? 0;
        words[loop] = new Assembler(loop).label('self').jmp(ref('self')).link().words[0];
        const cpu = system.machine.cpus[UNIXBENCH_CPU];
        const startNs = system.machine.nowNs;
        while (cpu.programCounter !== loop) system.machine.run(system.machine.nowNs + 10_000);
        cpu.registers.set(values);
        const deliveredBefore = system.machine.interruptsDelivered;
        system.machine.raiseInterrupt(system.machine.nowNs + 1_000, UNIXBENCH_CPU, VECTOR_EVENT_CHECK);

        // two NMI periods: timer interrupts, the event check and watchdog NMIs, but not yet a hang
        expect(system.machine.run(startNs + 2 * NMI_PERIOD_NS).kind).toBe('timeReached');
        expect(system.hypervisor.detections).toEqual([]);
        expect(system.machine.interruptsDelivered - deliveredBefore).toBeGreaterThan(2);
        expect(cpu.programCounter).toBe(loop);
        expect([...cpu.registers]).toEqual(values);
      }),
      { numRuns: 4 },
    );
  });
});
