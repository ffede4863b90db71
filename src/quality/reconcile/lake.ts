/**
 * Lake tables as reconcile targets: the current version of a Delta table (its log's live files) or
 * the current snapshot of an Iceberg table (its data files less the rows its equality-delete files
 * hide), read by DuckDB into a table of an in-memory database, then compared as any SQL table. The
 * table is read once per scan (a range query over Parquet files would read them all for every
 * chunk) and again before each re-check, which must see what the sink committed since.
 */
import { readTableLog } from '../../sinks/delta/log.ts';
import { filesSql } from '../../sinks/delta/feed.ts';
import { duckOfDelta } from '../../sinks/delta/files.ts';
import { readCurrent, type TableMetadata } from '../../sinks/iceberg/metadata.ts';
import { JdbcCatalog } from '../../sinks/iceberg/catalog.ts';
import { snapshotSql } from '../../sinks/iceberg/view.ts';
import { duckOf } from '../../sinks/iceberg/types.ts';
import type { ConnectionConfig } from '../../config/types.ts';
import { duckdbEngine } from './engines.ts';
import type { SourceTable } from './source.ts';
import { closing, sqlReader, type TargetReader } from './targets.ts';

const SNAP = 'sluice_reconcile_snapshot';

/** What a lake table holds now: SQL reading its rows (null: no data files), and its columns with DuckDB types (null: no table). */
type State = { sql: string | null; columns: [string, string][] } | null;

async function reader(st: SourceTable, state: () => Promise<State>): Promise<TargetReader> {
  const e = await duckdbEngine(null);
  const load = async (): Promise<boolean> => {
    const s = await state();
    if (!s) return false;
    await e.rows(s.sql ? `CREATE OR REPLACE TABLE ${SNAP} AS ${s.sql}` : `CREATE OR REPLACE TABLE ${SNAP} (${s.columns.map(([n, t]) => `${e.qi(n)} ${t}`).join(', ')})`);
    return true;
  };
  try {
    if (!(await load())) {
      await e.close();
      return { columns: new Set(), byKeys: async () => new Map(), close: async () => {} };
    }
    return await sqlReader(e, st, SNAP, `SELECT column_name FROM information_schema.columns WHERE table_name = '${SNAP}'`, null, async () => void (await load()));
  } catch (err) {
    return closing(e)(err);
  }
}

export function deltaReader(dir: string, st: SourceTable): Promise<TargetReader> {
  return reader(st, async () => {
    const log = await readTableLog(dir);
    if (log.version < 0) return null;
    return { sql: filesSql(dir, log), columns: log.fields.map((f) => [f.name, duckOfDelta(f.type)]) };
  });
}

export interface IcebergTable {
  dir: string;
  ns: string;
  table: string;
  /** The JDBC catalog the sink commits through (null: the filesystem catalog's metadata files). */
  catalog: { connection: ConnectionConfig; name: string; sink: string } | null;
}

export function icebergReader(t: IcebergTable, st: SourceTable): Promise<TargetReader> {
  return reader(st, async () => {
    let metadata: TableMetadata | undefined;
    if (t.catalog) {
      const c = new JdbcCatalog(t.catalog.connection, t.catalog.name, t.catalog.sink);
      try {
        metadata = (await c.load(t.ns, t.table))?.metadata;
      } finally {
        await c.close();
      }
    } else metadata = (await readCurrent(t.dir))?.metadata;
    if (!metadata) return null;
    const schema = metadata.schemas.find((s) => s['schema-id'] === metadata['current-schema-id']) ?? metadata.schemas.at(-1)!;
    const columns = schema.fields.map((f) => [f.name, duckOf(f.type)] as [string, string]);
    if (metadata['current-snapshot-id'] < 0 || !metadata.snapshots.length) return { sql: null, columns };
    return { sql: (await snapshotSql(metadata)).sql, columns };
  });
}
