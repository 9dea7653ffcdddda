/**
 * Named register aliases and routine-local labels: the names handler code reads with, which must
 * assemble to exactly the words raw register numbers and hand-written label strings gave.
 */
import { describe, expect, it } from 'vitest';
import { Assembler, aliases, r3, r5, reg, type LabelReference } from '../../src/machine/assembler.js';
import { Opcode, decode, encode } from '../../src/machine/isa.js';

describe('register aliases', () => {
  it('an alias resolves to its register and encodes as the register itself', () => {
    const { entry, source } = aliases({ entry: reg.r3, source: reg.r5 });
    expect(entry).toBe(3);
    const named = new Assembler(0x100).mov(entry, source).link();
    const raw = new Assembler(0x100).mov(r3, r5).link();
    expect([...named.words]).toEqual([...raw.words]);
    expect(named.words[0]).toBe(encode(Opcode.Move, 3, 5, 0));
  });

  it('two names for one register are refused', () => {
    expect(() => aliases({ entry: reg.r3, next: reg.r3 })).toThrow(/r3 aliased as both entry and next/);
  });
});

describe('local labels', () => {
  function retryRoutine(asm: Assembler, name: string): void {
    asm.func(name, () => {
      const retry = asm.local('retry');
      asm.nop();
      asm.label(retry);
      asm.nop();
      asm.bne(retry);
      asm.ret();
    });
  }

  it('two routines using the same local name assemble without clash, each branch to its own', () => {
    const asm = new Assembler(0x100);
    retryRoutine(asm, 'first');
    retryRoutine(asm, 'second');
    const program = asm.link();
    expect(program.labels.get('first.retry')).toBe(0x101);
    expect(program.labels.get('second.retry')).toBe(0x105);
    expect(decode(program.words[2]).immediate).toBe(0x101);
    expect(decode(program.words[6]).immediate).toBe(0x105);
  });

  it('a local label referenced in another routine fails', () => {
    const asm = new Assembler(0x100);
    const leaked: LabelReference[] = [];
    asm.func('first', () => {
      const retry = asm.local('retry');
      leaked.push(retry);
      asm.label(retry);
    });
    expect(() => asm.func('second', () => asm.jmp(leaked[0]))).toThrow(/first\.retry used outside its routine first/);
  });

  it('a local label referenced or placed after its routine, or made outside any, fails', () => {
    const asm = new Assembler(0x100);
    const leaked: LabelReference[] = [];
    asm.func('first', () => leaked.push(asm.local('exit')));
    expect(() => asm.jmp(leaked[0])).toThrow(/first\.exit used outside its routine/);
    expect(() => asm.label(leaked[0])).toThrow(/first\.exit used outside its routine/);
    expect(() => asm.local('loose')).toThrow(/outside any routine/);
  });

  it('routines do not nest', () => {
    const asm = new Assembler(0x100);
    expect(() => asm.func('outer', () => asm.func('inner', () => asm.ret()))).toThrow(/inner begun inside routine outer/);
  });
});
