/**
 * A result names the code that made it: the commit, and a hash of the sources whenever the
 * checkout's sources differ from that commit, so results of uncommitted code never pass for the
 * commit's (resume and merge compare these).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeProvenance, sourceIdentityAt } from '../../src/results/provenance.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function git(root: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.org', ...args], { cwd: root, encoding: 'utf8' }).trim();
}

/** A checked-in package with its code in src/ and built code in dist/ (untracked, as dist/ is). */
function checkout(): { root: string; code: string } {
  const root = mkdtempSync(join(tmpdir(), 'ninelives-provenance-'));
  directories.push(root);
  mkdirSync(join(root, 'src'));
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, '.gitignore'), 'dist/\n');
  writeFileSync(join(root, 'package.json'), '{"name":"ninelives","version":"0.1.0"}\n');
  writeFileSync(join(root, 'src', 'model.ts'), 'export const model = 1;\n');
  writeFileSync(join(root, 'dist', 'model.js'), 'export const model = 1;\n');
  git(root, 'init', '-q');
  git(root, 'add', '.');
  git(root, 'commit', '-q', '-m', 'model');
  return { root, code: join(root, 'dist') };
}

describe('provenance', () => {
  it('is the commit alone when the checkout is clean', () => {
    const { root, code } = checkout();
    expect(sourceIdentityAt(root, code)).toBe(`git:${git(root, 'rev-parse', 'HEAD')}`);
  });

  it('adds a hash of the sources when a source is changed, and another change gives another hash', () => {
    const { root, code } = checkout();
    const commit = git(root, 'rev-parse', 'HEAD');
    writeFileSync(join(root, 'src', 'model.ts'), 'export const model = 2;\n');
    writeFileSync(join(code, 'model.js'), 'export const model = 2;\n');
    const changed = sourceIdentityAt(root, code);
    expect(changed).toMatch(new RegExp(`^git:${commit}\\+sha256:[0-9a-f]{64}$`));
    writeFileSync(join(root, 'src', 'model.ts'), 'export const model = 3;\n');
    expect(sourceIdentityAt(root, code)).not.toBe(changed);
    expect(describeProvenance({ version: '0.1.0', source: changed })).toMatch(/^ninelives 0\.1\.0 \(git:[0-9a-f]{12}\+sha256:[0-9a-f]{12}\)$/);
  });

  it('counts a new, untracked source file as a change, and a change outside the code as none', () => {
    const { root, code } = checkout();
    writeFileSync(join(root, 'README.md'), 'notes\n');
    expect(sourceIdentityAt(root, code)).toMatch(/^git:[0-9a-f]{40}$/);
    writeFileSync(join(root, 'src', 'extra.ts'), 'export {};\n');
    expect(sourceIdentityAt(root, code)).toMatch(/\+sha256:/);
  });
});
