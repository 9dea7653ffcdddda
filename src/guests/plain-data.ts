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
  // a spread copy has the original's hidden class, so code reading restored state stays monomorphic
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const key in copy) {
    const field = copy[key];
    if (typeof field === 'object' && field !== null) copy[key] = copyPlainData(field);
  }
  return copy as T;
}

/** slice keeps the elements kind (a packed array stays packed, a hole stays a hole) */
function copyArray(values: readonly unknown[]): unknown[] {
  const copy = values.slice();
  for (let index = 0; index < copy.length; index++) {
    const element = copy[index];
    if (typeof element === 'object' && element !== null) copy[index] = copyPlainData(element);
  }
  return copy;
}
