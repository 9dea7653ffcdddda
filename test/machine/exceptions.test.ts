/**
 * Every kind of trap, with the CPU, program counter, address and access it reports.
 */
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import { CpuMode } from '../../src/machine/cpu.js';
import { NMI_EVENT } from '../../src/machine/event-queue.js';
import { FLAG_INTERRUPT_ENABLE, Opcode, encode, encodeThreeRegister } from '../../src/machine/isa.js';
import { describeTrap, type AccessKind, type ExceptionKind, type Trap } from '../../src/machine/trap.js';
import { CODE_BASE, DATA_BASE, STACK_BASE, UNMAPPED, rig, runProgram, stackTop } from './rig.js';

function exception(
  exception: ExceptionKind,
  programCounter: number,
  address: number,
  access: AccessKind | 'none',
  cpu = 0,
): Trap {
  return { kind: 'exception', exception, cpu, programCounter, address, access };
}

describe('page faults', () => {
  it('load from an unmapped address', () => {
    const ran = runProgram((asm) => asm.movi(1, UNMAPPED).ld(2, 1, 3).hlt());
    expect(ran.traps).toEqual([exception('pageFault', CODE_BASE + 1, UNMAPPED + 3, 'read')]);
    expect(ran.outcome).toEqual({ kind: 'stopped', reason: 'trap: exception' });
    expect(ran.machine.cpus[0].mode).toBe(CpuMode.Stopped);
    expect(ran.machine.cpus[0].programCounter).toBe(CODE_BASE + 1);
  });

  it('load through a null pointer hits the guard page', () => {
    const ran = runProgram((asm) => asm.ld(2, 0, 5).hlt());
    expect(ran.traps).toEqual([exception('pageFault', CODE_BASE, 5, 'read')]);
  });

  it('load below zero and beyond the end of memory', () => {
    const below = runProgram((asm) => asm.movi(1, -1).ld(2, 1, 0).hlt());
    expect(below.traps).toEqual([exception('pageFault', CODE_BASE + 1, -1, 'read')]);
    const size = below.machine.memory.sizeWords;
    const beyond = runProgram((asm) => asm.movi(1, size).ld(2, 1, 0).hlt());
    expect(beyond.traps).toEqual([exception('pageFault', CODE_BASE + 1, size, 'read')]);
  });

  it('store to an unmapped address leaves memory alone', () => {
    const ran = runProgram((asm) => asm.movi(1, UNMAPPED).movi(2, 9).st(1, -1, 2).hlt());
    expect(ran.traps).toEqual([exception('pageFault', CODE_BASE + 2, UNMAPPED - 1, 'write')]);
    expect(ran.machine.memory.words[UNMAPPED - 1]).toBe(0);
  });

  it('fetch from an unmapped address', () => {
    const ran = runProgram((asm) => asm.jmp(UNMAPPED));
    expect(ran.traps).toEqual([exception('pageFault', UNMAPPED, UNMAPPED, 'fetch')]);
  });

  it('a jump to 0 faults at once (null guard)', () => {
    const ran = runProgram((asm) => asm.movi(1, 0).jr(1));
    expect(ran.traps).toEqual([exception('pageFault', 0, 0, 'fetch')]);
    expect(ran.machine.cpus[0].instructionsRetired).toBe(2);
  });

  it('push onto an exhausted stack and pop from an empty one', () => {
    const push = runProgram((asm) => asm.movi(1, STACK_BASE).wrsp(1).push(1));
    expect(push.traps).toEqual([exception('pageFault', CODE_BASE + 2, STACK_BASE - 1, 'write')]);
    expect(push.machine.cpus[0].stackPointer).toBe(STACK_BASE);
    const top = stackTop(3);
    const pop = runProgram((asm) => asm.movi(1, top).wrsp(1).pop(2));
    expect(pop.traps).toEqual([exception('pageFault', CODE_BASE + 2, top, 'read')]);
  });

  it('call and ret with a broken stack', () => {
    const call = runProgram((asm) => asm.movi(1, 0).wrsp(1).call(ref('f')).label('f').hlt());
    expect(call.traps).toEqual([exception('pageFault', CODE_BASE + 2, -1, 'write')]);
    const ret = runProgram((asm) => asm.movi(1, UNMAPPED).wrsp(1).ret());
    expect(ret.traps).toEqual([exception('pageFault', CODE_BASE + 2, UNMAPPED, 'read')]);
  });

  it('ret to a corrupted return address faults on the fetch', () => {
    const ran = runProgram((asm) => asm.movi(1, 0).push(1).ret());
    expect(ran.traps).toEqual([exception('pageFault', 0, 0, 'fetch')]);
  });
});

describe('protection faults', () => {
  it('store to code', () => {
    const ran = runProgram((asm) => asm.movi(1, CODE_BASE).movi(2, 0).st(1, 0, 2).hlt());
    expect(ran.traps).toEqual([exception('protectionFault', CODE_BASE + 2, CODE_BASE, 'write')]);
    expect(ran.machine.memory.words[CODE_BASE]).toBe(ran.program.words[0]);
  });

  it('cas on code', () => {
    const ran = runProgram((asm) => asm.movi(1, CODE_BASE).cas(2, 1, 3).hlt());
    expect(ran.traps).toEqual([exception('protectionFault', CODE_BASE + 1, CODE_BASE, 'write')]);
  });

  it('cas on an unmapped address is a page fault', () => {
    const ran = runProgram((asm) => asm.movi(1, UNMAPPED).cas(2, 1, 3).hlt());
    expect(ran.traps).toEqual([exception('pageFault', CODE_BASE + 1, UNMAPPED, 'write')]);
  });

  it('fetch from static data', () => {
    const ran = runProgram((asm) => asm.jmp(DATA_BASE));
    expect(ran.traps).toEqual([exception('protectionFault', DATA_BASE, DATA_BASE, 'fetch')]);
  });

  it('fetch from the stack', () => {
    const ran = runProgram((asm) => asm.call(stackTop(0) - 8));
    expect(ran.traps).toEqual([exception('protectionFault', stackTop(0) - 8, stackTop(0) - 8, 'fetch')]);
  });
});

describe('invalid opcodes', () => {
  function runWords(words: number[]) {
    const built = rig((asm) => asm.nop());
    built.machine.memory.words.set(words, CODE_BASE + 1);
    built.machine.run(1_000_000);
    return built;
  }

  it('opcode 0 (zeroed memory) traps', () => {
    const built = runWords([0]);
    expect(built.traps).toEqual([exception('invalidOpcode', CODE_BASE + 1, 0, 'none')]);
  });

  it('running off the end of the program into zeroed code traps', () => {
    const ran = runProgram((asm) => asm.nop().nop());
    expect(ran.traps).toEqual([exception('invalidOpcode', CODE_BASE + 2, 0, 'none')]);
  });

  it('unassigned opcodes trap', () => {
    for (const opcode of [Opcode.HandOver + 1, 63]) {
      const built = runWords([(opcode << 26) | 0]);
      expect(built.traps).toEqual([exception('invalidOpcode', CODE_BASE + 1, 0, 'none')]);
    }
  });

  it('extension bits set in a three-register instruction select another operation: add becomes sub', () => {
    for (const bit of [4, 11, 17]) {
      const built = runWords([encode(Opcode.MoveImmediate, 2, 0, 10), encode(Opcode.MoveImmediate, 3, 0, 3), encodeThreeRegister(Opcode.Add, 1, 2, 3) | (1 << bit), encode(Opcode.Halt)]);
      expect(built.traps).toEqual([]);
      expect(built.machine.cpus[0].registers[1]).toBe(7);
    }
  });

  it('a bit set where an instruction has no operand selects another operation of its shape', () => {
    // cli with an extension bit is sti; push r1 with one is pop r1
    const built = runWords([encode(Opcode.DisableInterrupts) | (1 << 12), encode(Opcode.Push, 1) | (1 << 3), encode(Opcode.DisableInterrupts), encode(Opcode.Halt)]);
    expect(built.traps).toEqual([]);
    const cpu = built.machine.cpus[0];
    expect(cpu.mode).toBe(CpuMode.Halted);
    expect(cpu.stackPointer).toBe(stackTop(0) + 1);
  });
});

describe('vm entry failure', () => {
  it('the default guest port rejects every context', () => {
    const ran = runProgram((asm) => asm.movi(1, 3).vmenter(1).hlt());
    expect(ran.traps).toEqual([exception('vmEntryFailure', CODE_BASE + 1, 0, 'none')]);
    expect(ran.machine.cpus[0].programCounter).toBe(CODE_BASE + 1);
    expect(ran.machine.cpus[0].mode).toBe(CpuMode.Stopped);
  });
});

describe('assertions and panics', () => {
  it('bug_on with a zero operand passes', () => {
    const ran = runProgram((asm) => asm.movi(1, 0).bugOn(1, 7).movi(2, 1).hlt());
    expect(ran.traps).toEqual([]);
    expect(ran.machine.cpus[0].registers[2]).toBe(1);
  });

  it('bug_on with a non-zero operand raises an assertion with its code', () => {
    const ran = runProgram((asm) => asm.movi(1, -1).bugOn(1, 77).movi(2, 1).hlt());
    expect(ran.traps).toEqual([{ kind: 'assertion', cpu: 0, programCounter: CODE_BASE + 1, code: 77 }]);
    expect(ran.machine.cpus[0].registers[2]).toBe(0);
    expect(ran.outcome).toEqual({ kind: 'stopped', reason: 'trap: assertion' });
  });

  it('panic reports its code, sign-extended, and the CPU it ran on', () => {
    const ran = runProgram((asm) => asm.label('main').nop().panic(-3), { cpuCount: 2, entries: { 1: 'main' } });
    expect(ran.traps).toEqual([{ kind: 'panic', cpu: 1, programCounter: CODE_BASE + 1, code: -3 }]);
    expect(ran.machine.cpus[1].mode).toBe(CpuMode.Stopped);
  });

  it('a trap on one CPU leaves the others as they were', () => {
    const ran = runProgram((asm) => asm.label('main').cpuid(1).bugOn(1, 1).hlt(), { cpuCount: 2, entries: { 0: 'main', 1: 'main' } });
    expect(ran.traps).toEqual([{ kind: 'assertion', cpu: 1, programCounter: CODE_BASE + 1, code: 1 }]);
    expect(ran.machine.cpus[0].mode).toBe(CpuMode.Halted);
  });
});

describe('describeTrap', () => {
  it('renders each kind on one line', () => {
    expect(describeTrap(exception('pageFault', 0x104, 0x600, 'read'))).toBe('pageFault (read 0x600) at cpu 0 pc 0x104');
    expect(describeTrap(exception('invalidOpcode', 0x104, 0, 'none'))).toBe('invalidOpcode at cpu 0 pc 0x104');
    expect(describeTrap({ kind: 'assertion', cpu: 1, programCounter: 0x10, code: 3 })).toBe('assertion 3 failed at cpu 1 pc 0x10');
    expect(describeTrap({ kind: 'panic', cpu: 2, programCounter: 0x10, code: 4 })).toBe('panic 4 at cpu 2 pc 0x10');
  });
});

describe('traps while delivering an interrupt', () => {
  it('an empty interrupt table entry sends the CPU to address 0', () => {
    const built = rig((asm) => asm.sti().label('spin').jmp(ref('spin')));
    built.machine.raiseInterrupt(100, 0, 9);
    built.machine.run(1_000_000);
    expect(built.traps).toEqual([exception('pageFault', 0, 0, 'fetch')]);
  });

  it('a stack that cannot take the interrupt frame faults on the push', () => {
    const built = rig((asm) => asm.movi(1, STACK_BASE).wrsp(1).sti().label('spin').jmp(ref('spin')), { handlers: { 9: 'spin' } });
    built.machine.raiseInterrupt(100, 0, 9);
    built.machine.run(1_000_000);
    expect(built.traps).toEqual([exception('pageFault', built.address('spin'), STACK_BASE - 1, 'write')]);
  });
});

describe('exception delivery into the hypervisor (x86: frame on the current stack, double fault and NMI on their own)', () => {
  const EXCEPTION_TABLE = DATA_BASE - 0x10;
  const NMI_STACK_TOP = stackTop(2);
  const DOUBLE_FAULT_STACK_TOP = stackTop(3);

  /** A rig whose traps are delivered: word 0 of the table names `fault`, word 1 `double`. */
  function delivering(build: (asm: Assembler) => void, doubleFaultStackTop = DOUBLE_FAULT_STACK_TOP) {
    const built = rig(
      (asm) => {
        build(asm);
        asm.label('fault').rdsp(3).hlt();
        asm.label('double').rdsp(4).hlt();
      },
      {
        handlers: { 0: 'nmi' },
        config: { exceptions: { tableBase: EXCEPTION_TABLE, nmiStackTops: [NMI_STACK_TOP], doubleFaultStackTops: [doubleFaultStackTop] } },
      },
    );
    built.machine.memory.words[EXCEPTION_TABLE] = built.address('fault');
    built.machine.memory.words[EXCEPTION_TABLE + 1] = built.address('double');
    // traps are only reported: the CPU goes on into its handler
    built.machine.trapHandler = (trap) => built.traps.push(trap);
    return built;
  }

  it('a fault is reported, pushes the stack pointer, flags and its own PC on the current stack, and enters the handler with IF clear', () => {
    const built = delivering((asm) => asm.sti().movi(1, UNMAPPED).label('load').ld(2, 1, 0).label('nmi').hlt());
    built.machine.run(1_000_000);
    const cpu = built.machine.cpus[0];
    const words = built.machine.memory.words;
    expect(built.traps).toEqual([exception('pageFault', built.address('load'), UNMAPPED, 'read')]);
    expect(cpu.registers[3]).toBe(stackTop(0) - 3);
    expect([words[stackTop(0) - 3], words[stackTop(0) - 2] & FLAG_INTERRUPT_ENABLE, words[stackTop(0) - 1]]).toEqual([built.address('load'), FLAG_INTERRUPT_ENABLE, stackTop(0)]);
    expect(cpu.flags & FLAG_INTERRUPT_ENABLE).toBe(0);
    expect(cpu.mode).toBe(CpuMode.Halted);
    expect(cpu.programCounter).toBe(built.address('fault') + 2);
  });

  it('a frame that cannot be pushed (a corrupted stack pointer) is a double fault, delivered on its own stack', () => {
    const built = delivering((asm) => asm.movi(1, UNMAPPED).wrsp(1).label('push').push(2).label('nmi').hlt());
    built.machine.run(1_000_000);
    const cpu = built.machine.cpus[0];
    expect(built.traps).toEqual([
      exception('pageFault', built.address('push'), UNMAPPED - 1, 'write'),
      exception('doubleFault', built.address('push'), UNMAPPED - 1, 'write'),
    ]);
    expect(cpu.registers[3]).toBe(0);
    expect(cpu.registers[4]).toBe(DOUBLE_FAULT_STACK_TOP - 3);
    expect(built.machine.memory.words[DOUBLE_FAULT_STACK_TOP - 1]).toBe(UNMAPPED);
    expect(cpu.programCounter).toBe(built.address('double') + 2);
  });

  it('a double fault that cannot be delivered either shuts the CPU down', () => {
    const built = delivering((asm) => asm.movi(1, UNMAPPED).wrsp(1).push(2).label('nmi').hlt(), UNMAPPED + 0x10);
    built.machine.run(1_000_000);
    expect(built.traps.map((trap) => (trap.kind === 'exception' ? trap.exception : trap.kind))).toEqual(['pageFault', 'doubleFault']);
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Stopped);
  });

  it('an NMI switches to its own stack whatever the stack pointer was, and iret puts that stack pointer back', () => {
    const built = delivering((asm) => {
      asm.movi(1, UNMAPPED).wrsp(1).label('spin').jmp(ref('spin'));
      asm.label('nmi').rdsp(5).iret();
    });
    built.machine.raiseInterrupt(100, 0, NMI_EVENT);
    built.machine.run(1_000);
    const cpu = built.machine.cpus[0];
    expect(built.traps).toEqual([]);
    expect(cpu.registers[5]).toBe(NMI_STACK_TOP - 3);
    expect(built.machine.memory.words[NMI_STACK_TOP - 1]).toBe(UNMAPPED);
    expect(cpu.stackPointer).toBe(UNMAPPED);
    expect(cpu.programCounter).toBe(built.address('spin'));
  });

  it('handover, while the layer above listens, stops the CPU and reports where', () => {
    const built = delivering((asm) => asm.nop().label('done').handover().label('nmi').hlt());
    built.machine.handoverArmed = true;
    built.machine.run(1_000);
    expect(built.traps).toEqual([{ kind: 'handover', cpu: 0, programCounter: built.address('done') }]);
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Stopped);
  });

  it('handover anywhere else (a code fault can make one) is an invalid opcode, delivered like any fault', () => {
    const built = delivering((asm) => asm.nop().label('done').handover().label('nmi').hlt());
    built.machine.run(1_000);
    expect(built.traps).toEqual([exception('invalidOpcode', built.address('done'), 0, 'none')]);
    expect(built.machine.cpus[0].programCounter).toBe(built.address('fault') + 2);
  });
});
