/**
 * Where results may be written. A user's files are theirs: run, merge and report write only
 * into a directory that is new, empty, or holds a ninelives result of the same campaign (known
 * by its manifest, ninelives.json, or, for results made before manifests, by holding nothing
 * but ninelives's own files and records of that campaign). The filesystem root, system
 * directories and the home directory are refused outright; anything else only with `force`.
 * Every check happens before any work, and the directory is proved writable by creating it.
 */
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { NinelivesError } from '../errors.js';
import { STOP_RULE_FILE } from './stopping.js';
import { TRIAL_PAGES_FOLDER } from './directory.js';
import { LOCK_FILE } from './lock.js';
import { ForeignManifestError, MANIFEST_FILE, readManifest, writeManifest, type Manifest } from './manifest.js';
import { firstRecord } from './store.js';

/** The directory may not be written to; the message is one line for the user. */
export class OutputDirectoryError extends NinelivesError {
  constructor(message: string) {
    super('usage.outputDirectory', message);
  }
}

/**
 * The files a results directory holds (and the staged files of an interrupted write): the run's,
 * the stop rule it ran under (results/stopping.ts), and those `ninelives triage` adds (its
 * findings, its clusters, its diagnoses so far).
 */
const RESULT_FILES = new Set([LOCK_FILE, MANIFEST_FILE, 'trials.jsonl', 'summary.json', 'report.md', 'report.html', 'trials.csv', STOP_RULE_FILE, 'triage.md', 'triage.json', 'triage.jsonl']);
/** The folders a results directory holds: the trial pages triage writes (the trial browser). */
const RESULT_FOLDERS = new Set([TRIAL_PAGES_FOLDER]);
const SYSTEM_DIRECTORIES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/usr', '/var', '/tmp', '/home', '/mnt', '/media', '/snap'];
/** not even below these: the kernel's, or the system's own files (the package manager's, the boot loader's) */
const SYSTEM_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/sbin', '/snap', '/sys', '/usr'];

export interface Claim {
  /**
   * the campaign whose results the directory is for; undefined for a queue worker's directory,
   * which learns its campaign from the chunks it takes: then a result of any campaign is ours
   */
  readonly campaign: string | undefined;
  /** write even into a directory with other files in it */
  readonly force?: boolean;
  /** the option or argument that named the directory, for messages */
  readonly named: string;
}

/**
 * Check that `directory` may hold `claim.campaign`'s results, without creating anything. Returns
 * its manifest, if it has one. Throws OutputDirectoryError.
 */
export function checkOutputDirectory(directory: string, claim: Claim): Manifest | undefined {
  if (directory.trim() === '') throw new OutputDirectoryError(`${claim.named} is empty: name a directory for the results`);
  const real = realPathOf(resolve(directory));
  if (isProtected(real)) throw new OutputDirectoryError(`${claim.named} ${directory} is ${real === '/' ? 'the filesystem root' : 'a system directory, or in one'}: choose a directory of your own for the results`);
  if (existsSync(real) && !statSync(real).isDirectory()) throw new OutputDirectoryError(`${claim.named} ${directory} is a file, not a directory`);
  return existsSync(real) ? checkExisting(directory, real, claim) : undefined;
}

/**
 * Check that `directory` may hold `claim.campaign`'s results, and create it. Returns its
 * manifest, if it has one. Throws OutputDirectoryError.
 */
export function claimOutputDirectory(directory: string, claim: Claim, manifest?: Omit<Manifest, 'tool'>): Manifest | undefined {
  const previous = checkOutputDirectory(directory, claim);
  create(directory, realPathOf(resolve(directory)), manifest);
  return previous;
}

/** The real path of the nearest existing ancestor, with the rest appended. */
function realPathOf(path: string): string {
  if (existsSync(path)) return realpathSync(path);
  const parent = dirname(path);
  if (parent === path) return path;
  return join(realPathOf(parent), path.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
}

/** True for the filesystem root and the system's trees (/etc, /usr, /proc, ...): no file of ninelives goes there. */
export function isSystemPlace(directory: string): boolean {
  return inSystemTree(realPathOf(resolve(directory)));
}

/** `real` (a resolved path) is the root, one of the system's trees, or in one */
function inSystemTree(real: string): boolean {
  return real === '/' || SYSTEM_TREES.some((tree) => real === tree || real.startsWith(`${tree}/`));
}

function isProtected(path: string): boolean {
  return path === homedir() || SYSTEM_DIRECTORIES.includes(path) || inSystemTree(path);
}

function checkExisting(directory: string, real: string, claim: Claim): Manifest | undefined {
  let entries: string[];
  try {
    entries = readdirSync(real);
  } catch (error) {
    throw new OutputDirectoryError(`cannot read ${directory}: ${codeOf(error)}`);
  }
  let manifest: Manifest | undefined;
  try {
    manifest = readManifest(real);
  } catch (error) {
    if (error instanceof ForeignManifestError && claim.force === true) return undefined;
    if (error instanceof ForeignManifestError) throw new OutputDirectoryError(`${error.message}: ${directory} is not a ninelives result; choose another directory, or --force`);
    throw error;
  }
  const irregular = entries.find((name) => (RESULT_FILES.has(name) && !lstatSync(join(real, name)).isFile()) || (RESULT_FOLDERS.has(name) && !lstatSync(join(real, name)).isDirectory()));
  // a link, a pipe or a device named like a result would be read, truncated or replaced
  if (irregular !== undefined) {
    const what = RESULT_FOLDERS.has(irregular) ? 'a directory' : 'a regular file';
    throw new OutputDirectoryError(`${join(directory, irregular)} is not ${what}: ninelives reads and replaces its result files, so it refuses ${directory}`);
  }
  const irregularPage = irregularEntryIn(join(real, TRIAL_PAGES_FOLDER));
  if (irregularPage !== undefined) {
    throw new OutputDirectoryError(`${join(directory, TRIAL_PAGES_FOLDER, irregularPage)} is not a regular file: ninelives replaces its trial pages, so it refuses ${directory}`);
  }
  if (manifest !== undefined) {
    if (claim.campaign !== undefined && manifest.campaign !== claim.campaign) throw new OutputDirectoryError(`${directory} holds the results of campaign "${manifest.campaign}", not "${claim.campaign}": choose another directory`);
    return manifest;
  }
  // a lock alone is a writer's that has not written yet: taking the lock decides, not the claim
  const contents = entries.filter((name) => name !== LOCK_FILE);
  if (contents.length === 0 || claim.force === true) return undefined;
  const strangers = contents.filter((name) => !isResultFile(name));
  const shards = contents.filter((name) => SHARD_DIRECTORY.test(name));
  // results made before manifests, or shards of this campaign in their default directories
  const ours =
    strangers.length === 0 &&
    (contents.includes('trials.jsonl') ? isClaimed(legacyCampaign(real), claim) : shards.length === contents.length && shards.every((name) => isClaimed(shardCampaign(join(real, name)), claim)));
  if (!ours) {
    const example = strangers[0] ?? contents[0];
    const result = claim.campaign === undefined ? 'no ninelives result' : `no ninelives result of campaign "${claim.campaign}"`;
    throw new OutputDirectoryError(`${directory} is not empty and holds ${result} (it has ${example}): choose a new or empty directory, or --force to write there anyway`);
  }
  return undefined;
}

/** The first entry of the trial pages' folder that is not a regular file (a link would lead a page elsewhere). */
function irregularEntryIn(folder: string): string | undefined {
  if (!existsSync(folder) || !lstatSync(folder).isDirectory()) return undefined;
  return readdirSync(folder).find((name) => !lstatSync(join(folder, name)).isFile());
}

/** A result of this campaign, or of any when the claim names none. */
function isClaimed(campaign: string | undefined, claim: Claim): boolean {
  return campaign !== undefined && (claim.campaign === undefined || campaign === claim.campaign);
}

const SHARD_DIRECTORY = /^shard-\d+-of-\d+$/;

/** The campaign of a shard directory below a campaign's directory, by its manifest. */
function shardCampaign(directory: string): string | undefined {
  try {
    return statSync(directory).isDirectory() ? readManifest(directory)?.campaign : undefined;
  } catch {
    return undefined;
  }
}

function isResultFile(name: string): boolean {
  if (RESULT_FILES.has(name) || RESULT_FOLDERS.has(name)) return true;
  // `run --shard` puts shards below the campaign's default directory, where merge then writes
  if (SHARD_DIRECTORY.test(name)) return true;
  // staged files of a write that was interrupted: `<file>.partial` and `.<file>.<pid>.<n>.tmp`
  if (name.endsWith('.partial') && RESULT_FILES.has(name.slice(0, -'.partial'.length))) return true;
  const staged = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(name);
  return staged !== null && (RESULT_FILES.has(staged[1]) || (staged[1].endsWith('.partial') && RESULT_FILES.has(staged[1].slice(0, -'.partial'.length))));
}

/** The campaign of a results directory made before manifests: its first record's. */
function legacyCampaign(directory: string): string | undefined {
  try {
    return firstRecord(join(directory, 'trials.jsonl'))?.campaign;
  } catch {
    return undefined;
  }
}

/** Create the directory and write its manifest: proof that it can be written to. */
function create(directory: string, real: string, manifest: Omit<Manifest, 'tool'> | undefined): void {
  try {
    mkdirSync(real, { recursive: true });
    accessSync(real, constants.W_OK);
    if (manifest !== undefined) writeManifest(real, manifest);
  } catch (error) {
    throw new OutputDirectoryError(`cannot write to ${directory}: ${codeOf(error)}`);
  }
}

function codeOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
