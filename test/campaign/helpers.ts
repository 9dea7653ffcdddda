/**
 * Shared by the campaign tests: the CLI run in-process with captured output, the built CLI run
 * as a child process, temporary directories, and a small campaign that runs in about a second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { ROOT } from '../check/built.js';

export { ROOT, requireFreshBuild } from '../check/built.js';
export const BUILT_CLI = join(ROOT, 'dist/src/cli/main.js');

export interface Captured {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function cli(argv: readonly string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } };
  const exitCode = await runCli(argv, io);
  return { exitCode, stdout, stderr };
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** Lines of stderr that are not progress lines (`<campaign>: 12/36 trials, ...`). */
export function messages(stderr: string): string[] {
  return lines(stderr).filter((line) => !/^\S+: \d+\/\d+ trials, /.test(line));
}

/** A fresh temporary directory; `removeTemporaryDirectories` deletes every one made. */
const made: string[] = [];
export function temporaryDirectory(prefix = 'ninelives-test-'): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  made.push(directory);
  return directory;
}

export function removeTemporaryDirectories(): void {
  // a test that failed half-way may have left a run going
  for (const child of spawned.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const directory of made.splice(0)) rmSync(directory, { recursive: true, force: true });
}

export interface SmallCampaign {
  readonly name?: string;
  readonly seed?: number;
  readonly register?: number;
  readonly failstop?: number;
}

/** 1AppVM, 300 ms runs, microreset and microreboot on the same register and fail-stop faults. */
export function smallCampaignText({ name = 'small', seed = 5, register = 12, failstop = 6 }: SmallCampaign = {}): string {
  return [
    `name: ${name}`,
    `seed: ${seed}`,
    'configurations: [1AppVM]',
    'runLengthMs: 300',
    'faults:',
    `  register: ${register}`,
    `  failstop: ${failstop}`,
    'mechanisms: [microreset, microreboot]',
    '',
  ].join('\n');
}

export function writeCampaign(directory: string, text: string, file = 'campaign.yaml'): string {
  const path = join(directory, file);
  writeFileSync(path, text);
  return path;
}

export function read(path: string): string {
  return readFileSync(path, 'utf8');
}


const spawned: ChildProcess[] = [];

export interface Child {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * `node dist/src/cli/main.js <args>` in `cwd`, output collected; with `fileLimitKiB`, under a
 * file size limit (bash's `ulimit -f`): a write past it fails with EFBIG, as a full disk's with ENOSPC.
 */
export function spawnCli(args: readonly string[], cwd: string, fileLimitKiB?: number): Child {
  const command = fileLimitKiB === undefined ? process.execPath : 'bash';
  const commandArgs = fileLimitKiB === undefined ? [BUILT_CLI, ...args] : ['-c', `ulimit -f ${fileLimitKiB}; exec "$0" "$@"`, process.execPath, BUILT_CLI, ...args];
  const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { process: child, exited };
}

/** Complete lines in a file that may be being appended to (0 if it does not exist yet). */
export function completeLines(path: string): number {
  if (!existsSync(path)) return 0;
  return read(path).split('\n').length - 1;
}

/** Waits until the child's results file has `count` complete lines; fails if the child ends first. */
export async function waitForLines(child: Child, path: string, count: number): Promise<void> {
  const endedEarly = child.exited.then(({ code, signal, stderr }) => {
    throw new Error(`the run ended (code ${code}, signal ${signal}) before ${path} had ${count} lines: ${stderr}`);
  });
  await Promise.race([waitUntil(() => completeLines(path) >= count, `${path} has ${count} lines`), endedEarly]);
}

/** Polls until `condition` holds, or fails after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
