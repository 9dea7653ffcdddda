/**
 * ninelives.json: the marker and manifest of a results directory. Written before any work, it
 * says the directory is a ninelives result and of which campaign (so a later run, merge or
 * report may write there and nothing else may), how many trials the directory should hold (so a
 * short result can say so), which shard of how many it is (so merge can name missing shards),
 * which ninelives made it, and, while a run is writing it (or was stopped before it finished),
 * that it is unfinished.
 */
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NinelivesError } from '../errors.js';
import type { Provenance } from './provenance.js';
import { writeFileAtomically } from './staged-file.js';

/** Shard I of N of a campaign (1-based): the trials whose index is I-1 modulo N. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

export const MANIFEST_FILE = 'ninelives.json';
const TOOL = 'ninelives';

export interface Manifest {
  readonly tool: typeof TOOL;
  readonly campaign: string;
  readonly seed: number;
  readonly description?: string;
  /** the trials this directory should hold when complete; undefined when not known */
  readonly planned?: number;
  /** a shard's place; merged results and whole runs have none */
  readonly shard?: Shard;
  /** the trials of the whole campaign, over all its shards */
  readonly campaignTrials?: number;
  /** a hash of everything that decides the campaign's trials: equal for its shards, and only for them */
  readonly fingerprint?: string;
  readonly ninelives: Provenance;
  /**
   * Set before a run's first trial and cleared once its last is in: a run that was killed or
   * interrupted leaves it, so its results say they are partial even where no count can (under a
   * stop rule the planned count is only a ceiling).
   */
  readonly unfinished?: true;
}

/** A ninelives.json that is not one of ours: the directory is the user's. */
export class ForeignManifestError extends NinelivesError {
  constructor(message: string) {
    super('usage.outputDirectory', message);
  }
}

export function manifestPath(directory: string): string {
  return join(directory, MANIFEST_FILE);
}

/** The directory's manifest, undefined when it has none; throws ForeignManifestError if unreadable. */
export function readManifest(directory: string): Manifest | undefined {
  const path = manifestPath(directory);
  if (!existsSync(path)) return undefined;
  // a pipe would block the read, a device or a huge file never end it
  const stats = lstatSync(path);
  if (!stats.isFile()) throw new ForeignManifestError(`${path} is not a regular file`);
  if (stats.size > MAX_MANIFEST_BYTES) throw new ForeignManifestError(`${path} is not a ninelives manifest (${stats.size} bytes, more than a manifest has)`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ForeignManifestError(`${path} is not a ninelives manifest (not JSON)`);
  }
  if (!isManifest(value)) throw new ForeignManifestError(`${path} is not a ninelives manifest`);
  return value;
}

export function writeManifest(directory: string, manifest: Omit<Manifest, 'tool'>): void {
  writeFileAtomically(manifestPath(directory), JSON.stringify({ tool: TOOL, ...manifest }, null, 2) + '\n');
}

function isManifest(value: unknown): value is Manifest {
  const manifest = (typeof value === 'object' && value !== null ? value : {}) as Partial<Manifest>;
  return (
    manifest.tool === TOOL &&
    typeof manifest.campaign === 'string' &&
    typeof manifest.seed === 'number' &&
    isCountOrAbsent(manifest.planned) &&
    isCountOrAbsent(manifest.campaignTrials) &&
    (manifest.unfinished === undefined || typeof manifest.unfinished === 'boolean')
  );
}

/** A trial count as a run writes it: absent, or a whole number not below 0 ("8", -5 or 1e300 are not). */
function isCountOrAbsent(value: unknown): boolean {
  return value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0);
}

/** A manifest is a few hundred bytes. */
const MAX_MANIFEST_BYTES = 1 << 16;
