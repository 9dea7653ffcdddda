/**
 * Skipping whole periods of a loop: a machine that skips ends in exactly the state of one that
 * runs every instruction (memory, CPUs, queue, counters), and it does skip where the state
 * repeats, up to the next event, and nowhere else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import type { Machine } from '../../src/machine/machine.js';
import { DATA_BASE, TIMER_VECTOR, emitLog, readLog, rig, type RigOptions } from './rig.js';
import { machineState } from './state.js';

const MS = 1_000_000;

/** The same program run to `untilNs` with loop skipping off and on. */
function bothWays(build: (asm: Assembler) => void, untilNs: number, options: RigOptions = {}): { plain: Machine; skipping: Machine } {
  const run = (skipLoops: boolean): Machine => {
    const { machine } = rig(build, { ...options, config: { ...options.config, skipLoops } });
    machine.run(untilNs);
    return machine;
  };
  return { plain: run(false), skipping: run(true) };
}

function expectSameRun(plain: Machine, skipping: Machine): void {
  expect(machineState(skipping)).toEqual(machineState(plain));
  expect(skipping.interruptsDelivered).toBe(plain.interruptsDelivered);
  expect(skipping.lastWriteNs).toBe(plain.lastWriteNs);
  expect(plain.skippedInstructions).toBe(0);
}

/** NMIs log 0 and return; the timer logs its vector, re-arms itself 1 ms on and returns. */
function handlers(asm: Assembler): void {
  asm.label('nmi');
  emitLog(asm, 0);
  asm.iret();
  asm.label('timer');
  emitLog(asm, TIMER_VECTOR);
  asm.push(1).movi(1, 5000).settimer(1).pop(1);
  asm.eoi().iret();
}

const withHandlers: RigOptions = { handlers: { 0: 'nmi', [TIMER_VECTOR]: 'timer' } };

describe('loop skipping', () => {
  it('skips a loop whose registers and memory cycle, with interrupts on, and ends where running it ends', () => {
    // r1 counts 0..7 and is stored each time: the state repeats every 8 iterations
    const build = (asm: Assembler): void => {
      asm.movi(13, DATA_BASE).movi(1, 1000).settimer(1).movi(1, 0).sti();
      asm.label('top').addi(1, 1, 1).andi(1, 1, 7).st(13, 0, 1).push(1).pop(2).jmp(ref('top'));
      handlers(asm);
    };
    const { plain, skipping } = bothWays(build, 250 * MS, withHandlers);
    expectSameRun(plain, skipping);
    // the timer every ms and the two NMIs interrupted the loop; between them it was skipped
    expect(readLog(skipping).filter((value) => value === 0)).toHaveLength(2);
    expect(readLog(skipping).filter((value) => value === TIMER_VECTOR).length).toBeGreaterThan(45);
    expect(skipping.skippedInstructions).toBeGreaterThan(0.9 * skipping.hypervisorInstructions);
  });

  it('skips nothing of a loop whose state never repeats, or that reads the clock', () => {
    const counting = (asm: Assembler): void => {
      asm.label('top').addi(1, 1, 1).jmp(ref('top'));
    };
    const clock = (asm: Assembler): void => {
      asm.label('top').rdtime(1).movi(1, 0).jmp(ref('top'));
    };
    for (const build of [counting, clock]) {
      const { plain, skipping } = bothWays(build, 2 * MS);
      expectSameRun(plain, skipping);
      expect(skipping.skippedInstructions).toBe(0);
    }
  });

  it('gives the same run as running every instruction, for loops of any period over any memory', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1 }), (padding, modulusLog2, interrupts) => {
        const build = (asm: Assembler): void => {
          asm.movi(13, DATA_BASE).movi(1, 300).settimer(1).movi(1, 0);
          if (interrupts === 1) asm.sti();
          asm.label('top').addi(1, 1, 1).andi(1, 1, (1 << modulusLog2) - 1).st(13, 1, 1);
          for (let index = 0; index < padding; index++) asm.addi(2, 1, index);
          asm.cmpi(1, 0).bne(ref('top')).ld(3, 13, 1).addi(3, 3, 1).st(13, 2, 3).jmp(ref('top'));
          handlers(asm);
        };
        const { plain, skipping } = bothWays(build, 3 * MS, withHandlers);
        expectSameRun(plain, skipping);
      }),
      { numRuns: 12 },
    );
  });

  it('stops on the instruction stop exactly as running does', () => {
    const build = (asm: Assembler): void => {
      asm.label('top').addi(1, 1, 1).andi(1, 1, 3).jmp(ref('top'));
    };
    const stopAt = (skipLoops: boolean): Machine => {
      const { machine } = rig(build, { config: { skipLoops } });
      expect(machine.run({ untilNs: 10 * MS, instructionLimit: 1_234_567 })).toEqual({ kind: 'instructionLimit', cpu: 0 });
      return machine;
    };
    const skipping = stopAt(true);
    expectSameRun(stopAt(false), skipping);
    expect(skipping.skippedInstructions).toBeGreaterThan(1_000_000);
  });
  it('bounds executed instructions only with an executed-instruction limit: skipped periods do not count toward it', () => {
    const build = (asm: Assembler): void => {
      asm.label('top').addi(1, 1, 1).andi(1, 1, 3).jmp(ref('top'));
    };
    const run = (skipLoops: boolean, bounds: { instructionLimit?: number; executedInstructionLimit?: number }): Machine => {
      const { machine } = rig(build, { config: { skipLoops } });
      machine.run({ untilNs: 100 * MS, ...bounds });
      return machine;
    };
    // running every instruction, the executed limit is the retired one
    expect(run(false, { executedInstructionLimit: 60_000 }).hypervisorInstructions).toBe(60_000);
    expect(run(true, { instructionLimit: 60_000 }).hypervisorInstructions).toBe(60_000);
    // skipping, the periods skipped carry the run to its time bound before 60,000 have been executed
    const skipping = run(true, { executedInstructionLimit: 60_000 });
    expect(skipping.nowNs).toBe(100 * MS);
    expect(skipping.executedInstructions).toBeLessThan(60_000);
    expect(skipping.hypervisorInstructions).toBeGreaterThan(1_000_000);
  });
});

describe('loop skipping with several CPUs', () => {
  it('gives the same run as running every instruction when every CPU loops, together', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 4, maxLength: 4 }), fc.boolean(), (cpuCount, paddings, shared) => {
        const build = (asm: Assembler): void => {
          for (let cpu = 0; cpu < 4; cpu++) {
            asm.label(`cpu${cpu}`).movi(13, DATA_BASE + (shared ? 0 : 4 * cpu)).movi(1, 0);
            asm.label(`top${cpu}`).addi(1, 1, 1).andi(1, 1, 3).st(13, 1, 1).ld(2, 13, 1);
            for (let index = 0; index < paddings[cpu]; index++) asm.addi(3, 2, index);
            asm.jmp(ref(`top${cpu}`));
          }
          handlers(asm);
        };
        const entries = Object.fromEntries(Array.from({ length: cpuCount }, (_, cpu) => [cpu, `cpu${cpu}`]));
        // NMIs every 2 ms, so that the plain run stays short
        const { plain, skipping } = bothWays(build, 5 * MS, { ...withHandlers, cpuCount, entries, config: { nmiPeriodNs: 2 * MS } });
        expectSameRun(plain, skipping);
        expect(readLog(skipping).filter((value) => value === 0)).toHaveLength(2 * cpuCount);
      }),
      { numRuns: 6 },
    );
  });

  it('skips most of a loop every CPU runs, between the NMIs', () => {
    const build = (asm: Assembler): void => {
      asm.label('top').addi(1, 1, 1).andi(1, 1, 7).jmp(ref('top'));
      handlers(asm);
    };
    const { plain, skipping } = bothWays(build, 25 * MS, { ...withHandlers, cpuCount: 3, entries: { 0: 'top', 1: 'top', 2: 'top' }, config: { nmiPeriodNs: 10 * MS } });
    expectSameRun(plain, skipping);
    expect(skipping.skippedInstructions).toBeGreaterThan(0.9 * skipping.hypervisorInstructions);
  });
});
