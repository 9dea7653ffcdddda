/**
 * The semantics of every instruction, one small program at a time.
 */
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { FLAG_INTERRUPT_ENABLE, FLAG_LESS, FLAG_ZERO, IMMEDIATE_MAX, IMMEDIATE_MIN } from '../../src/machine/isa.js';
import { CODE_BASE, DATA_BASE, registersAfter, runProgram, stackTop } from './rig.js';

/** r[destination] = 1 << shift, built without a large immediate */
function power(asm: Assembler, destination: number, shift: number): void {
  asm.movi(destination, 1).movi(15, shift).shl(destination, destination, 15);
}

describe('moves and immediates', () => {
  it('nop changes nothing but the program counter', () => {
    const ran = runProgram((asm) => asm.nop().nop().hlt());
    const cpu = ran.machine.cpus[0];
    expect(cpu.programCounter).toBe(CODE_BASE + 3);
    expect(cpu.instructionsRetired).toBe(3);
    expect(Array.from(cpu.registers)).toEqual(new Array(16).fill(0));
    expect(cpu.flags).toBe(0);
  });

  it('movi sign-extends its 18-bit immediate', () => {
    const r = registersAfter((asm) => asm.movi(1, 5).movi(2, -5).movi(3, IMMEDIATE_MAX).movi(4, IMMEDIATE_MIN).hlt());
    expect([r[1], r[2], r[3], r[4]]).toEqual([5, -5, 131071, -131072]);
  });

  it('mov copies a register', () => {
    const r = registersAfter((asm) => asm.movi(1, -77).mov(2, 1).hlt());
    expect(r[2]).toBe(-77);
  });

  it('rdsp and wrsp read and write the stack pointer', () => {
    const r = registersAfter((asm) => asm.rdsp(1).movi(2, 0x850).wrsp(2).rdsp(3).hlt());
    expect(r[1]).toBe(stackTop(0));
    expect(r[3]).toBe(0x850);
  });

  it('cpuid reads the CPU index', () => {
    const ran = runProgram((asm) => asm.label('main').cpuid(1).hlt(), { cpuCount: 3, entries: { 2: 'main' } });
    expect(ran.machine.cpus[2].registers[1]).toBe(2);
  });

  it('rdtime reads local time in whole microseconds (one instruction is one nanosecond)', () => {
    const r = registersAfter((asm) => {
      asm.rdtime(1).movi(2, 1000);
      asm.label('top').addi(2, 2, -1).cmpi(2, 0).bne(ref('top'));
      asm.rdtime(3).hlt();
    });
    expect(r[1]).toBe(0);
    expect(r[3]).toBe(3); // 2 + 3000 + 1 nanoseconds
  });
});

describe('memory', () => {
  it('st then ld round-trips, with positive and negative offsets', () => {
    const r = registersAfter((asm) => {
      asm.movi(1, DATA_BASE + 4).movi(2, 1234).movi(3, -9);
      asm.st(1, 2, 2).st(1, -2, 3);
      asm.movi(4, DATA_BASE).ld(5, 4, 6).ld(6, 4, 2).hlt();
    });
    expect(r[5]).toBe(1234);
    expect(r[6]).toBe(-9);
  });

  it('st writes exactly one word', () => {
    const ran = runProgram((asm) => asm.movi(1, DATA_BASE).movi(2, 7).st(1, 1, 2).hlt());
    expect(Array.from(ran.machine.memory.words.subarray(DATA_BASE, DATA_BASE + 3))).toEqual([0, 7, 0]);
  });

  it('code can be read', () => {
    const r = registersAfter((asm) => asm.movi(1, CODE_BASE).ld(2, 1, 0).hlt());
    expect(r[2]).toBe(runProgram((asm) => asm.movi(1, CODE_BASE)).program.words[0]);
  });
});

describe('arithmetic and logic', () => {
  it('add and sub wrap at 32 bits', () => {
    const r = registersAfter((asm) => {
      power(asm, 1, 31); // -2^31
      asm.movi(2, 1).sub(3, 1, 2).add(4, 3, 2).movi(5, 30).movi(6, -12).add(7, 5, 6).sub(8, 6, 5).hlt();
    });
    expect(r[3]).toBe(0x7fffffff);
    expect(r[4]).toBe(-0x80000000);
    expect(r[7]).toBe(18);
    expect(r[8]).toBe(-42);
  });

  it('and, or, xor', () => {
    const r = registersAfter((asm) => asm.movi(1, 0b1100).movi(2, 0b1010).and(3, 1, 2).or(4, 1, 2).xor(5, 1, 2).hlt());
    expect([r[3], r[4], r[5]]).toEqual([0b1000, 0b1110, 0b0110]);
  });

  it('shl shifts left by the low five bits of the count', () => {
    const r = registersAfter((asm) => asm.movi(1, 3).movi(2, 4).shl(3, 1, 2).movi(4, 33).shl(5, 1, 4).movi(6, 31).shl(7, 1, 6).hlt());
    expect(r[3]).toBe(48);
    expect(r[5]).toBe(6);
    expect(r[7]).toBe(-0x80000000);
  });

  it('shr is a logical shift', () => {
    const r = registersAfter((asm) => asm.movi(1, -1).movi(2, 28).shr(3, 1, 2).movi(4, 0).shr(5, 1, 4).movi(6, 64).shr(7, 6, 2).hlt());
    expect(r[3]).toBe(15);
    expect(r[5]).toBe(-1);
    expect(r[7]).toBe(0);
  });

  it('mul keeps the low 32 bits, signed', () => {
    const r = registersAfter((asm) => {
      asm.movi(1, -3).movi(2, 7).mul(3, 1, 2);
      power(asm, 4, 16);
      asm.mul(5, 4, 4).movi(6, 0x10001).mul(7, 6, 6).hlt();
    });
    expect(r[3]).toBe(-21);
    expect(r[5]).toBe(0);
    expect(r[7]).toBe(Math.imul(0x10001, 0x10001));
  });

  it('addi sign-extends and wraps', () => {
    const r = registersAfter((asm) => {
      asm.movi(1, 10).addi(2, 1, -20).addi(3, 1, IMMEDIATE_MAX);
      power(asm, 4, 31);
      asm.addi(5, 4, -1).hlt();
    });
    expect(r[2]).toBe(-10);
    expect(r[3]).toBe(131081);
    expect(r[5]).toBe(0x7fffffff);
  });

  it('andi sign-extends its immediate', () => {
    const r = registersAfter((asm) => {
      power(asm, 1, 30);
      asm.addi(1, 1, 0x155).andi(2, 1, -1).andi(3, 1, 0xff).andi(4, 1, IMMEDIATE_MIN).hlt();
    });
    expect(r[2]).toBe((1 << 30) + 0x155);
    expect(r[3]).toBe(0x55);
    expect(r[4]).toBe(1 << 30); // -131072 = 0xfffe0000: the high bits survive
  });

  it('the destination may be a source', () => {
    const r = registersAfter((asm) => asm.movi(1, 5).add(1, 1, 1).mul(1, 1, 1).hlt());
    expect(r[1]).toBe(100);
  });
});

describe('compare and flags', () => {
  const cases: readonly [number, number, number][] = [
    [1, 2, FLAG_LESS],
    [2, 2, FLAG_ZERO],
    [3, 2, 0],
    [-1, 1, FLAG_LESS],
    [1, -1, 0],
  ];
  it.each(cases)('cmp %i, %i sets flags %i (signed)', (left, right, flags) => {
    const ran = runProgram((asm) => asm.movi(1, left).movi(2, right).cmp(1, 2).hlt());
    expect(ran.machine.cpus[0].flags).toBe(flags);
  });

  it.each(cases)('cmpi %i, %i sets flags %i', (left, right, flags) => {
    const ran = runProgram((asm) => asm.movi(1, left).cmpi(1, right).hlt());
    expect(ran.machine.cpus[0].flags).toBe(flags);
  });

  it('compares signed across the full 32-bit range', () => {
    const ran = runProgram((asm) => {
      power(asm, 1, 31);
      asm.movi(2, 1).cmp(1, 2).hlt();
    });
    expect(ran.machine.cpus[0].flags).toBe(FLAG_LESS);
  });

  it('compare keeps the interrupt-enable flag and replaces old condition bits', () => {
    const ran = runProgram((asm) => asm.movi(1, 1).cmpi(1, 2).sti().cmpi(1, 1).cli().sti().cmpi(1, 0).cli().hlt());
    expect(ran.machine.cpus[0].flags).toBe(0);
    const kept = runProgram((asm) => asm.sti().movi(1, 1).cmpi(1, 1).nop().hlt());
    expect(kept.machine.cpus[0].flags).toBe(FLAG_INTERRUPT_ENABLE | FLAG_ZERO);
  });

  it('cli and sti clear and set only the interrupt-enable flag', () => {
    const ran = runProgram((asm) => asm.movi(1, 0).cmpi(1, 1).sti().nop().hlt());
    expect(ran.machine.cpus[0].flags).toBe(FLAG_INTERRUPT_ENABLE | FLAG_LESS);
    const cleared = runProgram((asm) => asm.movi(1, 0).cmpi(1, 1).sti().cli().hlt());
    expect(cleared.machine.cpus[0].flags).toBe(FLAG_LESS);
  });
});

describe('branches', () => {
  type Branch = 'beq' | 'bne' | 'blt' | 'bge' | 'bgt' | 'ble';
  const relations: readonly [number, number][] = [[1, 2], [2, 2], [3, 2], [-5, 2]];
  const taken: Record<Branch, (left: number, right: number) => boolean> = {
    beq: (l, r) => l === r,
    bne: (l, r) => l !== r,
    blt: (l, r) => l < r,
    bge: (l, r) => l >= r,
    bgt: (l, r) => l > r,
    ble: (l, r) => l <= r,
  };
  for (const branch of Object.keys(taken) as Branch[]) {
    it.each(relations)(`${branch} after cmp %i, %i`, (left, right) => {
      const r = registersAfter((asm) => {
        asm.movi(1, left).movi(2, right).movi(3, 0).cmp(1, 2);
        asm[branch](ref('target'));
        asm.movi(3, 1).hlt();
        asm.label('target').movi(3, 2).hlt();
      });
      expect(r[3]).toBe(taken[branch](left, right) ? 2 : 1);
    });
  }

  it('jmp goes to an absolute address', () => {
    const r = registersAfter((asm) => asm.jmp(ref('over')).movi(1, 1).label('over').movi(2, 1).hlt());
    expect([r[1], r[2]]).toEqual([0, 1]);
  });

  it('jr jumps to the address in a register', () => {
    const r = registersAfter((asm) => asm.movi(5, ref('over')).jr(5).movi(1, 1).label('over').movi(2, 1).hlt());
    expect([r[1], r[2]]).toEqual([0, 1]);
  });

  it('a backward branch loops', () => {
    const r = registersAfter((asm) => {
      asm.movi(1, 0).movi(2, 10);
      asm.label('top').addi(1, 1, 3).addi(2, 2, -1).cmpi(2, 0).bgt(ref('top'));
      asm.hlt();
    });
    expect(r[1]).toBe(30);
  });
});

describe('stack: call, ret, push, pop', () => {
  it('call pushes the return address and ret pops it', () => {
    const ran = runProgram((asm) => {
      asm.call(ref('f')).label('back').movi(2, 1).hlt();
      asm.label('f').rdsp(3).ld(4, 3, 0).movi(1, 7).ret();
    });
    const r = ran.machine.cpus[0].registers;
    expect(r[1]).toBe(7);
    expect(r[2]).toBe(1);
    expect(r[3]).toBe(stackTop(0) - 1);
    expect(r[4]).toBe(ran.address('back'));
    expect(ran.machine.cpus[0].stackPointer).toBe(stackTop(0));
  });

  it('callr calls through a register; calls nest', () => {
    const r = registersAfter((asm) => {
      asm.movi(5, ref('outer')).callr(5).hlt();
      asm.label('outer').addi(1, 1, 1).call(ref('inner')).addi(1, 1, 100).ret();
      asm.label('inner').addi(1, 1, 10).ret();
    });
    expect(r[1]).toBe(111);
  });

  it('push and pop are last in, first out and move the stack pointer by one word', () => {
    const ran = runProgram((asm) => asm.movi(1, 11).movi(2, 22).push(1).push(2).rdsp(5).pop(3).pop(4).hlt());
    const r = ran.machine.cpus[0].registers;
    expect([r[3], r[4]]).toEqual([22, 11]);
    expect(r[5]).toBe(stackTop(0) - 2);
    expect(ran.machine.memory.words[stackTop(0) - 1]).toBe(11);
    expect(ran.machine.cpus[0].stackPointer).toBe(stackTop(0));
  });
});

describe('cas', () => {
  it('succeeds when memory holds the expected value', () => {
    const ran = runProgram((asm) => {
      asm.movi(1, DATA_BASE).movi(2, 5).st(1, 0, 2);
      asm.movi(3, 5).movi(4, 9).cas(3, 1, 4).hlt();
    });
    expect(ran.machine.memory.words[DATA_BASE]).toBe(9);
    expect(ran.machine.cpus[0].registers[3]).toBe(5);
    expect(ran.machine.cpus[0].flags & FLAG_ZERO).toBe(FLAG_ZERO);
  });

  it('fails, loads the current value and clears Z otherwise', () => {
    const ran = runProgram((asm) => {
      asm.movi(1, DATA_BASE).movi(2, 6).st(1, 0, 2);
      asm.movi(3, 5).movi(4, 9).cmp(3, 3).cas(3, 1, 4).hlt();
    });
    expect(ran.machine.memory.words[DATA_BASE]).toBe(6);
    expect(ran.machine.cpus[0].registers[3]).toBe(6);
    expect(ran.machine.cpus[0].flags & FLAG_ZERO).toBe(0);
  });

  it('builds a spinlock that two CPUs share without losing increments', () => {
    const lock = DATA_BASE;
    const counter = DATA_BASE + 1;
    const ran = runProgram(
      (asm) => {
        asm.label('main').movi(1, lock).movi(2, 500);
        asm.label('top');
        asm.withLock(1, () => {
          asm.ld(3, 1, counter - lock).addi(3, 3, 1).nop().nop().st(1, counter - lock, 3);
        });
        asm.addi(2, 2, -1).cmpi(2, 0).bne(ref('top')).hlt();
      },
      { cpuCount: 2, entries: { 0: 'main', 1: 'main' } },
    );
    expect(ran.traps).toEqual([]);
    expect(ran.machine.memory.words[counter]).toBe(1000);
    expect(ran.machine.memory.words[lock]).toBe(0);
  });
});

describe('hlt', () => {
  it('halts the CPU with interrupts off until the run ends', () => {
    const ran = runProgram((asm) => asm.nop().hlt().movi(1, 1));
    const cpu = ran.machine.cpus[0];
    expect(cpu.mode).toBe(CpuMode.Halted);
    expect(cpu.programCounter).toBe(CODE_BASE + 2);
    expect(cpu.registers[1]).toBe(0);
    expect(ran.outcome).toEqual({ kind: 'timeReached', timeNs: 1_000_000 });
  });
});
