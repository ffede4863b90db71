/**
 * Our envelope against Debezium's documented PostgreSQL example events (fixtures in
 * test/fixtures/debezium/postgres, see its README for provenance and the values we differ on):
 * same fields, same order, same types, and the schema parts the JsonConverter writes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { ChangeEvent, ColumnInfo, FieldSchema, SourceInfo, TableSchema } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { mysqlDebezium } from '../../src/sources/mysql/debezium.ts';
import { parseJson, parseKey, parseValue } from '../../src/core/serde/parse.ts';
import { writeValue } from '../../src/core/serde/json.ts';
import { SLUICE_VERSION } from '../../src/core/version.ts';

const fixture = (name: string) => readFileSync(`test/fixtures/debezium/postgres/${name}`, 'utf8').trim().replace('"VERSION"', JSON.stringify(SLUICE_VERSION));
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
const source = (ts_us: number, txId: number, lsn: number, sequence: string | null = null): SourceInfo => ({
  version: SLUICE_VERSION,
  connector: 'postgresql',
  name: 'PostgreSQL_server',
  ts_ms: 1559033904863,
  ts_us,
  snapshot: 'false',
  db: 'postgres',
  sequence,
  schema: 'public',
  table: 'customers',
  txId,
  lsn,
  xmin: null,
});
const topic = 'PostgreSQL_server.public.customers';
const opts = { source: postgresDebezium, serverName: 'PostgreSQL_server' } as const;
const plain = new DebeziumJsonSerializer({ ...opts, schemas: false });
const withSchema = new DebeziumJsonSerializer({ ...opts, schemas: true });

const create: ChangeEvent = { topic, key: { id: 1 }, before: null, after: anne, source: source(1559033904863123, 555, 24023128, '["24023119","24023128"]'), op: 'c', ts_ms: 1559033904863, table: customers };
const update: ChangeEvent = { ...create, before: { id: 1 }, after: { ...anne, first_name: 'Anne Marie' }, op: 'u', ts_ms: 1465584025523, source: source(1559033904863769, 556, 24023128) };
const updateFull: ChangeEvent = { ...update, before: anne };
const del: ChangeEvent = { ...create, before: { id: 1 }, after: null, op: 'd', ts_ms: 1465581902461, source: source(1559033904863852, 556, 46523128) };
const trunc: ChangeEvent = { ...create, key: null, before: null, after: null, op: 't', ts_ms: 1559033904961, source: source(1559033904863112, 556, 46523128) };

/** Field for field (parsed), then byte for byte (which also checks the key order at every level). */
function sameJson(actual: Buffer | string | null, expected: string, what: string) {
  assert.ok(actual !== null, `${what}: got null`);
  const text = actual.toString();
  assert.deepEqual(JSON.parse(text), JSON.parse(expected), what);
  assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(JSON.parse(expected)), `${what}: top-level key order`);
  assert.equal(text, expected, `${what}: field order / formatting`);
}

describe('Debezium JSON envelope against the documented PostgreSQL examples', () => {
  it('create: value payload, key with and without schema', () => {
    sameJson(plain.value(create), fixture('create.value.json'), 'create value');
    const v = JSON.parse(plain.value(create).toString());
    assert.deepEqual(Object.keys(v), ['before', 'after', 'source', 'op', 'ts_ms', 'ts_us', 'ts_ns', 'transaction']);
    assert.deepEqual(Object.keys(v.source), ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'ts_us', 'ts_ns', 'schema', 'table', 'txId', 'lsn', 'xmin']);
    sameJson(withSchema.key(create), fixture('create.key.json'), 'create key');
    assert.equal(plain.key(create)!.toString(), '{"id":1}');
  });

  it('create with schemas: {schema, payload} with the Envelope schema part', () => {
    const text = withSchema.value(create).toString();
    assert.equal(text, `{"schema":${fixture('create.value-schema.json')},"payload":${fixture('create.value.json')}}`);
    // The same schema part for every event of the table (cached, and independent of the op).
    assert.equal(JSON.parse(withSchema.value(del).toString()).schema.name, `${topic}.Envelope`);
    assert.deepEqual(JSON.parse(withSchema.value(del).toString()).schema, JSON.parse(fixture('create.value-schema.json')));
  });

  it('update (DEFAULT replica identity: key-only before) and update with REPLICA IDENTITY FULL', () => {
    sameJson(plain.value(update), fixture('update.value.json'), 'update');
    sameJson(plain.value(updateFull), fixture('update-full.value.json'), 'update FULL');
  });

  it('delete, then its tombstone with the same key', () => {
    sameJson(plain.value(del), fixture('delete.value.json'), 'delete');
    const t = withSchema.tombstone(del);
    assert.ok(t);
    assert.equal(t.value, null);
    assert.deepEqual(t.key, withSchema.key(del));
    sameJson(t.key, fixture('create.key.json'), 'tombstone key');
    assert.equal(plain.tombstone(create), null, 'only deletes have tombstones');
    assert.equal(plain.tombstone({ ...del, key: null }), null, 'keyless rows have no tombstone');
  });

  it('truncate: null key, null before/after', () => {
    sameJson(plain.value(trunc), fixture('truncate.value.json'), 'truncate');
    assert.equal(plain.key(trunc), null);
    assert.equal(withSchema.key({ ...trunc, key: { id: 1 } }), null, 'truncate keys are null even if a key was set');
  });

  it('transaction block on data events', () => {
    const ev: ChangeEvent = {
      ...create,
      key: { id: 2 },
      after: { id: 2, first_name: 'Sally', last_name: 'Thomas', email: 'sally.thomas@acme.com' },
      ts_ms: 1580390884335,
      source: source(1559033904863123, 571, 53195832),
      transaction: { id: '571:53195832', total_order: 1, data_collection_order: 1 },
    };
    sameJson(plain.value(ev), fixture('create-tx.value.json'), 'create with transaction');
  });

  it('transaction metadata BEGIN/END events for <prefix>.transaction', () => {
    assert.equal(plain.transactionTopic, 'PostgreSQL_server.transaction');
    const begin = { status: 'BEGIN' as const, id: '571:53195829', ts_ms: 1486500577125 };
    const end = { status: 'END' as const, id: '571:53195832', event_count: 2, data_collections: [{ data_collection: 's1.a', event_count: 1 }, { data_collection: 's2.a', event_count: 1 }], ts_ms: 1486500577691 };
    sameJson(plain.transactionEvent(begin), fixture('transaction-begin.value.json'), 'BEGIN');
    sameJson(plain.transactionEvent(end), fixture('transaction-end.value.json'), 'END');
    assert.equal(plain.transactionKey(end).toString(), '{"id":"571:53195832"}');
    assert.equal(withSchema.transactionKey(end).toString(), `{"schema":${fixture('transaction.key-schema.json')},"payload":{"id":"571:53195832"}}`);
    assert.equal(withSchema.transactionEvent(end).toString(), `{"schema":${fixture('transaction.value-schema.json')},"payload":${fixture('transaction-end.value.json')}}`);
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
      col('f', opt('float64')),
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
    assert.equal(a.source.lsn, 24023128);
    assert.equal(a.ts_ns, 1559033904863000000n, 'ts_ns exceeds 2^53 and stays exact');
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
    // Whole documented events parse back to what JSON.parse gives (all values are small there).
    for (const e of [create, update, del, trunc]) {
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
  });
});
