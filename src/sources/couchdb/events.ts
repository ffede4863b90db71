/**
 * From `_changes` rows to change events. A CouchDB database is one topic, and its documents are
 * rows of a fixed shape that every sink can take (docs/connectors/couchdb.md says why):
 *
 *   _id        string, the key
 *   _rev       string, the winning revision the event carries
 *   doc        the document's body as JSON text (io.debezium.data.Json): every field but _id, _rev,
 *              _conflicts and _deleted, with attachment stubs (`_attachments`) as CouchDB gives them
 *   _conflicts list of the conflicting revisions (the losing leaves), null when there are none
 *
 * op: `r` for documents read by the initial pass (update sequences up to the database's
 * `update_seq` at the first start), `d` for a deletion (after null; before null too, as CouchDB
 * does not give the previous document), `c` for a first revision (`1-…`) without conflicts, `u`
 * otherwise.
 */
import { createHash } from 'node:crypto';
import type { ChangeEvent, ColumnInfo, Op, SourceInfo, TableSchema, Value } from '../../core/event.ts';
import { writeValue } from '../../core/serde/json.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { MAX_TOPIC_LENGTH, topicPart } from '../common/names.ts';
import type { ChangeRow } from './client.ts';

/** The change topic of a database: `<prefix>.<database>`, escaped as table names are (names.ts). */
export function databaseTopic(prefix: string, db: string): string {
  const full = `${prefix}.${topicPart(db)}`;
  if (full.length <= MAX_TOPIC_LENGTH) return full;
  const hash = createHash('sha256').update(db).digest('hex').slice(0, 16);
  let cut = MAX_TOPIC_LENGTH - hash.length - 2;
  const dash = full.lastIndexOf('-', cut - 1);
  if (dash >= cut - 2) cut = dash;
  return `${full.slice(0, cut)}--${hash}`;
}

const JSON_TEXT = { type: 'string', optional: true, name: 'io.debezium.data.Json', version: 1 } as const;

/** The row shape of a database's documents (the same for every database but its name). */
export function databaseSchema(db: string): TableSchema {
  const col = (name: string, typeName: string, schema: ColumnInfo['schema'], key = false): ColumnInfo => ({ name, typeOid: 0, typeName, typeModifier: -1, key, optional: schema.optional, schema });
  return {
    schema: db,
    table: db,
    columns: [
      col('_id', 'string', { type: 'string', optional: false }, true),
      col('_rev', 'string', { type: 'string', optional: false }),
      col('doc', 'json', { ...JSON_TEXT }),
      col('_conflicts', 'string[]', { type: 'array', optional: true, items: { type: 'string', optional: false } }),
    ],
    keyColumns: ['_id'],
  };
}

/** A sequence as the `since` parameter and the `source.seq` field take it: CouchDB's text, or the integer PouchDB gives. */
export function seqText(seq: unknown): string {
  return typeof seq === 'string' ? seq : typeof seq === 'bigint' ? seq.toString() : JSON.stringify(seq ?? 0);
}

/** The number a sequence starts with: the sequence itself (PouchDB, CouchDB 1.x) or the `N` of CouchDB 2+'s `N-g1AAAA…`. */
export function seqNumber(seq: unknown): number {
  if (typeof seq === 'number') return seq;
  const n = parseInt(seqText(seq), 10);
  return Number.isFinite(n) ? n : 0;
}

/** The losing leaf revisions of a change: `_conflicts` of its document, else the other revisions `changes` lists. */
export function conflictsOf(row: ChangeRow): string[] | null {
  const c = row.doc?._conflicts;
  if (Array.isArray(c) && c.length) return c.map(String);
  if (row.deleted || !row.doc) return null;
  const others = row.changes.map((x) => x.rev).filter((r) => r !== row.doc!._rev);
  return others.length ? others : null;
}

const META = new Set(['_id', '_rev', '_conflicts', '_deleted']);

/** The document's body without the fields that have columns of their own, as JSON text. */
export function bodyText(doc: Record<string, unknown>): string {
  const body: Record<string, Value> = {};
  for (const k in doc) if (!META.has(k)) body[k] = doc[k] as Value;
  return writeValue(body);
}

/** The event of one change row; `snapshot` the marker of a row of the initial pass (null: streamed). */
export function changeEvent(row: ChangeRow, o: { db: string; topic: string; table: TableSchema; prefix: string; snapshot: SourceInfo['snapshot'] | null; now: number }): ChangeEvent {
  const rev = row.doc?._rev ?? row.changes[0]?.rev ?? null;
  const deleted = row.deleted === true || row.doc?._deleted === true;
  const conflicts = deleted ? null : conflictsOf(row);
  // A first revision with a rival (a replicated conflict) is not the document's creation.
  const op: Op = deleted ? 'd' : o.snapshot ? 'r' : rev?.startsWith('1-') && !conflicts ? 'c' : 'u';
  const source: SourceInfo = {
    version: SLUICE_VERSION,
    connector: 'couchdb',
    name: o.prefix,
    ts_ms: o.now,
    snapshot: o.snapshot ?? 'false',
    db: o.db,
    sequence: null,
    schema: o.db,
    table: o.db,
    seq: seqText(row.seq),
    rev,
  };
  const after = deleted ? null : { _id: row.id, _rev: rev ?? '', doc: row.doc ? bodyText(row.doc) : null, _conflicts: conflicts };
  return { topic: o.topic, key: { _id: row.id }, before: null, after, source, op, ts_ms: o.now, table: o.table };
}
