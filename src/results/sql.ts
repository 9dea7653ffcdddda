/**
 * SQL over a results directory with DuckDB: a `trials` view with one row per trial record and
 * one column per field, nested fields flattened (`recovery.result` becomes `recovery_result`,
 * the spec's fields that the record does not repeat become `spec_*`; lists stay lists). The
 * trials are read into memory once; then the database is sealed off from the file system, so a
 * query reads only them and writes nowhere (no COPY over a user's file, no read of another).
 * DuckDB is large and optional: it is imported here, when a query is asked for, and nowhere else.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NinelivesError } from '../errors.js';
import { existingTrialsFile, TRIALS_FILE } from './directory.js';
import { ResultsFileError, wholeLinesLength } from './lines.js';
import { describePartial, manifestOf, partialOf } from './result-facts.js';
import { STOP_RULE_FILE } from './stopping.js';
import { readRecords } from './store.js';

type DuckDbModule = typeof import('@duckdb/node-api');
type Connection = Awaited<ReturnType<Awaited<ReturnType<DuckDbModule['DuckDBInstance']['create']>>['connect']>>;
type ColumnType = ReturnType<Awaited<ReturnType<Connection['run']>>['columnTypes']>[number];

export const DUCKDB_PACKAGE = '@duckdb/node-api';

export class MissingPackageError extends NinelivesError {
  constructor(packageName: string) {
    super('usage.missingPackage', `this command needs the optional package ${packageName}: install it with \`npm install ${packageName}\` (in ninelives' directory, or globally beside it)`);
  }
}

export class SqlError extends NinelivesError {
  constructor(message: string) {
    super('input.sql', `SQL: ${message.split('\n')[0]}`);
  }
}

/** How the DuckDB package is imported; a test gives one that fails, as on a machine without it. */
export type DuckDbImporter = () => Promise<DuckDbModule>;

const importDuckDb: DuckDbImporter = () => import('@duckdb/node-api');

export async function loadDuckDb(importer: DuckDbImporter = importDuckDb): Promise<DuckDbModule> {
  try {
    return await importer();
  } catch {
    throw new MissingPackageError(DUCKDB_PACKAGE);
  }
}

/** the most memory DuckDB may take for a query: beyond it the query fails (one line), not the machine */
export const QUERY_MEMORY_LIMIT = '4GB';

export interface QueryResult {
  readonly columns: readonly string[];
  /** the query returns more rows than were read (more than its limit) */
  readonly more: boolean;
  /** values as JSON: integers as numbers (as strings beyond 2^53), lists and structs as arrays and objects */
  readonly rows: readonly (readonly unknown[])[];
}

export interface TrialsDatabase {
  /** says the results are partial: fewer trials than planned, or a last line cut short (only the lines before it were read) */
  readonly partial?: string;
  /** the user's SQL (one statement), over the trials only, its first `maxRows` rows: the first query seals the database off from files */
  query(sql: string, maxRows?: number): Promise<QueryResult>;
  /** the `trials` view as Parquet at `file` (before any query: a sealed database writes nothing) */
  exportParquet(file: string): Promise<void>;
  close(): void;
}

/** A DuckDB database in memory holding `directory`/trials.jsonl, with the `trials` view over it. */
export async function openTrials(directory: string, importer?: DuckDbImporter): Promise<TrialsDatabase> {
  const path = existingTrialsFile(directory);
  // bytes of whole lines: the rest, if any, a torn last line
  const wholeLines = wholeLinesLength(path);
  const torn = wholeLines < statSync(path).size;
  // every whole line a trial record (a line that is not one is the user's to fix), and how many
  const records = countRecords(path);
  if (records === 0) throw new NinelivesError('usage.noResults', `${path} holds no trials`);
  const duckdb = await loadDuckDb(importer);
  const instance = await duckdb.DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const close = (): void => {
    connection.closeSync();
    instance.closeSync();
  };
  try {
    await createTrialsView(connection, path, torn ? wholeLines : undefined, duckdb.DuckDBTypeId.STRUCT);
  } catch (error) {
    close();
    throw error;
  }
  return sealedDatabase(connection, close, partialNote(directory, path, records, torn));
}

function countRecords(path: string): number {
  let records = 0;
  const reading = readRecords(path, { repairTornEnd: false });
  while (reading.next().done !== true) records++;
  return records;
}

/** What makes the trials partial: fewer than the manifest plans, a torn last line, or both. */
function partialNote(directory: string, path: string, records: number, torn: boolean): string | undefined {
  const short = partialOf(records, manifestOf(directory), false, existsSync(join(directory, STOP_RULE_FILE)));
  const tornNote = `the last line of ${path} is cut short (a run stopped mid-write): the whole lines before it were read`;
  if (short === undefined) return torn ? `partial: ${tornNote}` : undefined;
  return torn ? `${describePartial(short)}; ${tornNote}` : describePartial(short);
}

/**
 * raw_trials, a table of the file's whole lines (its first `wholeLines` bytes when its last line
 * is torn); trials, the flattened view over it.
 */
async function createTrialsView(connection: Connection, path: string, wholeLines: number | undefined, structId: number): Promise<void> {
  const source = wholeLines === undefined ? path : wholeLinesCopy(path, wholeLines);
  try {
    // every line read for the schema: a field that appears late (a rare outcome's) is still a column
    await connection.run(`CREATE TABLE raw_trials AS SELECT * FROM read_json(${literal(source)}, format = 'newline_delimited', sample_size = -1)`);
  } catch (error) {
    throw new ResultsFileError(`${path} is not a trials file DuckDB can read (${firstLine(error)})`);
  } finally {
    if (source !== path) rmSync(dirname(source), { recursive: true, force: true });
  }
  const shape = await connection.run('SELECT * FROM raw_trials LIMIT 0');
  const columns = flattenedColumns(shape.columnNames(), shape.columnTypes(), structId);
  if (columns.length === 0) throw new NinelivesError('usage.noResults', `${path} holds no trials`);
  await connection.run(`CREATE VIEW trials AS SELECT ${columns.join(', ')} FROM raw_trials`);
}

/** The database: the first query seals it off from the file system for good. */
function sealedDatabase(connection: Connection, close: () => void, partial: string | undefined): TrialsDatabase {
  let sealed = false;
  const seal = async (): Promise<void> => {
    if (sealed) return;
    // no file reads or writes, extensions or attached databases from here on, and no undoing it
    await connection.run(`SET memory_limit = '${QUERY_MEMORY_LIMIT}'`);
    await connection.run('SET enable_external_access = false');
    await connection.run('SET lock_configuration = true');
    sealed = true;
  };
  return {
    ...(partial === undefined ? {} : { partial }),
    async query(sql, maxRows = Number.MAX_SAFE_INTEGER - 1) {
      await seal();
      try {
        const statements = await connection.extractStatements(sql);
        if (statements.count !== 1) throw new Error(`give one statement (this holds ${statements.count})`);
        // streamed, and read no further than one row past the limit
        const reader = await connection.streamAndReadUntil(sql, maxRows + 1);
        const rows = reader.getRowsJS().slice(0, maxRows).map((row) => row.map(plain));
        return { columns: reader.columnNames(), rows, more: reader.currentRowCount > maxRows };
      } catch (error) {
        throw new SqlError(firstLine(error));
      }
    },
    async exportParquet(file) {
      if (sealed) throw new Error('exportParquet after a query: the database no longer writes files');
      try {
        await connection.run(`COPY trials TO ${literal(file)} (FORMAT parquet)`);
      } catch (error) {
        throw withErrorCode(error);
      }
    },
    close,
  };
}

/**
 * The system's words (strerror's) for the I/O failures a user can meet, as DuckDB quotes them, and
 * their codes: one for each failure SYSTEM_IO_REASONS names (sql.test checks that none is missing).
 */
export const SYSTEM_MESSAGES: readonly (readonly [string, string])[] = [
  ['No space left on device', 'ENOSPC'],
  ['Disk quota exceeded', 'EDQUOT'],
  ['File too large', 'EFBIG'],
  ['Read-only file system', 'EROFS'],
  ['Permission denied', 'EACCES'],
  ['Operation not permitted', 'EPERM'],
  ['File name too long', 'ENAMETOOLONG'],
  ['Too many open files', 'EMFILE'],
  ['Input/output error', 'EIO'],
];

/**
 * DuckDB's I/O errors carry the system's message but no code: give them the code, so that they
 * read as what they are (the disk is full) rather than as a bug.
 */
export function withErrorCode(error: unknown): unknown {
  if (!(error instanceof Error) || 'code' in error) return error;
  const known = SYSTEM_MESSAGES.find(([message]) => error.message.includes(message));
  return known === undefined ? error : Object.assign(error, { code: known[1] });
}

/**
 * A copy of the file's whole lines, without the torn last one, in a directory of its own under
 * the system's temporary directory (the results file itself is left as it is).
 */
function wholeLinesCopy(path: string, wholeLines: number): string {
  const copy = join(mkdtempSync(join(tmpdir(), 'ninelives-query-')), TRIALS_FILE);
  copyFileSync(path, copy);
  truncateSync(copy, wholeLines);
  return copy;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/** `expression AS name` for every leaf of the record, then of the spec where the record lacks it. */
function flattenedColumns(names: readonly string[], types: readonly ColumnType[], structId: number): string[] {
  const columns: string[] = [];
  const taken = new Set<string>();
  const add = (expression: string, name: string): void => {
    if (taken.has(name)) return;
    taken.add(name);
    columns.push(`${expression} AS ${quote(name)}`);
  };
  const byName = new Map(names.map((name, index) => [name, types[index]]));
  for (const name of ['campaign', 'id', 'stage']) if (byName.has(name)) add(quote(name), name);
  const walk = (expression: string, prefix: string, type: ColumnType, name: (leaf: string) => string): void => {
    if (type.typeId === structId && 'entryNames' in type) {
      const struct = type as unknown as { entryNames: string[]; entryTypes: ColumnType[] };
      struct.entryNames.forEach((entry, index) => walk(`${expression}.${quote(entry)}`, prefix === '' ? entry : `${prefix}_${entry}`, struct.entryTypes[index], name));
    } else add(expression, name(prefix));
  };
  const record = byName.get('record');
  if (record !== undefined) walk('"record"', '', record, (leaf) => leaf);
  const recordColumns = new Set(taken);
  const spec = byName.get('spec');
  // the spec repeats most of the record's fields: only the others, as spec_*
  if (spec !== undefined) walk('"spec"', '', spec, (leaf) => (recordColumns.has(leaf) ? leaf : `spec_${leaf}`));
  return columns;
}

/** A DuckDB value as plain JSON data: counts (BIGINT) as numbers while they are exact. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
  return value;
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
