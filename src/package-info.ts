/**
 * Facts about the installed package, read from package.json at run time so that the source
 * tree and the built tree (which sit at different depths) find the same file. Like errors.ts it
 * sits below every layer: the CLI's --version and the results' provenance both need it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'ninelives';

/** The nearest directory at or above `start` whose package.json names this package. */
export function findPackageRoot(start: string): string {
  for (let directory = start; ; directory = dirname(directory)) {
    const candidate = join(directory, 'package.json');
    if (existsSync(candidate) && readPackageJson(candidate).name === PACKAGE_NAME) return directory;
    if (dirname(directory) === directory) throw new Error(`no ${PACKAGE_NAME} package.json above ${start}`);
  }
}

interface PackageJson {
  readonly name?: unknown;
  readonly version?: unknown;
}

function readPackageJson(path: string): PackageJson {
  return JSON.parse(readFileSync(path, 'utf8')) as PackageJson;
}

export function packageVersion(): string {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  const version = readPackageJson(join(root, 'package.json')).version;
  if (typeof version !== 'string') throw new Error('package.json has no version');
  return version;
}
