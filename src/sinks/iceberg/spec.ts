/** The Apache Iceberg sink's spec: `type: iceberg`. */
import { resolve } from 'node:path';
import { connection, integer, list, object, oneOf, string, tagged, type Infer } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';
import { AVRO_ERRORS } from '../../core/avro/errors.ts';
import { ICEBERG_ERRORS } from './errors.ts';

/** A partition field as `partitionBy` writes it: `col` (identity), `year|month|day|hour(col)` or `bucket[N](col)`. */
export const PARTITION_FIELD = /^(?:(identity|year|month|day|hour|bucket\[[1-9]\d{0,5}\])\(\s*([^()\s]+)\s*\)|([^()\s]+))$/;

const config = object({
  // A lake wants few, large files: a batch is a snapshot per table.
  ...sinkBaseFields(sinkBatch(250_000, 128 << 20)),
  path: string({ minLength: 1, type: 'path', description: 'The warehouse directory: each source table becomes an Iceberg table at `<path>/<namespace>/<tableName>` (a Hadoop-style filesystem catalog: `metadata/v<N>.metadata.json` and `version-hint.text`).' }),
  namespace: string({ minLength: 1, description: 'The namespace (directory under `path`) of each table; `{schema}` and `{table}` are replaced with the source\'s.' }).default('{schema}'),
  tableName: string({ minLength: 1, description: 'The table name (directory under the namespace); `{schema}` and `{table}` are replaced with the source\'s.' }).default('{table}'),
  mode: oneOf(['append', 'merge'] as const, {
    description: '`append` (bronze): every change event a row, with its `__op`. `merge` (silver): the current row of each key, merge-on-read: each snapshot adds the keys\' new rows and an equality-delete file of the keys it changed, which hides their older rows. Tables without a primary key are appended to in either mode.',
  }).default('append'),
  partitionBy: list(string({ minLength: 1, pattern: PARTITION_FIELD.source, hint: 'a column, or year(col), month(col), day(col), hour(col), bucket[N](col), identity(col)' }), {
    uniqueItems: true,
    description: 'The partition spec of the tables this sink creates, those fields whose column the table has: `region` (identity), `day(created_at)`, `hour(ts)`, `month(d)`, `year(d)` (dates and timestamps), `bucket[16](id)` (Iceberg\'s Murmur3 hash of integers, dates, timestamps, text or binary, among N buckets). A table keeps the spec it was created with.',
  }).default([]),
  schemaEvolution: oneOf(['add_columns', 'none'] as const, { description: '`add_columns`: a new source column is added to the table\'s schema (a new field id, nullable) in the snapshot of its first row. `none`: a new column stops the sink.' }).default('add_columns'),
  manifestMergeCount: integer({ min: 2, max: 10_000, description: 'Each commit adds a manifest (two with deletes); once a table\'s snapshot carries this many manifests of a kind, the commit merges them into one (their files as EXISTING entries, with their sequence numbers), so readers open few manifests however many commits the table has had.' }).default(50),
  catalog: tagged(
    {
      filesystem: object({}),
      jdbc: object({
        connection: connection({ schemes: ['postgres', 'postgresql'], defaultPort: 5432, defaultUser: 'postgres', database: true, example: 'postgres://user:password@host:port/database', description: 'The PostgreSQL database holding the catalog (its tables `iceberg_tables` and `iceberg_namespace_properties` are created if missing).' }),
        name: string({ minLength: 1, description: 'The catalog name (`catalog_name` in its tables): what engines configure as their Iceberg JDBC catalog\'s name.' }).default('sluice'),
      }),
    },
    { defaultVariant: 'filesystem', tagDescription: 'Where tables are found: `filesystem` (metadata files and version-hint.text under each table directory) or `jdbc` (Iceberg\'s JDBC catalog layout in a PostgreSQL database).', description: 'The catalog the sink commits each table\'s metadata through.' },
  ).default({ type: 'filesystem' }, 'filesystem'),
});

export type IcebergSinkConfig = { type: 'iceberg' } & Infer<typeof config>;

export const icebergSink = defineSink({
  kind: 'sink',
  type: 'iceberg',
  title: 'Apache Iceberg sink',
  docs: 'connectors/iceberg.md',
  config,
  // Manifests are Avro files: reading a damaged one gives the Avro codes.
  errors: [SINK_ERRORS, ICEBERG_ERRORS, AVRO_ERRORS],
  describe: (c) => `iceberg ${c.path} (${c.mode === 'merge' ? 'current rows, merge-on-read' : 'every change as a row'})`,
  exclusiveTarget: (c) => `iceberg warehouse ${resolve(c.path)}`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    // Parquet is written through DuckDB: its driver loads first, so that a missing one is named.
    await loadDriver('@duckdb/node-api', 'the iceberg sink', () => import('@duckdb/node-api'));
    const { IcebergSink } = await import('./sink.ts');
    return new IcebergSink({ type: 'iceberg', ...c }, ctx.logger, ctx.id);
  },
});
