/**
 * A Delta table's data files as DuckDB writes and reads them: rows of a query written as Parquet
 * files, one per partition (partition columns live in the log's `partitionValues`, not in the
 * file, as PROTOCOL.md has it), and SQL reading a set of live files back with their partition
 * columns restored, typed, and columns the files predate read as null.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { makeDirs } from '../../core/dirs.ts';
import { duckdbDialect } from '../duckdb/dialect.ts';
import type { AddAction, DeltaField } from './log.ts';

const { qi, ql } = duckdbDialect;

/** The DuckDB type whose Parquet column a Delta reader reads as Delta type `t`. */
export function duckOfDelta(t: DeltaField['type']): string {
  if (typeof t !== 'string') return `${duckOfDelta(t.elementType)}[]`;
  const m = /^decimal\((\d+),(\d+)\)$/.exec(t);
  if (m) return `DECIMAL(${m[1]},${m[2]})`;
  return { boolean: 'BOOLEAN', byte: 'TINYINT', short: 'SMALLINT', integer: 'INTEGER', long: 'BIGINT', float: 'FLOAT', double: 'DOUBLE', binary: 'BLOB', date: 'DATE', timestamp: 'TIMESTAMPTZ', string: 'VARCHAR' }[t] ?? 'VARCHAR';
}

/** Delta types a table may be partitioned by (a partition value is a string in the log). */
export const PARTITIONABLE = new Set(['string', 'boolean', 'byte', 'short', 'integer', 'long', 'date', 'timestamp']);
export const partitionable = (t: DeltaField['type']): boolean => typeof t === 'string' && (PARTITIONABLE.has(t) || t.startsWith('decimal('));

/** SQL for a partition column's value as PROTOCOL.md serializes it (null stays null). */
function partitionText(f: DeltaField): string {
  const x = qi(f.name);
  switch (f.type) {
    case 'boolean':
      return `CASE WHEN ${x} THEN 'true' WHEN NOT ${x} THEN 'false' END`;
    case 'date':
      return `strftime(${x}, '%Y-%m-%d')`;
    case 'timestamp':
      // ISO 8601 in UTC, with microseconds (the form the protocol recommends to writers).
      return `strftime(timezone('UTC', ${x}), '%Y-%m-%dT%H:%M:%S.%fZ')`;
    default:
      return `CAST(${x} AS VARCHAR)`;
  }
}

/** A partition directory's name: `col=value`, the value's bytes outside [A-Za-z0-9._-] as %XX; null as Hive's marker. */
function partitionDir(name: string, value: string | null): string {
  const v = value === null ? '__HIVE_DEFAULT_PARTITION__' : value === '' ? '%00' : [...Buffer.from(value)].map((b) => (/[A-Za-z0-9._-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return `${name}=${v}`;
}

/** A relative file path as the URI a log action holds (each segment percent-encoded). */
export const toUri = (rel: string): string => rel.split('/').map(encodeURIComponent).join('/');

/** A written file: its log path (a URI), partition values, size and rows. */
export interface WrittenFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  rows: number;
}

/**
 * Writes the rows of `select` (which yields `fields`, plus any `extra` columns such as
 * `_change_type`) under `dir` as Parquet files named `<prefix>-<uuid>.c000.snappy.parquet`, in
 * `sub` (e.g. `_change_data`): one file when unpartitioned, else one per partition value tuple in
 * `col=value/` directories, without the partition columns. No rows: no file.
 */
export async function writeFiles(conn: DuckDBConnection, select: string, fields: DeltaField[], partitionColumns: string[], dir: string, opts: { prefix: string; sub?: string; extra?: string[] }): Promise<WrittenFile[]> {
  const name = () => `${opts.prefix}-${randomUUID()}.c000.snappy.parquet`;
  const base = opts.sub ? [opts.sub] : [];
  const copy = async (from: string, rel: string): Promise<number> => {
    const abs = join(dir, rel);
    await makeDirs(resolve(abs, '..'));
    return Number((await conn.runAndReadAll(`COPY (${from}) TO ${ql(abs)} (FORMAT parquet, COMPRESSION snappy)`)).getRows()[0][0]);
  };
  const done = async (rel: string, rows: number, partitionValues: Record<string, string | null>): Promise<WrittenFile> => ({ path: toUri(rel), partitionValues, rows, size: (await stat(join(dir, rel))).size });
  if (!partitionColumns.length) {
    const rel = [...base, name()].join('/');
    const rows = await copy(select, rel);
    return rows ? [await done(rel, rows, {})] : [];
  }
  const byName = new Map(fields.map((f) => [f.name, f]));
  const parts = partitionColumns.map((c) => byName.get(c)!);
  const dataCols = [...fields.filter((f) => !partitionColumns.includes(f.name)).map((f) => qi(f.name)), ...(opts.extra ?? []).map(qi)].join(', ');
  await conn.run(`CREATE OR REPLACE TEMP TABLE sluice_out AS SELECT *, ${parts.map((p, i) => `${partitionText(p)} AS __pv${i}`).join(', ')} FROM (${select})`);
  const tuples = (await conn.runAndReadAll(`SELECT DISTINCT ${parts.map((_, i) => `__pv${i}`).join(', ')} FROM sluice_out`)).getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  const out: WrittenFile[] = [];
  for (const t of tuples) {
    const where = t.map((v, i) => `__pv${i} IS NOT DISTINCT FROM ${v === null ? 'NULL' : ql(v)}`).join(' AND ');
    const rel = [...base, ...parts.map((p, i) => partitionDir(p.name, t[i])), name()].join('/');
    const rows = await copy(`SELECT ${dataCols} FROM sluice_out WHERE ${where}`, rel);
    if (rows) out.push(await done(rel, rows, Object.fromEntries(parts.map((p, i) => [p.name, t[i]]))));
  }
  await conn.run('DROP TABLE sluice_out');
  return out;
}

/**
 * SQL reading live `files` of the table at `dir` as rows of `fields` (partition columns from each
 * file's partition values, a column the files lack as null), with `filename` when asked.
 * `sluice_files` (a temporary table) maps each file to its partition values.
 */
export async function readFilesSql(conn: DuckDBConnection, files: AddAction[], fields: DeltaField[], partitionColumns: string[], dir: string, withFilename = false): Promise<string> {
  const abs = (p: string) => join(dir, decodeURIComponent(p));
  const list = `[${files.map((f) => ql(abs(f.path))).join(', ')}]`;
  const present = new Set((await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${list}, union_by_name = true, hive_partitioning = false)`)).getRows().map((r) => String(r[0])));
  const pcols = partitionColumns.map((c) => `__p_${c}`);
  if (partitionColumns.length) {
    await conn.run(`CREATE OR REPLACE TEMP TABLE sluice_files (filename VARCHAR, ${pcols.map((c) => `${qi(c)} VARCHAR`).join(', ')})`);
    const rows = files.map((f) => `(${[ql(abs(f.path)), ...partitionColumns.map((c) => (f.partitionValues[c] == null ? 'NULL' : ql(f.partitionValues[c]!)))].join(', ')})`);
    for (let i = 0; i < rows.length; i += 1000) await conn.run(`INSERT INTO sluice_files VALUES ${rows.slice(i, i + 1000).join(', ')}`);
  }
  const cols = fields.map((f) => {
    const p = partitionColumns.indexOf(f.name);
    if (p >= 0) return `CAST(m.${qi(pcols[p])} AS ${duckOfDelta(f.type)}) AS ${qi(f.name)}`;
    return present.has(f.name) ? `d.${qi(f.name)}` : `NULL::${duckOfDelta(f.type)} AS ${qi(f.name)}`;
  });
  if (withFilename) cols.push('d.filename');
  const from = `read_parquet(${list}, union_by_name = true, hive_partitioning = false${partitionColumns.length || withFilename ? ', filename = true' : ''}) d`;
  return `SELECT ${cols.join(', ')} FROM ${from}${partitionColumns.length ? ' JOIN sluice_files m ON m.filename = d.filename' : ''}`;
}
