/**
 * The built package, for the tests that run many whole trials: compiled code runs the simulated
 * machine several times faster than vitest's transformed sources (whose imported constants are
 * reached through getters in the interpreter's inner loop). `npm test` builds first; these
 * helpers refuse a dist/ older than the sources it is built from.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What the built package is entered by: the library, the CLI, and the campaign worker threads. */
const ENTRIES = ['src/index.ts', 'src/cli/main.ts', 'src/campaign/worker.ts'];

type Api = typeof import('../../src/index.js');

/** The entry files and every source file they import, following relative imports. */
function importedSources(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(/\bfrom '(\.{1,2}\/[^']+)\.js'/g)) pending.push(join(dirname(file), `${match[1]}.ts`));
  }
  return [...seen];
}

/**
 * Tests that run compiled code (the package, the CLI as a child process, worker threads) need
 * dist/ to exist and be no older than the sources it is built from, or they would compare old
 * code with new.
 */
export function requireFreshBuild(): void {
  const stale = importedSources(ENTRIES.map((entry) => join(ROOT, entry))).filter((source) => {
    const built = join(ROOT, 'dist', relative(ROOT, source)).replace(/\.ts$/, '.js');
    return !existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs;
  });
  if (stale.length > 0) {
    throw new Error(`dist/ is missing or older than ${relative(ROOT, stale[0])} (and ${stale.length - 1} more): run \`npm run build\` before these tests`);
  }
}

/** The package's entry point (dist/src/index.js), as a user imports it. */
export async function builtApi(): Promise<Api> {
  requireFreshBuild();
  return (await import(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)) as Api;
}

export interface Finished {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node dist/src/cli/main.js <args>`, to completion, with `environment` added. */
export function runBuiltCli(args: readonly string[], environment: Record<string, string> = {}): Finished {
  requireFreshBuild();
  const result = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...environment },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error !== undefined) throw result.error;
  return { exitCode: result.status, stdout: result.stdout, stderr: result.stderr };
}
