/**
 * Random multi-CPU programs for property tests: arithmetic, shared memory, locks, branches,
 * pause, timers, IPIs and the occasional fault, looping forever on every CPU.
 *
 * Register use: r1..r11 random, r12 lock address, r13 data base, r14/r15 assembler scratch (r14 also the subroutines').
 */
import fc from 'fast-check';
import { Assembler, ref } from '../../src/machine/assembler.js';
import type { Machine, MachineConfig, RunOutcome } from '../../src/machine/machine.js';
import { DATA_BASE, TIMER_VECTOR, emitLog, rig, type Rig } from './rig.js';

export const IPI_VECTOR = 7;

export type Operation =
  | { readonly kind: 'movi'; readonly destination: number; readonly value: number }
  | { readonly kind: 'addi'; readonly destination: number; readonly source: number; readonly value: number }
  | { readonly kind: 'alu'; readonly mnemonic: AluMnemonic; readonly destination: number; readonly left: number; readonly right: number }
  | { readonly kind: 'load'; readonly destination: number; readonly offset: number }
  | { readonly kind: 'store'; readonly source: number; readonly offset: number }
  | { readonly kind: 'cas'; readonly expected: number; readonly desired: number }
  | { readonly kind: 'lockedIncrement' }
  | { readonly kind: 'skip'; readonly branch: BranchMnemonic; readonly left: number; readonly right: number; readonly length: number }
  | { readonly kind: 'pause' }
  | { readonly kind: 'interrupts'; readonly enable: boolean }
  | { readonly kind: 'timer'; readonly microseconds: number }
  | { readonly kind: 'ipi'; readonly target: number; readonly vector: number }
  | { readonly kind: 'rdtime'; readonly destination: number }
  | { readonly kind: 'wildLoad'; readonly destination: number; readonly base: number }
  /** a call to one of the shared subroutines: a counter bumped once, twice through a nested call, or a return past the instruction after the call */
  | { readonly kind: 'call'; readonly subroutine: Subroutine }
  /** only in keyed programs (keyedOperation): a machine without protection keys traps on it */
  | { readonly kind: 'wrpkru'; readonly source: number; readonly value: number };

type Subroutine = 'bump' | 'bumpTwice' | 'skipNext';

type AluMnemonic = 'add' | 'sub' | 'and' | 'or' | 'xor' | 'shl' | 'shr' | 'mul';
type BranchMnemonic = 'beq' | 'bne' | 'blt' | 'bge' | 'bgt' | 'ble';

export interface RandomProgram {
  readonly cpuCount: number;
  readonly bodies: readonly (readonly Operation[])[];
}

const register = fc.integer({ min: 1, max: 11 });
const offset = fc.integer({ min: 0, max: 31 });

export const operation: fc.Arbitrary<Operation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('movi' as const), destination: register, value: fc.integer({ min: -131072, max: 131071 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('addi' as const), destination: register, source: register, value: fc.integer({ min: -50, max: 50 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant('alu' as const),
      mnemonic: fc.constantFrom<AluMnemonic>('add', 'sub', 'and', 'or', 'xor', 'shl', 'shr', 'mul'),
      destination: register,
      left: register,
      right: register,
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('load' as const), destination: register, offset }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('store' as const), source: register, offset }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('cas' as const), expected: register, desired: register }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'lockedIncrement' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('skip' as const),
      branch: fc.constantFrom<BranchMnemonic>('beq', 'bne', 'blt', 'bge', 'bgt', 'ble'),
      left: register,
      right: register,
      length: fc.integer({ min: 0, max: 4 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.constant({ kind: 'pause' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('interrupts' as const), enable: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('timer' as const), microseconds: fc.integer({ min: -1, max: 3 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('ipi' as const), target: fc.integer({ min: 0, max: 2 }), vector: fc.constantFrom(0, IPI_VECTOR) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('rdtime' as const), destination: register }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('wildLoad' as const), destination: register, base: register }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('call' as const), subroutine: fc.constantFrom<Subroutine>('bump', 'bumpTwice', 'skipNext') }), weight: 1 },
);

/** An operation of a program for a machine with protection keys: any of the others, or a PKRU write. */
export const keyedOperation: fc.Arbitrary<Operation> = fc.oneof(
  { arbitrary: operation, weight: 8 },
  {
    // mostly small values, so that most keys stay open and the programs get somewhere
    arbitrary: fc.record({ kind: fc.constant('wrpkru' as const), source: register, value: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xff }), fc.integer({ min: -(2 ** 21), max: 2 ** 21 - 1 })) }),
    weight: 1,
  },
);

function programOf(op: fc.Arbitrary<Operation>): fc.Arbitrary<RandomProgram> {
  return fc
    .integer({ min: 1, max: 3 })
    .chain((cpuCount) =>
      fc.record({
        cpuCount: fc.constant(cpuCount),
        bodies: fc.array(fc.array(op, { minLength: 1, maxLength: 30 }), { minLength: cpuCount, maxLength: cpuCount }),
      }),
    );
}

export const randomProgram: fc.Arbitrary<RandomProgram> = programOf(operation);
/** Random programs that write PKRU, for a machine with protection keys. */
export const randomKeyedProgram: fc.Arbitrary<RandomProgram> = programOf(keyedOperation);

function emitOperation(asm: Assembler, op: Operation): void {
  switch (op.kind) {
    case 'movi':
      asm.movi(op.destination, op.value);
      return;
    case 'addi':
      asm.addi(op.destination, op.source, op.value);
      return;
    case 'alu':
      asm[op.mnemonic](op.destination, op.left, op.right);
      return;
    case 'load':
      asm.ld(op.destination, 13, op.offset);
      return;
    case 'store':
      asm.st(13, op.offset, op.source);
      return;
    case 'cas':
      asm.cas(op.expected, 13, op.desired);
      return;
    case 'lockedIncrement':
      asm.withLock(12, () => asm.ld(11, 13, 33).addi(11, 11, 1).st(13, 33, 11));
      return;
    case 'pause':
      asm.pause();
      return;
    case 'interrupts':
      if (op.enable) asm.sti();
      else asm.cli();
      return;
    case 'timer':
      asm.movi(11, op.microseconds).settimer(11);
      return;
    case 'ipi':
      asm.movi(10, op.target).movi(11, op.vector).ipi(10, 11);
      return;
    case 'rdtime':
      asm.rdtime(op.destination);
      return;
    case 'wildLoad':
      asm.ld(op.destination, op.base, 0);
      return;
    case 'wrpkru':
      asm.wrpkru(op.source, op.value);
      return;
    case 'call':
      asm.call(ref(op.subroutine));
      return;
    case 'skip':
      throw new Error('skip is emitted by emitBody');
  }
}

function emitBody(asm: Assembler, body: readonly Operation[]): void {
  const pending: { label: string; remaining: number }[] = [];
  for (const op of body) {
    if (op.kind === 'skip') {
      const label = asm.unique('skip');
      asm.cmp(op.left, op.right)[op.branch](ref(label));
      pending.push({ label, remaining: op.length });
    } else {
      emitOperation(asm, op);
      for (const entry of pending) entry.remaining--;
    }
    placeLabels(asm, pending, (entry) => entry.remaining <= 0);
  }
  placeLabels(asm, pending, () => true);
}

function placeLabels(asm: Assembler, pending: { label: string; remaining: number }[], due: (entry: { remaining: number }) => boolean): void {
  for (let index = pending.length - 1; index >= 0; index--) {
    if (!due(pending[index])) continue;
    asm.label(pending[index].label);
    pending.splice(index, 1);
  }
}

/** The subroutines `call` operations reach (r14, used by no operation, is theirs): calls and returns inside translated blocks. */
function emitSubroutines(asm: Assembler): void {
  asm.label('bump').ld(14, 13, 34).addi(14, 14, 1).st(13, 34, 14).ret();
  asm.label('bumpTwice').call(ref('bump')).call(ref('bump')).ret();
  // returns one word past its return address: a `ret` to somewhere other than after its call
  asm.label('skipNext').rdsp(14).ld(15, 14, 0).addi(15, 15, 1).st(14, 0, 15).ret();
}

function emitHandlers(asm: Assembler): void {
  asm.label('timer');
  emitLog(asm, 1);
  asm.eoi().iret();
  asm.label('ipi');
  emitLog(asm, 2);
  asm.eoi().iret();
  asm.label('nmi');
  emitLog(asm, 3);
  asm.iret();
}

export function buildRandomProgram(program: RandomProgram, config: Partial<MachineConfig> = {}): Rig {
  const entries: Record<number, string> = {};
  return rig(
    (asm) => {
      program.bodies.forEach((body, cpu) => {
        entries[cpu] = `main${cpu}`;
        asm.label(`main${cpu}`).movi(13, DATA_BASE).movi(12, DATA_BASE + 40).movi(1, 2).settimer(1).sti();
        asm.label(`loop${cpu}`);
        emitBody(asm, body);
        asm.jmp(ref(`loop${cpu}`));
      });
      emitSubroutines(asm);
      emitHandlers(asm);
    },
    {
      cpuCount: program.cpuCount,
      entries,
      handlers: { 0: 'nmi', [TIMER_VECTOR]: 'timer', [IPI_VECTOR]: 'ipi' },
      config: { nmiPeriodNs: 37_000, ...config },
    },
  );
}

/**
 * Run until `untilNs`, carrying on past traps and the instruction limit `bound` holds (which,
 * once reached, is gone: later runs go on without it).
 */
export function runThrough(machine: Machine, untilNs: number, bound: { instructionLimit?: number } = {}): RunOutcome[] {
  const outcomes: RunOutcome[] = [];
  for (let guard = 0; guard < 100; guard++) {
    const outcome = machine.run({ untilNs, instructionLimit: bound.instructionLimit });
    outcomes.push(outcome);
    if (outcome.kind === 'timeReached') return outcomes;
    if (outcome.kind === 'instructionLimit') bound.instructionLimit = undefined;
  }
  throw new Error('too many stops');
}
