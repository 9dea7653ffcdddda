/**
 * trials.jsonl rewritten in canonical order (compareRecords) without holding its records. A
 * first pass keeps, per line, where the line is and its sort key as a few numbers (about 25
 * bytes a trial); sorting those gives the order; a second pass copies each line's bytes, in that
 * order, into a staged file that then replaces trials.jsonl atomically.
 *
 * The result is byte for byte what sorting the parsed records and writing each as
 * JSON.stringify(record) + '\n' gives: a line is copied only if it is exactly that text, and
 * written anew from its record otherwise (a hand-edited line, say).
 */
import { closeSync, openSync } from 'node:fs';
import { float64Column, uint32Column, uint8Column } from './columns.js';
import { readBytes, readLines, ResultsFileError, type Line } from './lines.js';
import { stageFile, type StagedFile } from './staged-file.js';
import { parseRecord } from './store.js';
import type { CampaignRecord } from './summary.js';

/** Rewrite the results file at `path` in canonical order; a missing file becomes an empty one. */
export function sortResultsFile(path: string): void {
  const index = new LineIndex();
  for (const line of readLines(path)) index.add(line, parseRecord(line, path));
  const order = index.canonicalOrder();
  refuseRepeatedTrials(path, index, order);
  copyInOrder(path, index, order);
}

/** A trial twice (a file concatenated with itself, say) would be counted twice: the user's file to fix. */
function refuseRepeatedTrials(path: string, index: LineIndex, order: readonly number[]): void {
  for (let position = 1; position < order.length; position++) {
    const [first, second] = [order[position - 1], order[position]].sort((a, b) => a - b);
    if (index.compare(first, second) !== 0) continue;
    throw new ResultsFileError(`${path} lines ${index.lineNumbers.get(first)} and ${index.lineNumbers.get(second)} are the same trial (${index.describe(first)}): a trial is counted once; remove one`);
  }
}

/** The parts of the sort key that are names: few distinct values, however many trials. */
interface Cell {
  readonly configuration: string;
  readonly faultType: string;
  readonly mechanism: string;
  readonly stage: string;
}

/** Per line, in file order: where it is, whether it can be copied as it is, and its sort key. */
class LineIndex {
  readonly offsets = float64Column();
  readonly lengths = uint32Column();
  /** 1: the line is exactly JSON.stringify of its record */
  readonly copyable = uint8Column();
  readonly trialIndexes = float64Column();
  /** an id into `cells`: the sort key's names */
  readonly cellIds = uint32Column();
  readonly cells: Cell[] = [];
  /** 1-based line numbers in the file, for messages */
  readonly lineNumbers = uint32Column();
  private readonly cellIdsByKey = new Map<string, number>();
  private ranks: CellRanks[] | undefined;

  get length(): number {
    return this.offsets.length;
  }

  add(line: Line, entry: CampaignRecord): void {
    this.offsets.push(line.offset);
    this.lengths.push(line.length);
    this.lineNumbers.push(line.number);
    this.copyable.push(isAsWritten(line.text, entry) ? 1 : 0);
    this.trialIndexes.push(entry.record.trialIndex);
    this.cellIds.push(this.cellId({ configuration: entry.record.configuration, faultType: entry.record.faultType, mechanism: entry.record.mechanism, stage: entry.stage }));
  }

  /**
   * Line numbers (0-based, in file order) in canonical order. The comparison gives the sign
   * compareRecords gives, and the sort is the one compareRecords was used with (Array's, stable),
   * so ties keep file order as they did.
   */
  canonicalOrder(): number[] {
    return Array.from({ length: this.length }, (_, line) => line).sort((x, y) => this.compare(x, y));
  }

  /** The canonical order of lines x and y (0-based, in file order); 0 for the same trial. */
  compare(x: number, y: number): number {
    this.ranks ??= cellRanks(this.cells);
    const a = this.ranks[this.cellIds.get(x)];
    const b = this.ranks[this.cellIds.get(y)];
    return (
      a.configuration - b.configuration ||
      a.faultType - b.faultType ||
      this.trialIndexes.get(x) - this.trialIndexes.get(y) ||
      a.mechanism - b.mechanism ||
      a.stage - b.stage
    );
  }

  /** Line x's trial, for messages. */
  describe(x: number): string {
    const cell = this.cells[this.cellIds.get(x)];
    return `${cell.configuration}/${cell.faultType}/${cell.mechanism}/${cell.stage}/${this.trialIndexes.get(x)}`;
  }

  private cellId(cell: Cell): number {
    const key = JSON.stringify([cell.configuration, cell.faultType, cell.mechanism, cell.stage]);
    let id = this.cellIdsByKey.get(key);
    if (id === undefined) {
      id = this.cells.push(cell) - 1;
      this.cellIdsByKey.set(key, id);
    }
    return id;
  }
}

/**
 * Whether the line's bytes are what JSON.stringify writes for its record. A replacement
 * character may stand for bytes that were not UTF-8, which decoding lost: write that line anew.
 */
function isAsWritten(text: string, entry: CampaignRecord): boolean {
  return !text.includes('\uFFFD') && JSON.stringify(entry) === text;
}

type CellRanks = Record<keyof Cell, number>;

/** Each cell's names as ranks: a rank difference has the sign of compareRecords' comparison. */
function cellRanks(cells: readonly Cell[]): CellRanks[] {
  const byName = (a: string, b: string): number => a.localeCompare(b);
  const byStage = (a: string, b: string): number => a.localeCompare(b, undefined, { numeric: true });
  const configuration = ranksOf(cells.map((cell) => cell.configuration), byName);
  const faultType = ranksOf(cells.map((cell) => cell.faultType), byName);
  const mechanism = ranksOf(cells.map((cell) => cell.mechanism), byName);
  const stage = ranksOf(cells.map((cell) => cell.stage), byStage);
  return cells.map((cell) => ({
    configuration: configuration.get(cell.configuration) as number,
    faultType: faultType.get(cell.faultType) as number,
    mechanism: mechanism.get(cell.mechanism) as number,
    stage: stage.get(cell.stage) as number,
  }));
}

/** Distinct values numbered in sorted order; values that compare equal share a number. */
function ranksOf(values: readonly string[], compare: (a: string, b: string) => number): Map<string, number> {
  const sorted = [...new Set(values)].sort(compare);
  const ranks = new Map<string, number>();
  let rank = 0;
  sorted.forEach((value, position) => {
    if (position > 0 && compare(sorted[position - 1], value) !== 0) rank++;
    ranks.set(value, rank);
  });
  return ranks;
}

/** The lines in `order`, into a staged file that replaces `path` once complete. */
function copyInOrder(path: string, index: LineIndex, order: readonly number[]): void {
  stageFile(path, (output) => copyLines(path, index, order, output), `${path}.partial`).commit();
}

function copyLines(path: string, index: LineIndex, order: readonly number[], output: StagedFile): void {
  if (order.length === 0) return;
  const descriptor = openSync(path, 'r');
  const scratch = Buffer.allocUnsafe(1 << 16);
  try {
    for (const line of order) output.write(lineAsWritten(descriptor, index, line, scratch));
  } finally {
    closeSync(descriptor);
  }
}

/** The line and its newline as JSON.stringify(record) + '\n' writes them: copied when they are. */
function lineAsWritten(descriptor: number, index: LineIndex, line: number, scratch: Buffer): Uint8Array | string {
  const offset = index.offsets.get(line);
  const length = index.lengths.get(line);
  // a complete line's newline is the byte after it
  if (index.copyable.get(line) === 1) return readBytes(descriptor, offset, length + 1, scratch);
  const text = readBytes(descriptor, offset, length, scratch).toString('utf8');
  return JSON.stringify(JSON.parse(text)) + '\n';
}
