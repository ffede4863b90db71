/**
 * What the lake sinks (Delta, Iceberg) share: a table batch's change events loaded into an
 * in-memory DuckDB as the temporary table `sluice_batch`, typed exactly from the events' JSON
 * bytes (the DuckDB sink's conversions: no value passes through a JS number), and the lead
 * columns every lake row starts with.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { makeDirs } from '../../core/dirs.ts';
import { sinkError } from '../errors.ts';
import { conv, jsonType, objectSize } from '../duckdb/convert.ts';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { writeChanges } from '../duckdb/lines.ts';
import type { Kind, TargetColumn } from '../sql/columns.ts';
import type { TableBatch } from '../types.ts';

const { qi, ql } = duckdbDialect;

/** The lead columns' names, in order: the change's log position, op, source time, and when the sink wrote it. */
export const LEAD_NAMES = ['__change_id', '__op', '__source_ts_ms', '__synced_at'] as const;

/**
 * SQL for a column's value from the JSON reader's field `x`, as DuckDB type `duck` (the type the
 * table format reads the column as). A kind kept as text keeps the source's own text (a UUID,
 * JSON, an ISO interval, an unbounded decimal).
 */
export function valueSql(k: Kind, x: string, duck: string): string {
  if (duck === 'VARCHAR' && jsonType(k) === 'VARCHAR') return x;
  return `CAST(${conv(k, x)} AS ${duck})`;
}

/**
 * Loads `t`'s changes as `sluice_batch`: `u` (the change's fate in the batch: 1 its key's last
 * change and not a delete, 2 its key's last change, a delete, 0 superseded), the lead columns,
 * and each column of `cols` as `duckOf(col)`. The scratch file is removed after.
 */
export async function loadBatch(conn: DuckDBConnection, scratchFile: string, t: TableBatch, cols: TargetColumn[], duckOf: (col: TargetColumn) => string, syncedAt = 'now()'): Promise<void> {
  try {
    const w = await writeChanges(scratchFile, t);
    const struct = `STRUCT(${cols.map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})`;
    const columns = `{p: 'BIGINT', "at": 'BIGINT', u: 'TINYINT', k: 'VARCHAR', v: ${ql(`STRUCT(op VARCHAR, "before" ${struct}, "after" ${struct}, source STRUCT(ts_ms BIGINT))`)}}`;
    await conn.run(
      `CREATE OR REPLACE TEMP TABLE sluice_batch AS SELECT u, c AS __change_id, o AS __op, t AS __source_ts_ms, ${syncedAt} AS __synced_at, ${cols.map((col) => `${valueSql(col.kind, `i.${qi(col.name)}`, duckOf(col))} AS ${qi(col.name)}`).join(', ')}
       FROM (SELECT u, (p << 40) + "at" AS c, v.op AS o, v.source.ts_ms AS t, coalesce(v."after", v."before") AS i FROM read_ndjson(${ql(w.path)}, maximum_object_size = ${objectSize(w.longest)}, columns = ${columns}))`,
    );
  } finally {
    await rm(scratchFile, { force: true });
  }
}

/** A scratch file name under `dir`. */
export const scratchFile = (dir: string, n: number): string => join(dir, `changes-${n}.ndjson`);

/** A lake sink's working parts: the lake directory made, an in-memory DuckDB (UTC), a scratch directory. */
export interface LakeWorkspace {
  conn: DuckDBConnection;
  scratch: string;
  close(): void;
}

/** Makes the lake directory `root` (SINK_TARGET_PATH when it cannot be) and opens the workspace. */
export async function openWorkspace(sink: string, what: string, root: string): Promise<LakeWorkspace> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  try {
    await makeDirs(root);
  } catch (e) {
    throw sinkError('SINK_TARGET_PATH', `sink ${sink}: cannot create the ${what} directory ${root}: ${(e as Error).message}. Set the sink's path to a directory this process can create and write`, { cause: e });
  }
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  // Timestamps are written as UTC instants (a timestamp without a zone: the same wall time).
  await conn.run(`SET TimeZone = 'UTC'`);
  const scratch = mkdtempSync(join(tmpdir(), `sluice-${what}-`));
  return {
    conn,
    scratch,
    close() {
      try {
        conn.closeSync();
      } catch {
        /* closing */
      }
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
