/**
 * Delivery of alert notices (src/alerts/notify.ts) to a local HTTP server: a receiver that keeps
 * failing gets the retries and then the notice is dropped, counted and logged, never thrown; a
 * full queue drops its oldest notice; a receiver that refuses (4xx) is not retried; notices reach a
 * receiver in order.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import type { Notice } from '../../src/alerts/evaluate.ts';
import { Notifier } from '../../src/alerts/notify.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Registry } from '../../src/core/metrics.ts';

const notice = (rule: string, status: 'firing' | 'resolved' = 'firing'): Notice => ({ status, rule, kind: 'lag', severity: 'warning', pipeline: 'p', summary: rule, value: 1, threshold: 0, labels: {}, startsAt: new Date(0).toISOString(), receivers: ['r'] });

async function server(answer: (n: number) => number): Promise<{ url: string; bodies: any[]; close(): Promise<void> }> {
  const bodies: any[] = [];
  let n = 0;
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const code = answer(++n);
      if (code < 300) bodies.push(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}/x`, bodies, close: () => new Promise<void>((r) => s.close(() => r())) };
}

const counts = (reg: Registry) => Object.fromEntries(reg.samples(new Set(['sluice_alert_notifications_total'])).map((s) => [s.labels.result, s.value]));
/** The real backoff, shortened: the pauses' lengths are not what is tested here. */
const quickSleep = (_ms: number, signal: AbortSignal) => new Promise<void>((r) => (signal.aborted ? r() : setTimeout(r, 10)));

describe('alert delivery', () => {
  it('retries a failing receiver, then drops and counts the notice; in order, a full queue drops its oldest', async () => {
    const srv = await server((n) => (n <= 3 ? 503 : 200));
    const reg = new Registry();
    const ac = new AbortController();
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json', stream: { write: (l: string) => lines.push(l) > 0 } as unknown as NodeJS.WritableStream });
    const n = new Notifier([{ name: 'r', type: 'webhook', url: srv.url, headers: {}, timeoutMs: 2000, retries: 1 }], { pipeline: 'p', registry: reg, logger, maxQueue: 2, signal: ac.signal, sleep: quickSleep });
    n.send(notice('a')); // in flight at once: 503, retried once, 503 again: given up (failed)
    n.send(notice('b')); // waiting…
    n.send(notice('c')); // …the queue (2) is full…
    n.send(notice('d')); // …so b, the oldest waiting, is dropped
    await n.idle();
    assert.deepEqual(counts(reg), { failed: 1, dropped: 1, sent: 2 });
    assert.deepEqual(srv.bodies.map((b) => b.rule), ['c', 'd'], 'c after a retry (503, then 200), then d: in the order raised');
    assert.equal(n.status()[0].failed, 1);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; rule?: string; receiver?: string });
    assert.ok(logged.some((l) => l.msg === 'alert notice could not be delivered; dropped' && l.rule === 'a' && l.receiver === 'r'));
    assert.ok(logged.some((l) => l.msg === "alert notice dropped: the receiver's queue is full" && l.rule === 'b'));
    assert.ok(lines.every((l) => !l.includes('/x')), 'the URL is logged without its path');
    await srv.close();
  });

  it('does not retry a refusal, and never throws on an unreachable receiver', async () => {
    const srv = await server(() => 400);
    const closed = await server(() => 200);
    const gone = closed.url;
    await closed.close(); // nobody listens there now
    const reg = new Registry();
    const ac = new AbortController();
    const logger = createLogger({ level: 'error' });
    const n = new Notifier(
      [
        { name: 'r', type: 'slack', url: srv.url, headers: {}, timeoutMs: 2000, retries: 3 },
        { name: 'gone', type: 'webhook', url: gone, headers: {}, timeoutMs: 500, retries: 1 },
      ],
      { pipeline: 'p', registry: reg, logger, maxQueue: 10, signal: ac.signal, sleep: quickSleep },
    );
    n.send({ ...notice('x'), receivers: ['r', 'gone'] });
    await n.idle();
    const st = n.status();
    assert.deepEqual([st[0].failed, st[0].sent], [1, 0]);
    assert.match(String((st[0].lastError as { message: string }).message), /HTTP 400/);
    assert.deepEqual([st[1].failed, st[1].sent], [1, 0]);
    assert.match(String((st[1].lastError as { message: string }).message), /ECONNREFUSED/);
    await srv.close();
  });
});
