/**
 * The Redis sink against the machine's real Redis (127.0.0.1:6379): the RESP client (pipelining,
 * large replies, error replies, unreachable servers), and the sink applying hand-made batches —
 * hashes and JSON with TTL, deletes, offsets in the same MULTI/EXEC, a key of another type refused
 * with nothing written, the fence, records a hash cannot hold. Each test writes under a key prefix
 * of its own.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { SchemaRecord } from '../../src/core/schemas.ts';
import { buildTables } from '../../src/engine/batch-reader.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import { RedisReplyError, RespClient } from '../../src/sinks/redis/resp.ts';
import type { Sink, SinkBatch, SinkRecord } from '../../src/sinks/types.ts';
import { dropPrefix, hgetall, keyPrefix, keysUnder, redisClient, REDIS_HOST, REDIS_PORT } from '../helpers/redis.ts';

const quiet = createLogger({ level: 'error' });
const TOPIC = 'shop.public.customers';
const schema: SchemaRecord = {
  id: 'rediscust000001',
  connector: 'postgresql',
  topic: TOPIC,
  schema: 'public',
  table: 'customers',
  keyColumns: ['id'],
  columns: [
    { name: 'id', sourceType: 'integer', optional: false, key: true, connect: { type: 'int32', optional: false, field: 'id' } },
    { name: 'name', sourceType: 'text', optional: true, key: false, connect: { type: 'string', optional: true, field: 'name' } },
    { name: 'score', sourceType: 'numeric(6,2)', optional: true, key: false, connect: { type: 'string', optional: true, field: 'score', name: 'io.debezium.data.Decimal' } as any },
    { name: 'tags', sourceType: 'jsonb', optional: true, key: false, connect: { type: 'string', optional: true, field: 'tags', name: 'io.debezium.data.Json' } },
  ],
};
const SOURCE = { version: 't', connector: 'postgresql', name: 'shop', ts_ms: 1, db: 'd', schema: 'public', table: 'customers' };

type Row = { id: number; name?: string | null; score?: string | null; tags?: string | null } | any;
/** A record at `offset`: a create/update of `row`, or (`row` null) a delete of `id`. */
function rec(offset: number, id: number, row: Row | null, partition = 0): SinkRecord {
  const op = row === null ? 'd' : 'u';
  return { topic: TOPIC, partition, offset, key: JSON.stringify({ id }), value: JSON.stringify({ before: row === null ? { id } : null, after: row, source: SOURCE, op, ts_ms: 1 }), op, schema };
}
function batch(records: SinkRecord[], from?: number): SinkBatch {
  const next = new Map<number, number>();
  for (const r of records) next.set(r.partition, Math.max(next.get(r.partition) ?? 0, r.offset + 1));
  return { tables: buildTables(records, new Map()), offsets: [...next].map(([partition, n]) => ({ topic: TOPIC, partition, next: n, ...(from === undefined ? {} : { from }) })), records: records.length, bytes: 0 };
}

describe('Redis: the RESP client', () => {
  let c: RespClient;
  const p = keyPrefix();
  before(async () => {
    c = await redisClient();
  });
  after(async () => {
    await dropPrefix(c, p);
    c.close();
  });

  it('pipelines thousands of commands and matches each reply to its command', async () => {
    const cmds = Array.from({ length: 5000 }, (_, i) => (i % 2 ? ['GET', `${p}n${i - 1}`] : ['SET', `${p}n${i}`, `v${i}é`]));
    const replies = await c.pipeline(cmds);
    for (let i = 0; i < 5000; i++) assert.equal(replies[i], i % 2 ? `v${i - 1}é` : 'OK');
  });

  it('reads replies larger than one TCP read, and error replies in place', async () => {
    const big = 'x'.repeat(3 << 20) + 'ü';
    await c.call('SET', `${p}big`, big);
    assert.equal(await c.call('GET', `${p}big`), big);
    await c.call('RPUSH', `${p}list`, 'a');
    const [ok, wrong] = await c.pipeline([['PING'], ['HSET', `${p}list`, 'f', 'v']]);
    assert.equal(ok, 'PONG');
    assert.ok(wrong instanceof RedisReplyError && wrong.prefix === 'WRONGTYPE');
    await assert.rejects(c.call('HGET', `${p}list`, 'f'), (e: RedisReplyError) => e.prefix === 'WRONGTYPE');
    // The connection is fine after an error reply.
    assert.equal(await c.call('PING'), 'PONG');
  });

  it('fails a connect to a port nobody listens on with its code, and one that never answers by its deadline', async () => {
    // A server that accepts TCP and never says a word.
    const held = new Set<import('node:net').Socket>();
    const srv = createServer((s) => held.add(s.on('data', () => {})));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await assert.rejects(RespClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 300, commandTimeoutMs: 300 }), (e: any) => e.code === 'ETIMEDOUT');
    for (const s of held) s.destroy();
    await new Promise((r) => srv.close(r));
    await assert.rejects(RespClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 1000, commandTimeoutMs: 1000 }), (e: any) => e.code === 'ECONNREFUSED');
  });
});

describe('Redis sink, applying batches', () => {
  let c: RespClient;
  const p = keyPrefix();
  const sinks: Sink[] = [];
  before(async () => {
    c = await redisClient();
  });
  after(async () => {
    for (const s of sinks) await s.close();
    await dropPrefix(c, p);
    c.close();
  });

  /** A sink named `name` with extra YAML keys, opened. */
  async function open(name: string, extra = '', conn = `{host: ${REDIS_HOST}, port: ${REDIS_PORT}}`): Promise<{ sink: Sink; stored: Map<string, Map<number, number>> }> {
    const cfg = parseConfig(`name: rs\nsource: {type: postgres, connection: {database: shop}}\nsinks:\n  - {name: ${name}, type: redis, connection: ${conn}, offsetsTable: "${p}off"${/\bkey:/.test(extra) ? '' : `, key: "${p}${name}:{key}"`}${extra ? ', ' + extra : ''}}\n`, 'rs.yaml', {});
    const s = cfg.sinks[0];
    const sink = await sinkSpec(s.type).create(s, { pipeline: 'rs', logger: quiet, id: `rs/${name}` });
    sinks.push(sink);
    return { sink, stored: await sink.open() };
  }

  it('writes hashes with TTL and the offsets in one transaction, deletes keys, and resumes from the stored offsets', async () => {
    const { sink, stored } = await open('h', 'ttl: 1h');
    assert.equal(stored.size, 0);
    await sink.apply(batch([rec(0, 1, { id: 1, name: 'Ann', score: '12.50', tags: '{"vip":true}' }), rec(1, 2, { id: 2, name: null, score: '3.00', tags: null }), rec(2, 3, { id: 3, name: 'C', score: null, tags: null }), rec(3, 1, { id: 1, name: 'Ann B', score: '13.00', tags: '[1,2]' })]));
    assert.deepEqual(await hgetall(c, `${p}h:1`), { id: '1', name: 'Ann B', score: '13.00', tags: '[1,2]' });
    // Null fields are left out.
    assert.deepEqual(await hgetall(c, `${p}h:2`), { id: '2', score: '3.00' });
    const ttl = (await c.call('PTTL', `${p}h:1`)) as number;
    assert.ok(ttl > 3_590_000 && ttl <= 3_600_000, `ttl ${ttl}`);
    await sink.apply(batch([rec(4, 3, null), rec(5, 2, { id: 2, name: 'B', score: null, tags: null })]));
    assert.equal(await c.call('EXISTS', `${p}h:3`), 0);
    assert.deepEqual(await hgetall(c, `${p}h:2`), { id: '2', name: 'B' }, 'a rewrite drops fields that became null');
    assert.deepEqual(await hgetall(c, `${p}off:rs:h`), { [`${TOPIC}/0`]: '6', [`${TOPIC}/0:applied`]: '6' });
    await sink.close();
    const again = await open('h', 'ttl: 1h');
    assert.deepEqual([...again.stored.get(TOPIC)!], [[0, 6]]);
  });

  it('writes JSON strings with SET … PX, and the whole row with its nulls', async () => {
    const { sink } = await open('j', 'format: json, ttl: 90s');
    await sink.apply(batch([rec(0, 7, { id: 7, name: 'Zoë', score: '1.50', tags: '{"a":[1]}' }), rec(1, 8, { id: 8, name: null, score: null, tags: null })]));
    assert.deepEqual(JSON.parse((await c.call('GET', `${p}j:7`)) as string), { id: 7, name: 'Zoë', score: 1.5, tags: { a: [1] } });
    assert.deepEqual(JSON.parse((await c.call('GET', `${p}j:8`)) as string), { id: 8, name: null, score: null, tags: null });
    const ttl = (await c.call('PTTL', `${p}j:8`)) as number;
    assert.ok(ttl > 80_000 && ttl <= 90_000, `ttl ${ttl}`);
  });

  it('takes key parts from the row ({field}) and from the key ({key.id})', async () => {
    const { sink } = await open('f', `key: "${p}f:{name}:{key.id}"`);
    await sink.apply(batch([rec(0, 5, { id: 5, name: 'eve', score: null, tags: null })]));
    assert.deepEqual(await hgetall(c, `${p}f:eve:5`), { id: '5', name: 'eve' });
    // A row without the field: refused for good (REDIS_KEY_TEMPLATE), nothing written.
    await assert.rejects(sink.apply(batch([rec(1, 6, { id: 6, name: null, score: null, tags: null })])), (e: any) => e.code === 'REDIS_KEY_TEMPLATE' && !e.retriable && /\{name\}/.test(e.message) && /@1/.test(e.message));
    assert.equal((await hgetall(c, `${p}off:rs:f`))[`${TOPIC}/0`], '1');
  });

  it('refuses a key of another type with nothing of the batch written (not even its offsets)', async () => {
    const { sink } = await open('w');
    await c.call('RPUSH', `${p}w:2`, 'someone else');
    await assert.rejects(
      sink.apply(batch([rec(0, 1, { id: 1, name: 'a', score: null, tags: null }), rec(1, 2, { id: 2, name: 'b', score: null, tags: null })])),
      (e: any) => e.code === 'REDIS_WRONGTYPE' && !e.retriable && e.message.includes(`${p}w:2`) && /holds a list/.test(e.message) && /@1/.test(e.message),
    );
    assert.equal(await c.call('EXISTS', `${p}w:1`), 0);
    assert.equal(await c.call('EXISTS', `${p}off:rs:w`), 0);
    assert.deepEqual(await c.call('LRANGE', `${p}w:2`, 0, -1), ['someone else']);
  });

  it('refuses, per format hash, a record that is not an object', async () => {
    const { sink } = await open('o');
    const r = rec(0, 1, { id: 1 });
    const bad: SinkRecord = { ...r, value: JSON.stringify({ before: null, after: [1, 2], source: SOURCE, op: 'c', ts_ms: 1 }) };
    await assert.rejects(sink.apply(batch([bad])), (e: any) => e.code === 'REDIS_NOT_OBJECT' && !e.retriable && /a list/.test(e.message));
  });

  it('fences a batch whose writer believes the offsets stand elsewhere (SINK_FENCED, retriable)', async () => {
    const { sink } = await open('g');
    await sink.apply(batch([rec(0, 1, { id: 1, name: 'a' })], 0));
    await assert.rejects(sink.apply(batch([rec(0, 9, { id: 9, name: 'stale' })], 0)), (e: any) => e.code === 'SINK_FENCED' && e.retriable);
    assert.equal(await c.call('EXISTS', `${p}g:9`), 0);
    await sink.apply(batch([rec(1, 2, { id: 2, name: 'b' })], 1));
    assert.equal((await hgetall(c, `${p}off:rs:g`))[`${TOPIC}/0`], '2');
  });

  it('says where Redis should be when it is not there, and never shows the password', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    await assert.rejects(open('u', '', `"redis://:hunter2secret@127.0.0.1:${port}/0"`), (e: any) => e.code === 'SINK_CONNECTION_LOST' && e.retriable && e.message.includes(`127.0.0.1:${port}`) && /start Redis/.test(e.message) && !e.message.includes('hunter2'));
    // A password the server does not take: REDIS_AUTH, for good, without the password.
    await assert.rejects(open('a', '', `"redis://:hunter2secret@${REDIS_HOST}:${REDIS_PORT}/0"`), (e: any) => e.code === 'REDIS_AUTH' && !e.retriable && !e.message.includes('hunter2'));
    await assert.rejects(open('d', '', `"redis://${REDIS_HOST}:${REDIS_PORT}/999"`), (e: any) => e.code === 'REDIS_AUTH' && /DB index/i.test(e.message));
  });

  it('leaves nothing outside its prefix', async () => {
    assert.ok((await keysUnder(c, p)).length > 0);
  });
});
