/**
 * Our envelope against events Debezium's own PostgreSQL connector wrote (3.4, through Kafka
 * Connect's JsonConverter with schemas enabled and disabled; captured unchanged into
 * test/fixtures/debezium/postgres/events.jsonl by test/debezium/capture-fixtures.ts): the same
 * changes as ChangeEvents, serialized, give the same bytes but for the differences kept on purpose
 * (docs/events.md): source.version and the envelope's processing times. Then the values, schema
 * parts and the parser, and the MySQL source block.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { ChangeEvent, ColumnInfo, FieldSchema, Row, SourceInfo, TableSchema, TransactionInfo } from '../../src/core/event.ts';
import { DebeziumJsonSerializer, type TransactionMetadataEvent } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { connectorName, mysqlDebezium } from '../../src/sources/mysql/debezium.ts';
import { parseJson, parseKey, parseValue } from '../../src/core/serde/parse.ts';
import { writeValue } from '../../src/core/serde/json.ts';
import { SLUICE_VERSION } from '../../src/core/version.ts';

interface PeerRecord {
  topic: string;
  key: string | null;
  value: string | null;
  keyPlain: string | null;
  valuePlain: string | null;
}
const recorded: PeerRecord[] = readFileSync('test/fixtures/debezium/postgres/events.jsonl', 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l));

const col = (name: string, schema: FieldSchema, key = false): ColumnInfo => ({ name, typeOid: 0, typeName: schema.type, typeModifier: -1, key, optional: schema.optional, schema });
const req = (type: FieldSchema['type']): FieldSchema => ({ type, optional: false });
const opt = (type: FieldSchema['type'], extra: Partial<FieldSchema> = {}): FieldSchema => ({ type, optional: true, ...extra });
const customers: TableSchema = {
  schema: 'public',
  table: 'customers',
  columns: [col('id', req('int32'), true), col('first_name', req('string')), col('last_name', req('string')), col('email', req('string'))],
  keyColumns: ['id'],
};
const anne = { id: 1, first_name: 'Anne', last_name: 'Kretchmar', email: 'annek@noanswer.org' };
const topic = 'PostgreSQL_server.public.customers';
const opts = { source: postgresDebezium, serverName: 'PostgreSQL_server' } as const;
const plain = new DebeziumJsonSerializer({ ...opts, schemas: false });
const withSchema = new DebeziumJsonSerializer({ ...opts, schemas: true });

/** The rows of the recorded changes, in order (what the PostgreSQL source decodes for each). */
const changes: { op: ChangeEvent['op']; key: Row | null; before: Row | null; after: Row | null }[] = [
  { op: 'c', key: { id: 1 }, before: null, after: anne },
  // Default replica identity: PostgreSQL sends no old row for an update that keeps the key.
  { op: 'u', key: { id: 1 }, before: null, after: { ...anne, first_name: 'Anne Marie' } },
  { op: 'u', key: { id: 1 }, before: { ...anne, first_name: 'Anne Marie' }, after: anne },
  // A delete's old row has the key only; the NOT NULL columns hold their type's zero (no default).
  { op: 'd', key: { id: 1 }, before: { id: 1, first_name: '', last_name: '', email: '' }, after: null },
  { op: 'c', key: { id: 2 }, before: null, after: { id: 2, first_name: 'Sally', last_name: 'Thomas', email: 'sally.thomas@acme.com' } },
  { op: 'c', key: { id: 3 }, before: null, after: { id: 3, first_name: 'George', last_name: 'Bailey', email: 'gbailey@foobar.com' } },
  { op: 't', key: null, before: null, after: null },
];

/** The event Sluice builds for a recorded record: its rows from `changes`, the source values Debezium recorded. */
function eventFor(rec: PeerRecord, i: number): ChangeEvent {
  const v = JSON.parse(rec.valuePlain!);
  const source = { ...v.source, version: SLUICE_VERSION } as SourceInfo;
  delete source.ts_ns;
  return { topic, ...changes[i], source, ts_ms: v.ts_ms, transaction: v.transaction as TransactionInfo | null, table: customers };
}

/** Debezium's bytes with the documented differences applied: Sluice's version; processing time in ms. */
function expected(text: string): string {
  return text
    .replace(/"version":"[^"]*","connector"/, `"version":${JSON.stringify(SLUICE_VERSION)},"connector"`)
    .replace(/"ts_ms":(\d+),"ts_us":\d+,"ts_ns":\d+\}(\}?)$/, '"ts_ms":$1,"ts_us":$1000,"ts_ns":$1000000}$2');
}

const data = recorded.filter((r) => r.topic === topic && r.value !== null);
const events = data.map(eventFor);
const create = events[0];
const del = events[3];
const trunc = events[6];

describe('Debezium JSON envelope against events Debezium wrote', () => {
  it('the recording has what the tests below need', () => {
    assert.equal(data.length, changes.length);
    assert.deepEqual(data.map((r) => JSON.parse(r.valuePlain!).op), changes.map((c) => c.op));
  });

  it('every event, key and value, with and without the schema part, byte for byte', () => {
    for (let i = 0; i < data.length; i++) {
      const what = `${changes[i].op} event ${i}`;
      assert.equal(plain.valueString(events[i]), expected(data[i].valuePlain!), `${what}: value, schemas disabled`);
      assert.equal(withSchema.valueString(events[i]), expected(data[i].value!), `${what}: value, schemas enabled`);
      assert.equal(plain.keyString(events[i]), data[i].keyPlain, `${what}: key, schemas disabled`);
      assert.equal(withSchema.keyString(events[i]), data[i].key, `${what}: key, schemas enabled`);
    }
    const v = JSON.parse(plain.valueString(create));
    assert.deepEqual(Object.keys(v), ['before', 'after', 'source', 'transaction', 'op', 'ts_ms', 'ts_us', 'ts_ns']);
  });

  it('events whose times repeat or change in any one part give the bytes a new serializer gives', () => {
    // The serializer keeps the texts of the last times it wrote; a change in any of them (the source's
    // ts_ms, ts_us, ts_ns; the event's ts_ms or op) must show, a repeat must not alter anything.
    const warm = new DebeziumJsonSerializer({ ...opts, schemas: false });
    const variants: ChangeEvent[] = [];
    for (const e of events) {
      variants.push(e, e, { ...e, ts_ms: e.ts_ms + 1 }, { ...e, op: e.op === 'c' ? 'u' : 'c' });
      variants.push({ ...e, source: { ...e.source, ts_ms: e.source.ts_ms + 7 } });
      variants.push({ ...e, source: { ...e.source, ts_us: e.source.ts_ms * 1000 + 123 } });
      variants.push({ ...e, source: { ...e.source, ts_us: e.source.ts_ms * 1000 + 123, ts_ns: e.source.ts_ms * 1_000_000 + 123_456 } });
      variants.push({ ...e, source: { ...e.source, snapshot: 'last_in_data_collection' } }, e);
    }
    for (const [i, e] of [...variants, ...variants.reverse()].entries()) {
      assert.equal(warm.valueString(e), new DebeziumJsonSerializer({ ...opts, schemas: false }).valueString(e), `variant ${i}`);
    }
  });

  it('a delete is followed by its tombstone: the same key, a null value', () => {
    const i = recorded.findIndex((r) => r.topic === topic && r.valuePlain?.includes('"op":"d"'));
    const tomb = recorded[i + 1];
    assert.equal(tomb.value, null);
    const t = withSchema.tombstone(del);
    assert.ok(t);
    assert.equal(t.value, null);
    assert.equal(t.key.toString(), tomb.key);
    assert.equal(plain.tombstone(create), null, 'only deletes have tombstones');
    assert.equal(plain.tombstone({ ...del, key: null }), null, 'keyless rows have no tombstone');
    assert.equal(withSchema.key({ ...trunc, key: { id: 1 } }), null, 'truncate keys are null even if a key was set');
  });

  it('transaction metadata BEGIN/END records for <prefix>.transaction, key and value, with and without the schema part', () => {
    assert.equal(plain.transactionTopic, 'PostgreSQL_server.transaction');
    const tx = recorded.filter((r) => r.topic === 'PostgreSQL_server.transaction');
    assert.ok(tx.length >= 12);
    for (const r of tx) {
      const ev = JSON.parse(r.valuePlain!) as TransactionMetadataEvent;
      assert.equal(plain.transactionEvent(ev).toString(), r.valuePlain);
      assert.equal(withSchema.transactionEvent(ev).toString(), r.value);
      assert.equal(plain.transactionKey(ev).toString(), r.keyPlain);
      assert.equal(withSchema.transactionKey(ev).toString(), r.key);
    }
  });
});

describe('Debezium JSON values and schema parts', () => {
  const typed: TableSchema = {
    schema: 'public',
    table: 'typed',
    keyColumns: ['id'],
    columns: [
      col('id', req('int64'), true),
      col('b', opt('bytes')),
      col('s', opt('string')),
      col('f', opt('double')),
      col('price', opt('string')), // numeric with decimal.handling.mode=string
      col('ts', opt('int64', { name: 'io.debezium.time.MicroTimestamp', version: 1 })),
      col('tstz', opt('string', { name: 'io.debezium.time.ZonedTimestamp', version: 1 })),
      col('d', opt('int32', { name: 'io.debezium.time.Date', version: 1 })),
      col('t', opt('int64', { name: 'io.debezium.time.MicroTime', version: 1 })),
      col('j', opt('string', { name: 'io.debezium.data.Json', version: 1 })),
      col('u', opt('string', { name: 'io.debezium.data.Uuid', version: 1 })),
      col('mood', opt('string', { name: 'io.debezium.data.Enum', version: 1, parameters: { allowed: 'sad,ok,happy' } })),
      col('tags', opt('array', { items: opt('string') })),
      col('n', { type: 'int32', optional: false, default: 0 }),
    ],
  };
  const s = '"quote" \\ / \n\r\t\b\f\u0000\u0001\u001f\u007f\u2028\u2029 é 😀 \ud800 lone';
  const row = {
    id: 9223372036854775807n,
    b: Buffer.from([0, 1, 254, 255]),
    s,
    f: Number.NaN,
    price: '12345678901234567890.123456789',
    ts: 1700000000123456,
    tstz: '2023-11-14T22:13:20.123456Z',
    d: 19675,
    t: 45296789012,
    j: '{"a": [1, 2]}',
    u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    mood: 'happy',
    tags: ['x', 'y'],
    n: 7,
  };
  const ev: ChangeEvent = { ...create, topic: 'PostgreSQL_server.public.typed', table: typed, key: { id: row.id }, after: row };

  it('keeps int64 exact in the raw bytes, bytes as base64, NaN as "NaN", strings escaped like JSON.stringify', () => {
    const v = plain.value(ev).toString();
    assert.ok(v.includes('"id":9223372036854775807,'), 'int64 max written with every digit');
    assert.ok(v.includes('"b":"AAH+/w=="'));
    assert.ok(v.includes(`"s":${JSON.stringify(s)}`), 'escaping identical to JSON.stringify');
    assert.ok(v.includes('"f":"NaN"'));
    assert.ok(v.includes('"price":"12345678901234567890.123456789"'));
    assert.equal(plain.key(ev)!.toString(), '{"id":9223372036854775807}');
    assert.equal(writeValue(-9223372036854775808n), '-9223372036854775808');
    assert.equal(writeValue([Infinity, -Infinity, 1.5, -0, [], {}]), '["Infinity","-Infinity",1.5,0,[],{}]');
    assert.equal(writeValue({ 'we"ird\n': 1, é: [null, true] }), JSON.stringify({ 'we"ird\n': 1, é: [null, true] }));
  });

  it('writes every logical type name, parameters, array items and defaults in the schema part', () => {
    const v = JSON.parse(withSchema.value(ev).toString());
    const after = v.schema.fields.find((f: { field: string }) => f.field === 'after');
    const byName = Object.fromEntries(after.fields.map((f: { field: string }) => [f.field, f]));
    assert.deepEqual(byName.id, { type: 'int64', optional: false, field: 'id' });
    assert.deepEqual(byName.b, { type: 'bytes', optional: true, field: 'b' });
    assert.deepEqual(byName.price, { type: 'string', optional: true, field: 'price' });
    assert.deepEqual(byName.ts, { type: 'int64', optional: true, name: 'io.debezium.time.MicroTimestamp', version: 1, field: 'ts' });
    assert.deepEqual(byName.tstz, { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'tstz' });
    assert.deepEqual(byName.d, { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1, field: 'd' });
    assert.deepEqual(byName.t, { type: 'int64', optional: true, name: 'io.debezium.time.MicroTime', version: 1, field: 't' });
    assert.deepEqual(byName.j, { type: 'string', optional: true, name: 'io.debezium.data.Json', version: 1, field: 'j' });
    assert.deepEqual(byName.u, { type: 'string', optional: true, name: 'io.debezium.data.Uuid', version: 1, field: 'u' });
    assert.deepEqual(byName.mood, { type: 'string', optional: true, name: 'io.debezium.data.Enum', version: 1, parameters: { allowed: 'sad,ok,happy' }, field: 'mood' });
    assert.deepEqual(byName.tags, { type: 'array', items: { type: 'string', optional: true }, optional: true, field: 'tags' });
    assert.deepEqual(byName.n, { type: 'int32', optional: false, default: 0, field: 'n' });
    // Key order inside a field schema is the JsonConverter's.
    assert.deepEqual(Object.keys(byName.mood), ['type', 'optional', 'name', 'version', 'parameters', 'field']);
    assert.deepEqual(Object.keys(byName.tags), ['type', 'items', 'optional', 'field']);
    const key = JSON.parse(withSchema.key(ev)!.toString());
    assert.deepEqual(key.schema, { type: 'struct', fields: [{ type: 'int64', optional: false, field: 'id' }], optional: false, name: 'PostgreSQL_server.public.typed.Key' });
  });

  it('round-trips through parse.ts, with and without the schema part', () => {
    const expectRow = { ...row, f: Number.NaN, ts: BigInt(row.ts), t: BigInt(row.t) };
    const a = parseValue(withSchema.value(ev))!;
    assert.deepEqual(a.after, expectRow);
    assert.ok(Buffer.isBuffer(a.after!.b));
    assert.equal(a.op, 'c');
    assert.equal(a.source.lsn, create.source.lsn);
    assert.equal(a.ts_ns, BigInt(create.ts_ms) * 1000000n, 'ts_ns exceeds 2^53 and stays exact');
    assert.deepEqual(parseKey(withSchema.key(ev)), { id: 9223372036854775807n });
    // Schemaless: the table supplies the schema.
    const b = parseValue(plain.value(ev), { table: typed })!;
    assert.deepEqual(b.after, expectRow);
    assert.deepEqual(parseKey(plain.key(ev), { table: typed }), { id: 9223372036854775807n });
    // Schemaless without a table: safe integers are numbers, others bigint; bytes stay base64.
    const c = parseValue(plain.value(ev))!;
    assert.equal(c.after!.id, 9223372036854775807n);
    assert.equal(c.after!.ts, row.ts);
    assert.equal(c.after!.b, 'AAH+/w==');
    assert.equal(c.after!.s, s);
    // Whole recorded events parse back to what JSON.parse gives (all values are small there).
    for (const e of events) {
      const parsed = parseValue(plain.value(e)) as unknown as Record<string, unknown>;
      const viaJson = JSON.parse(plain.value(e).toString());
      viaJson.ts_ns = BigInt(`${e.ts_ms}000000`);
      viaJson.source.ts_ns = BigInt(viaJson.source.ts_us) * 1000n;
      assert.deepEqual(parsed, viaJson);
    }
    assert.equal(parseValue(null), null, 'tombstone');
  });

  it('parseJson rejects malformed input with a coded error and handles escapes', () => {
    assert.deepEqual(parseJson('{"a":"\\u00e9\\n","b":[1,-2.5e3,true,null],"c":-9007199254740993}'), { a: 'é\n', b: [1, -2500, true, null], c: -9007199254740993n });
    for (const bad of ['{"a":1,}', '[1 2]', '"abc', '{"a":tru}', '1 2', '-', '{"a":"x\ny"}']) {
      assert.throws(() => parseJson(bad), (e: Error & { code?: string }) => e.code === 'SERDE_BAD_JSON', bad);
    }
  });

  it('MySQL events carry Debezium MySQL\'s source block, in its field order, in payload and schema', () => {
    const mysqlSer = new DebeziumJsonSerializer({ source: mysqlDebezium, serverName: 'mysql-server-1', schemas: true });
    const t: TableSchema = { ...customers, schema: 'inventory' };
    const ev: ChangeEvent = {
      topic: 'mysql-server-1.inventory.customers',
      key: { id: 1004 },
      before: null,
      after: { ...anne, id: 1004 },
      op: 'c',
      ts_ms: 1465491411815,
      table: t,
      source: { version: SLUICE_VERSION, connector: 'mysql', name: 'mysql-server-1', ts_ms: 1465491411000, snapshot: 'false', db: 'inventory', sequence: null, schema: 'inventory', table: 'customers', server_id: 223344, gtid: '0-223344-7', file: 'mysql-bin.000003', pos: 154, row: 0, thread: 7, query: null },
    };
    const v = JSON.parse(mysqlSer.valueString(ev));
    const src = v.payload.source;
    assert.deepEqual(Object.keys(src), ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'ts_us', 'ts_ns', 'table', 'server_id', 'gtid', 'file', 'pos', 'row', 'thread', 'query']);
    assert.deepEqual(
      { connector: src.connector, db: src.db, table: src.table, server_id: src.server_id, gtid: src.gtid, file: src.file, pos: src.pos, row: src.row, thread: src.thread, ts_us: src.ts_us },
      { connector: 'mysql', db: 'inventory', table: 'customers', server_id: 223344, gtid: '0-223344-7', file: 'mysql-bin.000003', pos: 154, row: 0, thread: 7, ts_us: 1465491411000000 },
    );
    const srcSchema = v.schema.fields.find((f: { field: string }) => f.field === 'source');
    assert.equal(srcSchema.name, 'io.debezium.connector.mysql.Source');
    assert.deepEqual(
      srcSchema.fields.map((f: { field: string; type: string; optional: boolean }) => `${f.field}:${f.type}${f.optional ? '?' : ''}`),
      ['version:string', 'connector:string', 'name:string', 'ts_ms:int64', 'snapshot:string?', 'db:string', 'sequence:string?', 'ts_us:int64?', 'ts_ns:int64?', 'table:string?', 'server_id:int64', 'gtid:string?', 'file:string', 'pos:int64', 'row:int32', 'thread:int64?', 'query:string?'],
    );
    assert.equal(v.schema.name, 'mysql-server-1.inventory.customers.Envelope');
    // MariaDB's events (Debezium 3's MariaDB connector): connector `mariadb`, its own Source schema name, the same fields.
    const m = JSON.parse(mysqlSer.valueString({ ...ev, source: { ...ev.source, connector: 'mariadb' } }));
    assert.equal(m.payload.source.connector, 'mariadb');
    const mSchema = m.schema.fields.find((f: { field: string }) => f.field === 'source');
    assert.equal(mSchema.name, 'io.debezium.connector.mariadb.Source');
    assert.deepEqual(mSchema.fields, srcSchema.fields);
    assert.equal(connectorName({ mariadbConnector: 'mariadb' }, true), 'mariadb');
    assert.equal(connectorName({ mariadbConnector: 'mysql' }, true), 'mysql');
    assert.equal(connectorName({ mariadbConnector: 'mariadb' }, false), 'mysql', 'a MySQL server is always mysql');
  });
});
