/**
 * The Redis sink's parts that need no server: the RESP encoder and incremental parser, key
 * templates, and the sink's config (URL and mapping forms, passwords masked in errors).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { parseTemplate } from '../../src/sinks/redis/key.ts';
import { encodeCommand, parseReply, RedisReplyError } from '../../src/sinks/redis/resp.ts';

const parse = (s: string | Buffer) => {
  const r = parseReply(Buffer.isBuffer(s) ? s : Buffer.from(s), 0);
  return typeof r === 'symbol' ? 'incomplete' : r;
};

describe('RESP2', () => {
  it('encodes a command as an array of bulk strings (UTF-8 lengths in bytes)', () => {
    assert.equal(Buffer.concat(encodeCommand(['HSET', 'k', 'é', 42])).toString(), '*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$2\r\né\r\n$2\r\n42\r\n');
  });

  it('parses every reply type', () => {
    assert.deepEqual(parse('+OK\r\n'), { value: 'OK', next: 5 });
    assert.deepEqual(parse(':-12\r\n'), { value: -12, next: 6 });
    assert.deepEqual(parse('$-1\r\n'), { value: null, next: 5 });
    assert.deepEqual(parse('*-1\r\n'), { value: null, next: 5 });
    assert.deepEqual(parse('$0\r\n\r\n'), { value: '', next: 6 });
    assert.deepEqual(parse('$5\r\na\r\nb!\r\n'), { value: 'a\r\nb!', next: 11 });
    const err = parse('-WRONGTYPE Operation against a key holding the wrong kind of value\r\n');
    assert.ok(err !== 'incomplete' && err.value instanceof RedisReplyError);
    assert.equal((err.value as RedisReplyError).prefix, 'WRONGTYPE');
    const arr = parse('*3\r\n+OK\r\n*2\r\n:1\r\n$1\r\nx\r\n-ERR no\r\n');
    assert.ok(arr !== 'incomplete');
    assert.equal((arr.value as unknown[]).length, 3);
    assert.deepEqual((arr.value as unknown[]).slice(0, 2), ['OK', [1, 'x']]);
    assert.ok((arr.value as unknown[])[2] instanceof RedisReplyError);
  });

  it('says "incomplete" at every cut of a reply, and reads it whole once complete', () => {
    const whole = Buffer.from('*3\r\n$3\r\nabc\r\n:7\r\n*1\r\n$2\r\nzz\r\n');
    for (let cut = 0; cut < whole.length; cut++) assert.equal(parse(whole.subarray(0, cut)), 'incomplete', `cut at ${cut}`);
    assert.deepEqual(parse(whole), { value: ['abc', 7, ['zz']], next: whole.length });
  });

  it('refuses bytes that are not RESP', () => {
    assert.throws(() => parse('HTTP/1.1 400 Bad Request\r\n'), /not RESP/);
  });
});

describe('key templates', () => {
  it('parses references and literal braces', () => {
    assert.deepEqual(parseTemplate('features:{key}'), [{ text: 'features:' }, { ref: 'key' }]);
    assert.deepEqual(parseTemplate('{table}:{key.id}:{customer_id}{{x}}'), [{ ref: 'table' }, { text: ':' }, { keyField: 'id' }, { text: ':' }, { field: 'customer_id' }, { text: '{x}' }]);
  });
  it('says what is wrong with a bad one', () => {
    assert.match(parseTemplate('a:{key') as string, /not closed/);
    assert.match(parseTemplate('a}') as string, /closes nothing/);
    assert.match(parseTemplate('{a b}') as string, /not a reference/);
    assert.match(parseTemplate('constant') as string, /same key/);
  });
});

describe('redis sink config', () => {
  const cfg = (sink: string) => parseConfig(`name: fs\nsource: {type: postgres, connection: {database: shop}}\nsinks:\n  - ${sink}\n`, 'p.yaml', { REDIS_PW: 's3cr3t' });

  it('takes a URL, with db, user, password and TLS', () => {
    const s = cfg('{name: r, type: redis, connection: "rediss://app:s3cr3t@cache.local:6380/3", key: "features:{key}", ttl: 10m}').sinks[0] as any;
    assert.deepEqual(s.connection, { host: 'cache.local', port: 6380, user: 'app', password: 's3cr3t', db: 3, tls: true, connectTimeoutMs: undefined, statementTimeoutMs: undefined });
    assert.equal(s.ttl, 600_000);
    assert.equal(s.format, 'hash');
    assert.equal(s.offsetsTable, 'sluice:offsets');
  });

  it('takes a mapping, and defaults to 127.0.0.1:6379 db 0', () => {
    const s = cfg('{name: r, type: redis, connection: {host: h, password: "${REDIS_PW}", db: 2, connectTimeout: 2s}, format: json}').sinks[0] as any;
    assert.deepEqual([s.connection.host, s.connection.port, s.connection.password, s.connection.db, s.connection.tls, s.connection.connectTimeoutMs], ['h', 6379, 's3cr3t', 2, false, 2000]);
    const d = cfg('{name: r, type: redis}').sinks[0] as any;
    assert.deepEqual([d.connection.host, d.connection.port, d.connection.db, d.key], ['127.0.0.1', 6379, 0, '{table}:{key}']);
  });

  it('reports a bad URL, db or template at its line, never with the password', () => {
    assert.throws(
      () => cfg('{name: r, type: redis, connection: "redis://:s3cr3t@h:6379/cache"}'),
      (e: Error) => /database index, a number/.test(e.message) && !e.message.includes('s3cr3t') && /p\.yaml:4/.test(e.message),
    );
    assert.throws(() => cfg('{name: r, type: redis, connection: "redis://:s3cr3t@h:99999"}'), (e: Error) => /not a valid URL/.test(e.message) && !e.message.includes('s3cr3t'));
    assert.throws(() => cfg('{name: r, type: redis, key: "f:{key"}'), /key.*not closed/s);
    assert.throws(() => cfg('{name: r, type: redis, format: xml}'), /format/);
  });
});
