/**
 * Reading a JSON-lines file a chunk at a time: every complete line with its byte offset and
 * length, across chunk boundaries and multi-byte characters; a torn last line cut off the file
 * once a read reaches it, and only then.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cutTornEnd, readBytes, readLines } from '../../src/results/lines.js';

const directory = mkdtempSync(join(tmpdir(), 'ninelives-lines-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let files = 0;
function fileWith(text: string): string {
  const path = join(directory, `lines-${files++}.jsonl`);
  writeFileSync(path, text);
  return path;
}

describe('readLines', () => {
  it('gives each non-blank line with its offset, length and number, across chunks', () => {
    // a few MB of lines of many lengths, one longer than a chunk, some with multi-byte characters
    const lines = Array.from({ length: 3000 }, (_, index) => `${index}:${'é€😀x'.repeat(index % 700)}`);
    lines[1500] = 'y'.repeat(1_500_000);
    lines[10] = '';
    lines[11] = '  \t';
    const path = fileWith(lines.join('\n') + '\n');
    const bytes = readFileSync(path);
    const read = [...readLines(path)];
    expect(read.map((line) => line.text)).toEqual(lines.filter((line) => line.trim() !== ''));
    for (const line of read) {
      expect(bytes.toString('utf8', line.offset, line.offset + line.length)).toBe(line.text);
      expect(bytes[line.offset + line.length]).toBe(0x0a);
      expect(lines[line.number - 1]).toBe(line.text);
    }
  });

  it('drops a torn last line and cuts it off the file', () => {
    const path = fileWith('{"a":1}\n{"b":2}\n{"c":');
    expect([...readLines(path)].map((line) => line.text)).toEqual(['{"a":1}', '{"b":2}']);
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
    const alone = fileWith('{"c":');
    expect([...readLines(alone)]).toEqual([]);
    expect(readFileSync(alone, 'utf8')).toBe('');
  });

  it('leaves a torn last line in place when told the file is another process\'s, being appended to', () => {
    const path = fileWith('{"a":1}\n{"b":2}\n{"c":');
    expect([...readLines(path, { repairTornEnd: false })].map((line) => line.text)).toEqual(['{"a":1}', '{"b":2}']);
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n{"c":');
  });

  it('leaves the file as it is when the reader stops early', () => {
    const path = fileWith('{"a":1}\n{"b":2}\n{"c":');
    for (const line of readLines(path)) {
      expect(line.text).toBe('{"a":1}');
      break;
    }
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n{"c":');
  });

  it('gives nothing for a missing or empty file', () => {
    expect([...readLines(join(directory, 'missing.jsonl'))]).toEqual([]);
    expect([...readLines(fileWith(''))]).toEqual([]);
  });
});

describe('readBytes', () => {
  it('reads a range into the scratch buffer, or a new one when it is too small', () => {
    const path = fileWith('0123456789');
    const descriptor = openSync(path, 'r');
    try {
      const scratch = Buffer.alloc(4);
      expect(readBytes(descriptor, 2, 3, scratch).toString()).toBe('234');
      expect(readBytes(descriptor, 1, 8, scratch).toString()).toBe('12345678');
      expect(() => readBytes(descriptor, 8, 5, scratch)).toThrow(/ended 3 bytes early/);
    } finally {
      closeSync(descriptor);
    }
  });
});

describe('cutTornEnd', () => {
  it('cuts bytes after the last newline, keeps whole lines, and leaves a whole or missing file as it is (a queue worker appends after it)', () => {
    const folder = mkdtempSync(join(tmpdir(), 'ninelives-torn-'));
    try {
      const path = join(folder, 'trials.jsonl');
      cutTornEnd(path);
      expect(existsSync(path)).toBe(false);
      writeFileSync(path, '{"a":1}\n{"b":2}\n{"c":');
      cutTornEnd(path);
      expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
      cutTornEnd(path);
      expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n{"b":2}\n');
      writeFileSync(path, 'no newline at all');
      cutTornEnd(path);
      expect(readFileSync(path, 'utf8')).toBe('');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
