/**
 * Initial snapshot (events op 'r', source.snapshot marking first / first_in_data_collection /
 * true / last_in_data_collection / last as Debezium does): reads every published table inside a
 * transaction that imported an exported snapshot, so the rows are exactly the state at that
 * snapshot's point and the stream continues from there with no gap and no overlap.
 *
 * Tables are read with `COPY (SELECT …) TO STDOUT` (copy-out.ts: the server streams the rows, no
 * fetch round trips), in key order (keys.ts), and committed to the log in bounded chunks; the checkpoint
 * names each table's last committed key, so after a crash the rest of a table is read from a new
 * snapshot, after that key (sources/common/ranges.ts says how the stream then tells the two reads
 * apart). Progress (rows, rate, ETA) is logged every few seconds.
 */
import type pg from 'pg';
import type { ChangeEvent } from '../../core/event.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { keyOf } from '../common/keys.ts';
import { tableKey, tableTopic } from '../common/names.ts';
import { resumeAfter, type TableSnapshot } from '../common/ranges.ts';
import { SnapshotTable, type SnapshotHooks } from '../common/snapshot.ts';
import { postgresDebezium } from './debezium.ts';
import { orderExpression, pgKeyColumns, type PgKeyColumn } from './keys.ts';
import { TypeCatalog } from './pgoutput/index.ts';
import { quoteIdent } from './slot.ts';
import { copyRows } from './copy-out.ts';
import type { PostgresSourceConfig } from './spec.ts';

export interface SnapshotOptions extends SnapshotHooks {
  client: pg.Client;
  snapshotName: string;
  /** The position the exported snapshot stands at. */
  at: bigint;
  tables: { schema: string; table: string }[];
  /** The checkpoint's per-table state, updated in place. */
  state: Record<string, TableSnapshot<bigint>>;
  cfg: PostgresSourceConfig;
}

/**
 * The condition "the key lies after `raw`" (the key's values as the snapshot read them, as text) in
 * the order `exprs` sort by. COPY takes no parameters: the values go in as literals of the key's
 * types.
 */
export function keyAfter(client: pg.Client, keys: PgKeyColumn[], exprs: string[], raw: readonly (string | Buffer | null)[]): string {
  const literal = (v: string | Buffer | null) => (v === null ? 'NULL' : client.escapeLiteral(typeof v === 'string' ? v : `\\x${v.toString('hex')}`));
  return `(${exprs.join(', ')}) > (${keys.map((k, i) => `${literal(raw[i])}::${k.collate === 'cast' ? 'text' : k.typeName}`).join(', ')})`;
}

/** Collations whose text order is the order of the UTF-8 bytes. */
const BINARY_COLLATIONS = new Set(['C', 'POSIX', 'ucs_basic']);

export interface TablePlan {
  rel: Awaited<ReturnType<TypeCatalog['tableSchemaByName']>>;
  /** `"schema"."table"` */
  qualified: string;
  /** The column list of the SELECT. */
  cols: string;
  /** The key columns in read order, or null: no key Sluice can order by. */
  keys: PgKeyColumn[] | null;
  /** What the key columns are ordered by. */
  exprs: string[];
  estimatedRows: number;
}

/** How a table is read in key order: its columns, key and order expressions, and its estimated size. */
export async function tablePlan(client: pg.Client, catalog: TypeCatalog, schema: string, table: string, dbCollate: string): Promise<TablePlan> {
  const rel = await catalog.tableSchemaByName(schema, table);
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const estimatedRows = Number((await client.query(`SELECT GREATEST(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = $1::regclass`, [qualified])).rows[0]?.n ?? 0);
  const cols = rel.table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const keys = pgKeyColumns(rel.table);
  let exprs: string[] = [];
  if (keys) {
    const collations = new Map<string, string>(
      (await client.query(`SELECT a.attname, c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation WHERE a.attrelid = $1::regclass AND a.attnum > 0`, [qualified])).rows.map((r: any) => [r.attname, r.collname === 'default' ? dbCollate : r.collname]),
    );
    exprs = keys.map((k) => orderExpression(k, BINARY_COLLATIONS.has(collations.get(k.name) ?? '')));
  }
  return { rel, qualified, cols, keys, exprs, estimatedRows };
}

/** The database's default collation (for keys whose column uses it). */
export async function databaseCollation(client: pg.Client): Promise<string> {
  return String((await client.query(`SELECT datcollate FROM pg_database WHERE datname = current_database()`)).rows[0]?.datcollate ?? '');
}

export async function runSnapshot(o: SnapshotOptions): Promise<void> {
  const { client, cfg } = o;
  const catalog = new TypeCatalog(client, false, cfg.intervalHandling);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  let current: SnapshotTable<bigint> | null = null;
  try {
    await client.query(`SET TRANSACTION SNAPSHOT '${o.snapshotName.replace(/'/g, "''")}'`);
    // Debezium's snapshot rows name the snapshot's transaction, its WAL position (the slot's
    // consistent point) as lsn and in sequence, and the time the snapshot began (µs).
    const snapTxId = Number((await client.query(`SELECT txid_current()::text AS x`)).rows[0].x);
    const snapUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    const snapMs = Math.floor(snapUs / 1000);
    const snapLsn = Number(o.at);
    const snapSequence = `[null,"${o.at}"]`;
    const dbCollate = await databaseCollation(client);
    const started = Date.now();
    let totalRows = 0;
    for (let ti = 0; ti < o.tables.length && !o.isStopped(); ti++) {
      const { schema, table } = o.tables[ti];
      const name = tableKey(schema, table);
      const topic = tableTopic(cfg.topicPrefix, schema, table);
      await o.sink.declareTopic(topic);
      const { rel, qualified, cols, keys, exprs, estimatedRows: est } = await tablePlan(client, catalog, schema, table, dbCollate);
      const state = (o.state[name] ??= { status: 'partial', rows: 0, ranges: [] });
      const t = (current = new SnapshotTable(o, name, est, ti, o.tables.length, state, o.at, keys && keys.map((k) => k.index)));
      let sql = `SELECT ${cols} FROM ${qualified}`;
      if (keys) {
        const after = resumeAfter(state);
        if (after) {
          sql += ` WHERE ${keyAfter(client, keys, exprs, after.raw)}`;
        }
        sql += ` ORDER BY ${exprs.join(', ')}`;
      }
      const connector = postgresDebezium.connector;
      const db = cfg.connection.database;
      // A table without a key is copied as it lies; a keyed one in key order (a query).
      const copy = keys ? `(${sql})` : `${qualified} (${cols})`;
      read: for await (const rows of copyRows(client, copy, rel.table.columns.length, cfg.snapshotFetchSize)) {
        const now = Date.now();
        for (const values of rows) {
          if (o.isStopped()) break read;
          const after = rel.decodeTextRow(values);
          const key = keyOf(rel.table, after);
          const ev: ChangeEvent = {
            topic,
            key,
            before: null,
            after,
            source: { version: SLUICE_VERSION, connector, name: cfg.topicPrefix, ts_ms: snapMs, snapshot: t.nextMarker(), db, sequence: snapSequence, ts_us: snapUs, schema, table, txId: snapTxId, lsn: snapLsn, xmin: null },
            op: 'r',
            ts_ms: now,
            table: rel.table,
          };
          const c = t.add(ev, values, now);
          if (c) await c;
        }
      }
      if (o.isStopped()) break;
      await t.finish();
      totalRows += t.state.rows;
    }
    o.log.info('snapshot complete', { tables: o.tables.length, rows: totalRows, seconds: (Date.now() - started) / 1000 });
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    // A table that cannot be read in chunks and is left half-read (a stop or an error mid-table)
    // must not reach the log: its rows stay uncommitted and the next run reads it again whole.
    // A chunked table commits what it appended: the checkpoint names its last key.
    o.setCommittable(!current || current.finished || current.chunked);
  }
}
