import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseKey, parseValue } from '../../src/core/serde/parse.ts';
import { unwrap } from '../../src/processors/unwrap/unwrap.ts';

const env = (op: string, before: object | null, after: object | null) =>
  parseValue(JSON.stringify({ before, after, source: { version: '0.1.0', connector: 'postgresql', name: 'shop', ts_ms: 1700000000123, snapshot: 'false', db: 'shop', sequence: null, schema: 'public', table: 'orders', txId: 7, lsn: 99, xmin: null }, op, ts_ms: 1700000000200, transaction: null }));

describe('unwrap (ExtractNewRecordState)', () => {
  it('flattens creates and updates to the after image, with the metadata fields asked for', () => {
    assert.deepEqual(unwrap(env('c', null, { id: 1, amount: '9.99' }), { id: 1 }), { kind: 'upsert', row: { id: 1, amount: '9.99' } });
    assert.deepEqual(unwrap(env('u', { id: 1 }, { id: 1, amount: '5.00' }), { id: 1 }, { addFields: ['op', 'table', 'source_ts_ms'] }), {
      kind: 'upsert',
      row: { id: 1, amount: '5.00', __op: 'u', __table: 'public.orders', __source_ts_ms: 1700000000123 },
    });
  });

  it('applies, drops or rewrites deletes, and drops tombstones and truncates unless kept', () => {
    const del = env('d', { id: 2, amount: '1.00' }, null);
    assert.deepEqual(unwrap(del, { id: 2 }), { kind: 'delete', key: { id: 2 }, row: { id: 2, amount: '1.00' } });
    assert.equal(unwrap(del, { id: 2 }, { delete: 'drop' }), null);
    assert.deepEqual(unwrap(del, { id: 2 }, { delete: 'rewrite', addFields: ['op'] }), { kind: 'upsert', row: { id: 2, amount: '1.00', __op: 'd', __deleted: 'true' } });
    assert.deepEqual(unwrap(env('c', null, { id: 3 }), { id: 3 }, { delete: 'rewrite' }), { kind: 'upsert', row: { id: 3, __deleted: 'false' } });
    assert.equal(unwrap(parseValue(null), parseKey('{"id":2}')), null, 'tombstone');
    assert.equal(unwrap(env('t', null, null), null), null);
    assert.deepEqual(unwrap(env('t', null, null), null, { keepTruncates: true }), { kind: 'truncate', table: 'public.orders' });
  });

  it('keeps int64 values exact through parse and unwrap', () => {
    const big = parseValue('{"before":null,"after":{"id":9223372036854775807},"source":{"schema":"public","table":"t","ts_ms":1},"op":"c","ts_ms":1,"transaction":null}');
    assert.deepEqual(unwrap(big, null), { kind: 'upsert', row: { id: 9223372036854775807n } });
  });
});
