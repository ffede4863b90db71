/**
 * CDC schemas in Avro: the wire format's framing, the derivation of a table's key and value schemas
 * (Debezium's names and the type mapping of docs/avro.md), their evolution with ALTER TABLE under
 * the built-in registry's compatibility levels, and records framed by Sluice decoded by Apache Avro's
 * Java library (org.apache.avro 1.12 through scripts/avro-reader.sh: header stripped, body decoded
 * with the registered schema) into the values of the JSON events.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseSchema } from '../../src/core/avro/index.ts';
import type { SchemaColumn, SchemaRecord } from '../../src/core/schemas.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { SchemaRegistryClient } from '../../src/schema-registry/client.ts';
import { startRegistryServer, type RegistryServer } from '../../src/schema-registry/server.ts';
import { RegistryStore } from '../../src/schema-registry/store.ts';
import { avroToJson, cdcAvroSchemas, connectToAvroJson, frame, jsonToAvro, registerCdcSchemas, unframe, WireSerde } from '../../src/schema-registry/wire.ts';
import { javaDecodeFramed, toJavaJson } from '../helpers/avro-java.ts';
import { tempDir } from '../helpers/pipeline.ts';

const tmp = tempDir('sluice-registry-cdc-');
let log: Log;
let store: RegistryStore;
let server: RegistryServer;
before(async () => {
  log = await openLog(embeddedLogAt(join(tmp.dir, 'log')));
  store = await RegistryStore.open(log);
  server = await startRegistryServer(store);
});
after(async () => {
  await server.close();
  await store.close();
  await log.close();
  tmp.remove();
});

const col = (name: string, connect: SchemaColumn['connect'], key = false): SchemaColumn => ({ name, sourceType: connect.type, optional: connect.optional, key, connect });

function table(columns: SchemaColumn[]): SchemaRecord {
  return { id: 'x', connector: 'postgresql', topic: 'shop.public.items', schema: 'public', table: 'items', keyColumns: columns.filter((c) => c.key).map((c) => c.name), columns };
}

const ALL_TYPES = table([
  col('id', { type: 'int64', optional: false }, true),
  col('tiny', { type: 'int16', optional: false }),
  col('n', { type: 'int32', optional: true }),
  col('f', { type: 'float', optional: true }),
  col('d', { type: 'double', optional: true }),
  col('ok', { type: 'boolean', optional: false, default: true }),
  col('name', { type: 'string', optional: true }),
  col('blob', { type: 'bytes', optional: true }),
  col('price', { type: 'bytes', optional: true, name: 'org.apache.kafka.connect.data.Decimal', version: 1, parameters: { scale: '2', 'connect.decimal.precision': '10' } }),
  col('day', { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1 }),
  col('at', { type: 'int64', optional: false, name: 'io.debezium.time.MicroTimestamp', version: 1 }),
  col('at_ms', { type: 'int64', optional: true, name: 'io.debezium.time.Timestamp', version: 1 }),
  col('clock', { type: 'int64', optional: true, name: 'io.debezium.time.MicroTime', version: 1 }),
  col('tags', { type: 'array', optional: true, items: { type: 'string', optional: true } }),
  col('status', { type: 'string', optional: true, default: 'new' }),
]);

test('the wire format: magic byte 0, the id big-endian, the body; clear errors on other bytes', () => {
  const f = frame(0x01020304, Buffer.from([9, 8]));
  assert.deepEqual([...f], [0, 1, 2, 3, 4, 9, 8]);
  const { id, body } = unframe(f);
  assert.equal(id, 0x01020304);
  assert.deepEqual([...body], [9, 8]);
  assert.throws(() => unframe(Buffer.from([0, 1])), (e: any) => e.code === 'REGISTRY_WIRE' && /2 bytes is too short/.test(e.message));
  assert.throws(() => unframe(Buffer.from('{"a":1}')), (e: any) => e.code === 'REGISTRY_WIRE' && /starts with byte 123/.test(e.message));
  assert.throws(() => frame(-1, Buffer.alloc(0)), (e: any) => e.code === 'REGISTRY_WIRE');
});

test('derivation: Debezium names, the type mapping, optional columns as unions with null', () => {
  const s = cdcAvroSchemas(ALL_TYPES, 'shop.public.items');
  assert.equal(s.valueSubject, 'shop.public.items-value');
  assert.equal(s.keySubject, 'shop.public.items-key');
  assert.equal(s.value.name, 'shop.public.items.Envelope');
  assert.equal(s.key!.name, 'shop.public.items.Key');
  const env = s.valueJson as any;
  assert.deepEqual(env.fields.map((f: any) => f.name), ['before', 'after', 'source', 'transaction', 'op', 'ts_ms', 'ts_us', 'ts_ns']);
  const before = env.fields[0];
  assert.deepEqual(before.type[0], 'null');
  assert.equal(before.default, null);
  const row = before.type[1];
  assert.equal(row.name, 'Value');
  assert.equal(row.namespace, 'shop.public.items');
  assert.equal(env.fields[1].type[1], 'shop.public.items.Value', 'after refers to the Value record by name');
  assert.equal(env.fields[2].type.name, 'Source');
  assert.equal(env.fields[2].type.namespace, 'io.debezium.connector.common');
  assert.equal(env.fields[3].type[1].name, 'block');
  assert.equal(env.fields[3].type[1].namespace, 'event');
  const f = Object.fromEntries(row.fields.map((x: any) => [x.name, x]));
  assert.deepEqual(f.id, { name: 'id', type: 'long' });
  assert.deepEqual(f.tiny, { name: 'tiny', type: { type: 'int', 'connect.type': 'int16' } });
  assert.deepEqual(f.n, { name: 'n', type: ['null', 'int'], default: null });
  assert.deepEqual(f.f.type, ['null', 'float']);
  assert.deepEqual(f.d.type, ['null', 'double']);
  assert.deepEqual(f.ok, { name: 'ok', type: { type: 'boolean', 'connect.default': true }, default: true });
  assert.deepEqual(f.name.type, ['null', 'string']);
  assert.deepEqual(f.blob.type, ['null', 'bytes']);
  assert.deepEqual(f.price.type[1], { type: 'bytes', scale: 2, precision: 10, 'connect.version': 1, 'connect.parameters': { scale: '2', 'connect.decimal.precision': '10' }, 'connect.name': 'org.apache.kafka.connect.data.Decimal', logicalType: 'decimal' });
  assert.equal(f.day.type[1].logicalType, 'date');
  assert.equal(f.day.type[1].type, 'int');
  assert.deepEqual(f.at.type, { type: 'long', 'connect.version': 1, 'connect.name': 'io.debezium.time.MicroTimestamp', logicalType: 'timestamp-micros' });
  assert.equal(f.at_ms.type[1].logicalType, 'timestamp-millis');
  assert.equal(f.clock.type[1].logicalType, 'time-micros');
  assert.deepEqual(f.tags.type, ['null', { type: 'array', items: ['null', 'string'] }]);
  // an optional column with a non-null default: the default's type first (a union's default is of its first branch)
  assert.deepEqual(f.status, { name: 'status', type: [{ type: 'string', 'connect.default': 'new' }, 'null'], default: 'new' });
  // the key: its columns, never optional
  assert.deepEqual((s.keyJson as any).fields, [{ name: 'id', type: 'long' }]);
  // a table without a key has no key schema
  assert.equal(cdcAvroSchemas(table([col('a', { type: 'string', optional: true })]), 't').key, null);
  // int8 keeps its Connect type too
  assert.deepEqual(connectToAvroJson({ type: 'int8', optional: false }), { type: 'int', 'connect.type': 'int8' });
});

test('ALTER TABLE evolves the schemas under BACKWARD; an incompatible change stops with a clear message', async () => {
  const client = new SchemaRegistryClient({ url: server.url });
  const base = [col('id', { type: 'int64', optional: false }, true), col('name', { type: 'string', optional: true })];
  const v1 = await registerCdcSchemas(client, table(base), 'shop.public.items');
  // the same table again: the same ids, no new version
  const again = await registerCdcSchemas(client, table(base), 'shop.public.items');
  assert.equal(again.valueId, v1.valueId);
  assert.equal(again.keyId, v1.keyId);
  // ADD COLUMN email text (nullable): compatible
  const withEmail = [...base, col('email', { type: 'string', optional: true })];
  const v2 = await registerCdcSchemas(client, table(withEmail), 'shop.public.items');
  assert.notEqual(v2.valueId, v1.valueId);
  assert.equal(v2.keyId, v1.keyId);
  // ADD COLUMN qty int NOT NULL DEFAULT 0: compatible (the default is the Avro default)
  const withQty = [...withEmail, col('qty', { type: 'int32', optional: false, default: 0 })];
  await registerCdcSchemas(client, table(withQty), 'shop.public.items');
  // ADD COLUMN sku text NOT NULL (no default): new readers cannot read old data
  const withSku = [...withQty, col('sku', { type: 'string', optional: false })];
  await assert.rejects(registerCdcSchemas(client, table(withSku), 'shop.public.items'), (e: any) => {
    assert.equal(e.code, 'REGISTRY_INCOMPATIBLE');
    assert.match(e.message, /the columns of table public\.items changed in a way subject shop\.public\.items-value does not allow/);
    assert.match(e.message, /Envelope\.before\.sku: the reader's field "sku" has no default/);
    assert.match(e.message, /give an added NOT NULL column a default/);
    return true;
  });
  // ALTER COLUMN qty TYPE bigint: int → long is a promotion, compatible under BACKWARD
  const qtyLong = [...withEmail, col('qty', { type: 'int64', optional: false, default: 0 })];
  await registerCdcSchemas(client, table(qtyLong), 'shop.public.items');
  // ...and not back (long → int), here along with a compatible change (an identical earlier schema
  // would just answer its registered id, as Confluent's registry does)
  const qtyIntAgain = [...withQty, col('note', { type: 'string', optional: true })];
  await assert.rejects(registerCdcSchemas(client, table(qtyIntAgain), 'shop.public.items'), (e: any) => e.code === 'REGISTRY_INCOMPATIBLE' && /qty: the reader's type int cannot read the writer's long/.test(e.message));
});


test('records Sluice frames decode with Java Avro into the JSON events', async () => {
  const client = new SchemaRegistryClient({ url: server.url });
  const serde = new WireSerde(client);
  const s = cdcAvroSchemas(ALL_TYPES, 'shop.public.all_types');
  const source = { version: '3.1.0', connector: 'postgresql', name: 'shop', ts_ms: 1_764_000_000_000, snapshot: 'false', db: 'shop', sequence: '["1","2"]', ts_us: 1_764_000_000_000_000, ts_ns: null };
  const row = (id: number, extra: Record<string, unknown> = {}) => ({
    id,
    tiny: -7,
    n: 2_147_483_647,
    f: 1.5,
    d: -0.1,
    ok: true,
    name: 'héllo 日本',
    blob: Buffer.from([0, 1, 254, 255]).toString('base64'),
    price: '-12.50',
    day: 20_000,
    at: 1_764_000_000_123_456,
    at_ms: 1_764_000_000_123,
    clock: 86_399_999_999,
    tags: ['a', null, 'c'],
    status: 'new',
    ...extra,
  });
  const events = [
    { before: null, after: row(1), source, transaction: null, op: 'c', ts_ms: 1_764_000_000_500, ts_us: null, ts_ns: null },
    { before: row(1), after: row(1, { name: null, blob: null, price: null, tags: [], status: null, n: null }), source: { ...source, snapshot: 'true' }, transaction: { id: '571:53712', total_order: 1, data_collection_order: 1 }, op: 'u', ts_ms: 1_764_000_000_600, ts_us: 1_764_000_000_600_000, ts_ns: null },
    { before: row(9_007_199_254_740_991), after: null, source, transaction: null, op: 'd', ts_ms: null, ts_us: null, ts_ns: null },
  ];
  const framed: Buffer[] = [];
  for (const e of events) framed.push(await serde.serialize(s.valueSubject, s.value, jsonToAvro(s.value, e)));
  const id = unframe(framed[0]).id;
  // our own reader, knowing only the registry, gives the events back
  for (const [i, f] of framed.entries()) assert.deepEqual(avroToJson((await new WireSerde(new SchemaRegistryClient({ url: server.url })).deserialize(f)).value), events[i]);
  // Java, with the schema the registry holds for the id
  const java = { records: javaDecodeFramed(tmp.dir, 'records', await client.getSchemaText(id), framed) };
  const registered = parseSchema(JSON.parse(await client.getSchemaText(id)));
  assert.deepEqual(java.records.map((x) => x.id), [id, id, id]);
  for (const [i, rec] of java.records.entries()) assert.deepEqual(rec.value, toJavaJson(registered, events[i]));
});
