/**
 * sameInstruction(x, y) claims that executing x or y does the same thing from every state; trials
 * that follow the golden run rely on it. Checked by running both from random states.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/machine/assembler.js';
import { encode, isValidWord, Opcode, sameInstruction } from '../../src/machine/isa.js';
import { CODE_BASE, DATA_BASE, rig, stackTop } from './rig.js';
import { machineState } from './state.js';

interface Start {
  readonly registers: readonly number[];
  readonly flags: number;
  readonly data: readonly number[];
}

const start: fc.Arbitrary<Start> = fc.record({
  // small values, so loads, stores and jumps land in mapped memory as often as not
  registers: fc.array(fc.oneof(fc.integer({ min: 0, max: 0xa00 }), fc.integer()), { minLength: 16, maxLength: 16 }),
  flags: fc.integer({ min: 0, max: 7 }),
  data: fc.array(fc.integer(), { minLength: 8, maxLength: 8 }),
});

const validWord = fc.integer().filter(isValidWord);

/** Run `word` (then whatever follows) from `from` for a little while: the state and the traps. */
function runFrom(word: number, from: Start): unknown {
  const built = rig((asm: Assembler) => asm.nop().nop().nop().hlt());
  const { machine } = built;
  machine.memory.words[CODE_BASE] = word;
  machine.memory.words.set(from.data, DATA_BASE);
  const cpu = machine.cpus[0];
  cpu.registers.set(from.registers);
  cpu.flags = from.flags;
  cpu.stackPointer = stackTop(0) - 4;
  machine.run(60);
  const state = machineState(machine);
  return { traps: built.traps, state: { ...state, words: state.words.filter((_, address) => address !== CODE_BASE) } };
}

describe('sameInstruction', () => {
  it('two words it calls the same behave the same from any state', () => {
    let same = 0;
    fc.assert(
      fc.property(validWord, fc.integer({ min: 0, max: 31 }), start, (word, bit, from) => {
        const flipped = word ^ (1 << bit);
        if (!sameInstruction(word, flipped)) return;
        same++;
        expect(runFrom(flipped, from)).toEqual(runFrom(word, from));
      }),
      { numRuns: 2_000 },
    );
    expect(same).toBeGreaterThan(300);
  });

  it('tells apart words that differ in an operand the instruction uses', () => {
    expect(sameInstruction(encode(Opcode.MoveImmediate, 1, 0, 5), encode(Opcode.MoveImmediate, 1, 0, 7))).toBe(false);
    expect(sameInstruction(encode(Opcode.MoveImmediate, 1, 0, 5), encode(Opcode.MoveImmediate, 1, 3, 5))).toBe(true);
    expect(sameInstruction(encode(Opcode.Return, 0, 0, 0), encode(Opcode.Return, 9, 2, 1234))).toBe(true);
    expect(sameInstruction(encode(Opcode.Return), encode(Opcode.InterruptReturn))).toBe(false);
    // a three-register word with a reserved bit set is invalid, not the same instruction
    expect(sameInstruction(encode(Opcode.Add, 1, 2, 3), encode(Opcode.Add, 1, 2, 3) | 0x10)).toBe(false);
  });
});
