/**
 * The built-in schema registry over HTTP, on an embedded log in a temp dir: Confluent's API as
 * serializers and tools call it, its error answers, and its state rebuilt from the log topic.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request as httpRequest } from 'node:http';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { SchemaRegistryClient, registryErrorCode } from '../../src/schema-registry/client.ts';
import { startRegistryServer, type RegistryServer } from '../../src/schema-registry/server.ts';
import { DEFAULT_SCHEMA_TOPIC, RegistryStore } from '../../src/schema-registry/store.ts';
import { tempDir } from '../helpers/pipeline.ts';

const CT = 'application/vnd.schemaregistry.v1+json';
const tmp = tempDir('sluice-registry-');
let log: Log;
let store: RegistryStore;
let server: RegistryServer;

async function start(): Promise<void> {
  log = await openLog(embeddedLogAt(tmp.dir));
  store = await RegistryStore.open(log);
  server = await startRegistryServer(store);
}

async function stop(): Promise<void> {
  await server.close();
  await store.close();
  await log.close();
}

before(start);
after(async () => {
  await stop();
  tmp.remove();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; type: string }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { 'content-type': CT, ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, type: res.headers.get('content-type') ?? '' };
}

const user = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'User', namespace: 'shop', fields });
const U1 = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }]);
const U2 = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }]);
const U3_BAD = user([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }, { name: 'age', type: 'int' }]);

test('register, the same schema gets the same id (in any layout), versions and lookups', async () => {
  const r1 = await call('POST', '/subjects/users-value/versions', { schema: U1 });
  assert.equal(r1.status, 200);
  assert.equal(r1.type, CT);
  assert.deepEqual(r1.json, { id: 1 });
  // the same schema, written another way (whitespace, key order, the namespace in the name)
  const relaid = JSON.stringify({ fields: [{ type: 'long', name: 'id' }, { name: 'name', type: 'string' }], name: 'shop.User', type: 'record' }, null, 2);
  assert.deepEqual((await call('POST', '/subjects/users-value/versions', { schema: relaid, schemaType: 'AVRO' })).json, { id: 1 });
  // another subject: the same id (ids are global)
  assert.deepEqual((await call('POST', '/subjects/other-value/versions', { schema: U1 })).json, { id: 1 });
  assert.deepEqual((await call('GET', '/subjects/users-value/versions')).json, [1]);
  const v1 = await call('GET', '/subjects/users-value/versions/1');
  assert.deepEqual(v1.json, { subject: 'users-value', version: 1, id: 1, schema: JSON.stringify(JSON.parse(U1)) });
  assert.deepEqual((await call('GET', '/subjects/users-value/versions/latest/schema')).json, JSON.parse(U1));
  assert.deepEqual((await call('GET', '/schemas/ids/1')).json, { schema: v1.json.schema });
  assert.deepEqual((await call('GET', '/schemas/ids/1/versions')).json, [{ subject: 'other-value', version: 1 }, { subject: 'users-value', version: 1 }]);
  const look = await call('POST', '/subjects/users-value', { schema: relaid });
  assert.deepEqual(look.json, { subject: 'users-value', id: 1, version: 1, schema: v1.json.schema });
  // application/json is taken as well
  assert.equal((await call('POST', '/subjects/users-value', { schema: U1 }, { 'content-type': 'application/json' })).status, 200);
  assert.deepEqual((await call('GET', '/subjects')).json, ['other-value', 'users-value']);
});

test('evolution under BACKWARD: a field with a default is fine, one without is 409 with the reason', async () => {
  assert.deepEqual((await call('GET', '/config')).json, { compatibilityLevel: 'BACKWARD' });
  assert.deepEqual((await call('POST', '/subjects/users-value/versions', { schema: U2 })).json, { id: 2 });
  assert.deepEqual((await call('GET', '/subjects/users-value/versions')).json, [1, 2]);
  assert.equal((await call('GET', '/subjects/users-value/versions/latest')).json.version, 2);
  const check = await call('POST', '/compatibility/subjects/users-value/versions/latest?verbose=true', { schema: U3_BAD });
  assert.equal(check.status, 200);
  assert.equal(check.json.is_compatible, false);
  assert.match(check.json.messages.join(), /User\.age: the reader's field "age" has no default/);
  assert.deepEqual((await call('POST', '/compatibility/subjects/users-value/versions/latest', { schema: U2 })).json, { is_compatible: true });
  const bad = await call('POST', '/subjects/users-value/versions', { schema: U3_BAD });
  assert.equal(bad.status, 409);
  assert.equal(bad.json.error_code, 409);
  assert.match(bad.json.message, /incompatible .*"users-value".*BACKWARD: the new schema cannot read data written with version 2: at User\.age: the reader's field "age" has no default/);
  // the client says the same, as REGISTRY_HTTP with the code
  const client = new SchemaRegistryClient({ url: server.url });
  await assert.rejects(client.register('users-value', U3_BAD), (e: any) => e.code === 'REGISTRY_HTTP' && registryErrorCode(e) === 409 && /HTTP 409 error 409: .*age/.test(e.message) && e.message.includes(server.url));
  const answer = await client.checkCompatibility('users-value', U3_BAD, 'latest');
  assert.equal(answer.compatible, false);
});

test('config per subject, and transitive levels', async () => {
  // t-value: v1 {id}, v2 {id, x default 0}; then {id, x} (no default) reads v2 data but not v1's
  const t = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'T', fields });
  await call('POST', '/subjects/t-value/versions', { schema: t([{ name: 'id', type: 'long' }]) });
  await call('POST', '/subjects/t-value/versions', { schema: t([{ name: 'id', type: 'long' }, { name: 'x', type: 'int', default: 0 }]) });
  const v3 = t([{ name: 'id', type: 'long' }, { name: 'x', type: 'int' }]);
  assert.equal((await call('GET', '/config/t-value')).json.error_code, 40408);
  assert.deepEqual((await call('GET', '/config/t-value?defaultToGlobal=true')).json, { compatibilityLevel: 'BACKWARD' });
  assert.deepEqual((await call('PUT', '/config/t-value', { compatibility: 'BACKWARD_TRANSITIVE' })).json, { compatibility: 'BACKWARD_TRANSITIVE' });
  assert.deepEqual((await call('GET', '/config/t-value')).json, { compatibilityLevel: 'BACKWARD_TRANSITIVE' });
  const r = await call('POST', '/subjects/t-value/versions', { schema: v3 });
  assert.equal(r.status, 409);
  assert.match(r.json.message, /BACKWARD_TRANSITIVE: the new schema cannot read data written with version 1: at T\.x/);
  // the global level is untouched; under plain BACKWARD (subject config removed) v3 registers
  assert.deepEqual((await call('GET', '/config')).json, { compatibilityLevel: 'BACKWARD' });
  assert.deepEqual((await call('DELETE', '/config/t-value')).json, { compatibilityLevel: 'BACKWARD_TRANSITIVE' });
  assert.equal((await call('POST', '/subjects/t-value/versions', { schema: v3 })).status, 200);
  // NONE takes anything; an unknown level is 42203
  assert.equal((await call('PUT', '/config/t-value', { compatibility: 'NONE' })).status, 200);
  assert.equal((await call('POST', '/subjects/t-value/versions', { schema: '"string"' })).status, 200);
  const bad = await call('PUT', '/config', { compatibility: 'SIDEWAYS' });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error_code, 42203);
  assert.deepEqual((await call('GET', '/mode')).json, { mode: 'READWRITE' });
});

test('delete: soft, then permanent; ids stay unique', async () => {
  const d = (n: number) => JSON.stringify({ type: 'record', name: 'D', fields: [{ name: `f${n}`, type: 'int', default: n }] });
  await call('PUT', '/config/d-value', { compatibility: 'NONE' });
  const a = (await call('POST', '/subjects/d-value/versions', { schema: d(1) })).json.id;
  const b = (await call('POST', '/subjects/d-value/versions', { schema: d(2) })).json.id;
  assert.deepEqual((await call('DELETE', '/subjects/d-value/versions/2?permanent=true')).json.error_code, 40407);
  assert.deepEqual((await call('DELETE', '/subjects/d-value/versions/2')).json, 2);
  assert.deepEqual((await call('GET', '/subjects/d-value/versions')).json, [1]);
  assert.deepEqual((await call('GET', '/subjects/d-value/versions?deleted=true')).json, [1, 2]);
  assert.equal((await call('GET', '/subjects/d-value/versions/2')).json.error_code, 40402);
  assert.equal((await call('GET', '/subjects/d-value/versions/2?deleted=true')).json.id, b);
  assert.deepEqual((await call('DELETE', '/subjects/d-value/versions/2?permanent=true')).json, 2);
  assert.equal((await call('GET', '/subjects/d-value/versions/2?deleted=true')).json.error_code, 40402);
  // the whole subject: soft, then permanent
  assert.equal((await call('DELETE', '/subjects/d-value?permanent=true')).json.error_code, 40405);
  assert.deepEqual((await call('DELETE', '/subjects/d-value')).json, [1]);
  assert.ok(!(await call('GET', '/subjects')).json.includes('d-value'));
  assert.ok((await call('GET', '/subjects?deleted=true')).json.includes('d-value'));
  assert.equal((await call('DELETE', '/subjects/d-value')).json.error_code, 40404);
  assert.deepEqual((await call('DELETE', '/subjects/d-value?permanent=true')).json, [1]);
  assert.equal((await call('GET', '/subjects/d-value/versions')).json.error_code, 40401);
  assert.equal((await call('GET', `/schemas/ids/${a}`)).json.error_code, 40403);
  // a new schema never reuses an id, even the highest one permanently deleted
  const c = (await call('POST', '/subjects/d2-value/versions', { schema: d(3) })).json.id;
  assert.ok(c > b, `new id ${c} after ${b}`);
});

test('restart: the state is rebuilt from the topic with the same ids and versions', async () => {
  const before = {
    subjects: (await call('GET', '/subjects?deleted=true')).json,
    users: (await call('GET', '/subjects/users-value/versions/2')).json,
    id2: (await call('GET', '/schemas/ids/2')).json,
    t: (await call('GET', '/subjects/t-value/versions')).json,
    cfg: (await call('GET', '/config/t-value')).json,
  };
  const topic = await log.topicInfo(DEFAULT_SCHEMA_TOPIC);
  assert.equal(topic?.compaction, true);
  assert.equal(topic?.partitions, 1);
  await stop();
  await start();
  assert.deepEqual((await call('GET', '/subjects?deleted=true')).json, before.subjects);
  assert.deepEqual((await call('GET', '/subjects/users-value/versions/2')).json, before.users);
  assert.deepEqual((await call('GET', '/schemas/ids/2')).json, before.id2);
  assert.deepEqual((await call('GET', '/subjects/t-value/versions')).json, before.t);
  assert.deepEqual((await call('GET', '/config/t-value')).json, before.cfg);
  // re-registering an existing schema still answers its id, a new one the next id
  assert.deepEqual((await call('POST', '/subjects/users-value/versions', { schema: U2 })).json, { id: 2 });
  const ids = (await Promise.all(['x1', 'x2', 'x3'].map((n) => call('POST', `/subjects/${n}-value/versions`, { schema: JSON.stringify({ type: 'enum', name: n, symbols: ['A'] }) })))).map((r) => r.json.id);
  assert.equal(new Set(ids).size, 3, 'concurrent registrations get distinct ids');
});

test('bad requests: malformed JSON, invalid schema, other schema types, unknown subject/version/id, bad version, body limit', async () => {
  const malformed = await call('POST', '/subjects/users-value/versions', '{"schema": ');
  assert.equal(malformed.status, 400);
  assert.match(malformed.json.message, /not valid JSON/);
  const invalid = await call('POST', '/subjects/users-value/versions', { schema: '{"type": "record", "name": "X"}' });
  assert.equal(invalid.status, 422);
  assert.equal(invalid.json.error_code, 42201);
  assert.match(invalid.json.message, /Invalid schema: .*fields/);
  const notJsonSchema = await call('POST', '/subjects/users-value/versions', { schema: '{type: record' });
  assert.equal(notJsonSchema.json.error_code, 42201);
  const proto = await call('POST', '/subjects/p-value/versions', { schema: 'syntax = "proto3";', schemaType: 'PROTOBUF' });
  assert.equal(proto.status, 422);
  assert.match(proto.json.message, /PROTOBUF.*AVRO only/);
  assert.equal((await call('POST', '/subjects/users-value/versions', { schem: U1 })).json.error_code, 42201);
  assert.deepEqual((await call('GET', '/subjects/nope/versions')).json, { error_code: 40401, message: "Subject 'nope' not found." });
  assert.equal((await call('GET', '/subjects/nope/versions/latest')).json.error_code, 40401);
  assert.equal((await call('GET', '/subjects/users-value/versions/99')).json.error_code, 40402);
  const badVersion = await call('GET', '/subjects/users-value/versions/zero');
  assert.equal(badVersion.status, 422);
  assert.equal(badVersion.json.error_code, 42202);
  assert.equal((await call('GET', '/schemas/ids/9999')).json.error_code, 40403);
  assert.equal((await call('POST', '/subjects/users-value', { schema: '"bytes"' })).json.error_code, 40403);
  assert.equal((await call('GET', '/no/such/path')).status, 404);
  assert.equal((await call('PATCH', '/subjects')).status, 405);
  assert.equal((await call('POST', '/subjects/users-value/versions', { schema: U1 }, { 'content-type': 'text/plain' })).status, 415);
  // a body beyond the limit: 413, without reading it all
  const big = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const url = new URL(server.url + '/subjects/big-value/versions');
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': CT, 'content-length': String(5 << 20) } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(big.status, 413);
  assert.equal(JSON.parse(big.body).error_code, 413);
  // subjects with characters that need encoding
  assert.equal((await call('POST', `/subjects/${encodeURIComponent('a/b c')}/versions`, { schema: U1 })).status, 200);
  assert.ok((await call('GET', '/subjects')).json.includes('a/b c'));
});

test('basic auth when configured; the client sends credentials from the URL and never names them', async () => {
  const tmp2 = tempDir('sluice-registry-auth-');
  const log2 = await openLog(embeddedLogAt(tmp2.dir));
  const store2 = await RegistryStore.open(log2);
  const secured = await startRegistryServer(store2, { auth: { username: 'reg', password: 's3cret' } });
  try {
    const res = await fetch(secured.url + '/subjects');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error_code: number }).error_code, 401);
    const wrong = new SchemaRegistryClient({ url: secured.url.replace('http://', 'http://reg:nope@') });
    await assert.rejects(wrong.subjects(), (e: any) => e.code === 'REGISTRY_HTTP' && /HTTP 401/.test(e.message) && !e.message.includes('nope'));
    const right = new SchemaRegistryClient({ url: secured.url.replace('http://', 'http://reg:s3cret@') });
    assert.equal(right.url, secured.url);
    const id = await right.register('s-value', '"string"');
    assert.equal(await right.getSchemaText(id), '"string"');
    assert.equal((await right.latest('s-value')).version, 1);
  } finally {
    await secured.close();
    await store2.close();
    await log2.close();
    tmp2.remove();
  }
  // a registry that is not there: REGISTRY_UNREACHABLE naming the URL
  const gone = new SchemaRegistryClient({ url: 'http://127.0.0.1:1', timeoutMs: 2000 });
  await assert.rejects(gone.subjects(), (e: any) => e.code === 'REGISTRY_UNREACHABLE' && e.retriable === true && e.message.includes('http://127.0.0.1:1'));
});

test('compaction of the registry topic keeps the state: versions, configs, deletions and the highest id', async () => {
  const tmp3 = tempDir('sluice-registry-compact-');
  const cfg = { ...embeddedLogAt(tmp3.dir), segmentBytes: 512 } as ReturnType<typeof embeddedLogAt>;
  try {
    let log3 = await openLog(cfg);
    let store3 = await RegistryStore.open(log3);
    const schema = (n: number) => JSON.stringify({ type: 'record', name: 'C', fields: [{ name: 'id', type: 'long' }, ...Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'int', default: i }))] });
    for (let i = 0; i < 12; i++) await store3.register('c-value', schema(i));
    for (const l of ['FULL', 'NONE', 'FORWARD', 'BACKWARD_TRANSITIVE'] as const) await store3.setConfig('c-value', l);
    await store3.deleteVersion('c-value', 3, false);
    await store3.register('gone-value', '"bytes"');
    const goneId = (await store3.register('gone-value', '"bytes"')).id;
    await store3.deleteSubject('gone-value', false);
    await store3.deleteSubject('gone-value', true);
    const before = { versions: store3.versions('c-value', true), level: store3.config('c-value'), subjects: store3.listSubjects(true) };
    const end = (await log3.offsets(DEFAULT_SCHEMA_TOPIC))[0].end;
    await store3.close();
    await log3.enforceRetention();
    await log3.close();
    log3 = await openLog(cfg);
    let kept = 0;
    for (let o = 0; o < end; ) {
      const r = await log3.read(DEFAULT_SCHEMA_TOPIC, 0, o);
      kept += r.records.length;
      if (r.next <= o) break;
      o = r.next;
    }
    assert.ok(kept < end, `compaction removed superseded records (${kept} of ${end} kept)`);
    store3 = await RegistryStore.open(log3);
    assert.deepEqual(store3.versions('c-value', true), before.versions);
    assert.equal(store3.config('c-value'), before.level);
    assert.deepEqual(store3.listSubjects(true), before.subjects);
    const next = await store3.register('new-value', '"double"');
    assert.ok(next.id > goneId, `the id ${next.id} is new (the deleted ${goneId} is not reused)`);
    await store3.close();
    await log3.close();
  } finally {
    tmp3.remove();
  }
});

test('one registry per log: a second store on the same log is refused', async () => {
  await assert.rejects(RegistryStore.open(log), (e: any) => e.code === 'LOG_PRODUCER_BUSY');
});
