import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyPlainData } from '../../src/guests/plain-data.js';

describe('copyPlainData', () => {
  it('copies nested objects and arrays deeply, keeping key order, nulls and undefined', () => {
    const original = { b: 1, a: [1, { c: 'x', d: null }], e: undefined, f: { g: [true, false] } };
    const copy = copyPlainData(original);
    expect(copy).toStrictEqual(original);
    expect(Object.keys(copy)).toEqual(Object.keys(original));
    expect(JSON.stringify(copy)).toBe(JSON.stringify(original));
    copy.a.push(2);
    (copy.a[1] as { c: string }).c = 'y';
    copy.f.g[0] = false;
    expect(original).toStrictEqual({ b: 1, a: [1, { c: 'x', d: null }], e: undefined, f: { g: [true, false] } });
  });

  it('gives an equal copy that shares no object or array with the original, for any JSON-like value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const copy = copyPlainData(value);
        expect(copy).toStrictEqual(value);
        expect(sharedContainers(copy, value)).toEqual([]);
      }),
    );
  });

  it('keeps holes in arrays and copies frozen entries', () => {
    const entry = Object.freeze({ pingId: 1 });
    const original = [1, , entry];
    const copy = copyPlainData(original);
    expect(1 in copy).toBe(false);
    expect(copy).toHaveLength(3);
    expect(copy[2]).toStrictEqual({ pingId: 1 });
    expect(copy[2]).not.toBe(entry);
  });

  it('refuses what is not plain data', () => {
    expect(() => copyPlainData({ when: new Date(0) })).toThrow(/not plain data: an instance of Date/);
    expect(() => copyPlainData([new Map()])).toThrow(/Map/);
  });
});

/** Objects and arrays reachable from both (by position), which a deep copy must not have. */
function sharedContainers(copy: unknown, original: unknown, path = '$'): string[] {
  if (typeof original !== 'object' || original === null) return [];
  if (copy === original) return [path];
  return Object.keys(original).flatMap((key) => sharedContainers((copy as Record<string, unknown>)[key], (original as Record<string, unknown>)[key], `${path}.${key}`));
}
