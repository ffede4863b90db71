/**
 * Topic names of tables (src/sources/common/names.ts): any name a database accepts gives a topic a
 * log backend accepts, ordinary names keep Debezium's topic names, and the topic gives the names
 * back; `tables` entries with dots and quotes; checkpoint keys that no two tables share.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromTopicPart, MAX_TOPIC_LENGTH, parseTableName, tableKey, tableOfTopic, tableTopic, topicPart } from '../../src/sources/common/names.ts';

/** The topic rule every log backend holds to (log/types.ts): Kafka's. */
const KAFKA_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

const NAMES = ['orders', 'Order Items', 'Quote"d;Table', 'dot.ted', 'Größe', '注文', '🙂 emoji', 'a-b', 'a--b', '-', '.', '..', 'x-2e', '$&', "it's", 'back`tick', 'tab\there', ' lead', 'trail ', 'UPPER_lower_123', '_'];

describe('topic names of tables', () => {
  it('ordinary names keep Debezium’s topic names', () => {
    assert.equal(tableTopic('shop', 'public', 'order_items'), 'shop.public.order_items');
    assert.equal(tableTopic('shop', 'Sales', 'Customers2'), 'shop.Sales.Customers2');
  });

  it('every other character is escaped as its UTF-8 bytes after a dash, as documented', () => {
    assert.equal(topicPart('Order Items'), 'Order-20Items');
    assert.equal(topicPart('dot.ted'), 'dot-2eted');
    assert.equal(topicPart('Quote"d;Table'), 'Quote-22d-3bTable');
    assert.equal(topicPart('Größe'), 'Gr-c3-b6-c3-9fe');
    assert.equal(topicPart('a-b'), 'a-2db');
  });

  it('any name gives a valid topic, and the topic gives the names back', () => {
    const seen = new Map<string, string>();
    for (const schema of ['public', 'my schema', 'dot.s']) {
      for (const table of NAMES) {
        const topic = tableTopic('p', schema, table);
        assert.match(topic, KAFKA_TOPIC, `${schema}.${table} → ${topic}`);
        assert.notEqual(topic, '.');
        assert.deepEqual(tableOfTopic('p', topic), { schema, table }, topic);
        const other = seen.get(topic);
        assert.equal(other, undefined, `${schema}.${table} and ${other} share ${topic}`);
        seen.set(topic, `${schema}.${table}`);
      }
    }
  });

  it('a part that is not an escape reads as nothing', () => {
    for (const bad of ['a-2', 'a-zz', 'a.b', 'a b', '-2E']) assert.equal(fromTopicPart(bad), null, bad);
    assert.equal(tableOfTopic('p', 'q.public.x'), null);
    assert.equal(tableOfTopic('p', 'p.public'), null);
  });

  it('a topic past 249 characters is cut, ends in -- and a hash of both names, and stays distinct', () => {
    const long = 'ü'.repeat(63);
    const a = tableTopic('prefix', long, long);
    const b = tableTopic('prefix', long, long.slice(1) + 'x');
    for (const t of [a, b]) {
      assert.match(t, KAFKA_TOPIC);
      assert.ok(t.length <= MAX_TOPIC_LENGTH);
      assert.match(t, /--[0-9a-f]{16}$/);
      assert.doesNotMatch(t.slice(0, -18), /-(?![0-9a-f]{2})/, 'the cut leaves whole escapes');
    }
    assert.notEqual(a, b);
    assert.equal(tableOfTopic('prefix', a), null);
  });
});

describe('`tables` entries', () => {
  it('reads bare, quoted and doubled-quote names', () => {
    assert.deepEqual(parseTableName('public.orders'), { schema: 'public', table: 'orders' });
    assert.deepEqual(parseTableName('orders'), { schema: null, table: 'orders' });
    assert.deepEqual(parseTableName('public."Order Items"'), { schema: 'public', table: 'Order Items' });
    assert.deepEqual(parseTableName('public."dot.ted"'), { schema: 'public', table: 'dot.ted' });
    assert.deepEqual(parseTableName('public."Quote""d;Table"'), { schema: 'public', table: 'Quote"d;Table' });
    assert.deepEqual(parseTableName('"my.schema"."x"'), { schema: 'my.schema', table: 'x' });
    assert.deepEqual(parseTableName('public.dot.ted'), { schema: 'public', table: 'dot.ted' }, 'the table is everything after the first dot');
    assert.deepEqual(parseTableName('shop.`dot.ted`', '`"'), { schema: 'shop', table: 'dot.ted' });
    assert.deepEqual(parseTableName('shop.`back``tick`', '`"'), { schema: 'shop', table: 'back`tick' });
    assert.deepEqual(parseTableName('"Größe"'), { schema: null, table: 'Größe' });
  });

  it('refuses what it cannot read', () => {
    for (const bad of ['public."open', '"a"b', 'public.', '.x', '""', 'public.""']) assert.equal(parseTableName(bad), null, bad);
    assert.deepEqual(parseTableName('shop.`x`', '"'), { schema: 'shop', table: '`x`' }, 'backticks quote only MySQL’s names: elsewhere they are part of the name');
  });
});

describe('checkpoint keys', () => {
  it('are the old keys for ordinary names and distinct for names with dots', () => {
    assert.equal(tableKey('public', 'orders'), 'public.orders');
    assert.notEqual(tableKey('a.b', 'c'), tableKey('a', 'b.c'));
    assert.equal(tableKey('public', 'Quote"d'), 'public."Quote""d"');
  });
});
