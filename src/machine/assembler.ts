/**
 * A TypeScript builder for machine code. Handler source written with it should read like careful
 * C: symbolic structure fields, labels, and structured control flow (`ifZero`, `loop`, `withLock`).
 *
 * Register convention (enforced by nothing but habit, as in real calling conventions):
 * r0-r5 arguments and return value, r6-r11 callee-saved locals, r12-r13 caller temporaries,
 * r14-r15 assembler scratch used by the structured helpers.
 *
 * Handlers name what a register holds, as C names a variable: `const current = reg.r8`, or
 * `const { cpu, current } = aliases({ cpu: reg.r7, current: reg.r8 })`, which refuses two names
 * for one register. A routine's internal labels are local (`asm.local('retry')`): named
 * `routine.retry` in the symbol table, so two routines may both have a `retry`, and using one
 * outside its routine fails at assembly.
 */
import { Opcode, encode, encodeThreeRegister, immediateRange } from './isa.js';

export type Register = number & { readonly __register?: never };
export const r0: Register = 0, r1: Register = 1, r2: Register = 2, r3: Register = 3;
export const r4: Register = 4, r5: Register = 5, r6: Register = 6, r7: Register = 7;
export const r8: Register = 8, r9: Register = 9, r10: Register = 10, r11: Register = 11;
export const r12: Register = 12, r13: Register = 13, r14: Register = 14, r15: Register = 15;
/** The registers by name, for aliases: `const entry = reg.r3`. */
export const reg = { r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15 } as const;

/**
 * Names for registers, checked: two names for one register (a local silently overwriting another)
 * is refused when the program is assembled.
 */
export function aliases<Name extends string>(named: Readonly<Record<Name, Register>>): Readonly<Record<Name, Register>> {
  const owner = new Map<Register, string>();
  for (const [name, register] of Object.entries(named) as [Name, Register][]) {
    const other = owner.get(register);
    if (other !== undefined) throw new Error(`register r${register} aliased as both ${other} and ${name}`);
    owner.set(register, name);
  }
  return named;
}

const SCRATCH_A: Register = r14;
const SCRATCH_B: Register = r15;

/** A reference to a label, resolved when the program is linked; `routine` is set for a local label. */
export interface LabelReference {
  readonly label: string;
  readonly routine?: string;
}
export type Immediate = number | LabelReference;

/** A reference to a global label by name (a local label is already a reference, and passes through). */
export function ref(label: string | LabelReference): LabelReference {
  return typeof label === 'string' ? { label } : label;
}

/** A structure laid out in memory: field name -> word offset, and its size in words. */
export interface Struct<Field extends string> {
  readonly name: string;
  readonly sizeWords: number;
  readonly offset: Readonly<Record<Field, number>>;
}

/** Define a structure from field names and their sizes in words, in order. */
export function struct<Field extends string>(name: string, fields: Readonly<Record<Field, number>>): Struct<Field> {
  const offset = {} as Record<Field, number>;
  let next = 0;
  for (const [field, size] of Object.entries(fields) as [Field, number][]) {
    offset[field] = next;
    next += size;
  }
  return { name, sizeWords: next, offset };
}

export interface Program {
  readonly base: number;
  readonly words: Int32Array;
  readonly labels: ReadonlyMap<string, number>;
}

interface Fixup {
  readonly index: number;
  readonly label: string;
  readonly opcode: Opcode;
  readonly a: number;
  readonly b: number;
}

/** Code around the locks an assembler emits; see Assembler.lockHooks. */
export interface LockHooks {
  beforeAcquire(asm: Assembler, lock: Register): void;
  afterRelease(asm: Assembler, lock: Register): void;
}

export class Assembler {
  readonly base: number;
  private readonly code: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: Fixup[] = [];
  private uniqueCounter = 0;
  private routine: string | undefined;
  /**
   * Code emitted before every lock is taken and after every lock is released (a protection-key
   * policy opening and closing the lock's domain, say); none by default. Each may use r14 and r15
   * and must keep every other register.
   */
  lockHooks: LockHooks | undefined;

  constructor(base: number) {
    this.base = base;
  }

  get here(): number {
    return this.base + this.code.length;
  }

  /** A fresh label name, for structured helpers. */
  unique(hint: string): string {
    return `.${hint}${this.uniqueCounter++}`;
  }

  /** Place a label here: a global name, or a local label of the routine being assembled. */
  label(name: string | LabelReference): this {
    const label = typeof name === 'string' ? name : this.checkedLocal(name).label;
    if (this.labels.has(label)) throw new Error(`label ${label} defined twice`);
    this.labels.set(label, this.here);
    return this;
  }

  /**
   * A routine: its label, then `body`, inside which `local` names labels that belong to it.
   * Routines do not nest (code is laid out one routine after another).
   */
  func(name: string, body: () => void): this {
    if (this.routine !== undefined) throw new Error(`routine ${name} begun inside routine ${this.routine}`);
    this.label(name);
    this.routine = name;
    try {
      body();
    } finally {
      this.routine = undefined;
    }
    return this;
  }

  /**
   * A label local to the routine being assembled, named `routine.hint` so the symbol table (and
   * every trace and record that names an address) reads as before; place it with `label`.
   */
  local(hint: string): LabelReference {
    if (this.routine === undefined) throw new Error(`local label ${hint} outside any routine`);
    return { label: `${this.routine}.${hint}`, routine: this.routine };
  }

  private checkedLocal(reference: LabelReference): LabelReference {
    if (reference.routine !== undefined && reference.routine !== this.routine) {
      throw new Error(`local label ${reference.label} used outside its routine ${reference.routine}`);
    }
    return reference;
  }

  link(): Program {
    for (const fixup of this.fixups) {
      const target = this.labels.get(fixup.label);
      if (target === undefined) throw new Error(`undefined label ${fixup.label}`);
      this.code[fixup.index] = encode(fixup.opcode, fixup.a, fixup.b, target);
    }
    return { base: this.base, words: Int32Array.from(this.code), labels: new Map(this.labels) };
  }

  // --- raw instructions -------------------------------------------------------------------

  private emit(opcode: Opcode, a: number, b: number, immediate: Immediate): this {
    if (typeof immediate === 'number') {
      const { min, max } = immediateRange(opcode);
      if (immediate < min || immediate > max) throw new RangeError(`immediate ${immediate} out of range`);
      this.code.push(encode(opcode, a, b, immediate));
    } else {
      this.fixups.push({ index: this.code.length, label: this.checkedLocal(immediate).label, opcode, a, b });
      this.code.push(0);
    }
    return this;
  }

  private emit3(opcode: Opcode, a: Register, b: Register, c: Register): this {
    this.code.push(encodeThreeRegister(opcode, a, b, c));
    return this;
  }

  nop(): this { return this.emit(Opcode.Nop, 0, 0, 0); }
  movi(destination: Register, value: Immediate): this { return this.emit(Opcode.MoveImmediate, destination, 0, value); }
  mov(destination: Register, source: Register): this { return this.emit(Opcode.Move, destination, source, 0); }
  /** destination = memory[base + offset] */
  ld(destination: Register, base: Register, offset: Immediate = 0): this { return this.emit(Opcode.Load, destination, base, offset); }
  /** memory[base + offset] = source */
  st(base: Register, offset: Immediate, source: Register): this { return this.emit(Opcode.Store, base, source, offset); }
  add(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.Add, destination, left, right); }
  sub(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.Subtract, destination, left, right); }
  and(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.And, destination, left, right); }
  or(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.Or, destination, left, right); }
  xor(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.Xor, destination, left, right); }
  shl(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.ShiftLeft, destination, left, right); }
  shr(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.ShiftRight, destination, left, right); }
  mul(destination: Register, left: Register, right: Register): this { return this.emit3(Opcode.Multiply, destination, left, right); }
  addi(destination: Register, source: Register, value: Immediate): this { return this.emit(Opcode.AddImmediate, destination, source, value); }
  andi(destination: Register, source: Register, value: number): this { return this.emit(Opcode.AndImmediate, destination, source, value); }
  cmp(left: Register, right: Register): this { return this.emit(Opcode.Compare, left, right, 0); }
  cmpi(left: Register, value: Immediate): this { return this.emit(Opcode.CompareImmediate, left, 0, value); }
  jmp(target: Immediate): this { return this.emit(Opcode.Jump, 0, 0, target); }
  beq(target: Immediate): this { return this.emit(Opcode.BranchEqual, 0, 0, target); }
  bne(target: Immediate): this { return this.emit(Opcode.BranchNotEqual, 0, 0, target); }
  blt(target: Immediate): this { return this.emit(Opcode.BranchLess, 0, 0, target); }
  bge(target: Immediate): this { return this.emit(Opcode.BranchGreaterEqual, 0, 0, target); }
  bgt(target: Immediate): this { return this.emit(Opcode.BranchGreater, 0, 0, target); }
  ble(target: Immediate): this { return this.emit(Opcode.BranchLessEqual, 0, 0, target); }
  jr(target: Register): this { return this.emit(Opcode.JumpRegister, target, 0, 0); }
  call(target: Immediate): this { return this.emit(Opcode.Call, 0, 0, target); }
  callr(target: Register): this { return this.emit(Opcode.CallRegister, target, 0, 0); }
  ret(): this { return this.emit(Opcode.Return, 0, 0, 0); }
  push(source: Register): this { return this.emit(Opcode.Push, source, 0, 0); }
  pop(destination: Register): this { return this.emit(Opcode.Pop, destination, 0, 0); }
  /** if memory[address] == expected { memory[address] = desired; Z=1 } else { expected = memory[address]; Z=0 } */
  cas(expected: Register, address: Register, desired: Register): this { return this.emit3(Opcode.CompareAndSwap, expected, address, desired); }
  pause(): this { return this.emit(Opcode.Pause, 0, 0, 0); }
  cli(): this { return this.emit(Opcode.DisableInterrupts, 0, 0, 0); }
  sti(): this { return this.emit(Opcode.EnableInterrupts, 0, 0, 0); }
  iret(): this { return this.emit(Opcode.InterruptReturn, 0, 0, 0); }
  hlt(): this { return this.emit(Opcode.Halt, 0, 0, 0); }
  /** BUG_ON(condition != 0) */
  bugOn(condition: Register, code: number): this { return this.emit(Opcode.BugOn, condition, 0, code); }
  panic(code: number): this { return this.emit(Opcode.Panic, 0, 0, code); }
  /** program the local timer to fire after `microseconds` (negative: disarm) */
  settimer(microseconds: Register): this { return this.emit(Opcode.SetTimer, microseconds, 0, 0); }
  eoi(): this { return this.emit(Opcode.EndOfInterrupt, 0, 0, 0); }
  /** send `vector` (0 = NMI) to CPU `target` */
  ipi(target: Register, vector: Register): this { return this.emit(Opcode.SendIpi, target, vector, 0); }
  /** destination = current time in microseconds */
  rdtime(destination: Register): this { return this.emit(Opcode.ReadTime, destination, 0, 0); }
  cpuid(destination: Register): this { return this.emit(Opcode.CpuIndex, destination, 0, 0); }
  vmenter(context: Register): this { return this.emit(Opcode.VmEnter, context, 0, 0); }
  rdsp(destination: Register): this { return this.emit(Opcode.ReadStackPointer, destination, 0, 0); }
  wrsp(source: Register): this { return this.emit(Opcode.WriteStackPointer, source, 0, 0); }
  /** stop this CPU and hand the machine to the layer above (the recovery entry is done) */
  handover(): this { return this.emit(Opcode.HandOver, 0, 0, 0); }
  /** PKRU = source + value (a machine without protection keys traps on it as an invalid opcode) */
  wrpkru(source: Register, value: Immediate = 0): this { return this.emit(Opcode.WritePkru, source, 0, value); }

  // --- structured helpers -----------------------------------------------------------------

  /** if (register == 0) { then } else { otherwise } */
  ifZero(register: Register, then: () => void, otherwise?: () => void): this {
    this.cmpi(register, 0);
    return this.branchStructure('bne', then, otherwise);
  }

  /** if (register != 0) { then } else { otherwise } */
  ifNotZero(register: Register, then: () => void, otherwise?: () => void): this {
    this.cmpi(register, 0);
    return this.branchStructure('beq', then, otherwise);
  }

  /** if (left == right) { then } else { otherwise } */
  ifEqual(left: Register, right: Register, then: () => void, otherwise?: () => void): this {
    this.cmp(left, right);
    return this.branchStructure('bne', then, otherwise);
  }

  /** if (left == value) { then } else { otherwise } */
  ifEqualImmediate(left: Register, value: Immediate, then: () => void, otherwise?: () => void): this {
    this.cmpi(left, value);
    return this.branchStructure('bne', then, otherwise);
  }

  /** if (left < right), signed */
  ifLess(left: Register, right: Register, then: () => void, otherwise?: () => void): this {
    this.cmp(left, right);
    return this.branchStructure('bge', then, otherwise);
  }

  /**
   * for (;;) { body } — `body` receives the labels to break to and continue at.
   */
  loop(body: (exit: LabelReference, again: LabelReference) => void): this {
    const top = this.unique('loop');
    const end = this.unique('end');
    this.label(top);
    body(ref(end), ref(top));
    this.jmp(ref(top));
    this.label(end);
    return this;
  }

  /** while (register != 0) { body } */
  whileNotZero(register: Register, body: (exit: LabelReference) => void): this {
    return this.loop((exit) => {
      this.cmpi(register, 0);
      this.beq(exit);
      body(exit);
    });
  }

  /**
   * Acquire the spinlock at address `lock`, run `body`, release it. The lock word holds the
   * owner's CPU index + 1, or 0 when free; a waiter spins with `pause`. Uses r14 and r15.
   */
  withLock(lock: Register, body: () => void): this {
    this.spinLock(lock);
    body();
    return this.spinUnlock(lock);
  }

  spinLock(lock: Register): this {
    this.lockHooks?.beforeAcquire(this, lock);
    const retry = this.unique('lock');
    const acquired = this.unique('locked');
    this.label(retry);
    this.movi(SCRATCH_A, 0);
    this.cpuid(SCRATCH_B);
    this.addi(SCRATCH_B, SCRATCH_B, 1);
    this.cas(SCRATCH_A, lock, SCRATCH_B);
    this.beq(ref(acquired));
    this.pause();
    this.jmp(ref(retry));
    this.label(acquired);
    return this;
  }

  spinUnlock(lock: Register): this {
    this.movi(SCRATCH_A, 0);
    this.st(lock, 0, SCRATCH_A);
    this.lockHooks?.afterRelease(this, lock);
    return this;
  }

  private branchStructure(skipBranch: 'bne' | 'beq' | 'bge', then: () => void, otherwise?: () => void): this {
    const elseLabel = this.unique('else');
    const endLabel = this.unique('endif');
    this[skipBranch](ref(otherwise ? elseLabel : endLabel));
    then();
    if (otherwise) {
      this.jmp(ref(endLabel));
      this.label(elseLabel);
      otherwise();
    }
    this.label(endLabel);
    return this;
  }
}
