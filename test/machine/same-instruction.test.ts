/**
 * What the machine does with a word follows the decoder: a word the decoder calls invalid traps
 * as an invalid opcode (interpreted or translated), a valid one runs, and two words that mean the
 * same (sameInstruction, which trials that follow the golden run rely on) do the same thing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler } from '../../src/machine/assembler.js';
import { encode, encodeThreeRegister, isValidWord, Opcode, sameInstruction } from '../../src/machine/isa.js';
import { HOT_THRESHOLD } from '../../src/machine/translator.js';
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
  flags: fc.integer({ min: 0, max: 6 }),
  data: fc.array(fc.integer(), { minLength: 8, maxLength: 8 }),
});

/** Words near valid ones: a valid opcode with random fields (often invalid), or a valid word with one bit flipped. */
const nearValidWord = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 46 }), fc.integer({ min: 0, max: 0x03ff_ffff })).map(([opcode, fields]) => ((opcode << 26) | fields) | 0),
  fc.tuple(fc.integer({ min: 1, max: 46 }), fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 31 })).map(([opcode, low, bit]) => {
    const base = ((opcode << 26) | (low & 0xf)) | 0;
    return base ^ (1 << bit);
  }),
);

/**
 * Run `word` at the code base from `from`, `repeat` times over (so that it gets translated, unless
 * `translate` is false), then a little more. Rounds share what the word leaves beyond registers and
 * data (a pending IPI, say), so runs compare alike only over the same number of rounds.
 */
function runFrom(word: number, from: Start, repeat: number, translate = true): { traps: readonly { kind: string; exception?: string; programCounter: number }[]; state: unknown } {
  // a machine with protection keys, listening for a handover: every opcode the decoder knows runs
  // (without keys wrpkru is #UD, and handover is #UD while no recovery entry runs)
  const built = rig((asm: Assembler) => asm.nop().nop().nop().hlt(), { config: { translate, protectionKeys: true } });
  const { machine } = built;
  machine.handoverArmed = true;
  machine.memory.words[CODE_BASE] = word;
  machine.memory.words.set(from.data, DATA_BASE);
  const cpu = machine.cpus[0];
  for (let round = 0; round < repeat; round++) {
    machine.memory.words.set(from.data, DATA_BASE);
    cpu.registers.set(from.registers);
    cpu.flags = from.flags;
    cpu.stackPointer = stackTop(0) - 4;
    cpu.programCounter = CODE_BASE;
    machine.run(machine.nowNs + 60);
    if (built.traps.length > 0) break;
  }
  const state = machineState(machine);
  return { traps: built.traps, state: { ...state, words: state.words.filter((_, address) => address !== CODE_BASE) } };
}

describe('words and what the machine makes of them', () => {
  it('a word the decoder calls invalid traps as an invalid opcode; a valid one never does', () => {
    fc.assert(
      fc.property(nearValidWord, start, (word, from) => {
        const traps = runFrom(word, from, 1).traps;
        // (a valid jump may land on zeroed code, which traps there, not here)
        const invalidOpcode = traps.some((trap) => trap.kind === 'exception' && trap.exception === 'invalidOpcode' && trap.programCounter === CODE_BASE);
        expect(invalidOpcode).toBe(!isValidWord(word));
      }),
      { numRuns: 2_000 },
    );
  });

  it('translated, a word does what it does interpreted', () => {
    fc.assert(
      fc.property(nearValidWord, start, (word, from) => {
        // past the hot threshold the word runs as a translated block (if it can be one)
        const interpreted = runFrom(word, from, HOT_THRESHOLD + 2, false);
        const translated = runFrom(word, from, HOT_THRESHOLD + 2);
        expect(translated.traps.map((trap) => trap.kind)).toEqual(interpreted.traps.map((trap) => trap.kind));
      }),
      { numRuns: 300 },
    );
  });
});

describe('sameInstruction', () => {
  it('never holds for words one bit apart; two words it calls the same behave the same from any state', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 31 }), (word, bit) => {
        expect(sameInstruction(word, word)).toBe(true);
        expect(sameInstruction(word, word ^ (1 << bit))).toBe(false);
      }),
    );
    // two extension bits of a no-operand or one-register word: the same count set, the same operation
    const pairs = fc.tuple(fc.integer({ min: 1, max: 46 }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 17 }), fc.integer({ min: 0, max: 17 }));
    fc.assert(
      fc.property(pairs, start, ([opcode, a, bit, other], from) => {
        const base = ((opcode << 26) | (a << 22)) | 0;
        const x = base | (1 << bit);
        const y = base | (1 << other);
        if (!sameInstruction(x, y)) return;
        expect(runFrom(y, from, 1)).toEqual(runFrom(x, from, 1));
      }),
      { numRuns: 500 },
    );
    expect(sameInstruction(encode(Opcode.MoveImmediate, 1, 0, 5), encode(Opcode.MoveImmediate, 1, 0, 7))).toBe(false);
    expect(sameInstruction(encode(Opcode.Return), encode(Opcode.InterruptReturn))).toBe(false);
    expect(sameInstruction(encode(Opcode.Nop) | 0b11, encode(Opcode.Nop) | 0b101)).toBe(true);
    expect(sameInstruction(encodeThreeRegister(Opcode.Add, 1, 2, 3) | 0x10, encodeThreeRegister(Opcode.Subtract, 1, 2, 3))).toBe(true);
  });
});
