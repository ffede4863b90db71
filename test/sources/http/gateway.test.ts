/**
 * The HTTP event gateway against real HTTP clients and the embedded log: a 2xx only once the events
 * are durable (read back from the log the moment the answer arrives), every kind of bad input
 * refused with its status and none of it written, idempotency keys deduplicated (concurrent
 * retries, across a restart), backpressure, slow clients and a draining shutdown. The truth is
 * what the test itself sent and what the server answered, compared with the log's records.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseConfig } from '../../../src/config/index.ts';
import type { PipelineConfig } from '../../../src/config/types.ts';
import { createLogger } from '../../../src/core/logger.ts';
import { Registry } from '../../../src/core/metrics.ts';
import { runPipeline } from '../../../src/engine/runner.ts';
import { freePort, readAll, tempDir, waitUntil } from '../../helpers/pipeline.ts';

const TOKEN = 'mobile-token-0123456789abcdef';
const WEB_TOKEN = 'web-token-0123456789abcdef';

const USER_SCHEMA = {
  type: 'object',
  required: ['event_id', 'event_type', 'user_id', 'timestamp'],
  properties: {
    event_id: { type: 'string', format: 'uuid' },
    event_type: { enum: ['page_view', 'click', 'search', 'booking_created'] },
    user_id: { type: 'string' },
    session_id: { type: 'string' },
    app_type: { enum: ['mobile', 'web'] },
    timestamp: { type: 'string', format: 'date-time' },
    properties: { type: 'object' },
  },
};

function gatewayYaml(name: string, dir: string, port: number, extra = '', routesExtra = ''): string {
  writeFileSync(join(dir, 'user.schema.json'), JSON.stringify(USER_SCHEMA));
  return `name: ${name}
log: {backend: embedded, dir: ${dir}/log}
state: {dir: ${dir}/state}
ingest:
  port: ${port}
  maxBodyBytes: 64KiB
  maxBatchEvents: 50
  requestTimeout: 1s
${extra}
  credentials:
    - {name: mobile, token: ${TOKEN}}
    - {name: web, token: ${WEB_TOKEN}}
  routes:
    - path: /events/user
      topic: topic_app_events
      schema: ./user.schema.json
      key: user_id
      idempotencyKey: event_id
      allow: [mobile]
      partitions: 6
    - path: /events/batch
      topic: topic_app_events
      batch: true
      schema: ./user.schema.json
      key: user_id
      idempotencyKey: event_id
      allow: [mobile, web]
    - path: /events/partial
      topic: topic_app_events
      batch: true
      schema: ./user.schema.json
      key: user_id
      idempotencyKey: event_id
      onInvalid: partial
    - path: /events/limited
      topic: topic_limited
      rateLimit: {perSecond: 5, burst: 5, by: ip}
${routesExtra}`;
}

let seq = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`;
const userEvent = (o: Record<string, unknown> = {}) => ({ event_id: uuid(), event_type: 'page_view', user_id: `user_${seq % 7}`, session_id: 'sess_abc', app_type: 'mobile', timestamp: new Date().toISOString(), properties: { page: 'booking_detail', destination: 'Ha Noi', price: '250.00' }, ...o });

async function post(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const raw = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers }, body: raw as BodyInit });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** The event ids in a topic, each as often as the log holds it. */
async function idsIn(cfg: PipelineConfig, topic: string): Promise<string[]> {
  return (await readAll(cfg.log, topic)).filter((r) => r.topic === topic).map((r) => r.value.event_id as string);
}

function start(cfg: PipelineConfig, o: { lines?: string[] } = {}) {
  const ac = new AbortController();
  const registry = new Registry();
  const stream = new Writable({ write: (chunk, _enc, cb) => (o.lines?.push(String(chunk)), cb()) });
  const logger = createLogger({ level: 'info', format: 'json', stream });
  const run = runPipeline(cfg, { signal: ac.signal, registry, logger });
  run.catch(() => {});
  return { registry, stop: async () => (ac.abort(), await run), run };
}

async function listening(port: number): Promise<void> {
  await waitUntil('the gateway listening', async () => (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200).catch(() => false)), 30_000);
}

describe('HTTP event gateway', () => {
  it('answers 2xx only once the events are durable: each acknowledged event is in the log when the answer arrives, keyed and with its id', async () => {
    const tmp = tempDir();
    const port = await freePort();
    const cfg = parseConfig(gatewayYaml('gw1', tmp.dir, port), join(tmp.dir, 'p.yaml'), {});
    const p = start(cfg);
    try {
      await listening(port);
      const sent = Array.from({ length: 40 }, () => userEvent());
      // Concurrent single events: each checked against the log as soon as its answer is in.
      await Promise.all(
        sent.map(async (ev) => {
          const r = await post(port, '/events/user', ev);
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.equal(r.body.status, 'accepted');
          assert.ok((await idsIn(cfg, 'topic_app_events')).includes(ev.event_id), `event ${ev.event_id} acknowledged but not in the log`);
        }),
      );
      const batch = Array.from({ length: 30 }, () => userEvent({ app_type: 'web' }));
      const rb = await post(port, '/events/batch', { events: batch }, { authorization: `Bearer ${WEB_TOKEN}` });
      assert.deepEqual([rb.status, rb.body.accepted, rb.body.duplicates], [200, 30, 0]);
      const recs = (await readAll(cfg.log, 'topic_app_events')).filter((r) => r.topic === 'topic_app_events');
      assert.deepEqual(recs.map((r) => r.value.event_id).sort(), [...sent, ...batch].map((e) => e.event_id).sort());
      for (const r of recs) {
        const ev = [...sent, ...batch].find((e) => e.event_id === r.value.event_id)!;
        assert.deepEqual(r.value, ev, 'the event as sent');
        assert.equal(r.key, ev.user_id, 'keyed by user_id');
      }
      // One user's events share a partition (per-key order), over the route's 6 partitions.
      const parts = new Map<string, Set<number>>();
      for (const r of recs) parts.set(r.key, (parts.get(r.key) ?? new Set()).add(r.partition));
      assert.ok([...parts.values()].every((s) => s.size === 1));
      assert.ok(recs.every((r) => r.partition < 6) && new Set(recs.map((r) => r.partition)).size > 1);
      // Keep-alive: fetch reuses connections; the answers say so.
      const h = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(h.headers.get('connection'), 'keep-alive');
      await h.text();
    } finally {
      await p.stop();
      tmp.remove();
    }
  });

  it('refuses bad input with the status that says why, a body that says what to do, and writes none of it', async () => {
    const tmp = tempDir();
    const port = await freePort();
    const cfg = parseConfig(gatewayYaml('gw2', tmp.dir, port), join(tmp.dir, 'p.yaml'), {});
    const lines: string[] = [];
    const p = start(cfg, { lines });
    const accepted: string[] = [];
    try {
      await listening(port);
      const ok = userEvent();
      assert.equal((await post(port, '/events/user', ok)).status, 200);
      accepted.push(ok.event_id);

      const malformed = await post(port, '/events/user', '{"event_id": "x", ');
      assert.equal(malformed.status, 400);
      assert.match(malformed.body.error, /not valid JSON/);

      const wrongType = await post(port, '/events/user', JSON.stringify(userEvent()), { 'content-type': 'text/plain' });
      assert.equal(wrongType.status, 415);
      assert.match(wrongType.body.error, /application\/json/);

      // Every violation of one event is listed.
      const bad = await post(port, '/events/user', { event_id: 'not-a-uuid', event_type: 'dance', timestamp: 'yesterday' });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.violations.map((v: { path: string }) => v.path).sort(), ['/event_id', '/event_type', '/timestamp', '/user_id']);
      assert.ok(bad.body.violations.find((v: { path: string; message: string }) => v.path === '/event_type').message.includes('"page_view"'), 'the allowed values are named');

      // A batch with one invalid event: rejected whole, each invalid event named by its index.
      const batch = [userEvent(), userEvent({ user_id: 42 }), userEvent()];
      const rejected = await post(port, '/events/batch', batch);
      assert.equal(rejected.status, 400);
      assert.deepEqual(rejected.body.invalid.map((x: { index: number }) => x.index), [1]);
      // `onInvalid: partial`: the valid ones are written, each event has its result.
      const partial = await post(port, '/events/partial', batch);
      assert.equal(partial.status, 207);
      assert.deepEqual(partial.body.results.map((x: { status: string }) => x.status), ['accepted', 'invalid', 'accepted']);
      accepted.push(batch[0].event_id, batch[2].event_id);
      const allBad = await post(port, '/events/partial', [batch[1]]);
      assert.equal(allBad.status, 400);

      // Sizes: a body over maxBodyBytes, a batch over maxBatchEvents, a compressed bomb.
      const big = await post(port, '/events/user', JSON.stringify(userEvent({ properties: { pad: 'x'.repeat(70_000) } })));
      assert.equal(big.status, 413);
      const many = await post(port, '/events/batch', Array.from({ length: 51 }, () => userEvent()));
      assert.equal(many.status, 413);
      assert.match(many.body.error, /at most 50/);
      const bomb = gzipSync(Buffer.from(JSON.stringify(userEvent({ properties: { pad: ' '.repeat(5_000_000) } }))));
      assert.ok(bomb.length < 64 * 1024);
      const bombed = await post(port, '/events/user', bomb, { 'content-encoding': 'gzip' });
      assert.equal(bombed.status, 413);
      assert.match(bombed.body.error, /once decompressed/);
      const zipped = userEvent();
      const gz = await post(port, '/events/user', gzipSync(Buffer.from(JSON.stringify(zipped))), { 'content-encoding': 'gzip' });
      assert.equal(gz.status, 200, 'gzip bodies are taken');
      accepted.push(zipped.event_id);
      assert.equal((await post(port, '/events/user', JSON.stringify(userEvent()), { 'content-encoding': 'zstd' })).status, 415);
      assert.equal((await post(port, '/events/user', gzipSync('x').subarray(0, 8), { 'content-encoding': 'gzip' })).status, 400);

      // Credentials: none, unknown, allowed on another route only.
      const none = await post(port, '/events/user', userEvent(), { authorization: '' });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="sluice"');
      assert.equal((await post(port, '/events/user', userEvent(), { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
      const web = await post(port, '/events/user', userEvent(), { authorization: `Bearer ${WEB_TOKEN}` });
      assert.equal(web.status, 403);
      assert.match(web.body.error, /credential web may not send to \/events\/user/);
      const apiKey = userEvent();
      assert.equal((await post(port, '/events/user', apiKey, { authorization: '', 'x-api-key': TOKEN })).status, 200, 'X-API-Key works too');
      accepted.push(apiKey.event_id);

      // Methods and paths.
      assert.equal((await fetch(`http://127.0.0.1:${port}/events/user`)).status, 405);
      const missing = await post(port, '/events/nope', userEvent());
      assert.equal(missing.status, 404);
      assert.match(missing.body.error, /\/events\/user/);

      // Rate limit per client: 5 at once, then 429 with Retry-After.
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await post(port, '/events/limited', { n: i })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
      const limited = await post(port, '/events/limited', { n: 9 });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '1');
      assert.equal((await readAll(cfg.log, 'topic_limited')).length, 5);

      // Nothing refused reached the log: it holds exactly the accepted events.
      assert.deepEqual((await idsIn(cfg, 'topic_app_events')).sort(), accepted.sort());
      // The metrics count them by status and result.
      const m = p.registry.render();
      assert.match(m, /sluice_ingest_requests_total\{[^}]*route="\/events\/user"[^}]*status="401"\} 2/);
      assert.match(m, /sluice_ingest_events_total\{[^}]*route="\/events\/partial"[^}]*result="accepted"\} 2/);
    } finally {
      await p.stop();
      tmp.remove();
    }
    // No token in any log line.
    assert.ok(lines.length > 0);
    assert.ok(!lines.some((l) => l.includes(TOKEN) || l.includes(WEB_TOKEN)), 'tokens never logged');
  });

  it('deduplicates an idempotency key within the window: concurrent retries, a retry in a batch, and after a restart', async () => {
    const tmp = tempDir();
    const port = await freePort();
    const cfg = parseConfig(gatewayYaml('gw3', tmp.dir, port), join(tmp.dir, 'p.yaml'), {});
    const ev = userEvent();
    let p = start(cfg);
    try {
      await listening(port);
      const answers = await Promise.all(Array.from({ length: 20 }, () => post(port, '/events/user', ev)));
      assert.ok(answers.every((a) => a.status === 200));
      assert.equal(answers.filter((a) => a.body.status === 'accepted').length, 1, 'one of twenty concurrent retries is written');
      const b = [userEvent(), ev, userEvent()];
      const rb = await post(port, '/events/batch', [...b, b[0]]);
      assert.deepEqual([rb.body.accepted, rb.body.duplicates], [2, 2]);
      assert.equal((await idsIn(cfg, 'topic_app_events')).length, 3);
    } finally {
      await p.stop();
    }
    p = start(cfg);
    try {
      await listening(port);
      assert.equal((await post(port, '/events/user', ev)).body.status, 'duplicate', 'remembered across a restart');
      const fresh = userEvent();
      assert.equal((await post(port, '/events/user', fresh)).body.status, 'accepted');
      const ids = await idsIn(cfg, 'topic_app_events');
      assert.equal(ids.length, 4);
      assert.equal(new Set(ids).size, 4);
    } finally {
      await p.stop();
      tmp.remove();
    }
  });

  it('answers 503 with Retry-After instead of queueing past its bounds, 408 to a slow client, and drains on shutdown', async () => {
    const tmp = tempDir();
    const port = await freePort();
    writeFileSync(join(tmp.dir, 'slow.mjs'), 'export default async (rec) => { await new Promise((r) => setTimeout(r, 100)); return null; };\n');
    const cfg = parseConfig(
      gatewayYaml('gw4', tmp.dir, port, '  maxPendingBytes: 2KiB\n  maxSinkLag: 20', '    - path: /events/slow\n      topic: topic_slow\n') +
        'processors:\n  - {name: slow, type: module, module: ./slow.mjs, inputs: [topic_slow], output: slow_out}\n',
      join(tmp.dir, 'p.yaml'),
      {},
    );
    let p = start(cfg);
    try {
      await listening(port);
      // Many concurrent requests against 2 KiB of room: some wait for the log, the rest are told to come back.
      const evs = Array.from({ length: 150 }, () => userEvent());
      const answers = await Promise.all(evs.map((e) => post(port, '/events/user', e)));
      const busy = answers.filter((a) => a.status === 503);
      assert.ok(busy.length > 0, 'some requests found no room');
      assert.ok(busy.every((a) => a.headers.get('retry-after') === '1' && /the log is behind/.test(a.body.error)));
      assert.ok(answers.every((a) => a.status === 200 || a.status === 503));
      const okIds = evs.filter((_, i) => answers[i].status === 200).map((e) => e.event_id);
      assert.deepEqual((await idsIn(cfg, 'topic_app_events')).sort(), okIds.sort(), 'the acknowledged ones, and none of the refused');

      // A processor 100 ms per event behind the gateway: past 20 records of lag, 503.
      let lagged: { status: number; body: any; headers: Headers } | null = null;
      for (let i = 0; i < 100 && !lagged; i++) {
        const r = await post(port, '/events/slow', { i });
        if (r.status === 503) lagged = r;
        else assert.equal(r.status, 200);
        await new Promise((res) => setTimeout(res, 20));
      }
      assert.ok(lagged, 'the lag bound was reached');
      assert.match(lagged.body.error, /records behind/);
      assert.equal(lagged.headers.get('retry-after'), '2');

      // A client that sends half its body and stalls: 408 once requestTimeout (1 s) passes.
      const slow = await new Promise<string>((resolve, reject) => {
        const sock = connect(port, '127.0.0.1', () => sock.write(`POST /events/user HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\n{"event_id":`));
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
        setTimeout(() => (sock.destroy(), resolve(got)), 8000);
      });
      assert.match(slow, /^HTTP\/1\.1 408/);
    } finally {
      await p.stop();
    }
    // Shutdown while requests are in flight: each answered 2xx is in the log, none is left unanswered.
    p = start(cfg);
    await listening(port);
    // Eight clients sending one after another; the stop comes while they are at it.
    const evs: ReturnType<typeof userEvent>[] = [];
    const answers: { status: number }[] = [];
    let stopping = false;
    const client = async () => {
      while (!stopping) {
        const e = userEvent();
        const i = evs.push(e) - 1;
        answers[i] = await post(port, '/events/batch', [e]).catch(() => ({ status: 0 }));
        if (answers[i].status === 0) return;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    await waitUntil('events acknowledged', async () => answers.filter((a) => a?.status === 200).length >= 20);
    const stopped = p.stop();
    stopping = true;
    await Promise.all(clients);
    await stopped;
    const okIds = evs.filter((_, i) => answers[i].status === 200).map((e) => e.event_id);
    assert.ok(okIds.length >= 20);
    const logged = new Set(await idsIn(cfg, 'topic_app_events'));
    for (const id of okIds) assert.ok(logged.has(id), `${id} was acknowledged at shutdown but is not in the log`);
    // (An answer lost with its connection may still have been written: the client's retry is a duplicate then.)
    for (const [i, a] of answers.entries()) if (a.status === 503) assert.ok(!logged.has(evs[i].event_id), `refused ${evs[i].event_id} (status ${a.status}) is in the log`);
    tmp.remove();
  });
});
