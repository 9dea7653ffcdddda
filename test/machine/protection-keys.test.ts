/**
 * Protection keys (x86 MPK) through the machine: a key per page, PKRU per CPU, `wrpkru`, and the
 * protection-key fault a violating data access raises, interpreted and translated alike.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ref } from '../../src/machine/assembler.js';
import { accessDisableBit, writeDisableBit } from '../../src/machine/cpu.js';
import { disassemble } from '../../src/machine/disassembler.js';
import { Opcode, encode } from '../../src/machine/isa.js';
import { Machine, WRPKRU_EXTRA_NS } from '../../src/machine/machine.js';
import { blockSource } from '../../src/machine/translator.js';
import { PAGE_SHIFT, PAGE_WORDS } from '../../src/machine/memory.js';
import { CODE_BASE, DATA_BASE, STACK_BASE, STACK_WORDS_PER_CPU, STATIC_BASE, rig, runProgram, stackTop } from './rig.js';
import { buildRandomProgram, randomKeyedProgram, runThrough, type RandomProgram } from './random-program.js';
import { machineState } from './state.js';

const keyed = { config: { protectionKeys: true } };
const KEY = 5;

describe('wrpkru', () => {
  it('is an invalid opcode on a machine without protection keys, as with CR4.PKE clear', () => {
    const ran = runProgram((asm) => asm.movi(1, 3).wrpkru(1).hlt());
    expect(ran.traps).toEqual([{ kind: 'exception', exception: 'invalidOpcode', cpu: 0, programCounter: CODE_BASE + 1, address: 0, access: 'none' }]);
    expect(ran.machine.cpus[0].pkru).toBe(0);
  });

  it('writes PKRU (register plus immediate) and takes about 13 ns', () => {
    const ran = runProgram((asm) => asm.movi(1, 0x30).wrpkru(1, 4).hlt(), keyed);
    expect(ran.traps).toEqual([]);
    const cpu = ran.machine.cpus[0];
    expect(cpu.pkru).toBe(0x34);
    expect(cpu.instructionsRetired).toBe(3);
    // hlt leaves the clock where the third instruction ended
    expect(cpu.timeNs).toBe(3 + WRPKRU_EXTRA_NS);
  });

  it('disassembles', () => {
    expect(disassemble(encode(Opcode.WritePkru, 3, 0, 12))).toBe('wrpkru r3, 12');
  });
});

describe('a data access against PKRU', () => {
  function keyedData(pkru: number, build: (asm: import('../../src/machine/assembler.js').Assembler) => void) {
    const built = rig(
      (asm) => {
        asm.movi(13, DATA_BASE).movi(1, pkru).wrpkru(1);
        build(asm);
        asm.hlt();
      },
      keyed,
    );
    built.machine.memory.setKey(DATA_BASE, 1, KEY);
    built.machine.run(1_000_000);
    return built;
  }

  it('a store to a write-disabled key faults as a protection-key fault and leaves memory alone', () => {
    const { traps, machine } = keyedData(writeDisableBit(KEY), (asm) => asm.movi(2, 7).st(13, 1, 2));
    expect(traps).toEqual([{ kind: 'exception', exception: 'protectionKey', cpu: 0, programCounter: CODE_BASE + 4, address: DATA_BASE + 1, access: 'write' }]);
    expect(machine.memory.words[DATA_BASE + 1]).toBe(0);
  });

  it('a load from a write-disabled key is allowed; from an access-disabled one it faults', () => {
    expect(keyedData(writeDisableBit(KEY), (asm) => asm.ld(2, 13, 0)).traps).toEqual([]);
    expect(keyedData(accessDisableBit(KEY), (asm) => asm.ld(2, 13, 0)).traps).toEqual([
      { kind: 'exception', exception: 'protectionKey', cpu: 0, programCounter: CODE_BASE + 3, address: DATA_BASE, access: 'read' },
    ]);
  });

  it('cas, push and pop are checked too', () => {
    expect(keyedData(writeDisableBit(KEY), (asm) => asm.cas(1, 13, 2)).traps[0]).toMatchObject({ exception: 'protectionKey', access: 'write' });
    const stackKeyed = rig((asm) => asm.movi(1, accessDisableBit(KEY)).wrpkru(1).push(1).hlt(), keyed);
    stackKeyed.machine.memory.setKey(STACK_BASE, STACK_WORDS_PER_CPU, KEY);
    stackKeyed.machine.run(1_000);
    expect(stackKeyed.traps[0]).toMatchObject({ exception: 'protectionKey', address: stackTop(0) - 1, access: 'write' });
  });

  it('closing one key leaves pages of the others open, and a wrong page stays a page fault', () => {
    const { traps } = keyedData(accessDisableBit(KEY + 1) | writeDisableBit(0), (asm) => asm.ld(2, 13, 0).movi(3, 1).st(13, 0, 3));
    expect(traps).toEqual([]);
    const unmapped = keyedData(accessDisableBit(KEY), (asm) => asm.movi(4, 0x600).ld(2, 4, 0));
    expect(unmapped.traps[0]).toMatchObject({ exception: 'pageFault' });
  });

  it('a translated loop faults exactly where the interpreter does', () => {
    const run = (translate: boolean) => {
      const built = rig(
        (asm) => {
          asm.movi(13, DATA_BASE).movi(2, 0);
          asm.label('loop').addi(2, 2, 1).st(13, PAGE_WORDS, 2).cmpi(2, 500).bne(ref('loop'));
          asm.movi(1, writeDisableBit(KEY)).wrpkru(1);
          asm.label('again').addi(2, 2, 1).st(13, PAGE_WORDS, 2).jmp(ref('again'));
        },
        { config: { protectionKeys: true, translate } },
      );
      built.machine.memory.setKey(DATA_BASE + PAGE_WORDS, 1, KEY);
      built.machine.run(100_000);
      return { traps: built.traps, state: machineState(built.machine) };
    };
    const translated = run(true);
    expect(translated.traps).toEqual([expect.objectContaining({ exception: 'protectionKey', address: DATA_BASE + PAGE_WORDS })]);
    expect(translated).toEqual(run(false));
  });
});

describe('protection keys in the machine state', () => {
  it('a snapshot keeps the page keys and every PKRU, and restore brings them back', () => {
    const built = rig((asm) => asm.movi(1, 12).wrpkru(1).hlt(), keyed);
    built.machine.memory.setKey(STATIC_BASE, PAGE_WORDS, 3);
    built.machine.run(1_000);
    const snapshot = built.machine.snapshot();
    built.machine.memory.setKey(STATIC_BASE, PAGE_WORDS, 9);
    built.machine.cpus[0].pkru = 0;
    built.machine.restore(snapshot);
    expect(built.machine.memory.keyAt(STATIC_BASE)).toBe(3);
    expect(built.machine.cpus[0].pkru).toBe(12);
  });

  it('a finer key granule keys words apart within a page', () => {
    const built = rig((asm) => asm.movi(13, DATA_BASE).movi(1, writeDisableBit(KEY)).wrpkru(1).movi(2, 1).st(13, 1, 2).st(13, 0, 2).hlt(), { config: { protectionKeys: true, protectionKeyShift: 0 } });
    built.machine.memory.setKey(DATA_BASE, 1, KEY);
    built.machine.run(1_000);
    expect(built.traps).toEqual([expect.objectContaining({ exception: 'protectionKey', address: DATA_BASE })]);
    expect(built.machine.memory.words[DATA_BASE + 1]).toBe(1);
  });

  it('rejects a key outside 0..15', () => {
    const machine = new Machine({ cpuCount: 1, segments: [], interruptTableBase: 0, timerVector: 1, hostStackTops: [0], vmExitEntry: 0 });
    expect(() => machine.memory.setKey(0, 1, 16)).toThrow(/protection key 16/);
  });
});

/** Random keys for granules of the static data and stacks, as a list of [address, key], and the granule size. */
const keyLayout = fc.record({
  keys: fc.array(fc.tuple(fc.integer({ min: STATIC_BASE, max: STACK_BASE + 2 * STACK_WORDS_PER_CPU }), fc.integer({ min: 0, max: 15 })), { maxLength: 12 }),
  shift: fc.integer({ min: 0, max: PAGE_SHIFT }),
});

function runKeyed(program: RandomProgram, layout: { keys: readonly (readonly [number, number])[]; shift: number }, translate: boolean, instructionLimit: number): unknown {
  const built = buildRandomProgram(program, { translate, protectionKeys: true, protectionKeyShift: layout.shift });
  for (const [address, key] of layout.keys) built.machine.memory.setKey(address, 1, key);
  const outcomes = runThrough(built.machine, 40_000, { instructionLimit });
  return { outcomes, traps: built.traps, state: machineState(built.machine) };
}

describe('translation with protection keys', () => {
  it('gives the same stops, traps and final state as interpreting every instruction', () => {
    fc.assert(
      fc.property(randomKeyedProgram, keyLayout, fc.integer({ min: 1, max: 60_000 }), (program, keys, stop) => {
        expect(runKeyed(program, keys, true, stop)).toEqual(runKeyed(program, keys, false, stop));
      }),
      { numRuns: 120 },
    );
  });
});

describe('a machine without protection keys', () => {
  it('translates blocks that never look at a key: the source is what it was before keys existed', () => {
    const built = rig((asm) => asm.movi(13, DATA_BASE).ld(1, 13, 0).st(13, 1, 1).push(1).pop(2).cas(1, 13, 2).hlt());
    const { words, pagePermissions, sizeWords } = built.machine.memory;
    expect(blockSource(CODE_BASE, words, pagePermissions, sizeWords)).not.toMatch(/pkru|pageKeys/);
    expect(blockSource(CODE_BASE, words, pagePermissions, sizeWords, PAGE_SHIFT)).toMatch(/cpu\.pkru !== 0 && \(\(cpu\.pkru >>> \(host\.pageKeys\[address >>> 6\] << 1\)\) & 3\)/);
  });
});
