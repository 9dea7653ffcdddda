/**
 * `ninelives query` and `export`: SQL over a results directory's trials with the optional DuckDB
 * package, nested fields flattened; without the package, one line saying how to install it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerQueryCommands } from '../../src/cli/commands/query.js';
import { runCli } from '../../src/cli/run.js';
import { loadDuckDb, MissingPackageError, openTrials, SYSTEM_MESSAGES, withErrorCode } from '../../src/results/sql.js';
import { SystemIoError } from '../../src/cli/errors.js';
import { isSystemIoFailure, SYSTEM_IO_REASONS } from '../../src/errors.js';
import { writeManifest, type Manifest } from '../../src/results/manifest.js';
import { detected, nonManifested, sdc } from '../report/fixtures.js';
import { cli, removeTemporaryDirectories, requireFreshBuild, spawnCli, temporaryDirectory } from '../campaign/helpers.js';

afterAll(removeTemporaryDirectories);

function resultsDirectory(): string {
  const directory = temporaryDirectory();
  const records = [
    nonManifested({ trialIndex: 0, mechanism: 'microreset' }),
    detected({ trialIndex: 1, mechanism: 'microreset' }, { recovered: true, serviceInterruptionMs: 22 }),
    detected({ trialIndex: 1, mechanism: 'microreboot' }, { recovered: false, cause: 'secondFailure', serviceInterruptionMs: 713 }),
    detected({ trialIndex: 2, mechanism: 'microreset' }, { recovered: true, serviceInterruptionMs: 24 }),
    detected({ trialIndex: 2, mechanism: 'microreboot' }, { recovered: true, serviceInterruptionMs: 700 }),
    sdc({ trialIndex: 3, mechanism: 'microreboot' }),
  ];
  writeFileSync(join(directory, 'trials.jsonl'), records.map((record) => JSON.stringify(record) + '\n').join(''));
  return directory;
}

describe('ninelives query', () => {
  it('answers SQL over a `trials` view with nested fields flattened', async () => {
    const directory = resultsDirectory();
    const result = await cli(['query', directory, "SELECT mechanism, count(*) AS n, count(*) FILTER (WHERE recovery_result = 'recovered') AS recovered, max(recovery_serviceInterruptionMs) AS worst FROM trials WHERE outcome = 'detected' GROUP BY mechanism ORDER BY mechanism", '--json']);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      { mechanism: 'microreboot', n: 2, recovered: 1, worst: 713 },
      { mechanism: 'microreset', n: 2, recovered: 2, worst: 24 },
    ]);
  });

  it('flattens the record, keeps the spec\'s other fields as spec_*, and prints a table', async () => {
    const database = await openTrials(resultsDirectory());
    try {
      const { columns } = await database.query('SELECT * FROM trials');
      expect(columns.slice(0, 6)).toEqual(['campaign', 'id', 'stage', 'configuration', 'faultType', 'mechanism']);
      expect(columns).toEqual(expect.arrayContaining(['plan_trigger_timeNs', 'injection_location_register', 'detection_detector', 'recovery_cause', 'cause']));
      expect(columns.filter((column) => column.startsWith('spec_'))).toEqual([]);
    } finally {
      database.close();
    }
    const table = await cli(['query', resultsDirectory(), 'SELECT trialIndex, outcome FROM trials WHERE mechanism = \'microreboot\' ORDER BY trialIndex']);
    expect(table.stdout).toBe('trialIndex  outcome\n1           detected\n2           detected\n3           sdc\n');
  });

  it('refuses wrong SQL in one line, exit 2', async () => {
    const result = await cli(['query', resultsDirectory(), 'SELECT nope FROM trials']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^ninelives: SQL: Binder Error: .*nope.*\n$/);
  });

  it('exports Parquet that DuckDB reads back', async () => {
    const directory = resultsDirectory();
    const file = join(directory, 'trials.parquet');
    const result = await cli(['export', directory, '--parquet', file]);
    expect(result.stdout).toBe(`wrote 6 trials to ${file}\n`);
    expect(readFileSync(file).subarray(0, 4).toString()).toBe('PAR1');
    // written under a hidden name and linked into place: nothing else is left
    expect(readdirSync(directory).sort()).toEqual(['trials.jsonl', 'trials.parquet']);
    const duckdb = await loadDuckDb();
    const connection = await (await duckdb.DuckDBInstance.create(':memory:')).connect();
    const reader = await connection.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT recovery_cause) AS causes FROM '${file}'`);
    expect(reader.getRowObjectsJson()).toEqual([{ n: '6', causes: '1' }]);
  });

  it('runs the query sealed off from the file system: it cannot write over a file or read another (one line, exit 2)', async () => {
    const directory = resultsDirectory();
    const users = join(directory, 'notes.txt');
    writeFileSync(users, 'mine\n');
    for (const sql of [`COPY (SELECT 42) TO '${users}'`, `COPY trials TO '${join(directory, 'new.csv')}'`, `SELECT * FROM read_csv('${users}')`, `ATTACH '${join(directory, 'other.db')}'`, 'SET enable_external_access = true']) {
      const result = await cli(['query', directory, sql]);
      expect(result.exitCode, sql).toBe(2);
      expect(result.stderr, sql).toMatch(/^ninelives: SQL: [^\n]+\n$/);
    }
    expect(readFileSync(users, 'utf8')).toBe('mine\n');
    expect(readdirSync(directory).sort()).toEqual(['notes.txt', 'trials.jsonl']);
  });

  it('a torn last line (a run stopped mid-write): the whole lines are queried, the file is left as it is, and stderr says partial', async () => {
    const directory = resultsDirectory();
    const path = join(directory, 'trials.jsonl');
    const whole = readFileSync(path, 'utf8');
    writeFileSync(path, whole + whole.slice(0, 120));
    const result = await cli(['query', directory, 'SELECT count(*) AS n FROM trials', '--json']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe('{"n":6}\n');
    expect(result.stderr).toBe(`ninelives: partial: the last line of ${path} is cut short (a run stopped mid-write): the whole lines before it were read\n`);
    expect(readFileSync(path, 'utf8')).toBe(whole + whole.slice(0, 120));
  });

  it('a trials file with a malformed line, or with no whole record, is one line, exit 2', async () => {
    const malformed = resultsDirectory();
    const path = join(malformed, 'trials.jsonl');
    const [first, ...rest] = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, [first, '{"broken": 1,', ...rest].join('\n'));
    const result = await cli(['query', malformed, 'SELECT count(*) FROM trials']);
    expect(result).toMatchObject({ exitCode: 2, stdout: '' });
    expect(result.stderr).toBe(`ninelives: ${path} line 2: not JSON\n`);
    // JSON, but not a trial record: counted as a trial before, where report refuses it
    writeFileSync(path, [first, '{"hello": 1}', ...rest].join('\n'));
    const foreign = await cli(['query', malformed, 'SELECT count(*) FROM trials']);
    expect(foreign).toMatchObject({ exitCode: 2, stdout: '' });
    expect(foreign.stderr).toMatch(/^ninelives: .*trials\.jsonl line 2: not a trial record \(it needs id, stage and [^\n]*\)\n$/);
    for (const text of ['', '\n\n', first.slice(0, 50)]) {
      const directory = temporaryDirectory();
      writeFileSync(join(directory, 'trials.jsonl'), text);
      const empty = await cli(['query', directory, 'SELECT 1']);
      expect(empty).toMatchObject({ exitCode: 2, stdout: '' });
      expect(empty.stderr).toBe(`ninelives: ${join(directory, 'trials.jsonl')} holds no trials\n`);
    }
  });

  it('fewer trials than the manifest plans: the query answers over them, and stderr says partial', async () => {
    const directory = resultsDirectory();
    writeManifest(directory, { campaign: 'report-test', seed: 1, planned: 10, ninelives: { version: '0.0.0', source: 'test' } } as Omit<Manifest, 'tool'>);
    const result = await cli(['query', directory, 'SELECT count(*) AS n FROM trials', '--json']);
    expect(result).toMatchObject({ exitCode: 0, stdout: '{"n":6}\n' });
    expect(result.stderr).toBe('ninelives: partial: 6 of 10 trials (4 planned trials are missing)\n');
  });

  it('prints at most --max-rows rows and says when the query returns more; one statement only', async () => {
    const directory = resultsDirectory();
    const capped = await cli(['query', directory, 'SELECT * FROM range(1000000000000) AS r(n)', '--max-rows', '3', '--json']);
    expect(capped).toMatchObject({ exitCode: 0, stdout: '{"n":0}\n{"n":1}\n{"n":2}\n' });
    expect(capped.stderr).toBe('ninelives: partial: the first 3 rows; the query returns more (--max-rows, or narrow it)\n');
    const exact = await cli(['query', directory, 'SELECT * FROM range(3) AS r(n)', '--max-rows', '3', '--json']);
    expect(exact).toMatchObject({ exitCode: 0, stderr: '' });
    const two = await cli(['query', directory, 'SELECT 1 AS a; SELECT 2 AS b']);
    expect(two).toMatchObject({ exitCode: 2, stdout: '', stderr: 'ninelives: SQL: give one statement (this holds 2)\n' });
  });

  it('a query of no statement (empty, separators, comments) is a usage error, before DuckDB is opened ("Error in native callback" before)', async () => {
    for (const sql of ['  ', ';', ' ; ;', '/* nothing */;', ' -- only a comment']) {
      const result = await cli(['query', resultsDirectory(), sql]);
      expect(result).toMatchObject({ exitCode: 2, stdout: '' });
      expect(result.stderr).toMatch(/^ninelives: the SQL holds no statement[^\n]*\n$/);
    }
  });

  it('export writes a new file only: an existing one, or a missing directory, is refused in one line before any work (exit 2)', async () => {
    const directory = resultsDirectory();
    const users = join(directory, 'mine.parquet');
    writeFileSync(users, 'mine\n');
    for (const [target, message] of [
      [users, /^--parquet .* exists: ninelives writes a new file and never over one/],
      [directory, /^--parquet .* exists: ninelives writes a new file and never over one/],
      [join(directory, 'no-such-dir', 'x.parquet'), /^--parquet .*: there is no directory .*no-such-dir to write it in/],
    ] as const) {
      const result = await cli(['export', directory, '--parquet', target]);
      expect(result.exitCode, target).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.startsWith('ninelives: ') && result.stderr.endsWith('\n') && result.stderr.split('\n').length === 2, result.stderr).toBe(true);
      expect(result.stderr.slice('ninelives: '.length)).toMatch(message);
    }
    expect(readFileSync(users, 'utf8')).toBe('mine\n');
    expect(existsSync(join(directory, 'no-such-dir'))).toBe(false);
    // nothing half-written is left beside the targets
    expect(readdirSync(directory).sort()).toEqual(['mine.parquet', 'trials.jsonl']);
  });

  it('export past the file-size limit (ulimit -f) says so in one line, exit 1, and leaves nothing behind (it was an internal error)', async () => {
    requireFreshBuild();
    const directory = resultsDirectory();
    const file = join(directory, 'trials.parquet');
    const exit = await spawnCli(['export', directory, '--parquet', file], directory, 1).exited;
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stderr).toMatch(/^ninelives: a file is larger than this process may write: IO Error: [^\n]*File too large[^\n]*\n$/);
    expect(readdirSync(directory)).toEqual(['trials.jsonl']);
  });

  it('reads DuckDB\'s I/O errors (which carry no code) as the system failures they are, not as bugs', () => {
    // as DuckDB words them, seen exporting onto a full and a read-only file system
    const full = withErrorCode(new Error('IO Error: Could not write file "/full/.x.parquet.1.0.tmp": No space left on device'));
    expect(isSystemIoFailure(full) && new SystemIoError(full).message).toBe('the disk is full: IO Error: Could not write file "/full/.x.parquet.1.0.tmp": No space left on device');
    const readOnly = withErrorCode(new Error('IO Error: Cannot open file "/ro/.x.parquet.1.0.tmp": Read-only file system'));
    expect(isSystemIoFailure(readOnly) && new SystemIoError(readOnly).exitCode).toBe(1);
    expect(isSystemIoFailure(withErrorCode(new Error('Binder Error: no column named x')))).toBe(false);
    // every system failure ninelives names is read from DuckDB's words too
    expect(SYSTEM_MESSAGES.map(([, code]) => code).sort()).toEqual(Object.keys(SYSTEM_IO_REASONS).sort());
    // a code the table only inherits is none of its entries
    expect(isSystemIoFailure(Object.assign(new Error('odd'), { code: 'constructor' }))).toBe(false);
  });

  it('without the optional package, says in one line how to install it (exit 2)', async () => {
    const missing = () => Promise.reject(new Error("Cannot find package '@duckdb/node-api'"));
    await expect(loadDuckDb(missing)).rejects.toBeInstanceOf(MissingPackageError);
    let stderr = '';
    const io = { stdout: { write: () => undefined }, stderr: { write: (text: string) => (stderr += text) } };
    const register = (program: Command) => registerQueryCommands(program, io, missing);
    const directory = resultsDirectory();
    mkdirSync(join(directory, 'x'), { recursive: true });
    const exitCode = await runCli(['query', directory, 'SELECT 1'], io, [register]);
    expect(exitCode).toBe(2);
    expect(stderr).toBe('ninelives: this command needs the optional package @duckdb/node-api: install it with `npm install @duckdb/node-api` (in ninelives\' directory, or globally beside it)\n');
  });

  it('a results directory named by empty text is a usage error that says so (it named nothing)', async () => {
    for (const argv of [['query', '', 'SELECT 1'], ['report', ''], ['triage', '']]) {
      const result = await cli(argv);
      expect(result.exitCode, argv.join(' ')).toBe(2);
      expect(result.stderr).toBe('ninelives: the results directory is empty text: name one\n');
    }
  });

  it('a directory without results is a usage error', async () => {
    const result = await cli(['query', temporaryDirectory(), 'SELECT 1']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^ninelives: no trials.jsonl in /);
  });
});
