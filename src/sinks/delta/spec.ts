/** The Delta Lake sink's spec: `type: delta`. */
import { resolve } from 'node:path';
import { boolean, integer, list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';
import { DELTA_ERRORS } from './errors.ts';

const config = object({
  // A lake wants few, large files: a batch is a Parquet file and a commit per table.
  ...sinkBaseFields(sinkBatch(250_000, 128 << 20)),
  path: string({ minLength: 1, type: 'path', description: 'The lake directory: each source table becomes a Delta table in a directory under it (created if missing). Two sinks may not write one table.' }),
  tableName: string({ minLength: 1, description: 'The directory (under `path`) of each source table\'s Delta table; `{schema}` and `{table}` are replaced with the source\'s.' }).default('{table}'),
  mode: oneOf(['append', 'merge'] as const, {
    description: '`append` (bronze): every change event a row, with its `__op`. `merge` (silver): the current row of each key; the files holding a changed key are rewritten without it, with the key\'s new row, in the same commit (copy-on-write), deletes and truncates remove rows. Tables without a primary key are appended to in either mode.',
  }).default('append'),
  partitionBy: list(string({ minLength: 1 }), { uniqueItems: true, description: 'Columns each table is partitioned by, those of them the table has when it is created (`col=value/` directories; values in the log\'s `partitionValues`). Types: text, integers, decimals, booleans, dates, timestamps. A table keeps the partitioning it was created with.' }).default([]),
  changeDataFeed: boolean({ description: 'Turn on Delta\'s Change Data Feed (`delta.enableChangeDataFeed`) on the tables this sink creates or writes: merge commits carry `_change_data/` files of `insert`, `update_preimage`, `update_postimage` and `delete` rows; appends are read as inserts. A table that has it on keeps it on.' }).default(true),
  checkpointInterval: integer({ min: 1, max: 100_000, description: 'A checkpoint (`_delta_log/<version>.checkpoint.parquet`, the table\'s state in one file, which readers start from) after every this many commits of a table.' }).default(10),
  schemaEvolution: oneOf(['add_columns', 'none'] as const, { description: '`add_columns`: a new source column is added to the Delta table\'s schema (nullable) in the commit of its first row. `none`: a new column stops the sink.' }).default('add_columns'),
});

export type DeltaSinkConfig = { type: 'delta' } & Infer<typeof config>;

export const deltaSink = defineSink({
  kind: 'sink',
  type: 'delta',
  title: 'Delta Lake sink',
  docs: 'connectors/delta.md',
  config,
  errors: [SINK_ERRORS, DELTA_ERRORS],
  describe: (c) => `delta ${c.path} (${c.mode === 'merge' ? 'current rows, merged' : 'every change as a row'})`,
  exclusiveTarget: (c) => `delta lake ${resolve(c.path)}`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    // Parquet is written through DuckDB: its driver loads first, so that a missing one is named.
    await loadDriver('@duckdb/node-api', 'the delta sink', () => import('@duckdb/node-api'));
    const { DeltaSink } = await import('./sink.ts');
    return new DeltaSink({ type: 'delta', ...c }, ctx.logger, ctx.id);
  },
});
