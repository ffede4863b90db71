/**
 * The CouchDB source's pieces that need no server: topic names, sequences, the op and row of a
 * `_changes` row, conflicts, and the checkpoint's text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCheckpoint, encodeCheckpoint } from '../../../src/sources/couchdb/checkpoint.ts';
import { changeEvent, conflictsOf, databaseSchema, databaseTopic, seqNumber, seqText } from '../../../src/sources/couchdb/events.ts';
import { DebeziumJsonSerializer } from '../../../src/core/serde/debezium.ts';
import { couchdbDebezium } from '../../../src/sources/couchdb/debezium.ts';
import { fromTopicPart } from '../../../src/sources/common/names.ts';

const base = { db: 'orders', topic: 'p.orders', table: databaseSchema('orders'), prefix: 'p', now: 1_700_000_000_000 };

describe('couchdb source events', () => {
  it('names topics <prefix>.<database>, escaped reversibly and cut at 249', () => {
    assert.equal(databaseTopic('shop', 'orders'), 'shop.orders');
    assert.equal(databaseTopic('shop', 'shop-eu/a$b'), 'shop.shop-2deu-2fa-24b');
    assert.equal(fromTopicPart('shop-2deu-2fa-24b'), 'shop-eu/a$b');
    const long = databaseTopic('p', 'x'.repeat(300));
    assert.equal(long.length, 249);
    assert.match(long, /--[0-9a-f]{16}$/);
  });

  it('reads sequences of PouchDB/CouchDB 1.x (integers) and CouchDB 2+ (opaque text)', () => {
    assert.equal(seqText(42), '42');
    assert.equal(seqText('17-g1AAAAA'), '17-g1AAAAA');
    assert.equal(seqNumber(42), 42);
    assert.equal(seqNumber('17-g1AAAAA'), 17);
    assert.equal(seqNumber('now'), 0);
  });

  it('makes c, u, d and r events with the body as JSON text and the key _id', () => {
    const c = changeEvent({ id: 'a', seq: 3, changes: [{ rev: '1-x' }], doc: { _id: 'a', _rev: '1-x', n: 1, nested: { k: [1, 'two'] } } }, { ...base, snapshot: null });
    assert.equal(c.op, 'c');
    assert.deepEqual(c.key, { _id: 'a' });
    assert.deepEqual(c.after, { _id: 'a', _rev: '1-x', doc: '{"n":1,"nested":{"k":[1,"two"]}}', _conflicts: null });
    assert.equal(c.before, null);
    assert.equal(c.source.seq, '3');
    assert.equal(c.source.rev, '1-x');
    const u = changeEvent({ id: 'a', seq: '9-g1', changes: [{ rev: '2-y' }], doc: { _id: 'a', _rev: '2-y', _attachments: { f: { stub: true, length: 3 } } } }, { ...base, snapshot: null });
    assert.equal(u.op, 'u');
    assert.equal(u.after!.doc, '{"_attachments":{"f":{"stub":true,"length":3}}}');
    assert.equal(u.source.seq, '9-g1');
    const d = changeEvent({ id: 'a', seq: 10, deleted: true, changes: [{ rev: '3-z' }], doc: { _id: 'a', _rev: '3-z', _deleted: true } }, { ...base, snapshot: null });
    assert.equal(d.op, 'd');
    assert.equal(d.after, null);
    assert.equal(d.before, null);
    assert.deepEqual(d.key, { _id: 'a' });
    const r = changeEvent({ id: 'b', seq: 1, changes: [{ rev: '4-q' }], doc: { _id: 'b', _rev: '4-q' } }, { ...base, snapshot: 'true' });
    assert.equal(r.op, 'r');
    assert.equal(r.source.snapshot, 'true');
  });

  it('reports conflicts: _conflicts of the document, else the other leaves of changes; a conflicted 1-… is an update', () => {
    const row = { id: 'a', seq: 5, changes: [{ rev: '1-b' }, { rev: '1-a' }], doc: { _id: 'a', _rev: '1-b', _conflicts: ['1-a'], n: 2 } };
    assert.deepEqual(conflictsOf(row), ['1-a']);
    const ev = changeEvent(row, { ...base, snapshot: null });
    assert.equal(ev.op, 'u');
    assert.deepEqual(ev.after!._conflicts, ['1-a']);
    assert.equal(ev.after!.doc, '{"n":2}');
    assert.deepEqual(conflictsOf({ id: 'a', seq: 5, changes: [{ rev: '2-b' }, { rev: '1-a' }], doc: { _id: 'a', _rev: '2-b' } }), ['1-a']);
    assert.equal(conflictsOf({ id: 'a', seq: 5, changes: [{ rev: '2-b' }], doc: { _id: 'a', _rev: '2-b' } }), null);
  });

  it('serializes the source block in its declared field order', () => {
    const ser = new DebeziumJsonSerializer({ schemas: true, source: couchdbDebezium, serverName: 'p' });
    const ev = changeEvent({ id: 'a', seq: 3, changes: [{ rev: '1-x' }], doc: { _id: 'a', _rev: '1-x' } }, { ...base, snapshot: null });
    const v = JSON.parse(ser.valueString(ev));
    const fields = v.schema.fields.find((f: any) => f.field === 'source').fields.map((f: any) => f.field);
    assert.deepEqual(Object.keys(v.payload.source), fields);
    assert.equal(v.payload.source.connector, 'couchdb');
    assert.equal(v.payload.source.seq, '3');
    const doc = v.schema.fields.find((f: any) => f.field === 'after').fields.find((f: any) => f.field === 'doc');
    assert.equal(doc.name, 'io.debezium.data.Json');
    assert.deepEqual(JSON.parse(ser.keyString(ev)!).payload, { _id: 'a' });
    assert.deepEqual(couchdbDebezium.tableOf(v.payload.source), { schema: 'orders', table: 'orders' });
  });

  it('keeps the checkpoint per database and refuses one it cannot read', () => {
    const text = encodeCheckpoint({ databases: { orders: { seq: '12-g1', until: 7, snapshotDone: true } } });
    assert.deepEqual(decodeCheckpoint(text, 'start over'), { databases: { orders: { seq: '12-g1', until: 7, snapshotDone: true } } });
    assert.throws(() => decodeCheckpoint('{"file":"mysql-bin.000001","pos":4}', 'move the log away'), (e: Error & { code?: string }) => e.code === 'COUCHDB_CHECKPOINT' && /move the log away/.test(e.message));
  });
});
