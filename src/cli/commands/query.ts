/**
 * `ninelives query DIR "SQL"`: SQL over a results directory's trials (a `trials` view), and
 * `ninelives export DIR --parquet FILE`: the same view as Parquet, for pandas, polars or R.
 * Both need the optional package @duckdb/node-api, imported only when they run.
 */
import type { Command } from 'commander';
import { ResultsFileError } from '../../results/lines.js';
import { MissingPackageError, openTrials, SqlError, type DuckDbImporter, type QueryResult, type TrialsDatabase } from '../../results/sql.js';
import { NinelivesError } from '../../errors.js';
import { InputError, UsageError } from '../errors.js';
import type { CliIo } from '../io.js';
import { refuseNewFileTarget, writeNewFile } from '../new-file.js';
import { parseInteger } from '../options.js';

/** rows a query prints unless told otherwise, and the most it may be told */
const DEFAULT_MAX_ROWS = 100_000;
const MAX_ROWS_LIMIT = 10_000_000;

export function registerQueryCommands(program: Command, io: CliIo, importer?: DuckDbImporter): void {
  program
    .command('query')
    .description('run SQL over a results directory: a `trials` view, one row per trial, nested fields flattened (recovery_result, detection_detector, ...); needs @duckdb/node-api')
    .argument('<dir>', 'results directory')
    .argument('<sql>', 'e.g. "SELECT mechanism, avg((recovery_result = \'recovered\')::int) FROM trials WHERE outcome = \'detected\' GROUP BY ALL"')
    .option('--json', 'print the rows as JSON, one object per line')
    .option('--max-rows <n>', `print at most this many rows, saying so when there are more (at most ${MAX_ROWS_LIMIT.toLocaleString('en-US')})`, parseInteger('--max-rows', 1, MAX_ROWS_LIMIT), DEFAULT_MAX_ROWS)
    .action((directory: string, sql: string, options: { json?: boolean; maxRows: number }) => {
      // nothing but separators and comments: DuckDB's answer would be "Error in native callback"
      const bare = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, '').replace(/;/g, '');
      if (bare.trim() === '') throw new UsageError('usage.invalidArgument', 'the SQL holds no statement: give a query, e.g. "SELECT count(*) FROM trials"');
      return withTrials(directory, importer, io, async (database) => {
        const result = await database.query(sql, options.maxRows);
        io.stdout.write(options.json === true ? jsonLines(result) : textTable(result));
        if (result.more) io.stderr.write(`ninelives: partial: the first ${options.maxRows.toLocaleString('en-US')} rows; the query returns more (--max-rows, or narrow it)\n`);
      });
    });

  program
    .command('export')
    .description('write a results directory\'s trials (the `query` view) as a Parquet file; needs @duckdb/node-api')
    .argument('<dir>', 'results directory')
    .requiredOption('--parquet <file>', 'the Parquet file to write')
    .action((directory: string, options: { parquet: string }) => {
      const file = options.parquet;
      refuseNewFileTarget('--parquet', file);
      return withTrials(directory, importer, io, async (database) => {
        await writeNewFile('--parquet', file, (temporary) => database.exportParquet(temporary));
        const { rows } = await database.query('SELECT count(*) FROM trials');
        io.stdout.write(`wrote ${String(rows[0][0])} trials to ${file}\n`);
      });
    });
}

/** Open the trials, say on stderr when they are partial, do `work`, close. */
async function withTrials(directory: string, importer: DuckDbImporter | undefined, io: CliIo, work: (database: TrialsDatabase) => Promise<void>): Promise<void> {
  let database: TrialsDatabase;
  try {
    database = await openTrials(directory, importer);
  } catch (error) {
    throw translated(error);
  }
  if (database.partial !== undefined) io.stderr.write(`ninelives: ${database.partial}\n`);
  try {
    await work(database);
  } catch (error) {
    throw translated(error);
  } finally {
    database.close();
  }
}

function translated(error: unknown): unknown {
  if (error instanceof MissingPackageError) return new UsageError(error.code, error.message);
  if (error instanceof SqlError) return new InputError(error.code, [error.message]);
  if (error instanceof NinelivesError && error.code === 'usage.noResults') return new UsageError(error.code, error.message);
  if (error instanceof ResultsFileError) return new InputError(error.code, [error.message]);
  return error;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Columns padded to their widest cell, numbers and text alike left-aligned: readable, and easy to cut. */
function textTable({ columns, rows }: QueryResult): string {
  const cells = [columns, ...rows.map((row) => row.map(cellText))];
  const widths = columns.map((_, index) => Math.max(...cells.map((row) => row[index].length)));
  return cells.map((row) => row.map((cell, index) => cell.padEnd(widths[index])).join('  ').trimEnd()).join('\n') + '\n';
}

function jsonLines({ columns, rows }: QueryResult): string {
  return rows.map((row) => JSON.stringify(Object.fromEntries(columns.map((column, index) => [column, row[index]])))).join('\n') + (rows.length > 0 ? '\n' : '');
}
