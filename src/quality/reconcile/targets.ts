/**
 * The sink side: for each sink, whether it holds a source table as rows reconcile can compare,
 * where, and a reader of them. Everything comes from the sink's own config: `tables` patterns,
 * `topics` (a sink that reads a processor's output holds rows the processor reshaped: not
 * comparable), `tableName` (and the Iceberg sink's `namespace`, a document sink's `collections`),
 * the PostgreSQL sink's `schema`, `deletes: soft` (a row flagged deleted counts as absent), a lake
 * sink's `mode` (only `merge` holds current rows).
 *
 * Three kinds of target:
 * - SQL tables (PostgreSQL, MariaDB/MySQL, DuckDB): read by key range, as the source is.
 * - lake tables (Delta, Iceberg; `mode: merge`): the current version's files read by DuckDB in
 *   memory, then as a SQL table (lake.ts).
 * - documents (MongoDB, PostgreSQL JSONB; one collection per table, no `document` template): read
 *   by `_id` for each source chunk, plus one pass over the collection's keys when it holds more
 *   documents than the source rows matched (documents.ts).
 */
import { join, resolve } from 'node:path';
import type { PipelineConfig, SinkConfig } from '../../config/types.ts';
import { planTopology } from '../../engine/topology.ts';
import { tableTopic } from '../../sources/common/names.ts';
import { sourceSpec } from '../../registry/index.ts';
import { canonRow, keyId, selectList, targetWhere } from './compare.ts';
import { duckdbEngine, keyCompare, keyEquals, mysqlEngine, postgresEngine, type Engine } from './engines.ts';
import type { SourceTable } from './source.ts';

/** Thrown by `Target.open` when the target cannot hold the table in a comparable form: the pair is skipped with the message. */
export class NotComparable extends Error {}

/** One target table (or collection) of one sink, open for reading, for one source table. */
export interface TargetReader {
  /** The target's column names (empty: the table or collection does not exist). */
  columns: Set<string>;
  /** Canonical rows with keys in (lo, hi] (null: unbounded); absent where the target is read by key only. */
  range?(lo: string[] | null, hi: string[] | null): Promise<string[][]>;
  /** Canonical rows of `keys` (canonical key values), by key id. */
  byKeys(keys: string[][]): Promise<Map<string, string[]>>;
  /** Key-read targets: how many rows the target holds. */
  count?(): Promise<number>;
  /** Key-read targets: every key the target holds, a page at a time. */
  eachKey?(page: (keys: string[][]) => Promise<void>): Promise<void>;
  /** A canonical source row as the target can hold it (documents keep milliseconds), compared with the target's. */
  fromSource?(row: string[]): string[];
  /** Reads the target's newest state again (lake tables: the latest version) before a re-check. */
  refresh?(): Promise<void>;
  close(): Promise<void>;
}

export interface Target {
  sink: string;
  type: string;
  /** The target table as the sink names it (a directory for lake tables). */
  table: string;
  open(st: SourceTable): Promise<TargetReader>;
}

const SQL_SINKS = new Set(['postgres', 'mysql', 'duckdb']);
const LAKE_SINKS = new Set(['delta', 'iceberg']);
const DOCUMENT_SINKS = new Set(['mongodb', 'postgres_jsonb']);

export function glob(p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
}

const nameOf = (template: string, schema: string, table: string) => template.replace(/\{schema\}/g, () => schema).replace(/\{table\}/g, () => table);

/** A reader of a SQL table `from` on `engine` (its columns listed by `columnsSql`). */
export async function sqlReader(engine: Engine, st: SourceTable, from: string, columnsSql: string, softDelete: string | null, refresh?: () => Promise<void>): Promise<TargetReader> {
  const columns = new Set((await engine.rows(columnsSql)).map((r) => String(r[0])));
  const nk = st.keys.length;
  const where = (conds: string[]) => targetWhere(engine, columns, softDelete, conds);
  const select = `SELECT ${selectList(engine, st.columns, columns)} FROM ${from}`;
  return {
    columns,
    async range(lo, hi) {
      const w: string[] = [];
      if (lo) w.push(keyCompare(engine, st.keys, lo, '>'));
      if (hi) w.push(keyCompare(engine, st.keys, hi, '<='));
      return (await engine.rows(select + where(w))).map((r) => canonRow(st.columns, r));
    },
    async byKeys(keys) {
      const out = new Map<string, string[]>();
      for (let i = 0; i < keys.length; i += 200) {
        const cond = `(${keys.slice(i, i + 200).map((k) => `(${keyEquals(engine, st.keys, k)})`).join(' OR ')})`;
        for (const r of await engine.rows(select + where([cond]))) {
          const row = canonRow(st.columns, r);
          out.set(keyId(row.slice(0, nk)), row);
        }
      }
      return out;
    },
    refresh,
    close: () => engine.close(),
  };
}

/** The sink's target for source table `schema.table`, or why there is none to compare. */
export function targetOf(cfg: PipelineConfig, sink: SinkConfig, schema: string, table: string): Target | { skip: string } {
  const topology = planTopology(cfg);
  const prefix = sourceSpec(cfg.source!.type).topicPrefix(cfg.source!);
  const topic = tableTopic(prefix, schema, table);
  const s = sink as SinkConfig & { tables: string[]; topics: string[]; tableName: string; deletes?: string; softDeleteColumn?: string };
  if (s.tables.length && !s.tables.some((p) => glob(p).test(`${schema}.${table}`))) return { skip: `sink ${s.name} does not take ${schema}.${table} (its tables: ${s.tables.join(', ')})` };
  if (!topology.sinks.get(s.name)!.reads(topic)) {
    const procs = s.topics.filter((t) => cfg.processors.some((p) => p.name === t));
    return { skip: procs.length ? `not comparable: sink ${s.name} reads processor ${procs.join(', ')}'s output, not the source's rows` : `sink ${s.name} does not read ${topic}` };
  }
  if (LAKE_SINKS.has(s.type)) return lakeTargetOf(s as never, schema, table);
  if (DOCUMENT_SINKS.has(s.type)) return documentTargetOf(s as never, schema, table);
  if (!SQL_SINKS.has(s.type)) return { skip: `not comparable: reconcile does not read ${s.type} targets (it reads postgres, mysql, duckdb, delta, iceberg, mongodb and postgres_jsonb sinks)` };
  const tname = nameOf(s.tableName, schema, table);
  const softDelete = s.deletes === 'soft' ? (s.softDeleteColumn ?? '__deleted') : null;
  if (s.type === 'postgres') {
    const c = (s as any).connection;
    const tschema = String((s as any).schema ?? 'public');
    return {
      sink: s.name,
      type: s.type,
      table: `${tschema}.${tname}`,
      open: async (st) => {
        const e = await postgresEngine(c);
        return sqlReader(e, st, `${e.qi(tschema)}.${e.qi(tname)}`, `SELECT column_name FROM information_schema.columns WHERE table_schema = ${e.lit(tschema, 'text')} AND table_name = ${e.lit(tname, 'text')}`, softDelete).catch(closing(e));
      },
    };
  }
  if (s.type === 'mysql') {
    const c = (s as any).connection;
    return {
      sink: s.name,
      type: s.type,
      table: `${c.database}.${tname}`,
      open: async (st) => {
        const e = await mysqlEngine(c);
        return sqlReader(e, st, e.qi(tname), `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${e.lit(tname, 'text')}`, softDelete).catch(closing(e));
      },
    };
  }
  const path = resolve(String((s as any).path));
  return {
    sink: s.name,
    type: s.type,
    table: tname,
    open: async (st) => {
      const e = await duckdbEngine(path);
      return sqlReader(e, st, e.qi(tname), `SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ${e.lit(tname, 'text')}`, softDelete).catch(closing(e));
    },
  };
}

/** Closes `e` and rethrows: an open that failed half-way leaves no connection behind. */
export const closing =
  (e: { close(): Promise<void> }) =>
  async (err: unknown): Promise<never> => {
    await e.close();
    throw err;
  };

function lakeTargetOf(s: SinkConfig & { path: string; tableName: string; mode: string; namespace?: string; catalog?: { type: string; connection?: any; name?: string } }, schema: string, table: string): Target | { skip: string } {
  if (s.mode !== 'merge') return { skip: `not comparable: sink ${s.name} appends every change as a row (mode: ${s.mode}); reconcile compares the current rows a merge-mode lake sink keeps` };
  const root = resolve(s.path);
  const name = nameOf(s.tableName, schema, table);
  if (s.type === 'delta') {
    const dir = join(root, name);
    return { sink: s.name, type: s.type, table: dir, open: async (st) => (await import('./lake.ts')).deltaReader(dir, st) };
  }
  const ns = nameOf(s.namespace ?? '{schema}', schema, table);
  const dir = join(root, ns, name);
  const catalog = s.catalog?.type === 'jdbc' ? { connection: s.catalog.connection, name: String(s.catalog.name ?? 'sluice'), sink: s.name } : null;
  return { sink: s.name, type: s.type, table: dir, open: async (st) => (await import('./lake.ts')).icebergReader({ dir, ns, table: name, catalog }, st) };
}

function documentTargetOf(s: SinkConfig & { tableName: string; collections: { table: string; collection: string; document?: unknown }[]; connection: any; database?: string; schema?: string }, schema: string, table: string): Target | { skip: string } {
  const entry = s.collections.find((e) => glob(e.table).test(`${schema}.${table}`));
  if (entry?.document) return { skip: `not comparable: sink ${s.name} reshapes ${schema}.${table} with a document template (collections entry ${entry.table}); reconcile compares documents holding the row's columns as fields` };
  const collection = nameOf(entry?.collection ?? s.tableName, schema, table);
  if (s.type === 'mongodb') {
    return { sink: s.name, type: s.type, table: `${s.database}.${collection}`, open: async (st) => (await import('./documents.ts')).mongoReader(s.connection, s.database!, collection, st) };
  }
  const cschema = s.schema ?? 'public';
  return { sink: s.name, type: s.type, table: `${cschema}.${collection}`, open: async (st) => (await import('./documents.ts')).jsonbReader(s.connection, cschema, collection, st) };
}

/** The change topic of a source table (where a sink's offsets for it are kept). */
export function topicOf(cfg: PipelineConfig, schema: string, table: string): string {
  return tableTopic(sourceSpec(cfg.source!.type).topicPrefix(cfg.source!), schema, table);
}
