/**
 * Interop with a real external registry: Apicurio Registry (io.apicurio:apicurio-registry-app from
 * Maven Central, started by scripts/apicurio.sh with in-memory storage), through its
 * Confluent-compatible API (/apis/ccompat/v7). Sluice's client registers and reads schemas there,
 * a CDC schema derived from a table is accepted by Apicurio's Avro parser, its compatibility rule
 * refuses what ours refuses, and records framed with Apicurio's ids decode again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { AvroCodec, parseSchemaText, stringifySchema } from '../../src/core/avro/index.ts';
import type { SchemaRecord } from '../../src/core/schemas.ts';
import { SchemaRegistryClient, registryErrorCode } from '../../src/schema-registry/client.ts';
import { avroToJson, cdcAvroSchemas, jsonToAvro, WireSerde } from '../../src/schema-registry/wire.ts';
import { freePort } from '../helpers/pipeline.ts';

let apicurio: ChildProcess;
let url: string;
let stderr = '';


before(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  // `run` execs java in the foreground: killing this child stops Apicurio.
  apicurio = spawn('bash', ['scripts/apicurio.sh', 'run', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  apicurio.stderr!.on('data', (d) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const deadline = Date.now() + 300_000; // the first run fetches ~160 MB from Maven Central
  for (;;) {
    if (apicurio.exitCode !== null) throw new Error(`Apicurio exited with ${apicurio.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${url}/subjects`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`Apicurio did not answer on ${url}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 500));
  }
});

after(async () => {
  if (apicurio && apicurio.exitCode === null) {
    const exited = new Promise((r) => apicurio.once('exit', r));
    apicurio.kill('SIGTERM');
    const t = setTimeout(() => apicurio.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(t);
  }
});

const user = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'User', namespace: 'shop', fields });
const U1 = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }]);
const U2 = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }]);
const U3_BAD = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'age', type: 'int' }]);

test('register, same schema same id, get by id, latest, versions', async () => {
  const client = new SchemaRegistryClient({ url });
  const id = await client.register('users-value', U1);
  assert.ok(Number.isInteger(id));
  // a fresh client (no cache) gets the same id for the same schema
  const other = new SchemaRegistryClient({ url });
  assert.equal(await other.register('users-value', U1), id);
  assert.equal(stringifySchema(await other.getById(id)), stringifySchema(parseSchemaText(U1)));
  const latest = await other.latest('users-value');
  assert.equal(latest.id, id);
  assert.equal(latest.version, 1);
  assert.deepEqual(await other.subjects(), ['users-value']);
  const id2 = await other.register('users-value', U2);
  assert.notEqual(id2, id);
  assert.deepEqual(await other.versions('users-value'), [1, 2]);
  await assert.rejects(other.latest('missing-value'), (e: any) => e.code === 'REGISTRY_HTTP' && registryErrorCode(e) === 40401 && e.message.includes(url));
});

test('compatibility under BACKWARD: Apicurio refuses what Sluice refuses', async () => {
  const client = new SchemaRegistryClient({ url });
  await client.setCompatibilityLevel('BACKWARD', 'users-value');
  assert.equal(await client.compatibilityLevel('users-value'), 'BACKWARD');
  assert.deepEqual((await client.checkCompatibility('users-value', U3_BAD, 'latest')).compatible, false);
  assert.deepEqual((await client.checkCompatibility('users-value', U2, 'latest')).compatible, true);
  await assert.rejects(client.register('users-value', U3_BAD), (e: any) => e.code === 'REGISTRY_HTTP' && registryErrorCode(e) === 409 && e.retriable === false);
});

test('a CDC schema derived from a table registers in Apicurio, and framed records round-trip', async () => {
  const rec: SchemaRecord = {
    id: 'x',
    connector: 'postgresql',
    topic: 'shop.public.orders',
    schema: 'public',
    table: 'orders',
    keyColumns: ['id'],
    columns: [
      { name: 'id', sourceType: 'int8', optional: false, key: true, connect: { type: 'int64', optional: false } },
      { name: 'qty', sourceType: 'int2', optional: true, key: false, connect: { type: 'int16', optional: true } },
      { name: 'note', sourceType: 'text', optional: true, key: false, connect: { type: 'string', optional: true } },
      { name: 'price', sourceType: 'numeric(10,2)', optional: true, key: false, connect: { type: 'bytes', optional: true, name: 'org.apache.kafka.connect.data.Decimal', version: 1, parameters: { scale: '2', 'connect.decimal.precision': '10' } } },
      { name: 'created', sourceType: 'timestamp', optional: false, key: false, connect: { type: 'int64', optional: false, name: 'io.debezium.time.MicroTimestamp', version: 1 } },
    ],
  };
  const schemas = cdcAvroSchemas(rec, rec.topic);
  const client = new SchemaRegistryClient({ url });
  const serde = new WireSerde(client);
  const event = {
    before: null,
    after: { id: 7, qty: 3, note: 'gift', price: '12.50', created: 1_700_000_000_000_000 },
    source: { version: '3.1.0', connector: 'postgresql', name: 'shop', ts_ms: 1_700_000_000_000, snapshot: 'false', db: 'shop', sequence: null, ts_us: null, ts_ns: null },
    transaction: null,
    op: 'c',
    ts_ms: 1_700_000_000_123,
    ts_us: null,
    ts_ns: null,
  };
  const framed = await serde.serialize(schemas.valueSubject, schemas.value, jsonToAvro(schemas.value, event));
  assert.equal(framed[0], 0);
  const id = framed.readUInt32BE(1);
  assert.equal((await client.latest(schemas.valueSubject)).id, id);
  // a reader that knows nothing but the registry
  const reader = new WireSerde(new SchemaRegistryClient({ url }));
  const back = await reader.deserialize(framed);
  assert.equal(back.id, id);
  assert.deepEqual(avroToJson(back.value), event);
  // Apicurio's copy of the schema decodes the body too
  const fromApicurio = new AvroCodec(await client.getById(id));
  assert.deepEqual(avroToJson(fromApicurio.decode(framed.subarray(5))), event);
  // the key
  const keyFramed = await serde.serialize(schemas.keySubject, schemas.key!, { id: 7 });
  assert.deepEqual((await reader.deserialize(keyFramed)).value, { id: 7 });
});
