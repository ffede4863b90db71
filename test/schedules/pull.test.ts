/**
 * The HTTP pull against real local servers: cursor, page and Link pagination, the auth header,
 * timeouts and 5xx answers retried with backoff, and answers that fail a run with a clear error
 * (malformed JSON, no records where configured, past a bound, a 4xx that no retry can mend).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { pull, type PullStats } from '../../src/schedules/pull.ts';
import type { ScheduleConfig } from '../../src/schedules/spec.ts';
import { json, sleep, startApi, type ApiServer } from './api-server.ts';

/** A schedule as the config loader resolves it (YAML is JSON's superset). */
function schedule(s: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ScheduleConfig {
  const cfg = parseConfig(`name: t\nlog:\n  dir: /tmp/sluice-never-opened\nschedules: ${JSON.stringify([{ name: 'api', cron: '@hourly', topic: 'out', ...s }])}\n`, 'test.yaml', env);
  return cfg.schedules[0];
}

const servers: ApiServer[] = [];
async function api(h: Parameters<typeof startApi>[0]): Promise<ApiServer> {
  const a = await startApi(h);
  servers.push(a);
  return a;
}
after(async () => {
  for (const s of servers) await s.close();
});

async function run(s: ScheduleConfig): Promise<{ records: unknown[]; stats: PullStats }> {
  const stats: PullStats = { pages: 0, attempts: 0 };
  const records = await pull(s, { retries: s.retries, maxRecords: s.maxRecords, stats });
  return { records, stats };
}

async function fails(s: ScheduleConfig): Promise<{ code: string; message: string; stats: PullStats }> {
  const stats: PullStats = { pages: 0, attempts: 0 };
  try {
    await pull(s, { retries: s.retries, maxRecords: s.maxRecords, stats });
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message, stats };
  }
  assert.fail('the pull succeeded');
}

describe('schedule pulls', () => {
  it('follows a cursor through every page, with the auth header on each request', async () => {
    const pages: Record<string, { items: unknown[]; next: string | null }> = {
      '': { items: [{ id: 1 }, { id: 2 }], next: 'c2' },
      c2: { items: [{ id: 3 }], next: 'c3' },
      c3: { items: [{ id: 4 }, { id: 5 }], next: null },
    };
    const a = await api((req, res, api) => {
      const p = pages[req.url.searchParams.get('after') ?? ''];
      json(res, api, { data: { items: p.items }, meta: { next_cursor: p.next } }, p.items);
    });
    const s = schedule({ request: { url: `${a.url}/v1/quotes?symbols=ACME`, headers: { Authorization: 'Bearer ${API_TOKEN}' }, records: 'data.items', pagination: { type: 'cursor', param: 'after', path: '$.meta.next_cursor' } } }, { API_TOKEN: 's3cr3t-token' });
    const { records, stats } = await run(s);
    assert.deepEqual(records, a.served);
    assert.deepEqual(records.map((r: any) => r.id), [1, 2, 3, 4, 5]);
    assert.deepEqual(stats, { pages: 3, attempts: 3 });
    assert.deepEqual(a.requests.map((r) => r.url.search), ['?symbols=ACME', '?symbols=ACME&after=c2', '?symbols=ACME&after=c3']);
    for (const r of a.requests) assert.equal(r.headers.authorization, 'Bearer s3cr3t-token');
    for (const r of a.requests) assert.equal(r.headers.accept, 'application/json');
  });

  it('counts pages until an empty one, or maxPages', async () => {
    const a = await api((req, res, api) => {
      const page = Number(req.url.searchParams.get('page'));
      const items = page <= 3 ? [{ page, n: 1 }, { page, n: 2 }] : [];
      json(res, api, items, items);
    });
    const { records, stats } = await run(schedule({ request: { url: `${a.url}/news`, pagination: { type: 'page', param: 'page' } } }));
    assert.deepEqual(records, a.served);
    assert.equal(records.length, 6);
    assert.deepEqual(a.requests.map((r) => r.url.searchParams.get('page')), ['1', '2', '3', '4']);
    assert.deepEqual(stats, { pages: 4, attempts: 4 });
    const b = await api((req, res, api) => json(res, api, [{ p: req.url.searchParams.get('p') }], [{ p: req.url.searchParams.get('p') }]));
    const bounded = await run(schedule({ request: { url: `${b.url}/news`, pagination: { type: 'page', param: 'p', start: 0, maxPages: 2 } } }));
    assert.deepEqual(bounded.records, [{ p: '0' }, { p: '1' }]);
  });

  it('follows Link: rel="next" headers, relative ones too', async () => {
    const a = await api((req, res, api) => {
      const n = Number(req.url.searchParams.get('n') ?? '1');
      const link = n === 1 ? `<${api.url}/items?n=2>; rel="next", <${api.url}/items?n=3>; rel="last"` : n === 2 ? '</items?n=3>; rel=next' : '<https://elsewhere.example/items?n=1>; rel="first"';
      json(res, api, [{ n }], [{ n }], { link });
    });
    const { records } = await run(schedule({ request: { url: `${a.url}/items`, pagination: { type: 'link' } } }));
    assert.deepEqual(records, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.deepEqual(records, a.served);
  });

  it('fails a cursor or link pull that would go past maxPages, rather than write part of it', async () => {
    const a = await api((req, res, api) => json(res, api, { items: [{ x: 1 }], next: String(Number(req.url.searchParams.get('c') ?? 0) + 1) }, [{ x: 1 }]));
    const f = await fails(schedule({ request: { url: `${a.url}/x`, records: 'items', pagination: { type: 'cursor', param: 'c', path: 'next', maxPages: 3 } } }));
    assert.equal(f.code, 'SCHEDULE_LIMIT');
    assert.match(f.message, /still names a next page after request.pagination.maxPages \(3\)/);
    assert.equal(a.requests.length, 3);
  });

  it('retries a request that times out, then succeeds', async () => {
    let n = 0;
    const a = await api(async (_req, res, api) => {
      if (n++ === 0) await sleep(1500); // slower than the timeout: abandoned
      if (res.destroyed) return;
      json(res, api, [{ ok: true }], [{ ok: true }]);
    });
    const t0 = Date.now();
    const { records, stats } = await run(schedule({ request: { url: `${a.url}/slow`, timeoutMs: 300 }, retries: { attempts: 3, backoffMs: 100 } }));
    assert.deepEqual(records, [{ ok: true }]);
    assert.equal(stats.attempts, 2);
    assert.equal(a.requests.length, 2);
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 1400, `timeout 300 ms + backoff 100 ms, took ${took} ms`);
  });

  it('fails with SCHEDULE_TIMEOUT when every attempt times out', async () => {
    const a = await api(async (_req, res) => {
      // Headers at once, the body never: the timeout covers reading the answer too.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[{"a":');
    });
    const f = await fails(schedule({ request: { url: `${a.url}/hang?key=abc123`, timeoutMs: 200 }, retries: { attempts: 2, backoffMs: 50 } }));
    assert.equal(f.code, 'SCHEDULE_TIMEOUT');
    assert.match(f.message, /GET http:\/\/127\.0\.0\.1:\d+\/hang\?… gave no complete answer within 200 ms \(request.timeoutMs\)/);
    assert.match(f.message, /after 2 attempts/);
    assert.doesNotMatch(f.message, /abc123/, 'the query is not shown');
    assert.equal(f.stats.attempts, 2);
  });

  it('retries 500 and 429 answers with exponential backoff, following Retry-After', async () => {
    let n = 0;
    const a = await api((_req, res, api) => {
      n++;
      if (n === 1) return void res.writeHead(500).end('{"error":"db down"}');
      if (n === 2) return void res.writeHead(503).end();
      if (n === 3) return void res.writeHead(429, { 'retry-after': '1' }).end();
      json(res, api, [{ price: 101.5 }], [{ price: 101.5 }]);
    });
    const { records, stats } = await run(schedule({ request: { url: `${a.url}/quotes` }, retries: { attempts: 4, backoffMs: 100, maxBackoffMs: '2s' } }));
    assert.deepEqual(records, [{ price: 101.5 }]);
    assert.equal(stats.attempts, 4);
    const gaps = a.requests.slice(1).map((r, i) => r.at - a.requests[i].at);
    assert.ok(gaps[0] >= 95 && gaps[0] < 400, `first backoff 100 ms: ${gaps[0]}`);
    assert.ok(gaps[1] >= 195 && gaps[1] < 600, `second backoff 200 ms: ${gaps[1]}`);
    assert.ok(gaps[2] >= 990, `Retry-After: 1 s beats the 400 ms backoff: ${gaps[2]}`);
  });

  it('gives up after the attempts, and does not retry what no retry mends', async () => {
    const a = await api((req, res) => void res.writeHead(req.url.pathname === '/gone' ? 404 : req.url.pathname === '/auth' ? 401 : 502, { 'content-type': 'text/plain' }).end('nope'));
    const f = await fails(schedule({ request: { url: `${a.url}/down` }, retries: { attempts: 3, backoffMs: 10 } }));
    assert.equal(f.code, 'SCHEDULE_HTTP');
    assert.match(f.message, /GET http:\/\/127\.0\.0\.1:\d+\/down answered 502 Bad Gateway \(nope\) \(after 3 attempts; retries.attempts is 3\)/);
    const g = await fails(schedule({ request: { url: `${a.url}/gone` }, retries: { attempts: 3, backoffMs: 10 } }));
    assert.equal(g.stats.attempts, 1);
    assert.match(g.message, /answered 404 Not Found \(nope\): check request.url/);
    const h = await fails(schedule({ request: { url: `${a.url}/auth`, headers: { 'X-Api-Key': 'k-999' } }, retries: { attempts: 3, backoffMs: 10 } }));
    assert.equal(h.stats.attempts, 1);
    assert.match(h.message, /401 Unauthorized .*check the auth header/);
    assert.doesNotMatch(h.message, /k-999/);
  });

  it('fails on malformed JSON, missing records and too many records, saying which', async () => {
    const a = await api((req, res, api) => {
      if (req.url.pathname === '/broken') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"list": [{"temp": 1.5}, {"temp": ');
      if (req.url.pathname === '/html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
      if (req.url.pathname === '/many') return json(res, api, Array.from({ length: 11 }, (_, i) => ({ i })));
      json(res, api, { results: { count: 0 }, status: 'ok' });
    });
    const broken = await fails(schedule({ request: { url: `${a.url}/broken` } }));
    assert.equal(broken.code, 'SCHEDULE_BAD_RESPONSE');
    assert.match(broken.message, /GET http:\/\/127\.0\.0\.1:\d+\/broken answered with something that is not JSON \(application\/json, 34 bytes, starting .*\): unexpected end at offset 34; check request.url points at the JSON API$/);
    assert.equal(broken.stats.attempts, 1, 'not retried');
    const html = await fails(schedule({ request: { url: `${a.url}/html` } }));
    assert.match(html.message, /not JSON \(text\/html, \d+ bytes, starting "<html>maintenance<\/html>"\)/);
    const missing = await fails(schedule({ request: { url: `${a.url}/obj`, records: 'results.items' } }));
    assert.equal(missing.code, 'SCHEDULE_BAD_RESPONSE');
    assert.match(missing.message, /request.records is results.items, but GET .*\/obj has nothing there at that path, not a list \(the answer's keys: results, status\)/);
    const many = await fails(schedule({ request: { url: `${a.url}/many` }, maxRecords: 10 }));
    assert.equal(many.code, 'SCHEDULE_LIMIT');
    assert.match(many.message, /more than maxRecords \(10\)/);
  });

  it('sends a POST body as JSON, and reads an object answer as one record', async () => {
    const a = await api((req, res, api) => json(res, api, { echo: JSON.parse(req.body), type: req.headers['content-type'] }, [{ echo: JSON.parse(req.body) }]));
    const { records } = await run(schedule({ request: { url: `${a.url}/search`, method: 'POST', body: { q: 'weather', n: 2 } } }));
    assert.deepEqual(records, [{ echo: { q: 'weather', n: 2 }, type: 'application/json' }]);
    assert.equal(a.requests[0].method, 'POST');
  });
});
