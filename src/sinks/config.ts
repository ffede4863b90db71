/** Config keys every sink has, and those the table-shaped sinks (PostgreSQL, MySQL, DuckDB) share. */
import { batchField } from '../config/common.ts';
import { list, oneOf, string } from '../config/fields.ts';
import type { SinkBaseConfig } from '../registry/spec.ts';

/** `sinks[].batch`: a sink's own bounds; `maxDelayMs` defaults to the pipeline's. */
export function sinkBatch(maxRecords: number, maxBytes: number) {
  return batchField({ maxRecords, maxBytes, maxDelayMs: (ctx) => Number(ctx.root?.batch?.maxDelayMs ?? 20) }, { maxDelayMs: '`batch.maxDelayMs`' });
}

/** The keys the engine reads for every sink. */
export function sinkBaseFields(batch: ReturnType<typeof sinkBatch>) {
  return {
    name: string({ pattern: '^[A-Za-z0-9_.-]+$', description: "Unique in the pipeline; identifies the offsets the sink stores in its target.", hint: 'letters, digits, _ . -' }),
    topics: list(string({ minLength: 1 }), { description: "Topics the sink applies: names or `*` patterns. Empty: the source's change topics (not the transaction topic, not processor outputs).", type: 'list of topic patterns' }).default([]),
    tables: list(string({ minLength: 1 }), { description: 'Source tables to apply, as `schema.table` patterns (`*` matches any run of characters). Empty: all.', type: 'list of `schema.table` patterns' }).default([]),
    offsetsTable: string({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Table (collection) in the target holding the consumed log offsets, written with the data.' }).default('sluice_offsets'),
    batch: batch.describe('Bounds of one target transaction.').default({}, 'the defaults below'),
    onError: oneOf(['stop', 'skip_table', 'dlq'] as const, {
      description:
        "What a change the target refuses for good (a constraint, a value it cannot take, an incompatible schema) does. `stop`: the sink stops at the batch. `skip_table`: that table is held at the refused change (shown by `sluice status`; a restart retries it) and every other table goes on. `dlq`: the refused change goes to the log topic `<pipeline>.dlq` with its reason, and its table goes on past it. See docs/connectors/sinks.md.",
    }).default('stop'),
  };
}

/** Keys of the sinks that keep one target table per source table. */
export function tableSinkFields() {
  return {
    tableName: string({ minLength: 1, description: 'Target table name; `{schema}` and `{table}` are replaced with the source\'s.' }).default('{table}'),
    deletes: oneOf(['hard', 'soft'] as const, { description: '`hard`: delete the row. `soft`: keep it with `softDeleteColumn` set to true.' }).default('hard'),
    softDeleteColumn: string({ minLength: 1, description: 'The column `deletes: soft` sets to true.' }).default('__deleted'),
    addFields: list(oneOf(['op', 'table', 'source_ts_ms'] as const), { uniqueItems: true, description: 'Unwrap metadata columns `__op`, `__table`, `__source_ts_ms`.', type: 'list of `op`, `table`, `source_ts_ms`' }).default([]),
    schemaEvolution: oneOf(['add_columns', 'none'] as const, { description: '`add_columns`: new source columns are added to the target. `none`: a new column stops the sink.' }).default('add_columns'),
  };
}

export type UnwrapField = 'op' | 'table' | 'source_ts_ms';

/** What the SQL and document sinks share: the engine's keys plus the table options. */
export type SinkCommonConfig = SinkBaseConfig & {
  tableName: string;
  deletes: 'hard' | 'soft';
  softDeleteColumn: string;
  addFields: UnwrapField[];
  schemaEvolution: 'add_columns' | 'none';
};
