/**
 * Schema evolution of a target table, planned once for every SQL sink: given the table's current
 * columns and the schemas a batch was written with, what to create or add — or the coded error
 * that stops the sink (`SINK_SCHEMA_CHANGED` with `schemaEvolution: none`, `SINK_SCHEMA_INCOMPATIBLE`
 * when a column's values no longer fit its target type). Nothing is run here; `tables.ts` runs it.
 */
import type { SinkCommonConfig } from '../config.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { sinkError } from '../errors.ts';
import { compatible, kindName, targetColumns, type TargetColumn } from './columns.ts';
import type { EvolveWording, SqlDialect } from './dialect.ts';

export interface PlannedColumn {
  col: TargetColumn;
  /** The target column type. */
  type: string;
}

export interface TablePlan {
  /** The columns to create the table with, when it does not exist; else null. */
  create: PlannedColumn[] | null;
  /** Columns to add (nullable), in order. */
  add: PlannedColumn[];
}

export interface PlanInput {
  /** The table as SQL names it (quoted), for messages. */
  table: string;
  /** Its columns now (name → type text as the catalog prints it); empty when it does not exist. */
  current: ReadonlyMap<string, string>;
  /** The newest schema of the batch (a new table gets its columns)… */
  schema: SchemaRecord;
  /** …and every schema the batch's records were written with, oldest first. */
  schemas: SchemaRecord[];
  /** Whether the table holds the metadata columns (`__op`, soft-delete flag, …); DuckDB's change table does not. */
  meta?: boolean;
}

const WORDING: EvolveWording = { addColumn: 'Add it', targetColumn: '', afterRestart: '' };

/** What to create/add so that `current` holds every column of `schemas`; throws when it cannot or may not. */
export function planTable(d: SqlDialect, cfg: SinkCommonConfig, p: PlanInput): TablePlan {
  const withMeta = p.meta ?? true;
  const plan: TablePlan = { create: null, add: [] };
  let planned: Map<string, string> | null = null;
  if (p.current.size === 0) {
    plan.create = targetColumns(p.schema, cfg)
      .filter((col) => withMeta || !col.meta)
      .map((col) => ({ col, type: d.columnType(col, p.schema.connector) }));
    planned = new Map(plan.create.map((c) => [c.col.name, c.type]));
  }
  for (const s of p.schemas) {
    for (const col of targetColumns(s, cfg)) {
      if (!withMeta && col.meta) continue;
      const have = planned?.get(col.name) ?? p.current.get(col.name);
      if (have === undefined) {
        // An added column is nullable and never part of the key.
        const type = d.columnType({ ...col, key: false }, s.connector);
        if (cfg.schemaEvolution === 'none') throw schemaChanged(d, cfg, p.table, s, col, type);
        plan.add.push({ col, type });
        (planned ??= new Map()).set(col.name, type);
      } else if (!col.meta) {
        const f = d.family(have);
        if (f.family !== 'other' && !compatible(col.kind, f)) throw schemaIncompatible(d, cfg, p.table, s, col, have);
      }
    }
  }
  return plan;
}

function schemaChanged(d: SqlDialect, cfg: SinkCommonConfig, table: string, s: SchemaRecord, col: TargetColumn, type: string) {
  const w = { ...WORDING, ...d.wording };
  const hint = `ALTER TABLE ${table} ADD COLUMN ${d.qi(col.name)} ${type}`;
  return sinkError(
    'SINK_SCHEMA_CHANGED',
    `sink ${cfg.name}: source table ${s.schema}.${s.table} has a new column ${col.name} (${kindName(col.kind)}) that ${table} lacks, and schemaEvolution is none. ${w.addColumn} (${hint}) or set schemaEvolution: add_columns, then restart`,
  );
}

function schemaIncompatible(d: SqlDialect, cfg: SinkCommonConfig, table: string, s: SchemaRecord, col: TargetColumn, have: string) {
  const w = { ...WORDING, ...d.wording };
  const hint = d.changeTypeHint(table, col.name, d.columnType(col, s.connector));
  return sinkError(
    'SINK_SCHEMA_INCOMPATIBLE',
    `sink ${cfg.name}: column ${col.name} of ${s.schema}.${s.table} now holds ${kindName(col.kind)} values, which ${w.targetColumn}${table}.${d.qi(col.name)} of type ${have} cannot take. Change the target column (${hint}), then restart the pipeline${w.afterRestart}`,
  );
}
