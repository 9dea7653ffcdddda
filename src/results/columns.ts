/**
 * A growable list of numbers kept in a typed array: per-line bookkeeping for files with
 * millions of lines costs a few bytes a line, without the per-element overhead and slack of
 * JavaScript arrays or objects.
 */
type NumberArray = Float64Array | Uint32Array | Uint8Array;

export class Column<T extends NumberArray> {
  private values: T;
  private count = 0;

  constructor(private readonly allocate: (length: number) => T) {
    this.values = allocate(1024);
  }

  get length(): number {
    return this.count;
  }

  push(value: number): void {
    if (this.count === this.values.length) this.grow();
    this.values[this.count++] = value;
  }

  get(index: number): number {
    return this.values[index];
  }

  private grow(): void {
    const grown = this.allocate(this.values.length * 2);
    grown.set(this.values);
    this.values = grown;
  }
}

export const float64Column = (): Column<Float64Array> => new Column((length) => new Float64Array(length));
export const uint32Column = (): Column<Uint32Array> => new Column((length) => new Uint32Array(length));
export const uint8Column = (): Column<Uint8Array> => new Column((length) => new Uint8Array(length));
