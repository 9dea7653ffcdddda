/**
 * Block translation: runs of hypervisor code compiled to JavaScript functions, so the
 * interpreter's per-instruction work (the instruction-stop and interrupt checks, the fetch
 * permission check, decoding, the dispatch, three counters) is paid once per block instead, and
 * blocks run one after another without going back to the machine's loop.
 *
 * A block is a path of instructions that cannot end the CPU's slice early or leave hypervisor
 * code (moves, arithmetic, compares, loads, stores, the stack, `cas`, `bug_on`, `cli`), in the
 * order they execute: it goes on past a conditional branch (taken, the branch leaves the block
 * with the counts of what ran) and through a direct jump or call to its target, and ends at
 * another control transfer (`ret`, a jump through a register) or after MAX_BLOCK_INSTRUCTIONS.
 * Fewer, longer blocks mean fewer trips through the dispatch. `sti`, `eoi` and `iret` may make an interrupt
 * deliverable, so a block may end with one of them but then hands control back to the machine,
 * which checks for interrupts. Everything else (`hlt`, `pause`, `vmenter`, `settimer`, `ipi`,
 * invalid words...) is left to the interpreter, as is any block that would cross the end of the
 * slice or the instruction limit. The interpreter checks for an interrupt before every
 * instruction; between two such hand-backs that check cannot succeed, so skipping it is the same.
 * Traps stay precise: a faulting instruction leaves the program counter on itself with the time
 * and counts the interpreter would have.
 *
 * Code pages are never writable by the CPU, but the layers above write code words (a code fault,
 * its repair, a microreboot reloading the image, a snapshot restore). So every block checks, on
 * entry, that memory still holds the words it was compiled from; a stale block gives way to
 * another translation. Only code the interpreter has run a few times is translated (a new
 * function runs slowly until V8 optimizes it), and translations are shared by every machine with
 * the same memory layout, so a trial's new machine starts with the code its worker has compiled.
 */
import { FLAG_INTERRUPT_ENABLE, FLAG_LESS, FLAG_ZERO, Opcode, decode, isValidWord } from './isa.js';
import { PAGE_SHIFT, PERMISSION_EXECUTE, PERMISSION_READ, PERMISSION_WRITE, type Memory } from './memory.js';
import type { CpuState } from './cpu.js';

/** What a block did. */
export const enum BlockResult {
  /** ran; the next block may follow at once */
  Ran = 0,
  /** ran, and the machine must look at the CPU before anything else runs (an interrupt, a trap) */
  RanAndLeft = 1,
  /** memory no longer holds the block's words; nothing ran */
  Stale = 2,
  /** the block does not fit in the room left, or the instruction is the interpreter's; nothing ran */
  Interpret = 3,
}

/** The machine as a block sees it: the counters it updates and the traps it raises. */
export interface BlockHost {
  /** per page: its protection key, read by blocks of a machine with protection keys */
  readonly pageKeys: Uint8Array;
  hypervisorInstructions: number;
  codeReads: number;
  writeEpoch: number;
  lastWriteNs: number;
  /** retire `retired` instructions of the block, the last at `programCounter`, which faults on `address` */
  blockAccessFault(cpu: CpuState, programCounter: number, retired: number, address: number, access: 'read' | 'write'): void;
  /** as blockAccessFault, for a `bug_on` whose operand is not zero */
  blockAssertion(cpu: CpuState, programCounter: number, retired: number, code: number): void;
}

/** Runs the block if memory holds its words and `room` instructions cover it. */
export type BlockFunction = (host: BlockHost, cpu: CpuState, words: Int32Array, room: number) => BlockResult;

/** Translations kept per address (a code fault and its repair alternate between two). */
const VARIANTS_PER_ADDRESS = 4;
/** An address is translated once the interpreter has run it this many times. */
export const HOT_THRESHOLD = 50;

export class Translation {
  /** per address: the translation that last matched memory */
  private readonly current: (BlockFunction | undefined)[];
  /** per address: every translation kept, oldest first */
  private readonly variants: (BlockFunction[] | undefined)[];
  /** per address: times reached with no translation of the words there */
  private readonly heat: Uint16Array;

  constructor(
    private readonly permissions: Uint8Array,
    private readonly sizeWords: number,
    /** blocks check each data access against the key of its granule (2^keyShift words) and the CPU's PKRU, as the interpreter does; undefined: no key checks */
    private readonly keyShift: number | undefined = undefined,
  ) {
    this.current = new Array<BlockFunction | undefined>(sizeWords).fill(undefined);
    this.variants = new Array<BlockFunction[] | undefined>(sizeWords).fill(undefined);
    this.heat = new Uint16Array(sizeWords);
  }

  /**
   * Run blocks from the CPU's program counter while they fit before `limitNs` and the machine's
   * run's `instructionLimit`. False when none ran: the interpreter must take the instruction there.
   */
  run(host: BlockHost, cpu: CpuState, words: Int32Array, limitNs: number, instructionLimit: number): boolean {
    for (let ran = false; ; ran = true) {
      const room = Math.min(limitNs - cpu.timeNs, instructionLimit - host.hypervisorInstructions - 1);
      const block = this.current[cpu.programCounter];
      let result = block === undefined ? BlockResult.Stale : block(host, cpu, words, room);
      if (result === BlockResult.Stale) result = this.runChanged(host, cpu, words, room);
      if (result !== BlockResult.Ran) return ran || result === BlockResult.RanAndLeft;
    }
  }

  /** The words at the program counter changed (or were never translated): an older or a new translation. */
  private runChanged(host: BlockHost, cpu: CpuState, words: Int32Array, room: number): BlockResult {
    const programCounter = cpu.programCounter;
    if (programCounter < 0 || programCounter >= this.sizeWords) return BlockResult.Interpret;
    const kept = (this.variants[programCounter] ??= []);
    for (const block of kept) {
      if (block === this.current[programCounter]) continue;
      const result = block(host, cpu, words, room);
      if (result === BlockResult.Stale) continue;
      this.current[programCounter] = block;
      return result;
    }
    if (++this.heat[programCounter] < HOT_THRESHOLD) return BlockResult.Interpret;
    this.heat[programCounter] = 0;
    const block = this.compile(programCounter, words);
    if (kept.length >= VARIANTS_PER_ADDRESS) kept.shift();
    kept.push(block);
    this.current[programCounter] = block;
    return block(host, cpu, words, room);
  }

  private compile(start: number, words: Int32Array): BlockFunction {
    const source = blockSource(start, words, this.permissions, this.sizeWords, this.keyShift);
    return new Function('permissions', source)(this.permissions) as BlockFunction;
  }
}

const translations = new Map<string, Translation>();

/**
 * The translation shared by every memory with this layout, with protection keys checked or not
 * (a machine without them runs blocks that never look at a key, as before keys existed).
 */
export function translationFor(memory: Memory, keyed = false): Translation {
  const keyShift = keyed ? memory.keyShift : undefined;
  const key = JSON.stringify([memory.sizeWords, memory.segments, keyShift ?? null]);
  let translation = translations.get(key);
  if (translation === undefined) {
    translation = new Translation(memory.pagePermissions.slice(), memory.sizeWords, keyShift);
    translations.set(key, translation);
  }
  return translation;
}

/** One translated instruction: its statements, and whether it ends the block. */
interface Emitted {
  readonly code: string;
  readonly ends: boolean;
  /** it may make an interrupt deliverable (`sti`, `eoi`, `iret`): control returns to the machine after it */
  readonly leaves?: boolean;
  /**
   * a direct jump or call: the block may go on at this address instead of ending, with `through`
   * as the instruction's statements (a call's push, without setting `next`)
   */
  readonly target?: number;
  readonly through?: string;
  /** a call's return address: where a `ret` the block reaches through it should go */
  readonly returnAddress?: number;
  /** a conditional branch: the instructions after it are another path's, checked when reached */
  readonly branches?: boolean;
  /**
   * a `ret`: its statements when the block expects it to return to `expected` (the address after
   * a call the block went through) and goes on there; any other return address leaves the block
   */
  readonly returnsTo?: (expected: number) => string;
}

/**
 * A block: a run of translatable instructions from `start`, in the order they execute. It goes on
 * past a conditional branch (a taken branch leaves the block there, with its own counts) and
 * through a direct jump or call to its target, so a block is a path of several basic blocks.
 */
interface BasicBlock {
  readonly start: number;
  /** the address of each instruction, in execution order */
  readonly addresses: readonly number[];
  readonly words: readonly number[];
  readonly code: readonly string[];
  readonly leaves: boolean;
  /** where the CPU goes on after the last instruction, unless that instruction says */
  readonly fallThrough: number;
  /**
   * the index of each basic block's first instruction after the first: past a branch or to a
   * jump's or call's target, so its words are checked only when the path gets there
   */
  readonly segmentStarts: readonly number[];
}

/**
 * The source of the block at `start`: the body of a function of `permissions` returning the
 * BlockFunction. The words are constants in the source, checked against memory: the first basic
 * block's on entry (stale: nothing runs), each later one's when the path reaches it.
 */
export function blockSource(start: number, words: Int32Array, permissions: Uint8Array, sizeWords: number, keyShift?: number): string {
  const block = basicBlock(start, words, permissions, sizeWords, keyShift);
  if (block === undefined) return `return function block_${start}(host, cpu, words) { return words[${start}] !== ${words[start]} ? ${BlockResult.Stale} : ${BlockResult.Interpret}; };`;
  const length = block.words.length;
  const bounds = [0, ...block.segmentStarts, length];
  const unchanged = (segment: number): string => {
    const indices = Array.from({ length: bounds[segment + 1] - bounds[segment] }, (_, offset) => bounds[segment] + offset);
    return indices.map((index) => `words[${block.addresses[index]}] !== ${block.words[index]}`).join(' || ');
  };
  // a later basic block whose words changed: leave the path there, the instructions before it run
  const segmentCheck = (segment: number): string =>
    `  if (${unchanged(segment)}) { cpu.programCounter = ${block.addresses[bounds[segment]]}; ${retire(bounds[segment])} return ${BlockResult.Ran}; }`;
  const body = block.code.flatMap((code, index) => {
    const segment = bounds.indexOf(index);
    return segment > 0 ? [segmentCheck(segment), `  ${code}`] : [`  ${code}`];
  });
  return [
    `return function block_${start}(host, cpu, words, room) {`,
    `  if (${unchanged(0)}) return ${BlockResult.Stale};`,
    `  if (room < ${length}) return ${BlockResult.Interpret};`,
    `  const r = cpu.registers;`,
    `  const t = cpu.timeNs;`,
    `  let next = ${block.fallThrough};`,
    ...body,
    `  cpu.programCounter = next;`,
    `  ${retire(length)}`,
    `  return ${block.leaves ? BlockResult.RanAndLeft : BlockResult.Ran};`,
    `};`,
  ].join('\n');
}

/** Most instructions in one block. */
export const MAX_BLOCK_INSTRUCTIONS = 64;
function basicBlock(start: number, words: Int32Array, permissions: Uint8Array, sizeWords: number, keyShift: number | undefined): BasicBlock | undefined {
  const executable = (address: number): boolean => address >= 0 && address < sizeWords && (permissions[address >>> PAGE_SHIFT] & PERMISSION_EXECUTE) !== 0;
  const addresses: number[] = [];
  const blockWords: number[] = [];
  const code: string[] = [];
  const segmentStarts: number[] = [];
  /** the return addresses of the calls the block went through, innermost last */
  const returns: number[] = [];
  let leaves = false;
  let address = start;
  while (blockWords.length < MAX_BLOCK_INSTRUCTIONS && executable(address) && !addresses.includes(address)) {
    const emitted = emit(words[address], address, blockWords.length, sizeWords, keyShift);
    if (emitted === undefined) break;
    addresses.push(address);
    blockWords.push(words[address]);
    const onward = (target: number): boolean => executable(target) && !addresses.includes(target) && blockWords.length < MAX_BLOCK_INSTRUCTIONS;
    const target = emitted.target;
    if (target !== undefined && onward(target)) {
      code.push(emitted.through ?? '');
      if (emitted.returnAddress !== undefined) returns.push(emitted.returnAddress);
      segmentStarts.push(blockWords.length);
      address = target;
      continue;
    }
    const expected = returns.at(-1);
    if (emitted.returnsTo !== undefined && expected !== undefined && onward(expected)) {
      returns.pop();
      code.push(emitted.returnsTo(expected));
      segmentStarts.push(blockWords.length);
      address = expected;
      continue;
    }
    code.push(emitted.code);
    if (emitted.branches === true) segmentStarts.push(blockWords.length);
    address++;
    if (emitted.ends) {
      leaves = emitted.leaves === true;
      break;
    }
  }
  if (blockWords.length === 0) return undefined;
  return { start, addresses, words: blockWords, code, leaves, fallThrough: address, segmentStarts: segmentStarts.filter((index) => index < blockWords.length) };
}

const ZERO = FLAG_ZERO;
const LESS = FLAG_LESS;

/** The statements for `word` at `address`, the block's instruction `index`; undefined when the interpreter must run it. */
function emit(word: number, address: number, index: number, sizeWords: number, keyShift: number | undefined): Emitted | undefined {
  // an invalid word is the interpreter's: it traps there
  if (!isValidWord(word)) return undefined;
  const { opcode, a, b, c, immediate } = decode(word);
  const retired = index + 1;
  const now = `t + ${retired}`;
  const fault = (access: 'read' | 'write'): string => `{ host.blockAccessFault(cpu, ${address}, ${retired}, address, '${access}'); return ${BlockResult.RanAndLeft}; }`;
  // PKRU against the page's key: access disable (bit 2k) for any access, write disable (2k+1) for writes too
  const keyClosed = (write: boolean): string => (keyShift === undefined ? '' : ` || (cpu.pkru !== 0 && ((cpu.pkru >>> (host.pageKeys[address >>> ${keyShift}] << 1)) & ${write ? 3 : 1}) !== 0)`);
  const denied = (permission: number): string => `address < 0 || address >= ${sizeWords} || (permissions[address >>> ${PAGE_SHIFT}] & ${permission}) === 0${keyClosed(true)}`;
  const push = (value: string): string =>
    `{ const address = cpu.stackPointer - 1; if (${denied(PERMISSION_WRITE)}) ${fault('write')} words[address] = ${value}; cpu.stackPointer = address; }`;
  const readable = (target: string): string =>
    `const permission = address < 0 || address >= ${sizeWords} ? 0 : permissions[address >>> ${PAGE_SHIFT}]; if ((permission & ${PERMISSION_READ}) === 0${keyClosed(false)}) ${fault('read')} if ((permission & ${PERMISSION_EXECUTE}) !== 0) host.codeReads++; ${target}`;
  const pop = (target: string): string => `{ const address = cpu.stackPointer; ${readable(`cpu.stackPointer = address + 1; ${target} = words[address];`)} }`;
  const straight = (code: string): Emitted => ({ code, ends: false });
  const ending = (code: string): Emitted => ({ code, ends: true });
  const leaving = (code: string): Emitted => ({ code, ends: true, leaves: true });
  // a taken branch leaves the block with the counts of the instructions run so far; not taken, the block goes on
  const branch = (condition: string): Emitted =>
    ({ ...straight(`if (${condition}) { cpu.programCounter = ${immediate}; ${retire(retired)} return ${BlockResult.Ran}; }`), branches: true });
  switch (opcode) {
    case Opcode.Nop:
      return straight('');
    case Opcode.MoveImmediate:
      return straight(`r[${a}] = ${immediate};`);
    case Opcode.Move:
      return straight(`r[${a}] = r[${b}];`);
    case Opcode.Load:
      return straight(`{ const address = r[${b}] + ${immediate}; ${readable(`r[${a}] = words[address];`)} }`);
    case Opcode.Store:
      return straight(
        `{ const address = r[${a}] + ${immediate}; if (${denied(PERMISSION_WRITE)}) ${fault('write')} words[address] = r[${b}]; host.writeEpoch++; host.lastWriteNs = ${now}; }`,
      );
    case Opcode.Add:
      return straight(`r[${a}] = (r[${b}] + r[${c}]) | 0;`);
    case Opcode.Subtract:
      return straight(`r[${a}] = (r[${b}] - r[${c}]) | 0;`);
    case Opcode.And:
      return straight(`r[${a}] = r[${b}] & r[${c}];`);
    case Opcode.Or:
      return straight(`r[${a}] = r[${b}] | r[${c}];`);
    case Opcode.Xor:
      return straight(`r[${a}] = r[${b}] ^ r[${c}];`);
    case Opcode.ShiftLeft:
      return straight(`r[${a}] = r[${b}] << (r[${c}] & 31);`);
    case Opcode.ShiftRight:
      return straight(`r[${a}] = (r[${b}] >>> (r[${c}] & 31)) | 0;`);
    case Opcode.Multiply:
      return straight(`r[${a}] = Math.imul(r[${b}], r[${c}]);`);
    case Opcode.AddImmediate:
      return straight(`r[${a}] = (r[${b}] + ${immediate}) | 0;`);
    case Opcode.AndImmediate:
      return straight(`r[${a}] = r[${b}] & ${immediate};`);
    case Opcode.Compare:
      return straight(compare(`r[${a}]`, `r[${b}]`));
    case Opcode.CompareImmediate:
      return straight(compare(`r[${a}]`, `${immediate}`));
    case Opcode.Jump:
      return { ...ending(`next = ${immediate};`), target: immediate, through: '' };
    case Opcode.BranchEqual:
      return branch(`(cpu.flags & ${ZERO}) !== 0`);
    case Opcode.BranchNotEqual:
      return branch(`(cpu.flags & ${ZERO}) === 0`);
    case Opcode.BranchLess:
      return branch(`(cpu.flags & ${LESS}) !== 0`);
    case Opcode.BranchGreaterEqual:
      return branch(`(cpu.flags & ${LESS}) === 0`);
    case Opcode.BranchGreater:
      return branch(`(cpu.flags & ${LESS | ZERO}) === 0`);
    case Opcode.BranchLessEqual:
      return branch(`(cpu.flags & ${LESS | ZERO}) !== 0`);
    case Opcode.JumpRegister:
      return ending(`next = r[${a}];`);
    case Opcode.Call:
      return { ...ending(`${push(`${address + 1}`)} next = ${immediate};`), target: immediate, through: push(`${address + 1}`), returnAddress: address + 1 };
    case Opcode.CallRegister:
      return ending(`${push(`${address + 1}`)} next = r[${a}];`);
    case Opcode.Return:
      return {
        ...ending(pop('next')),
        returnsTo: (expected) => `{ let returnTo = 0; ${pop('returnTo')} if (returnTo !== ${expected}) { cpu.programCounter = returnTo; ${retire(retired)} return ${BlockResult.Ran}; } }`,
      };
    case Opcode.Push:
      return straight(push(`r[${a}]`));
    case Opcode.Pop:
      return straight(pop(`r[${a}]`));
    case Opcode.CompareAndSwap:
      return straight(compareAndSwap(a, b, c, denied(PERMISSION_WRITE), fault('write'), now));
    case Opcode.BugOn:
      return straight(`if (r[${a}] !== 0) { host.blockAssertion(cpu, ${address}, ${retired}, ${immediate}); return ${BlockResult.RanAndLeft}; }`);
    case Opcode.ReadTime:
      return straight(`r[${a}] = Math.floor((${now}) / 1000) | 0;`);
    case Opcode.CpuIndex:
      return straight(`r[${a}] = cpu.index;`);
    case Opcode.ReadStackPointer:
      return straight(`r[${a}] = cpu.stackPointer;`);
    case Opcode.WriteStackPointer:
      return straight(`cpu.stackPointer = r[${a}];`);
    case Opcode.DisableInterrupts:
      return straight(`cpu.flags &= ${~FLAG_INTERRUPT_ENABLE};`);
    case Opcode.EnableInterrupts:
      // the interrupt shadow: the machine runs the next instruction before any delivery
      return leaving(`cpu.interruptShadow = (cpu.flags & ${FLAG_INTERRUPT_ENABLE}) === 0; cpu.flags |= ${FLAG_INTERRUPT_ENABLE};`);
    case Opcode.EndOfInterrupt:
      return leaving(`if (cpu.inServiceVectors !== 0) cpu.inServiceVectors &= ~(1 << (31 - Math.clz32(cpu.inServiceVectors)));`);
    case Opcode.InterruptReturn:
      return leaving(
        `let returnTo = 0, savedFlags = 0, savedStackPointer = 0; ${pop('returnTo')} ${pop('savedFlags')} ${pop('savedStackPointer')} next = returnTo; cpu.flags = savedFlags; cpu.stackPointer = savedStackPointer; cpu.nmiBlocked = false;`,
      );
    default:
      return undefined;
  }
}

/** the time and counts of `retired` instructions of a block run */
function retire(retired: number): string {
  return `cpu.timeNs = t + ${retired}; cpu.instructionsRetired += ${retired}; host.hypervisorInstructions += ${retired};`;
}

function compare(left: string, right: string): string {
  return `{ const left = ${left}, right = ${right}; cpu.flags = (cpu.flags & ${~(ZERO | LESS)}) | (left === right ? ${ZERO} : 0) | (left < right ? ${LESS} : 0); }`;
}

function compareAndSwap(a: number, b: number, c: number, denied: string, fault: string, now: string): string {
  return [
    `{ const address = r[${b}]; if (${denied}) ${fault}`,
    `if (words[address] === r[${a}]) { words[address] = r[${c}]; host.writeEpoch++; host.lastWriteNs = ${now}; cpu.flags |= ${ZERO}; }`,
    `else { r[${a}] = words[address]; cpu.flags &= ${~ZERO}; } }`,
  ].join(' ');
}
