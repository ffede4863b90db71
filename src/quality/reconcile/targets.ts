/**
 * The sink side: for each sink, whether it holds a source table as a table reconcile can compare,
 * and where. Everything comes from the sink's own config: `tables` patterns, `topics` (a sink that
 * reads a processor's output holds rows the processor reshaped: not comparable), `tableName`,
 * the PostgreSQL sink's `schema`, `deletes: soft` (a row flagged deleted counts as absent).
 */
import { resolve } from 'node:path';
import type { PipelineConfig, SinkConfig } from '../../config/types.ts';
import { planTopology } from '../../engine/topology.ts';
import { tableTopic } from '../../sources/common/names.ts';
import { sourceSpec } from '../../registry/index.ts';
import { duckdbEngine, mysqlEngine, postgresEngine, type Engine } from './engines.ts';

export interface Target {
  sink: string;
  type: string;
  /** The target table's bare name, and its qualified SQL name once the engine is open. */
  table: string;
  sql(e: Engine): string;
  /** Catalog query for the table's column names. */
  columnsSql(e: Engine): string;
  /** The soft-delete flag column, when the sink keeps deleted rows. */
  softDelete: string | null;
  open(): Promise<Engine>;
}

const TABLE_SINKS = new Set(['postgres', 'mysql', 'duckdb']);

function glob(p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
}

const nameOf = (template: string, schema: string, table: string) => template.replace(/\{schema\}/g, () => schema).replace(/\{table\}/g, () => table);

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
  if (!TABLE_SINKS.has(s.type)) return { skip: `not comparable: reconcile does not read ${s.type} targets yet` };
  const tname = nameOf(s.tableName, schema, table);
  const softDelete = s.deletes === 'soft' ? (s.softDeleteColumn ?? '__deleted') : null;
  const lit = (e: Engine, v: string) => e.lit(v, 'text');
  if (s.type === 'postgres') {
    const c = (s as any).connection;
    const tschema = String((s as any).schema ?? 'public');
    return {
      sink: s.name,
      type: s.type,
      table: `${tschema}.${tname}`,
      softDelete,
      sql: (e) => `${e.qi(tschema)}.${e.qi(tname)}`,
      columnsSql: (e) => `SELECT column_name FROM information_schema.columns WHERE table_schema = ${lit(e, tschema)} AND table_name = ${lit(e, tname)}`,
      open: () => postgresEngine(c),
    };
  }
  if (s.type === 'mysql') {
    const c = (s as any).connection;
    return {
      sink: s.name,
      type: s.type,
      table: `${c.database}.${tname}`,
      softDelete,
      sql: (e) => e.qi(tname),
      columnsSql: (e) => `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${lit(e, tname)}`,
      open: () => mysqlEngine(c),
    };
  }
  const path = resolve(String((s as any).path));
  return {
    sink: s.name,
    type: s.type,
    table: tname,
    softDelete,
    sql: (e) => e.qi(tname),
    columnsSql: (e) => `SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ${lit(e, tname)}`,
    open: () => duckdbEngine(path),
  };
}

/** The change topic of a source table (where a sink's offsets for it are kept). */
export function topicOf(cfg: PipelineConfig, schema: string, table: string): string {
  return tableTopic(sourceSpec(cfg.source!.type).topicPrefix(cfg.source!), schema, table);
}
