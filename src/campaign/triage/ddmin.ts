/**
 * Delta debugging (Zeller's ddmin) for a minimal restoring set: the smallest subset of regions
 * that, set back, still makes the trial recover. The caller has checked that the whole set does.
 * Each test is a re-run through the machine, so tests are bounded; a search that runs out says
 * so and returns the smallest passing set it had.
 */
export type MinimalSet<T> = { readonly kind: 'found' | 'exhausted'; readonly items: readonly T[]; readonly tests: number };

/** `passes(subset)` is one re-run; `maxTests` bounds them, `outOfTime` may end the search early. */
export function ddmin<T>(items: readonly T[], passes: (subset: readonly T[]) => boolean, maxTests: number, outOfTime: () => boolean = () => false): MinimalSet<T> {
  let current = items.slice();
  let granularity = 2;
  let tests = 0;
  const seen = new Map<string, boolean>();
  const test = (subset: readonly T[]): boolean | undefined => {
    const key = subset.map(String).join('\u0000');
    const known = seen.get(key);
    if (known !== undefined) return known;
    if (tests >= maxTests || outOfTime()) return undefined;
    tests++;
    const result = passes(subset);
    seen.set(key, result);
    return result;
  };
  while (current.length >= 2) {
    const chunks = split(current, granularity);
    const outcome = reduceOnce(current, chunks, test);
    if (outcome === 'exhausted') return { kind: 'exhausted', items: current, tests };
    if (outcome !== undefined) {
      current = outcome.items;
      granularity = outcome.complement ? Math.max(granularity - 1, 2) : 2;
      continue;
    }
    if (granularity >= current.length) break;
    granularity = Math.min(granularity * 2, current.length);
  }
  return { kind: 'found', items: current, tests };
}

/** One round: a chunk that passes alone, else a complement that passes; exhausted if a test could not run. */
function reduceOnce<T>(current: readonly T[], chunks: readonly T[][], test: (subset: readonly T[]) => boolean | undefined): { items: T[]; complement: boolean } | 'exhausted' | undefined {
  for (const chunk of chunks) {
    const result = test(chunk);
    if (result === undefined) return 'exhausted';
    if (result) return { items: chunk, complement: false };
  }
  if (chunks.length === 2) return undefined;
  for (const chunk of chunks) {
    const complement = current.filter((item) => !chunk.includes(item));
    const result = test(complement);
    if (result === undefined) return 'exhausted';
    if (result) return { items: complement, complement: true };
  }
  return undefined;
}

function split<T>(items: readonly T[], parts: number): T[][] {
  const chunks: T[][] = [];
  let start = 0;
  for (let part = 0; part < parts; part++) {
    const end = start + Math.floor((items.length - start) / (parts - part));
    if (end > start) chunks.push(items.slice(start, end));
    start = end;
  }
  return chunks;
}
