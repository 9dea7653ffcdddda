/**
 * Which ninelives made a result: its version and the source commit, or, where there is no git
 * (an installed package), a content hash of the running code. Worked out once per process, on
 * first use. The campaign layer writes it beside each record, and finishing the results
 * (result-facts.ts) writes it into summary.json, so that resuming or merging can refuse to mix
 * results of different code.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPackageRoot, packageVersion } from '../package-info.js';

export interface Provenance {
  readonly version: string;
  /**
   * `git:<commit>`; `git:<commit>+sha256:<hash of the sources>` when the checkout's sources differ
   * from that commit (so results of uncommitted code never pass for the commit's, and the built
   * CLI and the sources run by the tests name the same change alike); or
   * `sha256:<hash of the code>` where there is no git
   */
  readonly source: string;
}

let cached: Provenance | undefined;

export function currentProvenance(): Provenance {
  cached ??= { version: packageVersion(), source: sourceIdentity() };
  return cached;
}

/** How a provenance reads in messages: `ninelives 0.1.0 (git:1a2b3c4d5e6f)`. */
export function describeProvenance(provenance: Provenance | undefined): string {
  if (provenance === undefined) return 'an unrecorded ninelives version (results made before provenance was recorded)';
  const source = provenance.source.replace(/(\w+:[0-9a-f]{12})[0-9a-f]*/g, '$1');
  return `ninelives ${provenance.version} (${source})`;
}

/** The provenance as one string ("0.1.0+git:<commit>"): what a queue's chunks and job ids name. */
export function provenanceId(provenance: Provenance): string {
  return `${provenance.version}+${provenance.source}`;
}

export function sameProvenance(a: Provenance | undefined, b: Provenance | undefined): boolean {
  return a?.version === b?.version && a?.source === b?.source;
}

function sourceIdentity(): string {
  const codeDirectory = dirname(dirname(fileURLToPath(import.meta.url)));
  return sourceIdentityAt(findPackageRoot(codeDirectory), codeDirectory);
}

/** The source identity of the code in `codeDirectory`, part of the package checked out at `root`. */
export function sourceIdentityAt(root: string, codeDirectory: string): string {
  const commit = gitCommit(root);
  if (commit === undefined) return `sha256:${hashTree(codeDirectory)}`;
  return codeChangedSince(root) ? `git:${commit}+sha256:${hashSources(root)}` : `git:${commit}`;
}

/** SHA-256 over the checkout's sources and the manifest and lockfile that build them. */
function hashSources(root: string): string {
  const hash = createHash('sha256');
  hash.update(hashTree(join(root, 'src')));
  for (const file of ['package.json', 'package-lock.json']) {
    hash.update('\0' + file + '\0');
    if (existsSync(join(root, file))) hash.update(readFileSync(join(root, file)));
  }
  return hash.digest('hex');
}

/** Whether the checkout's code (sources, manifest, lockfile) differs from its commit; unknown counts as changed. */
function codeChangedSince(root: string): boolean {
  try {
    const changes = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return changes.trim() !== '';
  } catch {
    return true;
  }
}

function gitCommit(root: string): string | undefined {
  if (!existsSync(join(root, '.git'))) return undefined;
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** SHA-256 over the code files' relative paths and contents, in sorted order. */
function hashTree(directory: string): string {
  const hash = createHash('sha256');
  for (const path of codeFiles(directory, '')) {
    hash.update(path + '\0');
    hash.update(readFileSync(join(directory, path)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

function codeFiles(root: string, relative: string): string[] {
  const entries = readdirSync(join(root, relative), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return entries.flatMap((entry) => {
    const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) return codeFiles(root, path);
    return /\.(js|ts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}
