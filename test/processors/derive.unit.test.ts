/**
 * The derive processor on change events as a source writes them: derived columns in both row
 * images and in the event's schema (which table sinks build their tables from), dropped columns
 * gone from both, tombstones passed on; a value its type cannot hold, a dropped key column and a
 * record that is not a change event are errors that name what to fix; config mistakes at their line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { TableSchema } from '../../src/core/event.ts';
import { SCHEMA_HEADER, schemaRecordOf, type SchemaRecord } from '../../src/core/schemas.ts';
import { deriveProcessor } from '../../src/processors/derive/spec.ts';
import { tableNamer } from '../../src/registry/index.ts';
import type { RecordTransform } from '../../src/registry/spec.ts';
import { createLogger } from '../../src/core/logger.ts';

const table: TableSchema = {
  schema: 'public',
  table: 'customers',
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
    { name: 'first', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true } },
    { name: 'last', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true } },
  ],
} as TableSchema;
const input = schemaRecordOf('postgresql', 'shop.public.customers', table);

function transform(yaml: string): Promise<RecordTransform> {
  const cfg = parseConfig(`name: p\nlog: {dir: /tmp/sluice-unused}\nprocessors:\n${yaml}`, 'p.yaml', {});
  const schemas = new Map<string, SchemaRecord>([[input.id, input]]);
  return deriveProcessor.create(cfg.processors[0] as never, { pipeline: 'p', logger: createLogger({ level: 'error' }), tableOf: tableNamer('postgres'), schemaOf: (id) => schemas.get(id) });
}

const rec = (value: unknown, headers: Record<string, string> = { [SCHEMA_HEADER]: input.id }) => ({ topic: 'shop.public.customers', partition: 0, offset: 7, key: Buffer.from('{"id":1}'), value: value === null ? null : Buffer.from(JSON.stringify(value)), timestamp: 1_700_000_000_000, headers });

const YAML = `  - name: c
    type: derive
    inputs: [topic:shop.public.customers]
    columns:
      full_name: "concat(row.first, ' ', row.last)"
      op_name: "op == 'd' ? 'DELETE' : op == 'u' ? 'UPDATE' : 'INSERT'"
      at: source.ts_ms
    types: {at: timestamptz}
    drop: [first]
`;

describe('derive processor', () => {
  it('adds the columns to both images and to the schema, drops the dropped, keeps the key', async () => {
    const t = await transform(YAML);
    const [out] = await t.apply(rec({ before: { id: 1, first: 'Ann', last: 'Lee' }, after: { id: 1, first: 'Ann', last: 'Li' }, source: { ts_ms: 1_700_000_000_123 }, op: 'u', ts_ms: 1 }));
    const v = JSON.parse(String(out.value));
    assert.deepEqual(v.before, { id: 1, last: 'Lee', full_name: 'Ann Lee', op_name: 'UPDATE', at: '2023-11-14T22:13:20.123Z' });
    assert.deepEqual(v.after, { id: 1, last: 'Li', full_name: 'Ann Li', op_name: 'UPDATE', at: '2023-11-14T22:13:20.123Z' });
    assert.equal(out.topic, 'c.shop.public.customers');
    assert.equal(String(out.key), '{"id":1}');
    assert.equal(out.headers![SCHEMA_HEADER], out.schema!.id);
    assert.notEqual(out.schema!.id, input.id);
    assert.deepEqual(
      out.schema!.columns.map((c) => [c.name, c.connect.type, c.connect.name ?? null]),
      [
        ['id', 'int64', null],
        ['last', 'string', null],
        ['full_name', 'string', null],
        ['op_name', 'string', null],
        ['at', 'string', 'io.debezium.time.ZonedTimestamp'],
      ],
    );
    assert.deepEqual(out.schema!.keyColumns, ['id']);
    // A delete: the before image is derived, after stays null; a tombstone passes with its key.
    const [del] = await t.apply(rec({ before: { id: 1, first: 'Ann', last: 'Li' }, after: null, source: { ts_ms: 0 }, op: 'd', ts_ms: 1 }));
    assert.equal(JSON.parse(String(del.value)).before.op_name, 'DELETE');
    assert.equal(JSON.parse(String(del.value)).after, null);
    const [tomb] = await t.apply(rec(null));
    assert.equal(tomb.value, null);
    assert.equal(String(tomb.key), '{"id":1}');
  });

  it('names the column and value a type cannot hold, a dropped key, a record that is not a change event', async () => {
    const t = await transform(YAML.replace('types: {at: timestamptz}', 'types: {at: timestamptz, full_name: bigint}'));
    await assert.rejects(async () => t.apply(rec({ before: null, after: { id: 2, first: 'A', last: 'B' }, source: { ts_ms: 0 }, op: 'c', ts_ms: 1 })), (e: Error & { code?: string }) => e.code === 'DERIVE_VALUE' && /full_name \(bigint\) cannot hold "A B"/.test(e.message));
    const k = await transform(YAML.replace('drop: [first]', 'drop: [id]'));
    await assert.rejects(async () => k.apply(rec({ before: null, after: { id: 2, first: 'A', last: 'B' }, source: { ts_ms: 0 }, op: 'c', ts_ms: 1 })), (e: Error & { code?: string }) => e.code === 'DERIVE_DROP_KEY' && /drop names id, a key column of public\.customers/.test(e.message));
    await assert.rejects(async () => t.apply(rec({ id: 2 }, {})), (e: Error & { code?: string }) => e.code === 'DERIVE_NOT_CHANGE_EVENT' && /shop\.public\.customers\/0\/7 is not a change event/.test(e.message));
  });

  it('points at the line of a type for a column it does not derive, an unknown type, a bad expression', () => {
    const y = YAML.replace('types: {at: timestamptz}', 'types: {at: timestamp, nope: text}').replace('source.ts_ms', 'source.ts_ms +');
    let msg = '';
    try {
      parseConfig(`name: p\nlog: {dir: /tmp/sluice-unused}\nprocessors:\n${y}`, 'p.yaml', {});
    } catch (e) {
      msg = (e as Error).message;
    }
    assert.match(msg, /p\.yaml:\d+:\d+: processors\.0\.types\.at: the type of at must be one of text, bigint, double, boolean, timestamptz, date \(got "timestamp"\)/);
    assert.match(msg, /processors\.0\.types\.nope: "nope" is not one of the derived columns \(full_name, op_name, at\)/);
    assert.match(msg, /p\.yaml:\d+:\d+: processors\.0\.columns\.at:/);
  });
});
