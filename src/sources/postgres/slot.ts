/**
 * Publication and replication-slot management, and the server checks that turn a misconfigured
 * database into an error that says what to change.
 */
import type pg from 'pg';
import { parseLsn } from '../../core/lsn.ts';
import { coreError } from '../../core/errors.ts';
import { pgError } from './errors.ts';
import { parseTableName, tableKey } from '../common/names.ts';
import type { PostgresConnectionConfig } from '../../config/fields.ts';

export interface SlotInfo {
  exists: boolean;
  active: boolean;
  confirmedFlushLsn: bigint | null;
  restartLsn: bigint | null;
  plugin: string | null;
  database: string | null;
}

export interface CreatedSlot {
  slot: string;
  consistentPoint: bigint;
  snapshotName: string | null;
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/**
 * A `source.tables` entry → schema, table and the quoted `"schema"."table"`; a bare name means
 * schema public. Names with a dot or quote are written in double quotes (sources/common/names.ts).
 */
export function qualifiedName(spec: string): { schema: string; table: string; sql: string } {
  const n = parseTableName(spec);
  if (!n) throw coreError('CONFIG_INVALID', `source.tables: "${spec}" is not a table name; write schema.table, e.g. public.customers, with a name holding a dot or quote in double quotes ("" for a quote): public."Order Items", public."dot.ted"`);
  const schema = n.schema ?? 'public';
  return { schema, table: n.table, sql: `${quoteIdent(schema)}.${quoteIdent(n.table)}` };
}

export async function checkServer(client: pg.Client): Promise<{ version: number }> {
  const r = await client.query(`SELECT current_setting('wal_level') AS wal, current_setting('server_version_num')::int AS v, current_setting('max_replication_slots')::int AS slots`);
  const { wal, v } = r.rows[0];
  if (wal !== 'logical') {
    throw pgError('PG_WAL_LEVEL', `PostgreSQL wal_level is '${wal}'; logical decoding needs 'logical'. Run ALTER SYSTEM SET wal_level = logical; and restart the server (on this machine: bash scripts/setup.sh).`);
  }
  if (Number(v) < 100000) throw pgError('PG_VERSION', `PostgreSQL ${v} is too old: pgoutput needs 10 or newer.`);
  return { version: Number(v) };
}

export async function slotInfo(client: pg.Client, slot: string): Promise<SlotInfo> {
  const r = await client.query(`SELECT active, confirmed_flush_lsn::text AS cf, restart_lsn::text AS rl, plugin, database FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  if (r.rowCount === 0) return { exists: false, active: false, confirmedFlushLsn: null, restartLsn: null, plugin: null, database: null };
  const row = r.rows[0];
  return {
    exists: true,
    active: row.active === true || row.active === 't',
    confirmedFlushLsn: row.cf ? parseLsn(row.cf) : null,
    restartLsn: row.rl ? parseLsn(row.rl) : null,
    plugin: row.plugin,
    database: row.database,
  };
}

/**
 * Creates (or fixes up) the publication. With an empty table list it publishes every table
 * (new tables are captured as they appear); otherwise exactly the listed tables.
 */
export async function ensurePublication(client: pg.Client, publication: string, tables: string[], create: boolean): Promise<void> {
  const r = await client.query(`SELECT puballtables FROM pg_publication WHERE pubname = $1`, [publication]);
  const target = tables.length === 0 ? 'FOR ALL TABLES' : `FOR TABLE ${tables.map((t) => qualifiedName(t).sql).join(', ')}`;
  if (tables.length > 0) {
    for (const t of tables) {
      const q = qualifiedName(t);
      const e = await client.query(`SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, [q.schema, q.table]);
      if (e.rowCount === 0) throw pgError('PG_TABLE_MISSING', `source.tables lists ${q.schema}.${q.table}, which does not exist in the database. Create it or remove it from the list.`);
    }
  }
  if (r.rowCount === 0) {
    if (!create) throw pgError('PG_PUBLICATION_MISSING', `publication "${publication}" does not exist and source.createPublication is false. Create it: CREATE PUBLICATION ${quoteIdent(publication)} ${target};`);
    try {
      await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} ${target}`);
    } catch (e) {
      throw pgError('PG_PUBLICATION_CREATE', `cannot create publication "${publication}": ${(e as Error).message}. FOR ALL TABLES needs superuser; list source.tables or create the publication as an owner.`, { cause: e });
    }
    return;
  }
  if (!create) return;
  const all = r.rows[0].puballtables === true || r.rows[0].puballtables === 't';
  if (tables.length === 0 && !all) {
    throw pgError('PG_PUBLICATION_MISMATCH', `publication "${publication}" exists for selected tables but source.tables is empty (all tables). Drop the publication or list the tables.`);
  }
  if (tables.length > 0) {
    if (all) throw pgError('PG_PUBLICATION_MISMATCH', `publication "${publication}" publishes all tables but source.tables lists some. Drop the publication or remove source.tables.`);
    await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tables.map((t) => qualifiedName(t).sql).join(', ')}`);
  }
}

/**
 * Tables of the publication without a primary key, with their replica identity (`d` default:
 * none without a key, `n` nothing, `f` full, `i` a unique index).
 */
export async function keylessTables(client: pg.Client, publication: string): Promise<{ schema: string; table: string; replicaIdentity: string }[]> {
  const r = await client.query(
    `SELECT pt.schemaname AS schema, pt.tablename AS table, c.relreplident::text AS ident
       FROM pg_publication_tables pt
       JOIN pg_namespace n ON n.nspname = pt.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
      ORDER BY 1, 2`,
    [publication],
  );
  return r.rows.map((x: any) => ({ schema: x.schema, table: x.table, replicaIdentity: String(x.ident) }));
}

/** Tables the publication currently covers, as schema/table pairs, in a stable order. */
export async function publishedTables(client: pg.Client, publication: string): Promise<{ schema: string; table: string }[]> {
  const r = await client.query(`SELECT schemaname AS schema, tablename AS table FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`, [publication]);
  return r.rows;
}

/**
 * Creates a logical slot on the replication connection. With `exportSnapshot`, the returned
 * snapshot name can be imported by other sessions (SET TRANSACTION SNAPSHOT) for as long as this
 * replication connection stays open and runs no other command: it sees exactly the transactions
 * that committed before the slot's consistent point.
 */
export async function createSlot(replication: pg.Client, slot: string, opts: { exportSnapshot: boolean; temporary?: boolean; serverVersion: number }): Promise<CreatedSlot> {
  const temp = opts.temporary ? ' TEMPORARY' : '';
  let snap: string;
  if (opts.serverVersion >= 150000) snap = opts.exportSnapshot ? ` (SNAPSHOT 'export')` : ` (SNAPSHOT 'nothing')`;
  else snap = opts.exportSnapshot ? ' EXPORT_SNAPSHOT' : ' NOEXPORT_SNAPSHOT';
  const r = await replication.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)}${temp} LOGICAL pgoutput${snap}`);
  const row = r.rows[0];
  return { slot: row.slot_name, consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name ?? null };
}

export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query(`SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
}

/**
 * The replication slot as the server sees it, for `sluice status`. A database that cannot be reached
 * does not hide the log's state: the reason is reported in place of the slot.
 */
export async function slotStatus(conn: PostgresConnectionConfig, slot: string): Promise<Record<string, unknown> & { name: string; error?: string; exists?: boolean }> {
  const { closeClient, connect } = await import('./replication.ts');
  let c: pg.Client;
  try {
    c = await connect(conn, false);
  } catch (e) {
    return { name: slot, error: (e as Error).message };
  }
  try {
    const r = await c.query(
      `SELECT active, confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (!r.rowCount) return { name: slot, exists: false };
    return { name: slot, active: r.rows[0].active === 't' || r.rows[0].active === true, confirmedFlushLsn: r.rows[0].confirmed, retainedWalBytes: Number(r.rows[0].retained) };
  } catch (e) {
    return { name: slot, error: (e as Error).message };
  } finally {
    await closeClient(c);
  }
}

/** source.signalTable as schema, table and `schema.table` (tableKey; `public` when no schema), or null when empty. */
export function signalTableOf(cfg: { signalTable: string }): { schema: string; table: string; key: string } | null {
  if (!cfg.signalTable) return null;
  const n = parseTableName(cfg.signalTable);
  if (!n) throw coreError('CONFIG_INVALID', `source.signalTable: "${cfg.signalTable}" is not a table name; write schema.table`);
  const schema = n.schema ?? 'public';
  return { schema, table: n.table, key: tableKey(schema, n.table) };
}

/** Inserts a signal row into source.signalTable for `sluice snapshot`; returns the table's name. */
export async function writeSignal(cfg: { connection: PostgresConnectionConfig; signalTable: string }, row: { id: string; type: string; data: string }): Promise<string> {
  const sig = signalTableOf(cfg);
  if (!sig) throw coreError('CONFIG_INVALID', 'source.signalTable is empty: set it (e.g. signalTable: public.sluice_signal) and restart the pipeline once, so that it creates the table and reads its signals');
  const { closeClient, connect } = await import('./replication.ts');
  const c = await connect(cfg.connection, false);
  try {
    await c.query(`INSERT INTO ${quoteIdent(sig.schema)}.${quoteIdent(sig.table)} (id, type, data) VALUES ($1, $2, $3)`, [row.id, row.type, row.data]);
  } catch (e) {
    if ((e as { code?: string }).code === '42P01') throw pgError('PG_SIGNAL_TABLE', `the signal table ${sig.schema}.${sig.table} does not exist yet: start the pipeline once with this source.signalTable (it creates the table), then ask again`);
    throw pgError('PG_SIGNAL_TABLE', `cannot write the signal into ${sig.schema}.${sig.table}: ${(e as Error).message}`, { cause: e });
  } finally {
    await closeClient(c);
  }
  return `${sig.schema}.${sig.table}`;
}
