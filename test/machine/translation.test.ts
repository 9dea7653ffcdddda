/**
 * Block translation must be invisible: a machine running translated blocks and one interpreting
 * every instruction end in the same state, with the same traps and the same run outcomes, however
 * the code is changed from outside between runs (code faults, their repair, a reload).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler, ref } from '../../src/machine/assembler.js';
import { CODE_BASE, DATA_BASE, TIMER_VECTOR, rig } from './rig.js';
import { buildRandomProgram, randomProgram, runThrough, type RandomProgram } from './random-program.js';
import { machineState } from './state.js';

const RUN_NS = 40_000;

interface CodeFlip {
  readonly atNs: number;
  readonly wordOffset: number;
  readonly bit: number;
}

const codeFlips = fc.array(
  fc.record({ atNs: fc.integer({ min: 0, max: RUN_NS }), wordOffset: fc.nat({ max: 200 }), bit: fc.integer({ min: 0, max: 31 }) }),
  { maxLength: 4 },
);

/** Run `program` to RUN_NS, flipping code bits at their times; the stops, traps and final state. */
function runWithFlips(program: RandomProgram, flips: readonly CodeFlip[], translate: boolean, instructionLimit: number): unknown {
  const built = buildRandomProgram(program, { translate });
  const { machine } = built;
  const bound = { instructionLimit };
  const outcomes = [];
  for (const flip of [...flips].sort((x, y) => x.atNs - y.atNs)) {
    outcomes.push(...runThrough(machine, flip.atNs, bound));
    const address = CODE_BASE + (flip.wordOffset % built.program.words.length);
    machine.memory.words[address] ^= 1 << flip.bit;
  }
  outcomes.push(...runThrough(machine, RUN_NS, bound));
  return { outcomes, traps: built.traps, state: machineState(machine) };
}

describe('block translation', () => {
  it('gives the same stops, traps and final state as interpreting every instruction', () => {
    fc.assert(
      fc.property(randomProgram, codeFlips, fc.integer({ min: 1, max: 60_000 }), (program, flips, stop) => {
        expect(runWithFlips(program, flips, true, stop)).toEqual(runWithFlips(program, flips, false, stop));
      }),
      { numRuns: 150 },
    );
  });

  it('notices a code word changed after its block ran', () => {
    const build = (asm: Assembler): void => {
      asm.label('top').movi(1, 5).addi(2, 2, 1).jmp(ref('top'));
    };
    const { machine } = rig(build);
    machine.run(100);
    expect(machine.cpus[0].registers[1]).toBe(5);
    // movi r1, 5 becomes movi r1, 7
    machine.memory.words[CODE_BASE] ^= 5 ^ 7;
    machine.run(200);
    expect(machine.cpus[0].registers[1]).toBe(7);
    machine.memory.words[CODE_BASE] ^= 5 ^ 7;
    machine.run(300);
    expect(machine.cpus[0].registers[1]).toBe(5);
  });

  it('keeps the interrupt shadow after sti: the next instruction runs before a pending interrupt', () => {
    const shadowed = (translate: boolean): number => {
      const built = rig(
        (asm) => {
          asm.movi(13, DATA_BASE).movi(1, 0).settimer(1).nop().nop().nop().sti().movi(2, 1).movi(3, 1).hlt();
          asm.label('timer').st(13, 0, 2).eoi().iret();
        },
        { handlers: { [TIMER_VECTOR]: 'timer' }, config: { translate } },
      );
      built.machine.run(1_000);
      return built.machine.memory.words[DATA_BASE];
    };
    expect(shadowed(false)).toBe(1);
    expect(shadowed(true)).toBe(1);
  });

  it('keeps the shadow in hot, translated code: an interrupt pending at sti waits for exactly one instruction', () => {
    // each round: interrupts off, a timer that expires during a long countdown, then sti; the
    // handler adds up r3, which only the second instruction after sti sets
    const run = (translate: boolean): { rounds: number; secondInstructionsRun: number; state: unknown } => {
      const built = rig(
        (asm) => {
          asm.movi(13, DATA_BASE).movi(1, 1);
          asm.label('round').movi(2, 0).movi(3, 0).cli().settimer(1).movi(4, 700);
          asm.label('countdown').addi(4, 4, -1).cmpi(4, 0).bne(ref('countdown'));
          asm.sti().movi(2, 1).movi(3, 1).jmp(ref('round'));
          asm.label('timer').push(6).ld(6, 13, 1).add(6, 6, 3).st(13, 1, 6).ld(6, 13, 2).addi(6, 6, 1).st(13, 2, 6).pop(6).eoi().iret();
        },
        { handlers: { [TIMER_VECTOR]: 'timer' }, config: { translate } },
      );
      built.machine.run(400_000);
      const words = built.machine.memory.words;
      return { rounds: words[DATA_BASE + 2], secondInstructionsRun: words[DATA_BASE + 1], state: machineState(built.machine) };
    };
    const translated = run(true);
    expect(translated.rounds).toBeGreaterThan(100);
    expect(translated.secondInstructionsRun).toBe(0);
    expect(translated).toEqual(run(false));
  });

  it('leaves a trap in the middle of a block exactly where the interpreter would', () => {
    const trapping = (translate: boolean): unknown => {
      const built = rig((asm) => asm.movi(1, 3).addi(1, 1, 4).ld(2, 0, 0x600).movi(3, 9), { config: { translate } });
      built.machine.run(1_000);
      return { traps: built.traps, state: machineState(built.machine) };
    };
    const translated = trapping(true) as { traps: { programCounter: number }[] };
    expect(translated.traps[0].programCounter).toBe(CODE_BASE + 2);
    expect(translated).toEqual(trapping(false));
  });
});
