/**
 * A Delta table's Change Data Feed between two versions, as PROTOCOL.md tells readers to build it:
 * a version with `cdc` actions is read from its change-data files only (they carry
 * `_change_type`); a version without them reads its `add`s as inserts and its `remove`s as
 * deletes, those with `dataChange: true` only (optimize's rewrites change no rows). Each row gets
 * `_commit_version` and `_commit_timestamp` (the commit file's modification time).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { deltaError } from './errors.ts';
import { duckOfDelta } from './files.ts';
import { commitName, readTableLog, type DeltaField, type TableLog } from './log.ts';

const { qi, ql } = duckdbDialect;

export interface FeedFile {
  /** Absolute path of the Parquet file. */
  file: string;
  partitionValues: Record<string, string | null>;
  /** The change type of every row (add/remove files); null: the file's own `_change_type` column. */
  changeType: 'insert' | 'delete' | null;
}

export interface FeedVersion {
  version: number;
  timestampMs: number;
  files: FeedFile[];
}

/** The feed's files of versions `from` to `to` (inclusive); the table's schema and partition columns as of `to`. */
export async function changeFeed(dir: string, from: number, to: number): Promise<{ versions: FeedVersion[]; fields: DeltaField[]; partitionColumns: string[]; last: number }> {
  const log = await readTableLog(dir, to);
  if (log.version < 0) throw deltaError('DELTA_LOG_UNREADABLE', `${dir} holds no Delta table (no _delta_log commits)`);
  if (to !== Infinity && log.version !== to) throw deltaError('DELTA_LOG_UNREADABLE', `the Delta table at ${dir} has versions 0 to ${log.version}, not ${to}`);
  if (from > log.version) throw deltaError('DELTA_LOG_UNREADABLE', `the Delta table at ${dir} has versions 0 to ${log.version}: no changes from version ${from}`);
  const versions: FeedVersion[] = [];
  for (let v = from; v <= log.version; v++) {
    const path = join(dir, '_delta_log', commitName(v));
    const actions = (await readFile(path, 'utf8'))
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, any>);
    const cdc = actions.filter((a) => a.cdc);
    const abs = (p: string) => join(dir, decodeURIComponent(p));
    const files: FeedFile[] = cdc.length
      ? cdc.map((a) => ({ file: abs(a.cdc.path), partitionValues: a.cdc.partitionValues ?? {}, changeType: null }))
      : [
          ...actions.filter((a) => a.add?.dataChange).map((a) => ({ file: abs(a.add.path), partitionValues: a.add.partitionValues ?? {}, changeType: 'insert' as const })),
          ...actions.filter((a) => a.remove?.dataChange).map((a) => ({ file: abs(a.remove.path), partitionValues: a.remove.partitionValues ?? {}, changeType: 'delete' as const })),
        ];
    versions.push({ version: v, timestampMs: Math.floor((await stat(path)).mtimeMs), files });
  }
  return { versions, fields: log.fields, partitionColumns: log.metaData?.partitionColumns ?? [], last: log.version };
}

/**
 * DuckDB SQL over a feed: the table's columns (partition columns restored from the log, columns a
 * file predates as null), `_change_type`, `_commit_version`, `_commit_timestamp`; null when the
 * versions changed no rows.
 */
export function feedSql(feed: { versions: FeedVersion[]; fields: DeltaField[]; partitionColumns: string[] }): string | null {
  // The first part types every column, so that one no file has yet still reads (as null).
  const parts: string[] = [`SELECT ${feed.fields.map((x) => `NULL::${duckOfDelta(x.type)} AS ${qi(x.name)}`).join(', ')}, NULL::VARCHAR AS _change_type, NULL::BIGINT AS _commit_version, NULL::TIMESTAMP AS _commit_timestamp WHERE false`];
  for (const v of feed.versions) {
    for (const f of v.files) {
      const pcols = feed.partitionColumns.map((c) => `, CAST(${f.partitionValues[c] == null ? 'NULL' : ql(f.partitionValues[c]!)} AS ${duckOfDelta(feed.fields.find((x) => x.name === c)!.type)}) AS ${qi(c)}`).join('');
      const type = f.changeType ? `, ${ql(f.changeType)} AS _change_type` : '';
      parts.push(`SELECT *${pcols}${type}, ${v.version}::BIGINT AS _commit_version, make_timestamp(${v.timestampMs * 1000}::BIGINT) AS _commit_timestamp FROM read_parquet(${ql(f.file)}, hive_partitioning = false)`);
    }
  }
  if (parts.length === 1) return null;
  // By name: a file written before a column was added lacks it.
  const cols = [...feed.fields.map((x) => qi(x.name)), '_change_type', '_commit_version', '_commit_timestamp'];
  return `SELECT ${cols.join(', ')} FROM (${parts.join(' UNION ALL BY NAME ')})`;
}

/**
 * DuckDB SQL over the live files of a table's version (`log`, read up to it): their rows with the
 * partition columns restored from the log (they are not in the files), columns a file predates as
 * null; null when the version has no files.
 */
export function filesSql(dir: string, log: TableLog): string | null {
  const partitionColumns = log.metaData?.partitionColumns ?? [];
  const live = [...log.files.values()];
  if (!live.length) return null;
  const abs = (p: string) => ql(join(dir, decodeURIComponent(p)));
  const read = (files: string[]) => `read_parquet([${files.join(', ')}], union_by_name = true, hive_partitioning = false)`;
  if (!partitionColumns.length) return `SELECT * FROM ${read(live.map((f) => abs(f.path)))}`;
  // Each partition's files with its values.
  const byPart = new Map<string, string[]>();
  for (const f of live) {
    const k = JSON.stringify(partitionColumns.map((c) => f.partitionValues[c] ?? null));
    byPart.set(k, [...(byPart.get(k) ?? []), abs(f.path)]);
  }
  const types = new Map(log.fields.map((f) => [f.name, f.type]));
  const parts = [...byPart].map(([k, paths]) => {
    const vals = JSON.parse(k) as (string | null)[];
    return `SELECT *, ${partitionColumns.map((c, i) => `CAST(${vals[i] === null ? 'NULL' : ql(vals[i]!)} AS ${duckOfDelta(types.get(c)!)}) AS ${qi(c)}`).join(', ')} FROM ${read(paths)}`;
  });
  return parts.join(' UNION ALL BY NAME ');
}
