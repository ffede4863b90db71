/**
 * The source side: which tables the pipeline captures, each table's columns and key as the source
 * database describes them, and the source's current position (what the pipeline must have read
 * before a re-check can trust the target). PostgreSQL and MySQL/MariaDB sources.
 */
import { reconcileError } from './errors.ts';
import type { SourceConfig, PostgresSourceConfig, MysqlSourceConfig } from '../../config/types.ts';
import { parseLsn } from '../../core/lsn.ts';
import { mysqlFamily, pgFamily, type Family } from './canon.ts';
import { mysqlEngine, postgresEngine, type Engine } from './engines.ts';

export interface Column {
  col: string;
  family: Family;
  /** The source's type text (for messages). */
  type: string;
}

export interface SourceTable {
  schema: string;
  table: string;
  /** The table as the source's SQL names it. */
  sql: string;
  keys: Column[];
  /** Compared columns, keys first, in the source's order otherwise. */
  columns: Column[];
  /** Columns whose type reconcile does not compare (intervals, arrays, …). */
  notCompared: string[];
}

export interface SourceReader {
  engine: Engine;
  type: 'postgres' | 'mysql';
  tables(): Promise<{ schema: string; table: string }[]>;
  describe(schema: string, table: string): Promise<SourceTable | string>;
  /** The source's current position, comparable by `reached`. */
  position(): Promise<string>;
  /** Whether the pipeline's source status (status.json `source`) is past `pos`. */
  reached(status: Record<string, any>, pos: string): boolean;
}

/** Key families reconcile can page by with literals every engine reads the same. */
const KEY_FAMILIES = new Set<Family>(['int', 'decimal', 'text', 'char', 'uuid', 'date']);

function finish(schema: string, table: string, sql: string, cols: (Column & { key: number })[]): SourceTable | string {
  const keys = cols.filter((c) => c.key > 0).sort((a, b) => a.key - b.key);
  if (!keys.length) return 'no primary key: rows cannot be matched by key';
  const bad = keys.find((k) => !KEY_FAMILIES.has(k.family));
  if (bad) return `key column ${bad.col} is ${bad.type}: reconcile pages by keys of numbers, text, uuid or date`;
  const strip = ({ col, family, type }: Column) => ({ col, family, type });
  return {
    schema,
    table,
    sql,
    keys: keys.map(strip),
    columns: [...keys, ...cols.filter((c) => c.key === 0 && c.family !== 'other')].map(strip),
    notCompared: cols.filter((c) => c.key === 0 && c.family === 'other').map((c) => c.col),
  };
}

function likeAny(name: string, patterns: string[]): boolean {
  return patterns.some((p) => new RegExp('^' + p.replace(/"/g, '').replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$').test(name));
}

async function postgresSource(cfg: PostgresSourceConfig): Promise<SourceReader> {
  const e = await postgresEngine(cfg.connection);
  return {
    engine: e,
    type: 'postgres',
    async tables() {
      const pub = await e.rows(`SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = ${e.lit(cfg.publication, 'text')} ORDER BY 1, 2`);
      if (pub.length) return pub.map(([s, t]) => ({ schema: String(s), table: String(t) }));
      const all = await e.rows(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`);
      return all.map(([s, t]) => ({ schema: String(s), table: String(t) })).filter((t) => !cfg.tables.length || likeAny(`${t.schema}.${t.table}`, cfg.tables));
    },
    async describe(schema, table) {
      const sql = `${e.qi(schema)}.${e.qi(table)}`;
      const rel = e.lit(sql, 'text');
      const rows = await e.rows(`SELECT a.attname, format_type(COALESCE(NULLIF(t.typbasetype, 0), a.atttypid), CASE WHEN t.typbasetype <> 0 THEN t.typtypmod ELSE a.atttypmod END), t.typtype,
          COALESCE((SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(att, n) WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.att = a.attnum), 0)
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = ${rel}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`);
      return finish(schema, table, sql, rows.map(([n, type, typtype, key]) => ({ col: String(n), type: String(type), family: pgFamily(String(type), String(typtype)), key: Number(key) })));
    },
    async position() {
      return String((await e.rows(`SELECT pg_current_wal_lsn()::text`))[0][0]);
    },
    reached(status, pos) {
      const at = status?.confirmedLsn;
      return typeof at === 'string' && parseLsn(at) >= parseLsn(pos);
    },
  };
}

async function mysqlSource(cfg: MysqlSourceConfig): Promise<SourceReader> {
  const c = cfg.connection as { host: string; port: number; user: string; password?: string; database?: string };
  const e = await mysqlEngine({ ...c, database: c.database ?? '' });
  return {
    engine: e,
    type: 'mysql',
    async tables() {
      const where = c.database ? `TABLE_SCHEMA = ${e.lit(c.database, 'text')}` : `TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')`;
      const all = await e.rows(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ${where} ORDER BY 1, 2`);
      return all.map(([s, t]) => ({ schema: String(s), table: String(t) })).filter((t) => !cfg.tables.length || likeAny(`${t.schema}.${t.table}`, cfg.tables.map((x) => x.replace(/`/g, ''))));
    },
    async describe(schema, table) {
      const rows = await e.rows(`SELECT c.COLUMN_NAME, c.COLUMN_TYPE, COALESCE(k.ORDINAL_POSITION, 0)
        FROM information_schema.COLUMNS c LEFT JOIN information_schema.KEY_COLUMN_USAGE k
          ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
        WHERE c.TABLE_SCHEMA = ${e.lit(schema, 'text')} AND c.TABLE_NAME = ${e.lit(table, 'text')} ORDER BY c.ORDINAL_POSITION`);
      return finish(schema, table, `${e.qi(schema)}.${e.qi(table)}`, rows.map(([n, type, key]) => ({ col: String(n), type: String(type), family: mysqlFamily(String(type)), key: Number(key) })));
    },
    async position() {
      const r = await e.rows(`SHOW MASTER STATUS`);
      if (!r.length) throw reconcileError('RECONCILE_SOURCE', 'SHOW MASTER STATUS returned nothing: the binary log is off; turn it on (log_bin, binlog_format=ROW) as the MySQL source needs');
      return `${r[0][0]}:${r[0][1]}`;
    },
    reached(status, pos) {
      // status.json's `durablePosition` (`file:offset`): where the checkpoint committed to the log
      // with the events stands; its `position` is only what the streamer has received.
      const at = typeof status?.durablePosition === 'string' ? /^(.*\.)(\d+):(\d+)$/.exec(status.durablePosition) : null;
      const want = /^(.*\.)(\d+):(\d+)$/.exec(pos);
      if (!at || !want) return false;
      return Number(at[2]) > Number(want[2]) || (Number(at[2]) === Number(want[2]) && Number(at[3]) >= Number(want[3]));
    },
  };
}

export async function openSource(cfg: NonNullable<SourceConfig>): Promise<SourceReader> {
  if (cfg.type === 'postgres') return postgresSource(cfg as PostgresSourceConfig);
  if (cfg.type === 'mysql') return mysqlSource(cfg as MysqlSourceConfig);
  throw reconcileError('RECONCILE_SOURCE', `reconcile reads PostgreSQL and MySQL/MariaDB sources, not ${(cfg as { type: string }).type}`);
}
