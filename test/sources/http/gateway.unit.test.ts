/**
 * The gateway's parts that need no server: the idempotency window (expiry, the bound, ids whose
 * commit runs), the per-key rate limiter, and the config checks a user meets first (each problem
 * at its line, never the token).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/index.ts';
import { IdWindow } from '../../../src/sources/http/dedupe.ts';
import { RateLimiter } from '../../../src/sources/http/limits.ts';
import { arrayElements } from '../../../src/sources/http/split.ts';

describe('idempotency window', () => {
  it('remembers an id for the window, per scope, and forgets it after', () => {
    const w = new IdWindow(1000, 10_000);
    w.add('a', 'x', 0);
    assert.equal(w.lookup('a', 'x', 500), 'duplicate');
    assert.equal(w.lookup('b', 'x', 500), null, 'another topic is another scope');
    assert.equal(w.lookup('a', 'x', 1000), null, 'gone once the window passed');
    assert.equal(w.size, 0);
  });

  it('maps an id to the commit taking it; keeps it if the commit succeeds, forgets it if not', async () => {
    const w = new IdWindow(1000, 10_000);
    const p = Promise.resolve(true);
    w.reserve('a', 'x', p);
    assert.equal(w.lookup('a', 'x', 0), p);
    w.settle('a', 'x', p, true, 0);
    assert.equal(w.lookup('a', 'x', 10), 'duplicate');
    const q = Promise.resolve(false);
    w.reserve('a', 'y', q);
    w.settle('a', 'y', q, false, 0);
    assert.equal(w.lookup('a', 'y', 10), null);
    assert.equal(w.size, 1);
  });

  it('forgets the oldest ids past its bound, never one whose commit runs', () => {
    const w = new IdWindow(60_000, 3);
    const running = new Promise<boolean>(() => {});
    w.reserve('a', 'first', running);
    for (const id of ['b', 'c', 'd']) w.add('a', id, 0);
    assert.equal(w.lookup('a', 'first', 1), running, 'a running commit is not evicted');
    assert.equal(w.evicted, 0);
    const v = new IdWindow(60_000, 3);
    for (const id of ['1', '2', '3', '4', '5']) v.add('a', id, 0);
    assert.equal(v.evicted, 2);
    assert.equal(v.lookup('a', '1', 1), null);
    assert.equal(v.lookup('a', '5', 1), 'duplicate');
  });
});

describe('rate limiter', () => {
  it('grants a burst, then refills at the rate, and says how long to wait', () => {
    const r = new RateLimiter(10, 5);
    for (let i = 0; i < 5; i++) assert.equal(r.take('k', 1, 0), 0);
    assert.equal(r.take('k', 1, 0), 1, 'empty: retry after 1 s');
    assert.equal(r.take('other', 1, 0), 0, 'keys have their own buckets');
    assert.equal(r.take('k', 1, 100), 0, 'one token back after 100 ms at 10/s');
    assert.equal(r.take('k', 50, 5000), 1, 'a batch larger than the bucket waits for a full bucket');
  });
});

describe('ingest config', () => {
  const yaml = (routes: string, extra = '') => `name: p
ingest:
  credentials:
    - {name: mobile, token: secret-token-0123456789}
${extra}  routes:
${routes}`;
  it('points at the line of an unknown credential, a duplicate path, /health and a missing schema file', () => {
    assert.throws(
      () =>
        parseConfig(
          yaml(`    - {path: /events/user, topic: t, allow: [mobil]}
    - {path: /events/user, topic: u}
    - {path: /health, topic: h}
    - {path: /x, topic: x, schema: ./nope.json}
`),
          '/tmp/p.yaml',
          {},
        ),
      (e: Error) => {
        assert.match(e.message, /p\.yaml:6:\d+: .*no credential is named "mobil"; known: mobile/);
        assert.match(e.message, /p\.yaml:7:\d+: .*two routes take \/events\/user/);
        assert.match(e.message, /p\.yaml:8:\d+: .*\/health is the gateway's own health check/);
        assert.match(e.message, /nope\.json does not exist/);
        assert.ok(!e.message.includes('secret-token-0123456789'));
        return true;
      },
    );
  });
  it('refuses a short token and a bad path, at their lines', () => {
    assert.throws(() => parseConfig(`name: p\ningest:\n  credentials:\n    - {name: a, token: tiny-secret}\n  routes:\n    - {path: events, topic: t}\n`, '/tmp/q.yaml', {}), (e: Error) => {
      assert.match(e.message, /q\.yaml:4:\d+: ingest\.credentials\.0\.token: .*16 characters/);
      assert.match(e.message, /q\.yaml:6:\d+: ingest\.routes\.0\.path: .*a path such as \/events\/user/);
      assert.ok(!e.message.includes('tiny-secret'), 'the token is not shown');
      return true;
    });
  });
});

describe('batch element bytes', () => {
  it('finds each element of a top-level array as the client sent it, whatever its strings hold', () => {
    const events = [{ a: 'x, y ] } [', b: [1, [2, { c: '"}' }]] }, 'plain', 42, null, { u: 'ümlaut ✓ \\ "quoted" \u00e9' }, [], {}];
    for (const text of [JSON.stringify(events), JSON.stringify(events, null, 2), ` \n [ ${events.map((e) => JSON.stringify(e)).join(' ,\n ')} ] \n`]) {
      const body = Buffer.from(text);
      const parts = arrayElements(body, events.length);
      assert.ok(parts, text);
      assert.deepEqual(parts.map(([a, b]) => JSON.parse(body.subarray(a, b).toString('utf8'))), events);
    }
  });
  it('says null for another layout, or a count that does not match', () => {
    assert.equal(arrayElements(Buffer.from('{"events": [1, 2]}'), 2), null);
    assert.equal(arrayElements(Buffer.from('[1, 2]'), 3), null);
    assert.deepEqual(arrayElements(Buffer.from('[]'), 0), []);
  });
});
