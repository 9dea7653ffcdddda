/**
 * Renders any 32-bit word back to assembly text, for traces and for the round-trip property.
 */
import { decode, isValidWord, opcodeInfo } from './isa.js';
import { hex } from './trap.js';

/** Names an address for display, e.g. `schedule+4`; returns undefined when it has no name. */
export type Symbolizer = (address: number) => string | undefined;

function target(address: number, symbolize?: Symbolizer): string {
  const name = symbolize?.(address);
  return name === undefined ? String(address) : `${address} <${name}>`;
}

export function disassemble(word: number, symbolize?: Symbolizer): string {
  if (!isValidWord(word)) return `.word ${hex(word)}`;
  const { opcode, a, b, c, immediate } = decode(word);
  const info = opcodeInfo(opcode);
  if (info === undefined) return `.word ${hex(word)}`;
  const m = info.mnemonic;
  switch (info.shape) {
    case 'none':
      return m;
    case 'a':
      return `${m} r${a}`;
    case 'a,imm':
      return `${m} r${a}, ${immediate}`;
    case 'a,b':
      return `${m} r${a}, r${b}`;
    case 'a,b,c':
      return m === 'cas' ? `cas r${a}, [r${b}], r${c}` : `${m} r${a}, r${b}, r${c}`;
    case 'imm':
      return m === 'panic' ? `${m} ${immediate}` : `${m} ${target(immediate, symbolize)}`;
    case 'a,b,imm':
      if (m === 'ld') return `ld r${a}, [r${b}${signed(immediate)}]`;
      if (m === 'st') return `st [r${a}${signed(immediate)}], r${b}`;
      return `${m} r${a}, r${b}, ${immediate}`;
  }
}

function signed(offset: number): string {
  return offset < 0 ? `${offset}` : `+${offset}`;
}

/** A symbolizer from a label table: the nearest label at or before the address. */
export function symbolizerFor(labels: ReadonlyMap<string, number>): Symbolizer {
  const sorted = [...labels.entries()]
    .filter(([name]) => !name.startsWith('.'))
    .sort((x, y) => x[1] - y[1]);
  return (address) => {
    let best: [string, number] | undefined;
    for (const entry of sorted) {
      if (entry[1] > address) break;
      best = entry;
    }
    if (best === undefined) return undefined;
    return best[1] === address ? best[0] : `${best[0]}+${address - best[1]}`;
  };
}

/**
 * The function a symbol names, without its offset or local label: `schedule.pick+3` -> `schedule`
 * (and a data symbol's structure: `percpu[1].softirqPending` -> `percpu[1]`).
 */
export function functionOfSymbol(symbol: string): string {
  return symbol.replace(/\+\d+$/, '').split('.')[0];
}
