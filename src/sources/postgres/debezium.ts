/** The PostgreSQL connector's `source` block, as Debezium's PostgreSQL connector writes it. */
import type { SourceInfo } from '../../core/event.ts';
import { i64, nullableInt, sourceSchema, str, type DebeziumSourceInfo } from '../../core/serde/debezium.ts';
import { writeString } from '../../core/serde/json.ts';

/** io.debezium.connector.postgresql.Source, in Debezium's field order. */
export const PG_SOURCE_SCHEMA = sourceSchema('io.debezium.connector.postgresql.Source', [str('schema'), str('table'), i64('txId', true), i64('lsn', true), i64('xmin', true)]);

export const postgresDebezium: DebeziumSourceInfo = {
  connector: 'postgresql',
  sourceSchema: PG_SOURCE_SCHEMA,
  tablePart: (s: SourceInfo) => `,"schema":${writeString(s.schema)},"table":${writeString(s.table)},"txId":`,
  tail: (s: SourceInfo) => nullableInt(s.txId) + ',"lsn":' + nullableInt(s.lsn) + ',"xmin":' + nullableInt(s.xmin),
  tableOf: (s) => ({ schema: String(s.schema ?? ''), table: String(s.table ?? '') }),
};
