/**
 * Deep copies of plain data, for snapshots of guests and devices. structuredClone does the same
 * for these states but costs tens of microseconds even for a small object, and snapshots are
 * taken and restored at every checkpoint and trial.
 */

/** JSON-like data: numbers, strings, booleans, null, undefined, arrays and plain objects. */
export function copyPlainData<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return copyArray(value) as T;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new TypeError(`not plain data: an instance of ${(value as object).constructor?.name ?? 'an unknown class'}`);
  }
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = copyPlainData((value as Record<string, unknown>)[key]);
  return copy as T;
}

function copyArray(values: readonly unknown[]): unknown[] {
  const copy = new Array<unknown>(values.length);
  for (let index = 0; index < values.length; index++) {
    if (index in values) copy[index] = copyPlainData(values[index]);
  }
  return copy;
}
