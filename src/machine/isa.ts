/**
 * The instruction set of the simulated machine.
 *
 * Every instruction is one 32-bit word, and the encoding is dense, as x86 code is: every bit of
 * every valid word either selects the operation or feeds an operand the instruction uses, so a
 * flipped bit in a code word always changes what the word means (another operation, other
 * operands, or an invalid word, which traps as a #UD would). Decoding is total: every word is
 * some instruction or invalid.
 *
 *   bits 31..26  primary opcode (0 and unassigned values are invalid)
 *   then, by the primary opcode's operand shape:
 *     a,b,imm   a (25..22), b (21..18), signed immediate (17..0)
 *     a,imm     a (25..22), signed immediate (21..0)
 *     imm       signed immediate (25..0)
 *     a,b,c     a (25..22), b (21..18), c (3..0); bits 17..4 extend the opcode
 *     a,b       a (25..22), b (21..18); bits 17..0 extend the opcode
 *     a         a (25..22); bits 21..0 extend the opcode
 *     none      bits 25..0 extend the opcode
 *
 * Where a shape has no operand, its bits select among the operations of that shape, as x86's
 * ModRM.reg field does: the operation is the primary opcode's, moved on through its shape's group
 * (below, in table order) by the number of extension bits set. The assembler sets none, so a
 * flipped extension bit turns, say, `cli` into `sti` or `push` into `pop`.
 */

export const enum Opcode {
  Nop = 1,
  MoveImmediate = 2,
  Move = 3,
  Load = 4,
  Store = 5,
  Add = 6,
  Subtract = 7,
  And = 8,
  Or = 9,
  Xor = 10,
  ShiftLeft = 11,
  ShiftRight = 12,
  Multiply = 13,
  AddImmediate = 14,
  AndImmediate = 15,
  Compare = 16,
  CompareImmediate = 17,
  Jump = 18,
  BranchEqual = 19,
  BranchNotEqual = 20,
  BranchLess = 21,
  BranchGreaterEqual = 22,
  BranchGreater = 23,
  BranchLessEqual = 24,
  JumpRegister = 25,
  Call = 26,
  CallRegister = 27,
  Return = 28,
  Push = 29,
  Pop = 30,
  CompareAndSwap = 31,
  Pause = 32,
  DisableInterrupts = 33,
  EnableInterrupts = 34,
  InterruptReturn = 35,
  Halt = 36,
  BugOn = 37,
  Panic = 38,
  SetTimer = 39,
  EndOfInterrupt = 40,
  SendIpi = 41,
  ReadTime = 42,
  CpuIndex = 43,
  VmEnter = 44,
  ReadStackPointer = 45,
  WriteStackPointer = 46,
  /** stop this CPU and hand the machine to the layer above: the recovery entry's last instruction */
  HandOver = 47,
  /**
   * PKRU = r[a] + immediate: the protection-key rights register (two bits per key: access
   * disable, write disable). A machine without protection keys raises #UD, as x86 does with
   * CR4.PKE clear. Its shape has no extension bits, so no other word changes meaning.
   */
  WritePkru = 48,
}

/** How an instruction uses its operand fields; drives the assembler checks and the disassembler. */
export type OperandShape =
  | 'none'
  | 'a'
  | 'a,imm'
  | 'a,b'
  | 'a,b,imm'
  | 'a,b,c'
  | 'imm';

export interface OpcodeInfo {
  readonly opcode: Opcode;
  readonly mnemonic: string;
  readonly shape: OperandShape;
}

const table: readonly OpcodeInfo[] = [
  { opcode: Opcode.Nop, mnemonic: 'nop', shape: 'none' },
  { opcode: Opcode.MoveImmediate, mnemonic: 'movi', shape: 'a,imm' },
  { opcode: Opcode.Move, mnemonic: 'mov', shape: 'a,b' },
  { opcode: Opcode.Load, mnemonic: 'ld', shape: 'a,b,imm' },
  { opcode: Opcode.Store, mnemonic: 'st', shape: 'a,b,imm' },
  { opcode: Opcode.Add, mnemonic: 'add', shape: 'a,b,c' },
  { opcode: Opcode.Subtract, mnemonic: 'sub', shape: 'a,b,c' },
  { opcode: Opcode.And, mnemonic: 'and', shape: 'a,b,c' },
  { opcode: Opcode.Or, mnemonic: 'or', shape: 'a,b,c' },
  { opcode: Opcode.Xor, mnemonic: 'xor', shape: 'a,b,c' },
  { opcode: Opcode.ShiftLeft, mnemonic: 'shl', shape: 'a,b,c' },
  { opcode: Opcode.ShiftRight, mnemonic: 'shr', shape: 'a,b,c' },
  { opcode: Opcode.Multiply, mnemonic: 'mul', shape: 'a,b,c' },
  { opcode: Opcode.AddImmediate, mnemonic: 'addi', shape: 'a,b,imm' },
  { opcode: Opcode.AndImmediate, mnemonic: 'andi', shape: 'a,b,imm' },
  { opcode: Opcode.Compare, mnemonic: 'cmp', shape: 'a,b' },
  { opcode: Opcode.CompareImmediate, mnemonic: 'cmpi', shape: 'a,imm' },
  { opcode: Opcode.Jump, mnemonic: 'jmp', shape: 'imm' },
  { opcode: Opcode.BranchEqual, mnemonic: 'beq', shape: 'imm' },
  { opcode: Opcode.BranchNotEqual, mnemonic: 'bne', shape: 'imm' },
  { opcode: Opcode.BranchLess, mnemonic: 'blt', shape: 'imm' },
  { opcode: Opcode.BranchGreaterEqual, mnemonic: 'bge', shape: 'imm' },
  { opcode: Opcode.BranchGreater, mnemonic: 'bgt', shape: 'imm' },
  { opcode: Opcode.BranchLessEqual, mnemonic: 'ble', shape: 'imm' },
  { opcode: Opcode.JumpRegister, mnemonic: 'jr', shape: 'a' },
  { opcode: Opcode.Call, mnemonic: 'call', shape: 'imm' },
  { opcode: Opcode.CallRegister, mnemonic: 'callr', shape: 'a' },
  { opcode: Opcode.Return, mnemonic: 'ret', shape: 'none' },
  { opcode: Opcode.Push, mnemonic: 'push', shape: 'a' },
  { opcode: Opcode.Pop, mnemonic: 'pop', shape: 'a' },
  { opcode: Opcode.CompareAndSwap, mnemonic: 'cas', shape: 'a,b,c' },
  { opcode: Opcode.Pause, mnemonic: 'pause', shape: 'none' },
  { opcode: Opcode.DisableInterrupts, mnemonic: 'cli', shape: 'none' },
  { opcode: Opcode.EnableInterrupts, mnemonic: 'sti', shape: 'none' },
  { opcode: Opcode.InterruptReturn, mnemonic: 'iret', shape: 'none' },
  { opcode: Opcode.Halt, mnemonic: 'hlt', shape: 'none' },
  { opcode: Opcode.BugOn, mnemonic: 'bug_on', shape: 'a,imm' },
  { opcode: Opcode.Panic, mnemonic: 'panic', shape: 'imm' },
  { opcode: Opcode.SetTimer, mnemonic: 'settimer', shape: 'a' },
  { opcode: Opcode.EndOfInterrupt, mnemonic: 'eoi', shape: 'none' },
  { opcode: Opcode.SendIpi, mnemonic: 'ipi', shape: 'a,b' },
  { opcode: Opcode.ReadTime, mnemonic: 'rdtime', shape: 'a' },
  { opcode: Opcode.CpuIndex, mnemonic: 'cpuid', shape: 'a' },
  { opcode: Opcode.VmEnter, mnemonic: 'vmenter', shape: 'a' },
  { opcode: Opcode.ReadStackPointer, mnemonic: 'rdsp', shape: 'a' },
  { opcode: Opcode.WriteStackPointer, mnemonic: 'wrsp', shape: 'a' },
  { opcode: Opcode.HandOver, mnemonic: 'handover', shape: 'none' },
  { opcode: Opcode.WritePkru, mnemonic: 'wrpkru', shape: 'a,imm' },
];

const byOpcode: (OpcodeInfo | undefined)[] = new Array(64).fill(undefined);
for (const info of table) byOpcode[info.opcode] = info;

export function opcodeInfo(opcode: number): OpcodeInfo | undefined {
  return byOpcode[opcode];
}

export const allOpcodes: readonly OpcodeInfo[] = table;

export const REGISTER_COUNT = 16;
/** the immediate of the a,b,imm shape (loads, stores, addi, andi); the other shapes' are wider */
export const IMMEDIATE_BITS = 18;
export const IMMEDIATE_MIN = -(1 << (IMMEDIATE_BITS - 1));
export const IMMEDIATE_MAX = (1 << (IMMEDIATE_BITS - 1)) - 1;

/** Bits of the signed immediate, per operand shape (0: no immediate). */
const IMMEDIATE_BITS_OF: Readonly<Record<OperandShape, number>> = {
  none: 0,
  a: 0,
  'a,imm': 22,
  imm: 26,
  'a,b': 0,
  'a,b,imm': 18,
  'a,b,c': 0,
};

/** Per operand shape, the opcode-extension bits: no operand there, so they select the operation. */
const EXTENSION_BITS: Readonly<Record<OperandShape, number>> = {
  none: 0x03ff_ffff,
  a: 0x003f_ffff,
  'a,imm': 0,
  imm: 0,
  'a,b': 0x0003_ffff,
  'a,b,imm': 0,
  'a,b,c': 0x0003_fff0,
};

/** Per primary opcode (word >>> 26): its extension bits (0 for an invalid opcode). For the interpreter. */
export const EXTENSION_MASKS: Int32Array = Int32Array.from({ length: 64 }, (_, opcode) => {
  const info = byOpcode[opcode];
  return info === undefined ? 0 : EXTENSION_BITS[info.shape];
});

/** The opcodes of each shape, in table order: the group extension bits move through. */
const groups = new Map<OperandShape, Opcode[]>();
for (const info of table) groups.set(info.shape, [...(groups.get(info.shape) ?? []), info.opcode]);
/** Per primary opcode: its group and its place in it. */
const groupOf: (readonly Opcode[] | undefined)[] = Array.from({ length: 64 }, (_, opcode) => {
  const info = byOpcode[opcode];
  return info === undefined ? undefined : groups.get(info.shape);
});

function bitCount(value: number): number {
  let bits = value - ((value >>> 1) & 0x5555_5555);
  bits = (bits & 0x3333_3333) + ((bits >>> 2) & 0x3333_3333);
  return (Math.imul((bits + (bits >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24);
}

/** The operation a word performs: its primary opcode moved through its group by its extension bits set. */
export function operationOf(word: number): number {
  const primary = word >>> 26;
  const extension = word & EXTENSION_MASKS[primary];
  if (extension === 0) return primary;
  const group = groupOf[primary] as readonly Opcode[];
  return group[(group.indexOf(primary) + bitCount(extension)) % group.length];
}

/** The range of an opcode's immediate operand; [0, 0] for an opcode without one. */
export function immediateRange(opcode: Opcode): { readonly min: number; readonly max: number } {
  const bits = IMMEDIATE_BITS_OF[byOpcode[opcode]?.shape ?? 'none'];
  return bits === 0 ? { min: 0, max: 0 } : { min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 };
}

/** FLAGS bits. Only three of the 32 bits mean anything: flips elsewhere are masked, as on x86. */
export const FLAG_INTERRUPT_ENABLE = 1 << 0;
export const FLAG_ZERO = 1 << 1;
export const FLAG_LESS = 1 << 2;

export interface Instruction {
  readonly opcode: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly immediate: number;
}

/**
 * The word for an instruction. Operands the opcode's shape does not have must be 0 (they would
 * land on its extension bits); the immediate must fit the shape's field.
 */
export function encode(opcode: Opcode, a = 0, b = 0, immediate = 0): number {
  const info = byOpcode[opcode];
  if (info === undefined) throw new RangeError(`opcode ${opcode} is not assigned`);
  const shape = info.shape;
  const { min, max } = immediateRange(opcode);
  if (immediate < min || immediate > max) throw new RangeError(`immediate ${immediate} does not fit in the ${IMMEDIATE_BITS_OF[shape]} bits of ${info.mnemonic}`);
  const hasA = shape !== 'none' && shape !== 'imm';
  const hasB = shape === 'a,b' || shape === 'a,b,imm' || shape === 'a,b,c';
  if ((!hasA && a !== 0) || (!hasB && b !== 0)) throw new RangeError(`${info.mnemonic} takes no such operand`);
  const bits = IMMEDIATE_BITS_OF[shape];
  const field = bits === 0 ? 0 : immediate & ((1 << bits) - 1);
  return ((opcode << 26) | ((a & 15) << 22) | (hasB ? (b & 15) << 18 : 0) | field) | 0;
}

export function encodeThreeRegister(opcode: Opcode, a: number, b: number, c: number): number {
  return ((opcode << 26) | ((a & 15) << 22) | ((b & 15) << 18) | (c & 15)) | 0;
}

/** Per opcode: 32 minus the bits of its immediate field (18 bits where it has none). */
const IMMEDIATE_SHIFTS: Int8Array = Int8Array.from({ length: 64 }, (_, opcode) => {
  const info = byOpcode[opcode];
  return 32 - ((info === undefined ? 0 : IMMEDIATE_BITS_OF[info.shape]) || IMMEDIATE_BITS);
});

/** The immediate of `word`, sign-extended from its opcode's field (18 bits for one without). */
export function signExtendImmediate(word: number): number {
  const shift = IMMEDIATE_SHIFTS[word >>> 26];
  return (word << shift) >> shift;
}

export function decode(word: number): Instruction {
  return {
    opcode: operationOf(word),
    a: (word >>> 22) & 15,
    b: (word >>> 18) & 15,
    c: word & 15,
    immediate: signExtendImmediate(word),
  };
}

/** True when the word decodes to an instruction the CPU will execute rather than trap on. */
export function isValidWord(word: number): boolean {
  return byOpcode[word >>> 26] !== undefined;
}

/** True when the assembler could have emitted the word: no extension bit set. */
export function isCanonicalWord(word: number): boolean {
  return isValidWord(word) && (word & EXTENSION_MASKS[word >>> 26]) === 0;
}

/**
 * What a word means: invalid, or its operation and the operands its shape has. Two words that
 * mean the same do the same thing from every state.
 */
export function meaning(word: number): string {
  const info = byOpcode[operationOf(word)];
  if (info === undefined) return 'invalid';
  const { a, b, c, immediate } = decode(word);
  const operands: Record<OperandShape, readonly number[]> = {
    none: [],
    a: [a],
    'a,imm': [a, immediate],
    imm: [immediate],
    'a,b': [a, b],
    'a,b,imm': [a, b, immediate],
    'a,b,c': [a, b, c],
  };
  return [info.mnemonic, ...operands[info.shape]].join(' ');
}

/**
 * True when executing either word does the same thing from every state: they mean the same
 * (words that differ in one bit never do; two extension bits may cancel out).
 */
export function sameInstruction(x: number, y: number): boolean {
  return x === y || (isValidWord(x) && meaning(x) === meaning(y));
}
