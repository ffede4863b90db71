/** The DuckDB sink's spec. */
import { resolve } from 'node:path';
import { object, string, type Infer } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch, tableSinkFields } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';

const config = object({
  // A columnar store prefers fewer, bigger transactions: a table that gets a full row group
  // (122,880 rows) in one transaction has it written to the database file directly, once, instead
  // of to the write-ahead log and again by a checkpoint.
  ...sinkBaseFields(sinkBatch(250_000, 128 << 20)),
  ...tableSinkFields(),
  path: string({ minLength: 1, type: 'path', description: 'DuckDB database file (created if missing). Two sinks may not write one file.' }),
  changeTableName: string({ description: 'The append-only change table per source table; `{schema}`/`{table}` replaced; `""` for none.' }).default('{table}_changes'),
});

export type DuckdbSinkConfig = { type: 'duckdb' } & Infer<typeof config>;

export const duckdbSink = defineSink({
  kind: 'sink',
  type: 'duckdb',
  title: 'DuckDB sink',
  docs: 'connectors/sinks.md',
  config,
  errors: [SINK_ERRORS],
  describe: (c) => `duckdb ${c.path}`,
  exclusiveTarget: (c) => `duckdb file ${resolve(c.path)}`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    // The driver loads first, so that a missing one is named, not a stack trace.
    await loadDriver('@duckdb/node-api', 'the duckdb sink', () => import('@duckdb/node-api'));
    const { DuckdbSink } = await import('./sink.ts');
    return new DuckdbSink({ type: 'duckdb', ...c }, ctx.logger, ctx.id);
  },
});
