/**
 * `shape: row`: a document as a row of typed columns, one per top-level field, as Debezium's
 * ExtractNewDocumentState makes it, so that table sinks apply MongoDB changes like any other table's.
 *
 * | BSON            | column (Connect type)                         | value                        |
 * |-----------------|-----------------------------------------------|------------------------------|
 * | string          | string                                        | the text                     |
 * | int32           | int32                                         | the number                   |
 * | int64           | int64                                         | exact (bigint)               |
 * | double          | double                                        | the number                   |
 * | decimal128      | string, named `io.debezium.data.Decimal128`   | its digits (`"19.99"`)       |
 * | bool            | boolean                                       |                              |
 * | date            | int64 `io.debezium.time.Timestamp`            | ms since the epoch           |
 * | ObjectId        | string                                        | its 24 hex digits            |
 * | binary          | bytes                                         | the bytes                    |
 * | null            | string (optional)                             | null                         |
 * | anything else   | string `io.debezium.data.Json`                | its Extended JSON text       |
 *
 * The key is `_id`, as text: a string id as itself, an ObjectId as its hex digits, a number as its
 * digits, anything else as its Extended JSON. A collection's columns are every field its documents
 * have had (a field a document lacks is null in its row); a new field, or a field whose values
 * change type, makes a new schema (sinks with `schemaEvolution: add_columns` add the column).
 */
import type { ColumnInfo, FieldSchema, Row, TableSchema, Value } from '../../core/event.ts';
import { toExtendedJson } from './ejson.ts';

type Bson = { _bsontype?: string; [k: string]: any };

const named = (type: FieldSchema['type'], name?: string): FieldSchema => ({ type, optional: true, ...(name ? { name, version: 1 } : {}) });
const STRING = named('string');
const JSON_TEXT = named('string', 'io.debezium.data.Json');

/** The `_id` column's text (see the module comment). */
export function idColumnText(id: unknown): string {
  if (typeof id === 'string') return id;
  const b = id as Bson;
  if (b && typeof b === 'object') {
    if (b._bsontype === 'ObjectId') return b.toHexString();
    if (b._bsontype === 'Int32' || b._bsontype === 'Double') return String(b.value);
    if (b._bsontype === 'Long') return b.toString();
  }
  if (typeof id === 'number' || typeof id === 'bigint') return String(id);
  return toExtendedJson(id);
}

function column(v: unknown): { schema: FieldSchema; type: string; value: Value } {
  if (v === null || v === undefined) return { schema: STRING, type: 'null', value: null };
  switch (typeof v) {
    case 'string':
      return { schema: STRING, type: 'string', value: v };
    case 'boolean':
      return { schema: named('boolean'), type: 'bool', value: v };
    case 'number':
      return Number.isInteger(v) && Math.abs(v) <= 2147483647 ? { schema: named('int32'), type: 'int', value: v } : { schema: named('double'), type: 'double', value: v };
    case 'bigint':
      return { schema: named('int64'), type: 'long', value: v };
    default:
      break;
  }
  if (v instanceof Date) return { schema: named('int64', 'io.debezium.time.Timestamp'), type: 'date', value: v.getTime() };
  if (Buffer.isBuffer(v)) return { schema: named('bytes'), type: 'binData', value: v };
  const b = v as Bson;
  switch (b._bsontype) {
    case 'Int32':
      return { schema: named('int32'), type: 'int', value: b.value };
    case 'Double':
      return { schema: named('double'), type: 'double', value: b.value };
    case 'Long':
      return { schema: named('int64'), type: 'long', value: BigInt(b.toString()) };
    case 'Decimal128':
      return { schema: named('string', 'io.debezium.data.Decimal128'), type: 'decimal', value: b.toString() };
    case 'ObjectId':
      return { schema: STRING, type: 'objectId', value: b.toHexString() };
    case 'Binary':
      return { schema: named('bytes'), type: 'binData', value: Buffer.from(b.buffer.subarray(0, b.position ?? b.buffer.length)) };
    default:
      return { schema: JSON_TEXT, type: Array.isArray(v) ? 'array' : 'object', value: toExtendedJson(v) };
  }
}

/** A collection's columns so far, in the order first seen. */
interface Known {
  cols: Map<string, { schema: FieldSchema; type: string }>;
  table: TableSchema | null;
}

/**
 * Each collection's columns: the union of the fields its documents have had, so that a field
 * missing from a document is written null (a sink's column does not keep a stale value), with the
 * type of its latest non-null value. One TableSchema object per shape, so caches keyed by it hold.
 */
export class RowShapes {
  private readonly known = new Map<string, Known>();
  private readonly shapes = new Map<string, TableSchema>();

  private of(db: string, collection: string): Known {
    const k = `${db}\u0000${collection}`;
    let c = this.known.get(k);
    if (!c) this.known.set(k, (c = { cols: new Map(), table: null }));
    return c;
  }

  /** The row of a document and the schema of its collection's columns. */
  row(db: string, collection: string, doc: Record<string, unknown>): { row: Row; table: TableSchema } {
    const known = this.of(db, collection);
    const values = new Map<string, Value>();
    let changed = known.table === null;
    let id: string = '';
    for (const name of Object.keys(doc)) {
      const v = doc[name];
      if (v === undefined) continue;
      if (name === '_id') {
        id = idColumnText(v);
        continue;
      }
      const c = column(v);
      values.set(name, c.value);
      const was = known.cols.get(name);
      if (!was) {
        known.cols.set(name, { schema: c.schema, type: c.type });
        changed = true;
      } else if (c.type !== 'null' && was.type !== c.type) {
        known.cols.set(name, { schema: c.schema, type: c.type });
        changed = true;
      }
    }
    if (changed) known.table = this.shape(db, collection, known);
    const row: Row = { _id: id };
    for (const name of known.cols.keys()) row[name] = values.get(name) ?? null;
    return { row, table: known.table! };
  }

  /** The schema a delete is written with: the collection's columns so far. */
  keyOnly(db: string, collection: string): TableSchema {
    const known = this.of(db, collection);
    return (known.table ??= this.shape(db, collection, known));
  }

  private shape(db: string, collection: string, known: Known): TableSchema {
    let sig = `${db}\u0000${collection}`;
    for (const [name, c] of known.cols) sig += `\u0000${name}\u0001${c.type}`;
    let table = this.shapes.get(sig);
    if (!table) {
      const columns: ColumnInfo[] = [
        { name: '_id', typeOid: 0, typeName: 'id', typeModifier: -1, key: true, optional: false, schema: { type: 'string', optional: false } },
        ...[...known.cols].map(([name, c]) => ({ name, typeOid: 0, typeName: c.type, typeModifier: -1, key: false, optional: true, schema: c.schema })),
      ];
      table = { schema: db, table: collection, keyColumns: ['_id'], columns };
      this.shapes.set(sig, table);
    }
    return table;
  }
}
