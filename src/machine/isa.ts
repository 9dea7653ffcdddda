/**
 * The instruction set of the simulated machine.
 *
 * Every instruction is one 32-bit word, so a flipped bit in a code word always yields a defined
 * instruction: often a different one, sometimes an invalid one (which traps as on real hardware).
 *
 *   bits 31..26  opcode        (0 and unassigned values are invalid)
 *   bits 25..22  a             (first register operand)
 *   bits 21..18  b             (second register operand)
 *   bits 17..0   immediate     (signed, 18 bits)
 *
 * Three-register instructions keep the third register in bits 3..0 of the immediate field and
 * require bits 17..4 to be zero: a flip there makes the word invalid, like a reserved-bit #UD.
 * Operand fields an instruction does not use are ignored, as unused ModRM bits often are.
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
];

const byOpcode: (OpcodeInfo | undefined)[] = new Array(64).fill(undefined);
for (const info of table) byOpcode[info.opcode] = info;

export function opcodeInfo(opcode: number): OpcodeInfo | undefined {
  return byOpcode[opcode];
}

export const allOpcodes: readonly OpcodeInfo[] = table;

export const REGISTER_COUNT = 16;
export const IMMEDIATE_BITS = 18;
export const IMMEDIATE_MIN = -(1 << (IMMEDIATE_BITS - 1));
export const IMMEDIATE_MAX = (1 << (IMMEDIATE_BITS - 1)) - 1;

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

export function encode(opcode: Opcode, a = 0, b = 0, immediate = 0): number {
  if (immediate < IMMEDIATE_MIN || immediate > IMMEDIATE_MAX) {
    throw new RangeError(`immediate ${immediate} does not fit in ${IMMEDIATE_BITS} bits`);
  }
  return ((opcode << 26) | ((a & 15) << 22) | ((b & 15) << 18) | (immediate & 0x3ffff)) | 0;
}

export function encodeThreeRegister(opcode: Opcode, a: number, b: number, c: number): number {
  return encode(opcode, a, b, c & 15);
}

export function signExtendImmediate(word: number): number {
  return (word << 14) >> 14;
}

export function decode(word: number): Instruction {
  return {
    opcode: word >>> 26,
    a: (word >>> 22) & 15,
    b: (word >>> 18) & 15,
    c: word & 15,
    immediate: signExtendImmediate(word),
  };
}

/** True when the word decodes to an instruction the CPU will execute rather than trap on. */
export function isValidWord(word: number): boolean {
  const info = byOpcode[word >>> 26];
  if (info === undefined) return false;
  return info.shape !== 'a,b,c' || (word & 0x3fff0) === 0;
}

/** Per operand shape, the bits of the word an instruction of that shape never reads. */
const IGNORED_BITS: Readonly<Record<OperandShape, number>> = {
  none: 0x03ff_ffff,
  a: 0x003f_ffff,
  'a,imm': 0x003c_0000,
  imm: 0x03fc_0000,
  'a,b': 0x0003_ffff,
  'a,b,imm': 0,
  // bits 17..4 are reserved: setting one makes the word invalid
  'a,b,c': 0,
};

/**
 * True when two words are the same valid instruction, differing at most in operand fields it
 * does not read, so executing either does the same thing from every state.
 */
export function sameInstruction(x: number, y: number): boolean {
  if (x === y) return true;
  const info = byOpcode[x >>> 26];
  if (info === undefined || x >>> 26 !== y >>> 26 || !isValidWord(x) || !isValidWord(y)) return false;
  return ((x ^ y) & ~IGNORED_BITS[info.shape]) === 0;
}
