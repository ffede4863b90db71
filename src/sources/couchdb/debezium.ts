/**
 * The CouchDB source's `source` block. Debezium has no CouchDB connector, so the block is Sluice's
 * own, laid out as Debezium's connectors lay theirs: the common fields (`db` is the CouchDB
 * database), then `seq` — the change's update sequence as CouchDB wrote it in the `_changes` feed,
 * as text (an integer on PouchDB Server and CouchDB 1.x, an opaque `N-g1AAAA…` string on CouchDB 2
 * and later) — and `rev`, the document revision the event carries (the winning revision).
 */
import type { FieldSchema, SourceInfo } from '../../core/event.ts';
import { sourceSchema, str, type DebeziumSourceInfo } from '../../core/serde/debezium.ts';
import { writeString } from '../../core/serde/json.ts';

const FIELDS: FieldSchema[] = [str('seq'), str('rev', true)];

export const COUCHDB_SOURCE_SCHEMA = sourceSchema('io.sluice.connector.couchdb.Source', FIELDS);

export const couchdbDebezium: DebeziumSourceInfo = {
  connector: 'couchdb',
  sourceSchema: COUCHDB_SOURCE_SCHEMA,
  tablePart: () => ',"seq":',
  tail: (s: SourceInfo) => writeString(String(s.seq ?? '')) + ',"rev":' + (s.rev == null ? 'null' : writeString(s.rev as string)),
  // A database is both: its events' `schema` and `table` are the database name.
  tableOf: (s) => ({ schema: String(s.db ?? ''), table: String(s.db ?? '') }),
};
