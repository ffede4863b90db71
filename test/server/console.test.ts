/**
 * The operations console end to end: a real PostgreSQL pipeline (a `map` processor whose
 * expression divides by a quantity, so rows with qty = 0 are dead-lettered; a PostgreSQL sink)
 * serving the console, driven by Debian's Chromium through playwright-core. The pages load without
 * console errors; the numbers they show are /status's and what the test itself inserted (the
 * truth: rows, bad rows); DLQ search narrows to what was searched; Replay from the page writes the
 * dead letters to the processor's retry topic (read back from the log); the graph shows the
 * configured nodes; the distinctive connection password appears in no page and no API answer.
 * An `expect` processor's expectations show the pass/fail counts of /status. Then `sluice ui` over
 * the same log with a token: 401 without it, the page's sign-in with it, replay refused (409) while
 * the pipeline holds the log and done once it stopped. Screenshots go to test-artifacts/console/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { parseConfig } from '../../src/config/index.ts';
import type { PipelineConfig } from '../../src/config/types.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { serveConsole } from '../../src/cli/ui.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { freePort, pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const PASSWORD = 'Zebra-Quokka-7731-pw';
const TOKEN = 'console-e2e-token-4f9c1a7b2d';
const ROWS = 40;
/** Rows whose qty is 0: the processor's expression fails on them (the test's own record). */
const BAD_SNAPSHOT = [7, 14, 21, 28];

describe('the operations console', () => {
  let target: Awaited<ReturnType<typeof freshDatabase>>;
  let cfg: PipelineConfig;
  let port = 0;
  let base = '';
  const ac = new AbortController();
  let run: Promise<void> | null = null;
  let browser: Browser;
  const errors: string[] = [];
  // Registered before useDatabase's: the pipeline stops before its database is dropped.
  after(async () => {
    await browser?.close();
    ac.abort();
    await run?.catch(() => {});
    await target?.drop();
  });
  const f = useDatabase(`
    CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2) NOT NULL, qty int NOT NULL, note text NOT NULL);
    INSERT INTO orders SELECT g, g * 3.5, CASE WHEN g IN (${BAD_SNAPSHOT.join(',')}) THEN 0 ELSE 1 + g % 4 END, 'order-' || g FROM generate_series(1, ${ROWS}) g;
  `);

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    target = await freshDatabase();
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const yaml = pipelineYaml(
      'con',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
server:
  port: ${port}
processors:
  - name: perunit
    type: map
    inputs: [con.public.orders]
    fields:
      id: after.id
      per_item: "round(after.amount / after.qty, 2)"
      note: after.note
    output: "perunit.{table}"
  - name: quality
    type: expect
    inputs: [con.public.orders]
    expectations:
      - name: qty_positive
        range: {field: after.qty, min: 1}
        action: warn
      - name: note_present
        notNull: [after.note]
        action: warn
sinks:
  - name: pg
    type: postgres
    connection:
      host: 127.0.0.1
      port: 5432
      user: postgres
      password: \${PG_PW}
      database: ${target.name}
`,
    ).replace(`    database: ${f.db.name}\n`, `    database: ${f.db.name}\n    password: \${PG_PW}\n`);
    assert.match(yaml, /password: \$\{PG_PW\}[\s\S]*password: \$\{PG_PW\}/, 'both connections carry the password');
    cfg = parseConfig(yaml, join(f.tmp.dir, 'con.yaml'), { PG_PW: PASSWORD });
    run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger(), actions: { ping: async (body) => ({ pong: body }) } });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(base + path, init);
    const text = await r.text();
    assert.ok(!text.includes(PASSWORD), `${path} must not show the password`);
    return { status: r.status, body: JSON.parse(text) };
  };
  const status = async () => (await api('/api/status')).body;
  /** Tracks console errors and uncaught exceptions of a page. */
  const watch = (page: Page, into: string[]) => {
    page.on('console', (m) => m.type() === 'error' && into.push(`console: ${m.text()}`));
    page.on('pageerror', (e) => into.push(`pageerror: ${e.message}`));
  };
  const text = async (page: Page, sel: string) => ((await page.textContent(sel)) ?? '').trim();
  const num = (s: string) => Number(s.replace(/,/g, ''));
  const noSecret = async (page: Page, what: string) => assert.ok(!(await page.content()).includes(PASSWORD), `${what} must not show the password`);
  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  it('shows what /status says, searches and replays dead letters, draws the graph, and shows no secret', async () => {
    const bad = [...BAD_SNAPSHOT];
    await waitUntil('the snapshot through the processor and the sink', async () => {
      const s = await status();
      return s.processors?.every((p: any) => p.processed === ROWS) && s.sinks?.[0]?.applied === ROWS;
    }, 30_000);
    // Live changes: ten more rows, one of them bad (and searchable by its note).
    await f.db.client.query(`INSERT INTO orders SELECT g, g * 3.5, CASE WHEN g = 47 THEN 0 ELSE 2 END, CASE WHEN g = 47 THEN 'needle-47' ELSE 'order-' || g END FROM generate_series(${ROWS + 1}, ${ROWS + 10}) g`);
    bad.push(47);
    const total = ROWS + 10;
    await waitUntil('the live rows through the processor and the sink', async () => {
      const s = await status();
      const sink = s.sinks[0];
      return s.processors.every((p: any) => p.processed === total) && s.processors.find((p: any) => p.name === 'perunit').deadLettered === bad.length && sink.applied === total && Object.values(sink.partitionLag as Record<string, number>).every((n) => n === 0);
    }, 30_000);
    // The truth, from the test's own record and the log: bad rows dead-lettered, good ones mapped.
    const dead = (await readAll(cfg.log, 'con.dlq')).filter((r) => r.topic === 'con.dlq');
    assert.deepEqual(dead.map((d) => d.value.after.id).sort((a, b) => a - b), bad);

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watch(page, errors);
    await page.goto(`${base}/ui/`);
    await page.waitForFunction(() => document.querySelector('#ov-state')?.textContent === 'running', undefined, { timeout: 5000 }).catch(async (e) => {
      throw new Error(`${e.message}; state ${await page.textContent('#ov-state')}; errors ${errors.join(' | ')}; banner ${await page.textContent('#banner')}`);
    });
    assert.equal(await text(page, '#pipeline-name'), 'con');

    // Overview: numbers as /status has them (the pipeline has settled: they no longer move).
    const s = await status();
    await waitUntil('the overview refreshed', async () => num(await text(page, '#ov-events')) === s.source.eventsWritten, 10_000);
    assert.ok(s.source.eventsWritten >= total, `events written ${s.source.eventsWritten} ≥ ${total} rows`);
    assert.equal(num(await text(page, '#ov-processed')), s.processors.reduce((n: number, p: any) => n + p.processed, 0));
    assert.equal(num(await text(page, '#ov-processed')), total * cfg.processors.length, 'each processor read every row');
    assert.equal(num(await text(page, '#ov-applied')), total);
    assert.equal(num(await text(page, '#ov-dlq')), bad.length, 'dead letters: the bad rows the test inserted');
    assert.equal(await text(page, '#source-details [data-key="slot"]'), s.source.slot);
    assert.equal(await text(page, '#source-details [data-key="confirmedLsn"]') !== '', true);
    await noSecret(page, 'overview');
    await shot(page, 'overview');

    // Topics: records and end offsets as the log has them; rates computed by the server.
    await page.click('#tab-topics');
    const answer = (await api('/api/topics')).body;
    const topics = answer.topics as any[];
    const orders = topics.find((t) => t.name === 'con.public.orders');
    // The rate covers the server's samples of the last minute: what it counts was written in that window.
    assert.equal(typeof orders.rate, 'number');
    assert.ok(answer.windowMs > 0 && orders.rate * (answer.windowMs / 1000) <= total + 0.001, `rate ${orders.rate}/s over ${answer.windowMs} ms`);
    assert.equal(orders.records, total, 'one change event per row');
    assert.equal(orders.role, 'source');
    await page.waitForSelector('#topics-table tr[data-topic="con.public.orders"]');
    assert.equal(num(await text(page, '#topics-table tr[data-topic="con.public.orders"] [data-col="records"]')), total);
    assert.equal(num(await text(page, '#topics-table tr[data-topic="perunit.orders"] [data-col="records"]')), total - bad.length);
    assert.equal(num(await text(page, '#topics-table tr[data-topic="con.dlq"] [data-col="records"]')), bad.length);
    assert.equal(topics.find((t) => t.name === 'con.dlq').role, 'dead letters');
    await shot(page, 'topics');

    // Sinks: applied, lag and offsets as /status has them; the chart has a line per sink.
    await page.click('#tab-sinks');
    const sink = (await status()).sinks[0];
    await page.waitForSelector('#lag-chart polyline[data-sink="pg"]', { state: 'attached' });
    assert.equal(num(await text(page, '#sinks-table tr[data-sink="pg"] [data-col="applied"]')), sink.applied);
    assert.equal(num(await text(page, '#sinks-table tr[data-sink="pg"] [data-col="lag"]')), 0);
    const offsets = await text(page, '#sinks-table tr[data-sink="pg"] [data-col="offsets"]');
    for (const [k, v] of Object.entries(sink.offsets as Record<string, number>)) assert.ok(offsets.includes(`${k}@${v}`), `${k}@${v} in ${offsets}`);
    const lag = (await api('/api/lag')).body;
    assert.ok(lag.samples.length >= 1 && lag.samples.at(-1).sinks.pg.offsets === 0, 'lag samples, the last one caught up');
    await shot(page, 'sinks');

    // Processors: counts as /status has them.
    await page.click('#tab-processors');
    assert.equal(num(await text(page, '#processors-table tr[data-processor="perunit"] [data-col="processed"]')), total);
    assert.equal(num(await text(page, '#processors-table tr[data-processor="perunit"] [data-col="written"]')), total - bad.length);
    assert.equal(num(await text(page, '#processors-table tr[data-processor="perunit"] [data-col="deadLettered"]')), bad.length);
    // Expectations (the expect processor's status): pass/fail counts as /status has them; the bad rows fail qty_positive.
    const quality = (await status()).processors.find((p: any) => p.name === 'quality');
    const exp = new Map((quality.expectations as any[]).map((e) => [e.name, e]));
    assert.equal(exp.get('qty_positive').failed, bad.length, 'qty_positive fails on the bad rows');
    assert.equal(exp.get('qty_positive').passed, total - bad.length);
    for (const [name, e] of exp) {
      const row = `table[data-expectations="quality"] tr[data-expectation="${name}"]`;
      assert.equal(num(await text(page, `${row} [data-col="passed"]`)), e.passed, `${name} passed`);
      assert.equal(num(await text(page, `${row} [data-col="failed"]`)), e.failed, `${name} failed`);
    }
    assert.match(await text(page, 'table[data-expectations="quality"] tr[data-expectation="qty_positive"]'), /fail/);
    await shot(page, 'processors');

    // Reconcile: none yet, then the history another command writes.
    await page.click('#tab-reconcile');
    await page.waitForSelector('#reconcile-empty');
    mkdirSync(join(cfg.state.dir, 'reconcile'), { recursive: true });
    const runAt = new Date().toISOString();
    writeFileSync(join(cfg.state.dir, 'reconcile', 'history.jsonl'), JSON.stringify({ startedAt: runAt, finishedAt: runAt, pipeline: 'con', ok: true, results: [{ sink: 'pg', table: 'public.orders', sourceRows: total, targetRows: total, missing: 0, extra: 0, differing: 0, keys: total, rowsPerSec: 1234 }] }) + '\n');
    await page.click('#tab-overview');
    await page.click('#tab-reconcile');
    await page.waitForSelector('#reconcile table');
    assert.match(await text(page, '#reconcile'), new RegExp(`public\\.orders\\s*${total}\\s*${total}`));
    await shot(page, 'reconcile');

    // Dead letters: all of them, then a search that narrows to one row.
    await page.click('#tab-dlq');
    await page.waitForFunction((n) => document.querySelectorAll('#dlq-table tr[data-offset]').length === n, bad.length);
    assert.equal(await page.getAttribute('#dlq-count', 'data-total'), String(bad.length));
    await page.fill('#dlq-q', 'needle-47');
    await page.click('#dlq-search button');
    await page.waitForFunction(() => document.querySelectorAll('#dlq-table tr[data-offset]').length === 1);
    assert.match(await text(page, '#dlq-table tbody'), /needle-47/);
    assert.match(await text(page, '#dlq-table tbody'), /PROCESSOR_EXPR/);
    assert.equal(await page.getAttribute('#dlq-count', 'data-matched'), '1');
    await page.fill('#dlq-q', 'PROCESSOR_EXPR');
    await page.click('#dlq-search button');
    await page.waitForFunction((n) => document.querySelectorAll('#dlq-table tr[data-offset]').length === n, bad.length);
    await page.fill('#dlq-q', 'no-such-thing-anywhere');
    await page.click('#dlq-search button');
    await page.waitForFunction(() => document.querySelectorAll('#dlq-table tr[data-offset]').length === 0 && document.querySelector('#dlq-count')?.getAttribute('data-matched') === '0');
    await page.fill('#dlq-q', '');
    await page.click('#dlq-search button');
    await page.waitForFunction((n) => document.querySelectorAll('#dlq-table tr[data-offset]').length === n, bad.length);
    await noSecret(page, 'dead letters');
    await shot(page, 'dlq');

    // Replay from the page: the processor's retry topic then holds each dead letter.
    await page.selectOption('#dlq-processor', 'perunit');
    await page.click('#dlq-replay-button');
    await page.waitForFunction(() => /replayed/.test(document.querySelector('#dlq-replay-result')?.textContent ?? ''));
    assert.equal(await text(page, '#dlq-replay-result'), `replayed ${bad.length} dead letter(s) (perunit: ${bad.length})`);
    const retried = await readAll(cfg.log, 'con.retry.perunit');
    assert.deepEqual(retried.map((r) => r.value.after.id).sort((a, b) => a - b), bad, 'the retry topic holds the dead letters');
    await shot(page, 'dlq-replayed');
    // A second replay goes on from where the first stopped: nothing new to replay.
    const again = await api('/api/dlq/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ processor: 'perunit' }) });
    assert.equal(again.status, 200);
    assert.ok(again.body.total <= bad.length, 'at most what the processor dead-lettered again from the retry topic');
    assert.equal((await api('/api/dlq/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"processor":"nope"}' })).status, 400);

    // The graph: the configured nodes, with the topics between them.
    await page.click('#tab-graph');
    await page.waitForSelector('#graph g[data-node="sink:pg"]');
    for (const id of ['source:source', 'processor:perunit', 'sink:pg', 'topic:con.public.orders', 'topic:perunit.orders']) assert.ok(await page.$(`#graph g[data-node="${id}"]`), `node ${id}`);
    assert.ok(await page.$('#graph path[data-edge="source:source->topic:con.public.orders"]'));
    assert.ok(await page.$('#graph path[data-edge="topic:con.public.orders->processor:perunit"]'));
    assert.ok(await page.$('#graph path[data-edge="topic:con.public.orders->sink:pg"]'));
    await noSecret(page, 'graph');
    await shot(page, 'graph');

    // No API answer carries the password (api() checks each), nor the graph a connection.
    for (const p of ['/status', '/api/info', '/api/topics', '/api/graph', '/api/lag', '/api/reconcile', '/api/dlq', '/metrics']) await fetch(base + p).then(async (r) => assert.ok(!(await r.text()).includes(PASSWORD), p));
    assert.doesNotMatch(JSON.stringify((await api('/api/graph')).body), /connection|5432|postgres:\/\//);
    assert.deepEqual((await api('/api/actions/ping', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })).body, { pong: { a: 1 } });

    assert.deepEqual(errors, [], 'no console errors');
    await ctx.close();
  });

  it('sluice ui over the same log with a token: 401 without it, the sign-in with it, replay refused while the pipeline runs', async () => {
    const uiPort = await freePort();
    const ui = await serveConsole(cfg, { port: uiPort, token: TOKEN, logger: quietLogger() });
    const uiBase = `http://127.0.0.1:${uiPort}`;
    try {
      for (const p of ['/status', '/api/status', '/api/dlq', '/metrics']) assert.equal((await fetch(uiBase + p)).status, 401, p);
      assert.equal((await fetch(uiBase + '/api/status', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
      const auth = { authorization: `Bearer ${TOKEN}` };
      const st = await fetch(uiBase + '/api/status', { headers: auth });
      assert.equal(st.status, 200);
      assert.equal((await st.json()).pipeline, 'con');
      const replay = await fetch(uiBase + '/api/dlq/replay', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(replay.status, 409);
      assert.match((await replay.json()).error, /pipeline is running.*replay from the running pipeline's own console/);

      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const own: string[] = [];
      watch(page, own);
      await page.goto(`${uiBase}/ui/#dlq`);
      await page.waitForSelector('#login:not([hidden])');
      await shot(page, 'login');
      await page.fill('#token-input', TOKEN);
      await page.click('#login-form button');
      await page.waitForFunction(() => document.querySelector('#pipeline-name')?.textContent === 'con');
      await page.waitForSelector('#dlq-table tr[data-offset]');
      assert.match(await text(page, '#mode'), /sluice ui/);
      await noSecret(page, 'sluice ui');
      await shot(page, 'ui-dlq');
      // The only errors: the browser's notes of the 401s before signing in.
      assert.deepEqual(own.filter((e) => !/401 \(Unauthorized\)/.test(e)), []);
      await ctx.close();

      // With the pipeline stopped, the same console replays (here from the start again: --from 0).
      ac.abort();
      await run;
      const before = (await readAll(cfg.log, 'con.retry.perunit')).length;
      const stopped = await fetch(uiBase + '/api/dlq/replay', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"from":0}' });
      assert.equal(stopped.status, 200);
      const r = await stopped.json();
      assert.ok(r.total >= BAD_SNAPSHOT.length + 1, `replayed ${r.total}`);
      assert.equal((await readAll(cfg.log, 'con.retry.perunit')).length, before + r.total);
    } finally {
      await ui.close();
    }
  });
});
