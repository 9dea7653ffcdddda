/**
 * Golden runs with checkpoints, cached per (configuration, workload seed, run length, NetBench
 * rule). A checkpoint holds a snapshot of the whole system at a simulated time and the text of
 * its state besides memory: trials fast-forward by restoring the latest checkpoint before their
 * trigger, and a trial whose state equals the golden run's at a later checkpoint can stop early as
 * non-manifested.
 */
import type { Tracer } from '../machine/machine.js';
import { runLengthOf, type System, type SystemOptions, type SystemSnapshot } from './system.js';
import { CHECKPOINT_INTERVAL_NS, playGolden, type GoldenReport } from './golden.js';

export { CHECKPOINT_INTERVAL_NS };

export interface Checkpoint {
  readonly timeNs: number;
  readonly snapshot: SystemSnapshot;
  /** System.stateBesidesMemory() at the checkpoint: with the snapshot's memory, its whole state */
  readonly stateBesidesMemory: string;
}

export interface GoldenRun {
  readonly options: SystemOptions;
  readonly runLengthNs: number;
  /** in time order; the first is at time 0 (boot), the last at the end of the run */
  readonly checkpoints: readonly Checkpoint[];
  /** the state at the end, after settling */
  readonly final: SystemSnapshot;
  /** per code address the golden run executed: the simulated time it last fetched it */
  readonly lastFetchNs: ReadonlyMap<number, number>;
  readonly report: GoldenReport;
}

const cache = new Map<string, GoldenRun>();
const CACHE_LIMIT = 8;

function keyOf(options: SystemOptions, runLengthNs: number): string {
  // the key-value server's options and protection keys are keyed only when given, so every other key stays as it was
  const kvServer = options.kvServer === undefined ? [] : [options.kvServer];
  const protectionKeys = options.protectionKeys === true ? ['pkeys'] : [];
  return JSON.stringify([options.configuration, options.seed, runLengthNs, options.strictNetBench ?? false, ...kvServer, ...protectionKeys]);
}

export function goldenRun(options: SystemOptions): GoldenRun {
  const key = keyOf(options, runLengthOf(options));
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const run = recordGoldenRun(options);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, run);
  return run;
}

function recordGoldenRun(options: SystemOptions): GoldenRun {
  const checkpoints: Checkpoint[] = [];
  const lastFetchNs = new Map<number, number>();
  const tracer: Tracer = (_cpu, programCounter, _word, timeNs) => {
    lastFetchNs.set(programCounter, timeNs);
  };
  const { system, clean, report } = playGolden(options, (running, timeNs) => checkpoints.push(checkpointOf(running, timeNs)), () => tracer);
  if (!clean) throw new Error(`golden run of ${options.configuration} seed ${options.seed} did not run clean: ${report.detections.join('; ')}`);
  return { options, runLengthNs: system.runLengthNs, checkpoints, final: system.snapshot(), lastFetchNs, report };
}

function checkpointOf(system: System, timeNs: number): Checkpoint {
  return { timeNs, snapshot: system.snapshot(), stateBesidesMemory: system.stateBesidesMemory() };
}

/** The latest checkpoint at or before `timeNs`. */
export function checkpointBefore(run: GoldenRun, timeNs: number): Checkpoint {
  let best = run.checkpoints[0];
  for (const checkpoint of run.checkpoints) {
    if (checkpoint.timeNs > timeNs) break;
    best = checkpoint;
  }
  return best;
}
