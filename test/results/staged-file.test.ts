/**
 * A staged file: written in pieces of any size, in place whole on commit, never in place (and
 * no temporary file left) on discard. (A failed commit: test/report/write.test.ts.)
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StagedFile } from '../../src/results/staged-file.js';

let directory = '';
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'ninelives-staged-'));
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

describe('StagedFile', () => {
  it('puts pieces of any size, text and bytes, in place in order on commit', () => {
    const path = join(directory, 'out.txt');
    writeFileSync(path, 'old');
    const file = new StagedFile(path);
    const pieces = ['a', 'é€😀', 'b'.repeat(700_000), 'c'.repeat(3_000_000), 'd'];
    file.write(pieces[0]);
    file.write(Buffer.from(pieces[1]));
    file.write(pieces[2]);
    file.write(Buffer.from(pieces[3]));
    file.write(pieces[4]);
    expect(readFileSync(path, 'utf8')).toBe('old');
    file.commit();
    expect(readFileSync(path, 'utf8')).toBe(pieces.join(''));
    expect(readdirSync(directory)).toEqual(['out.txt']);
  });

  it('discard leaves the target as it was and no temporary file', () => {
    const path = join(directory, 'out.txt');
    writeFileSync(path, 'old');
    const file = new StagedFile(path, `${path}.partial`);
    file.write('new');
    expect(existsSync(`${path}.partial`)).toBe(true);
    file.discard();
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(directory)).toEqual(['out.txt']);
  });
});
