/**
 * Our envelope against Debezium's documented PostgreSQL example events (fixtures in
 * test/fixtures/debezium/postgres, see its README): same fields, order and types.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { ChangeEvent, ColumnInfo, SourceInfo, TableSchema } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { SLUICE_VERSION } from '../../src/core/version.ts';

const fixture = (name: string) => readFileSync(`test/fixtures/debezium/postgres/${name}`, 'utf8').trim().replace('"VERSION"', JSON.stringify(SLUICE_VERSION));
const col = (name: string, type: ColumnInfo['schema']['type'], key = false): ColumnInfo => ({ name, typeOid: 0, typeName: type, typeModifier: -1, key, optional: false, schema: { type, optional: false } });
const customers: TableSchema = { schema: 'public', table: 'customers', columns: [col('id', 'int32', true), col('first_name', 'string'), col('last_name', 'string'), col('email', 'string')], keyColumns: ['id'] };
const anne = { id: 1, first_name: 'Anne', last_name: 'Kretchmar', email: 'annek@noanswer.org' };
const source = (txId: number, lsn: number): SourceInfo => ({ version: SLUICE_VERSION, connector: 'postgresql', name: 'PostgreSQL_server', ts_ms: 1559033904863, snapshot: 'false', db: 'postgres', sequence: '["24023119","24023128"]', schema: 'public', table: 'customers', txId, lsn, xmin: null });
const topic = 'PostgreSQL_server.public.customers';
const plain = new DebeziumJsonSerializer({ schemas: false, connector: 'postgresql', serverName: 'PostgreSQL_server' });
const withSchema = new DebeziumJsonSerializer({ schemas: true, connector: 'postgresql', serverName: 'PostgreSQL_server' });

function sameBytes(actual: Buffer | null, expected: string, what: string) {
  assert.ok(actual);
  // Field-for-field (parsed) and also key order (exact text).
  assert.deepEqual(JSON.parse(actual.toString()), JSON.parse(expected), what);
  assert.equal(actual.toString(), expected, `${what}: field order`);
}

describe('Debezium JSON envelope', () => {
  const create: ChangeEvent = { topic, key: { id: 1 }, before: null, after: anne, source: source(555, 24023128), op: 'c', ts_ms: 1559033904863, table: customers };

  it('create event: value without schema and key with schema match the documented example', () => {
    sameBytes(plain.value(create), fixture('create.value.json'), 'create value');
    sameBytes(withSchema.key(create), fixture('create.key.json'), 'create key');
    assert.equal(plain.key(create)!.toString(), '{"id":1}');
  });

  it('create event with schema: the value schema part matches', () => {
    const v = JSON.parse(withSchema.value(create).toString());
    assert.deepEqual(v.schema, JSON.parse(fixture('create.value-schema.json')));
    assert.deepEqual(v.payload, JSON.parse(fixture('create.value.json')));
  });

  it('update with REPLICA IDENTITY FULL, delete with the key-only before image, truncate', () => {
    sameBytes(plain.value({ ...create, before: anne, after: { ...anne, first_name: 'Anne Marie' }, op: 'u', ts_ms: 1465584025523, source: source(556, 24023128) }), fixture('update-full.value.json'), 'update');
    sameBytes(plain.value({ ...create, before: { id: 1 }, after: null, op: 'd', ts_ms: 1465581902461, source: source(556, 46523128) }), fixture('delete.value.json'), 'delete');
    const trunc: ChangeEvent = { ...create, key: null, before: null, after: null, op: 't', ts_ms: 1559033904961, source: source(556, 46523128) };
    sameBytes(plain.value(trunc), fixture('truncate.value.json'), 'truncate');
    assert.equal(plain.key(trunc), null, 'truncate events have no key');
  });

  it('keeps int64 exact, writes bytes as base64 and escapes strings like JSON.stringify', () => {
    const t: TableSchema = { ...customers, columns: [col('id', 'int64', true), col('b', 'bytes'), col('s', 'string'), col('f', 'float64')] };
    const s = '"quote" \\ \n\t\u0001 é 😀';
    const v = plain.value({ ...create, table: t, after: { id: 9223372036854775807n, b: Buffer.from([0, 1, 254, 255]), s, f: Number.NaN } }).toString();
    assert.match(v, /"id":9223372036854775807,/);
    const parsed = JSON.parse(v);
    assert.equal(parsed.after.b, 'AAH+/w==');
    assert.equal(parsed.after.s, s);
    assert.equal(parsed.after.f, 'NaN');
    assert.ok(v.includes(JSON.stringify(s)));
  });

  it('adds the transaction block', () => {
    const v = JSON.parse(plain.value({ ...create, transaction: { id: '555:24023128', total_order: 1, data_collection_order: 1 } }).toString());
    assert.deepEqual(v.transaction, { id: '555:24023128', total_order: 1, data_collection_order: 1 });
  });
});
