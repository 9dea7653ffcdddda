/**
 * Output commit (Remus): an output produced in an epoch leaves for the outside world only when
 * the backup has acknowledged the checkpoint taken at the end of that epoch. Outputs of an epoch
 * whose checkpoint never commits are never released: the backup re-executes from the last
 * committed checkpoint, and the outside world has seen nothing it must forget.
 */

/** One epoch's checkpoint: taken at `takenNs` (the epoch's end), held on the backup at `committedNs`. */
export interface EpochCommit {
  readonly takenNs: number;
  readonly committedNs: number;
}

/**
 * When an output produced at `producedNs` is released: at the commit of the first checkpoint
 * taken at or after it; undefined when that checkpoint never committed. `commits` is in order.
 */
export function releaseTimeNs(commits: readonly EpochCommit[], producedNs: number): number | undefined {
  let low = 0;
  let high = commits.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (commits[middle].takenNs < producedNs) low = middle + 1;
    else high = middle;
  }
  return commits[low]?.committedNs;
}

/** The p-th percentile (0-100) of `values` by nearest rank; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
