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
 * digits, anything else as its Extended JSON. A collection's columns are those of the document at
 * hand: a document with a new field, or a field of another type, gets a schema of its own (sinks
 * with `schemaEvolution: add` add the column).
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

/** Schemas by collection and column signature: one TableSchema object per shape, so caches keyed by it hold. */
export class RowShapes {
  private readonly shapes = new Map<string, TableSchema>();
  /** The newest shape of each collection (`db\u0000collection`). */
  private readonly latest = new Map<string, TableSchema>();

  /** The row of a document and the schema of its shape. */
  row(db: string, collection: string, doc: Record<string, unknown>): { row: Row; table: TableSchema } {
    const row: Row = {};
    let sig = `${db}\u0000${collection}`;
    const cols: [string, FieldSchema, string][] = [];
    for (const name of Object.keys(doc)) {
      const v = doc[name];
      if (v === undefined) continue;
      if (name === '_id') {
        row._id = idColumnText(v);
        continue;
      }
      const c = column(v);
      row[name] = c.value;
      cols.push([name, c.schema, c.type]);
      sig += `\u0000${name}\u0001${c.type}`;
    }
    let table = this.shapes.get(sig);
    if (!table) {
      const columns: ColumnInfo[] = [
        { name: '_id', typeOid: 0, typeName: 'id', typeModifier: -1, key: true, optional: false, schema: { type: 'string', optional: false } },
        ...cols.map(([name, schema, type]) => ({ name, typeOid: 0, typeName: type, typeModifier: -1, key: false, optional: true, schema })),
      ];
      table = { schema: db, table: collection, keyColumns: ['_id'], columns };
      this.shapes.set(sig, table);
    }
    this.latest.set(`${db}\u0000${collection}`, table);
    return { row, table };
  }

  /** The schema a delete is written with: the newest shape seen of the collection, else the key alone. */
  keyOnly(db: string, collection: string): TableSchema {
    return this.latest.get(`${db}\u0000${collection}`) ?? this.row(db, collection, { _id: '' }).table;
  }
}
