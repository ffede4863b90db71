/**
 * The MongoDB source's `source` block, laid out as Debezium's MongoDB connector writes it after the
 * common fields: `rs`, `collection`, `ord` (the change's position within its second of cluster
 * time), `lsid` and `txnNumber` (the session and transaction of a multi-document transaction),
 * `wallTime`.
 */
import type { FieldSchema, SourceInfo } from '../../core/event.ts';
import { i64, nullableInt, sourceSchema, str, type DebeziumSourceInfo } from '../../core/serde/debezium.ts';
import { writeString } from '../../core/serde/json.ts';

const FIELDS: FieldSchema[] = [str('rs'), str('collection'), { type: 'int32', optional: false, field: 'ord' }, str('lsid', true), i64('txnNumber', true), i64('wallTime', true)];

export const MONGODB_SOURCE_SCHEMA = sourceSchema('io.debezium.connector.mongo.Source', FIELDS);

export const mongodbDebezium: DebeziumSourceInfo = {
  connector: 'mongodb',
  sourceSchema: MONGODB_SOURCE_SCHEMA,
  tablePart: (s: SourceInfo) => `,"rs":${writeString(String(s.rs ?? ''))},"collection":${writeString(s.table)},"ord":`,
  tail: (s: SourceInfo) =>
    nullableInt((s.ord as number) ?? 0) +
    ',"lsid":' +
    (s.lsid == null ? 'null' : writeString(s.lsid as string)) +
    ',"txnNumber":' +
    nullableInt(s.txnNumber as number | null) +
    ',"wallTime":' +
    nullableInt(s.wallTime as number | null),
  tableOf: (s) => ({ schema: String(s.db ?? ''), table: String(s.collection ?? '') }),
};
