/**
 * src/core/serde/connect-json.ts against records Debezium's own connectors wrote through Kafka
 * Connect's JsonConverter with schemas.enable=true: the PostgreSQL fixtures
 * (test/fixtures/debezium/postgres, captured by debezium-embedded); records Debezium writes in Kafka
 * Connect itself are read end to end by test/debezium/connect-to-sinks.test.ts. The decoded value and key
 * must be exactly the payload bytes the same converter writes with schemas.enable=false, and the
 * schema record must describe the table as the inline schema does.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConnectJsonDecoder, decimalText, isConnectJson, objectMembers } from '../../src/core/serde/connect-json.ts';
import { parseValue } from '../../src/core/serde/parse.ts';
import type { SluiceError } from '../../src/core/errors.ts';

interface PeerRecord {
  topic: string;
  key: string | null;
  value: string | null;
  keyPlain: string | null;
  valuePlain: string | null;
}
const load = (f: string): PeerRecord[] => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const pg = load('test/fixtures/debezium/postgres/events.jsonl');
const changes = (recs: PeerRecord[]) => recs.filter((r) => r.value !== null && !r.topic.endsWith('.transaction'));

describe('connect-json: Debezium PostgreSQL records (debezium-embedded fixtures)', () => {
  it('decodes every change to the schemaless payload and key bytes, with one schema record per table', () => {
    const d = new ConnectJsonDecoder();
    const recs = changes(pg).filter((r) => r.topic === 'PostgreSQL_server.public.customers');
    assert.ok(recs.length >= 7, `the fixture holds the changes (${recs.length})`);
    const ids = new Set<string>();
    for (const r of recs) {
      assert.ok(isConnectJson(r.value!) && isConnectJson(Buffer.from(r.value!)));
      assert.ok(!isConnectJson(r.valuePlain!));
      const out = d.decode(r.topic, r.key === null ? null : Buffer.from(r.key), Buffer.from(r.value!));
      assert.equal(out.value, r.valuePlain, `${r.topic}: value payload`);
      assert.equal(out.key, r.keyPlain, `${r.topic}: key payload`);
      ids.add(out.schema.id);
      assert.equal(out.schema.connector, 'postgresql');
      assert.equal(out.schema.topic, 'PostgreSQL_server.public.customers');
      assert.equal(out.schema.schema, 'public');
      assert.equal(out.schema.table, 'customers');
      // A truncate has no key; every other change keys by id.
      assert.deepEqual(out.schema.keyColumns, r.key === null ? [] : ['id']);
      assert.deepEqual(out.schema.columns.map((c) => [c.name, c.connect.type, c.optional, c.sourceType]), [
        ['id', 'int32', false, 'int32'],
        ['first_name', 'string', false, 'string'],
        ['last_name', 'string', false, 'string'],
        ['email', 'string', false, 'string'],
      ]);
      // What the sinks do with it: parse the envelope.
      const env = parseValue(out.value);
      assert.ok(env && typeof env.op === 'string');
    }
    // Keyed and keyless (truncate) records of the table: two schema records, stable across decoders.
    assert.equal(ids.size, 2);
    const again = new ConnectJsonDecoder();
    const r0 = recs.find((r) => r.key !== null)!;
    assert.ok(ids.has(again.decode(r0.topic, r0.key, r0.value!).schema.id), 'the id is a hash of the content');
  });

  it('refuses records that are not change events, saying what to configure', () => {
    const d = new ConnectJsonDecoder();
    const tx = pg.find((r) => r.topic.endsWith('.transaction'))!;
    assert.throws(() => d.decode(tx.topic, tx.key, tx.value!), (e: SluiceError) => e.code === 'SERDE_BAD_JSON' && /no "op"/.test(e.message));
    const r = changes(pg)[0];
    assert.throws(() => d.decode(r.topic, r.keyPlain, r.value!), (e: SluiceError) => e.code === 'SERDE_BAD_JSON' && /key\.converter/.test(e.message));
    assert.throws(() => d.decode(r.topic, null, '{"schema":{"type":"string","optional":false},"payload":"x"}'), (e: SluiceError) => e.code === 'SERDE_BAD_JSON');
    assert.throws(() => d.decode(r.topic, null, '{"schema":{"type":"struct"'), (e: SluiceError) => e.code === 'SERDE_BAD_JSON' && /"schema" and "payload"/.test(e.message));
  });
});

describe('connect-json: pieces', () => {
  it('splits top-level members without parsing them, whatever their strings hold', () => {
    const m = objectMembers(' {"a" : {"x":"}\\"{","y":[1,{"z":null}]} , "b":-1.5e3,"c":"\\\\"} ');
    assert.deepEqual([...m!], [['a', '{"x":"}\\"{","y":[1,{"z":null}]}'], ['b', '-1.5e3'], ['c', '"\\\\"']]);
    assert.equal(objectMembers('{"a":1'), null);
    assert.equal(objectMembers('[1]'), null);
    assert.equal(objectMembers('{"a":1} x'), null);
  });

  it('writes Connect Decimal bytes as decimal text', () => {
    const b64 = (n: bigint, bytes: number) => {
      const b = Buffer.alloc(bytes);
      let v = n < 0n ? n + (1n << BigInt(bytes * 8)) : n;
      for (let i = bytes - 1; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn);
      return b.toString('base64');
    };
    assert.equal(decimalText(b64(12345n, 2), 2), '123.45');
    assert.equal(decimalText(b64(-5n, 1), 3), '-0.005');
    assert.equal(decimalText(b64(0n, 1), 2), '0.00');
    assert.equal(decimalText(b64(7n, 1), 0), '7');
    assert.equal(decimalText(b64(-123456789012345678901234567890n, 13), 10), '-12345678901234567890.1234567890');
    assert.equal(decimalText(b64(3n, 1), -2), '300');
  });
});
