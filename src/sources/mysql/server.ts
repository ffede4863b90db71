/**
 * Talking to the MySQL/MariaDB server outside the binlog stream: connections, the checks that the
 * server writes a binlog CDC can use (with what to change when it does not), the captured tables,
 * and the binlog files it still has.
 */
import mysql from 'mysql2/promise';
import type { MysqlSourceConfig } from './spec.ts';
import type { BinlogColumn } from './binlog/types.ts';
import { columnFromInformationSchema } from './types.ts';
import { mysqlError } from './errors.ts';
import { coreError, SluiceError } from '../../core/errors.ts';
import { timeoutsOf } from '../../config/fields.ts';
import { parseTableName, tableKey } from '../common/names.ts';

export type Conn = mysql.Connection;

export interface ServerInfo {
  version: string;
  mariadb: boolean;
}

/**
 * A connection for queries. Connecting (TCP, handshake, authentication) has the connection's
 * connectTimeout; every query made through it has its statementTimeout (a snapshot's streamed
 * read uses the underlying connection and runs as long as the table takes).
 */
export async function connectAdmin(c: MysqlSourceConfig['connection']): Promise<Conn> {
  const t = timeoutsOf(c);
  try {
    const conn = await mysql.createConnection({
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password,
      connectTimeout: t.connectMs,
      enableKeepAlive: true,
      timezone: 'Z',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      multipleStatements: false,
    });
    conn.on('error', () => {}); // a lost connection is reported by the next query
    const query = conn.query.bind(conn) as (o: object, v?: unknown) => Promise<unknown>;
    (conn as { query: unknown }).query = (sql: string | object, values?: unknown) => query(typeof sql === 'string' ? { sql, timeout: t.statementMs } : { timeout: t.statementMs, ...sql }, values);
    // Every snapshot value is read as UTC text (TIMESTAMP columns convert to the session zone).
    await conn.query("SET time_zone = '+00:00'");
    return conn;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'ETIMEDOUT' || err.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
      throw mysqlError('MYSQL_TIMEOUT', `MySQL/MariaDB at ${c.host}:${c.port} did not complete a connection within ${t.connectMs / 1000} s (it accepts TCP but does not answer: a hung server, or not a MySQL port). Check source.connection; retrying meanwhile (connectTimeout sets the limit).`, { cause: e });
    }
    const retriable = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN'].includes(err.code ?? '');
    throw mysqlError('MYSQL_CONNECT', `cannot connect to MySQL/MariaDB at ${c.host}:${c.port} as ${c.user}: ${err.message}${retriable ? '' : '. Check source.connection (user, password) and that the user may connect from this host.'}`, { retriable, cause: e });
  }
}

/** Ends a connection without waiting on a server that does not answer (destroyed after a second). */
export async function closeConn(conn: { end(): Promise<void>; destroy(): void } | null | undefined): Promise<void> {
  if (!conn) return;
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([conn.end().then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 1000)))]);
  clearTimeout(timer);
  if (!ended) conn.destroy();
}

/** A query that ran out of time (mysql2's deadline) as MYSQL_TIMEOUT, which is retriable. */
export function translateTimeout(e: unknown, c: MysqlSourceConfig['connection']): unknown {
  if (e instanceof SluiceError) return e;
  const err = e as { code?: string; message?: string };
  if (err?.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
    return mysqlError('MYSQL_TIMEOUT', `a statement to MySQL/MariaDB at ${c.host}:${c.port} got no answer within ${timeoutsOf(c).statementMs / 1000} s: the server is hung or overloaded, or a lock is held that long; retrying (statementTimeout of source.connection sets the limit)`, { cause: e });
  }
  return e;
}

/** The configured database must exist: else nothing would ever be captured, silently. */
export async function checkDatabase(conn: Conn, database: string | undefined): Promise<void> {
  if (!database) return;
  const [rows] = await conn.query('SELECT SCHEMA_NAME AS d FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
  if ((rows as unknown[]).length === 0) {
    throw mysqlError('MYSQL_DATABASE_MISSING', `source.connection names database ${JSON.stringify(database)}, which the server does not have (or this user cannot see): create it, correct the name, or leave the database out to capture every database (source.tables then names database.table)`);
  }
}

async function variable(conn: Conn, name: string): Promise<string | null> {
  const [rows] = await conn.query(`SHOW GLOBAL VARIABLES LIKE ?`, [name]);
  const r = (rows as { Value: string }[])[0];
  return r ? String(r.Value) : null;
}

/**
 * The server must write a row-based binlog with full row images and full table-map metadata
 * (column names, signedness, ENUM/SET labels, primary key): that metadata is what lets rows
 * written before and after an ALTER TABLE decode with their own columns.
 */
export async function checkServer(conn: Conn): Promise<ServerInfo> {
  const [vrows] = await conn.query('SELECT VERSION() AS v');
  const version = String((vrows as { v: string }[])[0].v);
  const mariadb = /mariadb/i.test(version);
  const want: [string, string, string][] = [
    ['log_bin', 'ON', 'log_bin = <basename> (and a server_id)'],
    ['binlog_format', 'ROW', 'binlog_format = ROW'],
    ['binlog_row_image', 'FULL', 'binlog_row_image = FULL'],
    ['binlog_row_metadata', 'FULL', 'binlog_row_metadata = FULL (MariaDB 10.5+, MySQL 8.0.1+)'],
  ];
  const wrong: string[] = [];
  for (const [name, value, fix] of want) {
    const cur = await variable(conn, name);
    if ((cur ?? '').toUpperCase() !== value) wrong.push(`${name} is ${cur ?? 'not supported by this server'} (set ${fix})`);
  }
  if (wrong.length) {
    throw mysqlError(
      'MYSQL_BINLOG_CONFIG',
      `the server ${version} does not write a binlog Sluice can capture: ${wrong.join('; ')}. Put these settings in the [mysqld]/[mariadbd] section of its configuration and restart it (scripts/setup.sh does this for the local MariaDB).`,
    );
  }
  return { version, mariadb };
}

export interface CapturedTable {
  database: string;
  table: string;
  columns: BinlogColumn[];
  /** Primary-key columns in key order (as the binlog's table map lists them). */
  keyColumns: string[];
}

const SYSTEM_DBS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/** Which `database.table` names are captured: the configured ones, or every table of the default database (or of every user database). */
export function tableFilter(cfg: MysqlSourceConfig): (database: string, table: string) => boolean {
  if (cfg.tables.length) {
    const set = new Set(configuredTables(cfg).map(([d, t]) => `${d}\u0000${t}`.toLowerCase()));
    return (d, t) => set.has(`${d}\u0000${t}`.toLowerCase());
  }
  const db = cfg.connection.database;
  return db ? (d) => d === db : (d) => !SYSTEM_DBS.has(d.toLowerCase());
}

/**
 * `source.tables` as [database, table] pairs: `database.table` or `table` (of the connection's
 * database), a name holding a dot or starting with a quote written in backticks or double quotes
 * (sources/common/names.ts).
 */
function configuredTables(cfg: MysqlSourceConfig): [string, string][] {
  return cfg.tables.map((t) => {
    const n = parseTableName(t, '`"');
    if (!n) throw coreError('CONFIG_INVALID', `source.tables: "${t}" is not a table name; write database.table, with a name holding a dot or quote in backticks (\`\` for a backtick): shop.\`Order Items\`, shop.\`dot.ted\``);
    if (n.schema !== null) return [n.schema, n.table];
    if (!cfg.connection.database) throw coreError('CONFIG_INVALID', `source.tables: "${t}" names no database; write database.table`);
    return [cfg.connection.database, n.table];
  });
}

/** The captured tables with their columns; a configured table that does not exist is an error naming it. */
export async function capturedTables(conn: Conn, cfg: MysqlSourceConfig): Promise<CapturedTable[]> {
  const names = configuredTables(cfg);
  const [trows] = await conn.query(
    `SELECT TABLE_SCHEMA AS d, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  const all = (trows as { d: string; t: string }[]).map((r) => [r.d, r.t]);
  let chosen: string[][];
  if (names.length) {
    const have = new Set(all.map(([d, t]) => `${d}\u0000${t}`.toLowerCase()));
    const missing = names.filter(([d, t]) => !have.has(`${d}\u0000${t}`.toLowerCase()));
    if (missing.length) {
      throw mysqlError('MYSQL_TABLE_MISSING', `source.tables names ${missing.map(([d, t]) => tableKey(d, t)).join(', ')}, which the server does not have (or this user cannot see): create ${missing.length > 1 ? 'them' : 'it'} or fix the list`);
    }
    chosen = all.filter(([d, t]) => names.some(([a, b]) => a.toLowerCase() === d.toLowerCase() && b.toLowerCase() === t.toLowerCase()));
  } else {
    const keep = tableFilter(cfg);
    chosen = all.filter(([d, t]) => keep(d, t));
  }
  const out: CapturedTable[] = [];
  for (const [database, table] of chosen) out.push({ database, table, columns: await tableColumns(conn, database, table), keyColumns: await primaryKey(conn, database, table) });
  return out;
}

export async function tableColumns(conn: Conn, database: string, table: string): Promise<BinlogColumn[]> {
  const [rows] = await conn.query(
    `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, ORDINAL_POSITION
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  return (rows as Record<string, unknown>[]).map((r) => columnFromInformationSchema(r as never));
}

/** The primary key's columns in key order (not column order: `PRIMARY KEY (b, a)` is b, a). */
export async function primaryKey(conn: Conn, database: string, table: string): Promise<string[]> {
  const [rows] = await conn.query(
    `SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  return (rows as { c: string }[]).map((r) => r.c);
}

/** The server's binlog files, oldest first. */
export async function binlogFiles(conn: Conn): Promise<string[]> {
  const [rows] = await conn.query('SHOW BINARY LOGS');
  return (rows as { Log_name: string }[]).map((r) => r.Log_name);
}

/** The end of the binlog now, and the GTID set it corresponds to ('' without GTIDs). */
export async function currentPosition(conn: Conn, info: ServerInfo): Promise<{ file: string; pos: number; gtid: string }> {
  const [rows] = await conn.query('SHOW MASTER STATUS');
  const r = (rows as { File: string; Position: number; Executed_Gtid_Set?: string }[])[0];
  if (!r) throw mysqlError('MYSQL_BINLOG_CONFIG', 'SHOW MASTER STATUS returned nothing: the binary log is off (set log_bin and restart the server)');
  return { file: r.File, pos: Number(r.Position), gtid: await gtidAt(conn, info, r.File, Number(r.Position), r.Executed_Gtid_Set) };
}

/** The GTID set executed up to `file:pos`. MariaDB computes it for any position; MySQL reports it with the status. */
export async function gtidAt(conn: Conn, info: ServerInfo, file: string, pos: number, mysqlExecuted?: string): Promise<string> {
  if (!info.mariadb) return (mysqlExecuted ?? '').replace(/\s+/g, '');
  const [rows] = await conn.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [file, pos]);
  return String((rows as { g: string | null }[])[0]?.g ?? '');
}

export const quoteIdent = (s: string): string => '`' + s.replace(/`/g, '``') + '`';

/** The server's binlog as a resume point needs it (for `sluice status`): current end, oldest file kept, whether `file` is gone. */
export async function binlogStatus(c: MysqlSourceConfig['connection'], file: string | null): Promise<Record<string, unknown> & { error?: string }> {
  let conn: Conn;
  try {
    conn = await mysql.createConnection({ host: c.host, port: c.port, user: c.user, password: c.password, connectTimeout: 5000 });
  } catch (e) {
    return { error: (e as Error).message };
  }
  try {
    const [master] = (await conn.query('SHOW MASTER STATUS')) as unknown as [{ File: string; Position: number }[]];
    const [logs] = (await conn.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
    return {
      current: master[0] ? `${master[0].File}:${master[0].Position}` : 'binlog off',
      oldest: logs[0]?.Log_name ?? '-',
      checkpointFile: file,
      checkpointFilePurged: file !== null && logs.length > 0 && !logs.some((l) => l.Log_name === file),
    };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    await conn.end().catch(() => {});
  }
}

/** source.signalTable as database and table (`connection.database` when no database), or null when empty. */
export function signalTableOf(cfg: MysqlSourceConfig): { database: string; table: string } | null {
  if (!cfg.signalTable) return null;
  const n = parseTableName(cfg.signalTable, '`"');
  const database = n?.schema ?? cfg.connection.database;
  if (!n || !database) throw mysqlError('MYSQL_SIGNAL_TABLE', `source.signalTable: "${cfg.signalTable}" ${n ? 'names no database and the connection has none' : 'is not a table name'}; write database.table`);
  return { database, table: n.table };
}

/** Inserts a signal row into source.signalTable for `sluice snapshot`; returns the table's name. */
export async function writeSignal(cfg: MysqlSourceConfig, row: { id: string; type: string; data: string }): Promise<string> {
  const sig = signalTableOf(cfg);
  if (!sig) throw coreError('CONFIG_INVALID', 'source.signalTable is empty: set it (e.g. signalTable: shop.sluice_signal) and restart the pipeline once, so that it creates the table and reads its signals');
  const c = await connectAdmin(cfg.connection);
  try {
    await c.query(`INSERT INTO ${quoteIdent(sig.database)}.${quoteIdent(sig.table)} (id, type, data) VALUES (?, ?, ?)`, [row.id, row.type, row.data]);
  } catch (e) {
    if ((e as { errno?: number }).errno === 1146) throw mysqlError('MYSQL_SIGNAL_TABLE', `the signal table ${sig.database}.${sig.table} does not exist yet: start the pipeline once with this source.signalTable (it creates the table), then ask again`);
    throw mysqlError('MYSQL_SIGNAL_TABLE', `cannot write the signal into ${sig.database}.${sig.table}: ${(e as Error).message}`, { cause: e });
  } finally {
    await closeConn(c);
  }
  return `${sig.database}.${sig.table}`;
}
