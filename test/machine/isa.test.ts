/**
 * Encoding, decoding, disassembly and the line assembler, as properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Assembler, ref, struct } from '../../src/machine/assembler.js';
import { disassemble, functionOfSymbol, symbolizerFor } from '../../src/machine/disassembler.js';
import {
  IMMEDIATE_MAX,
  IMMEDIATE_MIN,
  Opcode,
  allOpcodes,
  decode,
  encode,
  encodeThreeRegister,
  immediateRange,
  isCanonicalWord,
  isValidWord,
  meaning,
  opcodeInfo,
  type OpcodeInfo,
} from '../../src/machine/isa.js';
import { assembleLine } from '../../src/machine/line-assembler.js';

const register = fc.integer({ min: 0, max: 15 });
const immediate = fc.integer({ min: IMMEDIATE_MIN, max: IMMEDIATE_MAX });
const word = fc.integer({ min: -0x80000000, max: 0x7fffffff });

/** One instruction as the Assembler method call that emits it. */
interface InstructionSpec {
  readonly info: OpcodeInfo;
  readonly registers: readonly [number, number, number];
  readonly immediate: number;
}

/** Any immediate the opcode's field holds, drawn from the widest field and folded into its range. */
function fitted(info: OpcodeInfo, raw: number): number {
  const { min, max } = immediateRange(info.opcode);
  return min + (((raw - min) % (max - min + 1)) + (max - min + 1)) % (max - min + 1);
}

const instructionSpec: fc.Arbitrary<InstructionSpec> = fc
  .record({
    info: fc.constantFrom(...allOpcodes),
    registers: fc.tuple(register, register, register),
    raw: fc.oneof(immediate, fc.integer({ min: -(2 ** 25), max: 2 ** 25 - 1 })),
  })
  .map(({ info, registers, raw }) => ({ info, registers, immediate: fitted(info, raw) }));

type Emitter = (asm: Assembler, ...operands: number[]) => unknown;

function methodFor(info: OpcodeInfo): Emitter {
  const name = info.mnemonic === 'bug_on' ? 'bugOn' : info.mnemonic;
  const method = (Assembler.prototype as unknown as Record<string, unknown>)[name];
  if (typeof method !== 'function') throw new Error(`no assembler method for ${info.mnemonic}`);
  return (asm, ...operands) => (method as (...args: number[]) => unknown).apply(asm, operands);
}

function assembleSpec(spec: InstructionSpec): number {
  const asm = new Assembler(0x100);
  const [a, b, c] = spec.registers;
  const emit = methodFor(spec.info);
  switch (spec.info.shape) {
    case 'none':
      emit(asm);
      break;
    case 'a':
      emit(asm, a);
      break;
    case 'a,imm':
      emit(asm, a, spec.immediate);
      break;
    case 'a,b':
      emit(asm, a, b);
      break;
    case 'a,b,c':
      emit(asm, a, b, c);
      break;
    case 'imm':
      emit(asm, spec.immediate);
      break;
    case 'a,b,imm':
      if (spec.info.mnemonic === 'st') emit(asm, a, spec.immediate, b);
      else emit(asm, a, b, spec.immediate);
      break;
  }
  const program = asm.link();
  expect(program.words.length).toBe(1);
  return program.words[0];
}

describe('encode and decode', () => {
  it('decode(encode(...)) round-trips every operand the shape has', () => {
    fc.assert(
      fc.property(instructionSpec, ({ info, registers: [a, b], immediate: imm }) => {
        const hasB = info.shape === 'a,b' || info.shape === 'a,b,imm';
        const hasA = hasB || info.shape === 'a' || info.shape === 'a,imm';
        const hasImmediate = info.shape === 'a,imm' || info.shape === 'imm' || info.shape === 'a,b,imm';
        if (info.shape === 'a,b,c') return;
        const decoded = decode(encode(info.opcode, hasA ? a : 0, hasB ? b : 0, hasImmediate ? imm : 0));
        expect(decoded.opcode).toBe(info.opcode);
        if (hasA) expect(decoded.a).toBe(a);
        if (hasB) expect(decoded.b).toBe(b);
        if (hasImmediate) expect(decoded.immediate).toBe(imm);
      }),
      { numRuns: 2000 },
    );
  });

  it('encode(decode(word)) gives back any valid word', () => {
    fc.assert(
      fc.property(instructionSpec, (spec) => {
        const value = assembleSpec(spec);
        const decoded = decode(value);
        const shape = spec.info.shape;
        const again =
          shape === 'a,b,c'
            ? encodeThreeRegister(decoded.opcode, decoded.a, decoded.b, decoded.c)
            : encode(
                decoded.opcode,
                shape === 'none' || shape === 'imm' ? 0 : decoded.a,
                shape === 'a,b' || shape === 'a,b,imm' ? decoded.b : 0,
                shape === 'a,imm' || shape === 'imm' || shape === 'a,b,imm' ? decoded.immediate : 0,
              );
        expect(again).toBe(value);
      }),
      { numRuns: 2000 },
    );
  });

  it('three-register instructions keep the third register in the low bits', () => {
    fc.assert(
      fc.property(register, register, register, (a, b, c) => {
        const value = encodeThreeRegister(Opcode.Add, a, b, c);
        expect(decode(value)).toMatchObject({ opcode: Opcode.Add, a, b, c, immediate: c });
        expect(isValidWord(value)).toBe(true);
      }),
    );
  });

  it('rejects immediates that do not fit in the shape\'s field, and operands the shape does not have', () => {
    expect(immediateRange(Opcode.Load)).toEqual({ min: IMMEDIATE_MIN, max: IMMEDIATE_MAX });
    expect(immediateRange(Opcode.MoveImmediate)).toEqual({ min: -(2 ** 21), max: 2 ** 21 - 1 });
    expect(immediateRange(Opcode.Jump)).toEqual({ min: -(2 ** 25), max: 2 ** 25 - 1 });
    expect(() => encode(Opcode.Load, 0, 0, IMMEDIATE_MAX + 1)).toThrow(RangeError);
    expect(() => encode(Opcode.MoveImmediate, 0, 0, 2 ** 21)).toThrow(RangeError);
    expect(() => encode(Opcode.MoveImmediate, 0, 0, -(2 ** 21) - 1)).toThrow(RangeError);
    expect(() => encode(Opcode.Jump, 0, 0, 2 ** 25)).toThrow(RangeError);
    expect(() => new Assembler(0x100).movi(1, 1 << 21)).toThrow(RangeError);
    expect(() => new Assembler(0x100).addi(1, 1, 1 << 17)).toThrow(RangeError);
    expect(() => encode(Opcode.Jump, 1, 0, 0)).toThrow(RangeError);
    expect(() => encode(Opcode.MoveImmediate, 1, 2, 0)).toThrow(RangeError);
    expect(() => encode(Opcode.Nop, 0, 0, 1)).toThrow(RangeError);
  });

  it('isValidWord: opcode 0 and unassigned opcodes are invalid; extension bits select another operation of the shape', () => {
    expect(isValidWord(0)).toBe(false);
    for (let value = Opcode.WritePkru + 1; value < 64; value++) expect(isValidWord(value << 26)).toBe(false);
    expect(decode(encodeThreeRegister(Opcode.Add, 1, 2, 3) | (1 << 4))).toMatchObject({ opcode: Opcode.Subtract, a: 1, b: 2, c: 3 });
    expect(decode(encode(Opcode.DisableInterrupts) | (1 << 25)).opcode).toBe(Opcode.EnableInterrupts);
    expect(decode(encode(Opcode.Push, 1) | 1)).toMatchObject({ opcode: Opcode.Pop, a: 1 });
    expect(decode(encode(Opcode.SendIpi, 1, 2) | (1 << 17)).opcode).toBe(Opcode.Move);
    // the group wraps around: handover is the last of the no-operand shape
    expect(decode(encode(Opcode.EndOfInterrupt) | (1 << 7)).opcode).toBe(Opcode.HandOver);
    expect(decode(encode(Opcode.HandOver) | (1 << 7)).opcode).toBe(Opcode.Nop);
    expect(isCanonicalWord(encode(Opcode.Push, 1) | 1)).toBe(false);
    expect(allOpcodes.every((info) => isCanonicalWord(encode(info.opcode)))).toBe(true);
    expect(opcodeInfo(0)).toBeUndefined();
    expect(new Set(allOpcodes.map((info) => info.mnemonic)).size).toBe(allOpcodes.length);
  });
});

describe('the dense encoding', () => {
  it('decoding is total: every word is one instruction, with the text that assembles back to it, or invalid', () => {
    fc.assert(
      fc.property(word, (value) => {
        const text = disassemble(value);
        if (meaning(value) === 'invalid') {
          expect(isValidWord(value)).toBe(false);
          expect(text).toMatch(/^\.word 0x[0-9a-f]+$/);
        } else {
          // the line assembles to the canonical word for the same instruction
          expect(isValidWord(value)).toBe(true);
          expect(meaning(assembleLine(text))).toBe(meaning(value));
          expect(isCanonicalWord(assembleLine(text))).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('flipping any bit of any instruction changes what it means', () => {
    fc.assert(
      fc.property(fc.oneof(instructionSpec.map(assembleSpec), word.filter(isValidWord)), fc.integer({ min: 0, max: 31 }), (value, bit) => {
        const flipped = value ^ (1 << bit);
        expect(meaning(flipped)).not.toBe(meaning(value));
        // and the disassembly tells them apart
        expect(disassemble(flipped)).not.toBe(disassemble(value));
      }),
      { numRuns: 5000 },
    );
    // every bit of every opcode's word, exhaustively for one instance of each
    for (const info of allOpcodes) {
      const value = assembleSpec({ info, registers: [3, 5, 9], immediate: fitted(info, 77) });
      for (let bit = 0; bit < 32; bit++) expect(meaning(value ^ (1 << bit)), `${info.mnemonic} bit ${bit}`).not.toBe(meaning(value));
    }
  });
});

describe('disassemble and assembleLine', () => {
  it('assembling, disassembling, then assembling the line gives the same word', () => {
    fc.assert(
      fc.property(instructionSpec, (spec) => {
        const assembled = assembleSpec(spec);
        const text = disassemble(assembled);
        expect(assembleLine(text)).toBe(assembled);
        expect(decode(assembled).opcode).toBe(spec.info.opcode);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips with a symbolizer naming branch targets', () => {
    const labels = new Map([['start', 0x100], ['loop', 0x120], ['.local', 0x121]]);
    const symbolize = symbolizerFor(labels);
    fc.assert(
      fc.property(fc.constantFrom('jmp', 'call', 'beq', 'ble'), fc.integer({ min: 0, max: 0x200 }), (mnemonic, target) => {
        const value = assembleLine(`${mnemonic} ${target}`);
        const text = disassemble(value, symbolize);
        expect(assembleLine(text)).toBe(value);
      }),
    );
    expect(disassemble(encode(Opcode.Jump, 0, 0, 0x123), symbolize)).toBe('jmp 291 <loop+3>');
    expect(disassemble(encode(Opcode.Call, 0, 0, 0x100), symbolize)).toBe('call 256 <start>');
    expect(disassemble(encode(Opcode.Jump, 0, 0, 0x10), symbolize)).toBe('jmp 16');
  });

  it('names the function a symbol is in, without offset or local label', () => {
    expect(functionOfSymbol('schedule')).toBe('schedule');
    expect(functionOfSymbol('schedule+3')).toBe('schedule');
    expect(functionOfSymbol('schedule.pick')).toBe('schedule');
    expect(functionOfSymbol('do_mmu_update.put_done+12')).toBe('do_mmu_update');
    expect(functionOfSymbol('percpu[1].softirqPending')).toBe('percpu[1]');
  });

  it('any valid word disassembles to a line that reassembles to the same instruction text', () => {
    fc.assert(
      fc.property(word, (value) => {
        const text = disassemble(value);
        if (!isValidWord(value)) {
          expect(text).toMatch(/^\.word 0x[0-9a-f]+$/);
          expect(() => assembleLine(text)).toThrow(SyntaxError);
          return;
        }
        expect(disassemble(assembleLine(text))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('renders each operand shape', () => {
    expect(disassemble(encode(Opcode.Nop))).toBe('nop');
    expect(disassemble(encode(Opcode.MoveImmediate, 3, 0, -7))).toBe('movi r3, -7');
    expect(disassemble(encode(Opcode.Load, 1, 2, -3))).toBe('ld r1, [r2-3]');
    expect(disassemble(encode(Opcode.Store, 2, 1, 4))).toBe('st [r2+4], r1');
    expect(disassemble(encodeThreeRegister(Opcode.CompareAndSwap, 1, 2, 3))).toBe('cas r1, [r2], r3');
    expect(disassemble(encodeThreeRegister(Opcode.Subtract, 4, 5, 6))).toBe('sub r4, r5, r6');
    expect(disassemble(encode(Opcode.AddImmediate, 4, 5, 6))).toBe('addi r4, r5, 6');
    expect(disassemble(encode(Opcode.Panic, 0, 0, -2))).toBe('panic -2');
    expect(disassemble(encode(Opcode.SendIpi, 1, 2))).toBe('ipi r1, r2');
    expect(disassemble(encode(Opcode.BugOn, 9, 0, 12))).toBe('bug_on r9, 12');
  });

  it('rejects malformed lines', () => {
    for (const line of ['', 'frobnicate r1', 'movi r16, 1', 'movi r1, x', 'add r1, r2', 'ld r1, [r2+x]', 'jmp']) {
      expect(() => assembleLine(line), line).toThrow(SyntaxError);
    }
  });
});

describe('assembler', () => {
  it('resolves forward and backward labels', () => {
    const asm = new Assembler(0x100);
    asm.label('top').jmp(ref('end')).jmp(ref('top')).label('end').nop();
    const program = asm.link();
    expect(Array.from(program.words).map((value) => disassemble(value))).toEqual(['jmp 258', 'jmp 256', 'nop']);
    expect(program.labels.get('end')).toBe(0x102);
  });

  it('refuses undefined and duplicate labels', () => {
    expect(() => new Assembler(0x100).jmp(ref('nowhere')).link()).toThrow(/undefined label/);
    expect(() => new Assembler(0x100).label('x').label('x')).toThrow(/twice/);
  });

  it('lays out structures in field order', () => {
    const vcpu = struct('vcpu', { id: 1, registers: 16, state: 1 });
    expect(vcpu.offset).toEqual({ id: 0, registers: 1, state: 17 });
    expect(vcpu.sizeWords).toBe(18);
  });
});
