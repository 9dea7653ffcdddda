/**
 * Parses one line of the disassembler's text back to its word, so that traces can be checked
 * and so that assembling then disassembling provably round-trips.
 */
import { allOpcodes, encode, encodeThreeRegister } from './isa.js';

const byMnemonic = new Map(allOpcodes.map((info) => [info.mnemonic, info]));

export function assembleLine(text: string): number {
  const match = /^([a-z_]+)\s*(.*)$/.exec(text.trim());
  if (match === null) throw new SyntaxError(`cannot parse "${text}"`);
  const info = byMnemonic.get(match[1]);
  if (info === undefined) throw new SyntaxError(`unknown mnemonic "${match[1]}"`);
  const operands = operandsOf(match[2]);
  const register = (index: number): number => {
    const found = /^r(\d+)$/.exec(operands[index] ?? '');
    if (found === null || Number(found[1]) > 15) throw new SyntaxError(`expected a register in "${text}"`);
    return Number(found[1]);
  };
  const number = (index: number): number => {
    const token = (operands[index] ?? '').split(' ')[0];
    const value = Number(token);
    // Number('') is 0: an absent operand must not read as zero
    if (token === '' || !Number.isInteger(value)) throw new SyntaxError(`expected a number in "${text}"`);
    return value;
  };
  switch (info.shape) {
    case 'none':
      return encode(info.opcode);
    case 'a':
      return encode(info.opcode, register(0));
    case 'a,imm':
      return encode(info.opcode, register(0), 0, number(1));
    case 'a,b':
      return encode(info.opcode, register(0), register(1));
    case 'a,b,c':
      return encodeThreeRegister(info.opcode, register(0), register(1), register(2));
    case 'imm':
      return encode(info.opcode, 0, 0, number(0));
    case 'a,b,imm':
      return encode(info.opcode, register(0), register(1), number(2));
  }
}

/** `ld r1, [r2+3]` -> [r1, r2, 3]; `st [r2-1], r1` -> [r2, r1, -1]; `cas r1, [r2], r3` -> [r1, r2, r3]. */
function operandsOf(text: string): string[] {
  const memory = /\[(r\d+)([+-]\d+)?\]/.exec(text);
  if (memory === null) return text === '' ? [] : text.split(',').map((part) => part.trim().replace(/ <.*>$/, ''));
  const parts = text.split(',').map((part) => part.trim());
  const other = parts.find((part) => !part.startsWith('['));
  const offset = memory[2] === undefined ? '0' : String(Number(memory[2]));
  if (parts.length === 3) return [parts[0], memory[1], parts[2]];
  return parts[0].startsWith('[') ? [memory[1], other ?? '', offset] : [other ?? '', memory[1], offset];
}

