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

  it('refuses what is not plain data', () => {
    expect(() => copyPlainData({ when: new Date(0) })).toThrow(/not plain data: an instance of Date/);
    expect(() => copyPlainData([new Map()])).toThrow(/Map/);
  });
});
