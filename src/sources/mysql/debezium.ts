/**
 * The MySQL connector's `source` block, as Debezium's MySQL connector writes it, and its MariaDB
 * connector (Debezium 3: `connector` `mariadb`, schema `io.debezium.connector.mariadb.Source`, the
 * same fields) for MariaDB servers unless `mariadbConnector: mysql`.
 */
import type { FieldSchema, SourceInfo } from '../../core/event.ts';
import { i64, nullableInt, sourceSchema, str, type DebeziumSourceInfo } from '../../core/serde/debezium.ts';
import { writeString } from '../../core/serde/json.ts';

/** The binlog connectors' own fields, in Debezium's order. */
const BINLOG_FIELDS: FieldSchema[] = [
  str('table', true),
  i64('server_id'),
  str('gtid', true),
  str('file'),
  i64('pos'),
  { type: 'int32', optional: false, field: 'row' },
  i64('thread', true),
  str('query', true),
];

/** io.debezium.connector.mysql.Source, in Debezium's field order. */
export const MYSQL_SOURCE_SCHEMA = sourceSchema('io.debezium.connector.mysql.Source', BINLOG_FIELDS);
/** io.debezium.connector.mariadb.Source (Debezium 3's MariaDB connector): the same fields. */
export const MARIADB_SOURCE_SCHEMA = sourceSchema('io.debezium.connector.mariadb.Source', BINLOG_FIELDS);

/** `source.connector` for a server: `mariadb` for MariaDB (unless configured `mysql`), else `mysql`. */
export function connectorName(cfg: { mariadbConnector: 'mariadb' | 'mysql' }, mariadb: boolean): string {
  return mariadb && cfg.mariadbConnector === 'mariadb' ? 'mariadb' : 'mysql';
}

export const mysqlDebezium: DebeziumSourceInfo = {
  connector: 'mysql',
  sourceSchema: MYSQL_SOURCE_SCHEMA,
  schemaFor: (connector) => (connector === 'mariadb' ? MARIADB_SOURCE_SCHEMA : MYSQL_SOURCE_SCHEMA),
  tablePart: (s: SourceInfo) => `,"table":${writeString(s.table)},"server_id":`,
  /** server_id, gtid, file, pos, row, thread, query. */
  tail: (s: SourceInfo) =>
    nullableInt(s.server_id as number) +
    ',"gtid":' +
    (s.gtid == null ? 'null' : writeString(s.gtid as string)) +
    ',"file":' +
    writeString((s.file as string) ?? '') +
    ',"pos":' +
    nullableInt((s.pos as number) ?? 0) +
    ',"row":' +
    nullableInt((s.row as number) ?? 0) +
    ',"thread":' +
    nullableInt(s.thread as number | null) +
    ',"query":' +
    (s.query == null ? 'null' : writeString(s.query as string)),
  // Debezium's MySQL block has no `schema`: the database is `db`.
  tableOf: (s) => ({ schema: String(s.db ?? ''), table: String(s.table ?? '') }),
};
