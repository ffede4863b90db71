/**
 * The stateless processors in a running PostgreSQL pipeline, each output checked against SQL over
 * the source tables: `mask` hashing emails (checked with pgcrypto's HMAC) and feeding a table sink,
 * `route` by a field, `filter` then `map` with a new key, an expression failing on one row's
 * values (dead-lettered with PROCESSOR_EXPR while the rest goes on), and `outbox` turning an
 * outbox table into events per aggregate type.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets } from '../helpers/targets.ts';

const SALT = 's3cr3t-salt';

describe('stateless processors in a PostgreSQL pipeline', () => {
  const f = useDatabase(`
    CREATE EXTENSION IF NOT EXISTS pgcrypto;
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, region text NOT NULL);
    INSERT INTO customers SELECT g, 'c' || g, 'user' || g || '@example.com', (ARRAY['EU', 'US', 'Apac'])[1 + g % 3] FROM generate_series(1, 60) g;
    UPDATE customers SET email = NULL WHERE id = 5;
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL, qty int NOT NULL, status text NOT NULL);
    INSERT INTO orders SELECT g, 1 + g % 60, (g * 37 % 300) + 0.5, 1 + g % 4, 'new' FROM generate_series(1, 400) g;
    UPDATE orders SET qty = 0 WHERE id = 6;
    CREATE TABLE outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb);
  `);

  it('masks, routes, filters, maps and routes outbox events, each as SQL over the source says', async () => {
    const targets = await freshTargets(f.tmp.dir);
    try {
      const yaml = pipelineYaml(
        'sl',
        f.db.name,
        f.tmp.dir,
        '',
        `batch:
  maxDelayMs: 5
processors:
  - name: pii
    type: mask
    inputs: [sl.public.customers]
    salt: \${PII_SALT}
    rules:
      - {fields: [email], with: hash}
  - name: regions
    type: route
    inputs: [pii]
    by: lower(after.region)
    output: "customers.{value}"
  - name: big
    type: filter
    inputs: [sl.public.orders]
    where: "op != 'd' && after.amount > 200"
  - name: slim
    type: map
    inputs: [big]
    key: after.customer_id
    fields:
      id: after.id
      cents: "int(after.amount * 100)"
      per_item: "round(after.amount / after.qty, 2)"
      status: upper(after.status)
    output: "slim.{table}"
  - name: events
    type: outbox
    inputs: [sl.public.outbox]
sinks:
  - name: pg
    type: postgres
    topics: [pii]
    connection: {host: 127.0.0.1, port: 5432, user: postgres, database: ${targets.pgDb}}
`,
      );
      const cfg = parseConfig(yaml, join(f.tmp.dir, 'sl.yaml'), { PII_SALT: SALT });
      const ac = new AbortController();
      const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
      try {
        await waitUntil('the snapshot through the processors', async () => (await readAll(cfg.log, 'customers.')).length >= 60, 60_000);
        await f.db.client.query(`UPDATE orders SET status = 'paid', amount = amount + 50 WHERE id % 10 = 0`);
        await f.db.client.query(`UPDATE customers SET region = 'US' WHERE id BETWEEN 1 AND 6`);
        await f.db.client.query(`INSERT INTO outbox (aggregatetype, aggregateid, type, payload) SELECT 'Order', 'o-' || g, 'OrderCreated', jsonb_build_object('order', g, 'total', g * 1.5) FROM generate_series(1, 5) g`);
        await f.db.client.query(`INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Customer', 'c-1', 'Renamed', '{"name": "Ann"}')`);
        await f.db.client.query(`DELETE FROM outbox`);
        await f.db.client.query(`INSERT INTO customers VALUES (-1, 'end', 'end@example.com', 'EU')`);
        await waitUntil('the end marker masked and applied', async () => (await targets.count('postgres', 'SELECT count(*) FROM customers WHERE id = -1')) === 1, 60_000);
        await waitUntil('the outbox events', async () => (await readAll(cfg.log, 'outbox.event.')).length >= 6, 30_000);
        // The filter → map chain reads another processor's output: wait for it too, not only for the paths above.
        const wantSlim = Number((await f.db.client.query(`SELECT count(*) AS n FROM orders WHERE amount > 200 AND qty > 0`)).rows[0].n);
        await waitUntil('the filtered and mapped orders', async () => new Set((await readAll(cfg.log, 'slim.')).map((r) => r.value?.id)).size >= wantSlim, 30_000);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        ac.abort();
        await run;
      }

      // mask → postgres sink: the target holds HMAC-SHA256(salt, email) as pgcrypto computes it, null stays null.
      const want = (await f.db.client.query({ text: `SELECT id, name, region, encode(hmac(email, $1, 'sha256'), 'hex') AS email FROM customers ORDER BY id`, values: [SALT], rowMode: 'array' })).rows;
      const got = await targets.query('postgres', `SELECT id, name, region, email FROM customers ORDER BY id`);
      assert.deepEqual(got, want);
      assert.equal(got.find((r) => r[0] === 5)![3], null);

      // route by lower(region): each customer's latest record is on its region's topic (as of its last change).
      const routed = await readAll(cfg.log, 'customers.');
      const topics = new Set(routed.map((r) => r.topic));
      assert.deepEqual([...topics].sort(), ['customers.apac', 'customers.eu', 'customers.us']);
      const lastTopic = new Map<number, string>();
      for (const r of routed) if (r.value) lastTopic.set(r.value.after.id, r.topic);
      for (const row of (await f.db.client.query(`SELECT id, lower(region) AS region FROM customers`)).rows) assert.equal(lastTopic.get(row.id), `customers.${row.region}`, `customer ${row.id}`);
      for (const r of routed) if (r.value?.after?.email) assert.match(r.value.after.email, /^[0-9a-f]{64}$/, 'routed records are masked');

      // filter → map: one row per order change with amount > 200, keyed by customer, computed as SQL computes it;
      // order 6 (qty 0, amount 222.50) is dead-lettered by the map's expression, with its code.
      const slim = await readAll(cfg.log, 'slim.');
      const expected = (await f.db.client.query(`SELECT id, customer_id, (amount * 100)::bigint AS cents, round(amount / qty, 2)::float8 AS per_item, upper(status) AS status FROM orders WHERE amount > 200 AND qty > 0`)).rows;
      const lastSlim = new Map<number, { key: number; value: any }>();
      for (const r of slim) lastSlim.set(r.value.id, { key: r.key, value: r.value });
      assert.equal(lastSlim.size, expected.length);
      for (const e of expected) {
        const s = lastSlim.get(e.id)!;
        assert.ok(s, `order ${e.id} mapped`);
        assert.equal(s.key, e.customer_id);
        assert.deepEqual(s.value, { id: e.id, cents: Number(e.cents), per_item: e.per_item, status: e.status });
      }
      const snapshotAbove = Number((await f.db.client.query(`SELECT count(*) FROM orders WHERE amount - CASE WHEN id % 10 = 0 THEN 50 ELSE 0 END > 200 AND qty > 0`)).rows[0].count);
      const updatedAbove = Number((await f.db.client.query(`SELECT count(*) FROM orders WHERE id % 10 = 0 AND amount > 200 AND qty > 0`)).rows[0].count);
      assert.equal(slim.length, snapshotAbove + updatedAbove, 'one mapped row per passing change, none twice');
      const dead = (await readAll(cfg.log, 'sl.dlq')).filter((r) => r.topic === 'sl.dlq');
      assert.equal(dead.length, 1, 'the snapshot read of order 6');
      assert.equal(JSON.parse(JSON.stringify(dead[0].value)).after.id, 6);
      for (const d of dead) {
        assert.equal(d.headers!['sluice.error.code'], 'PROCESSOR_EXPR');
        assert.equal(d.headers!['sluice.processor'], 'slim');
        assert.match(d.headers!['sluice.error.message'], /processor slim \(fields\.per_item\): .*zero/i);
      }

      // outbox: one event per insert, routed by aggregate type, keyed by aggregate id, payload as the row's jsonb; deletes ignored.
      const events = await readAll(cfg.log, 'outbox.event.');
      assert.deepEqual(events.map((e) => e.topic).sort(), [...Array(5).fill('outbox.event.Order'), 'outbox.event.Customer'].sort());
      const orders = events.filter((e) => e.topic === 'outbox.event.Order').sort((a, b) => a.value.order - b.value.order);
      assert.deepEqual(orders.map((e) => e.key), ['o-1', 'o-2', 'o-3', 'o-4', 'o-5']);
      assert.deepEqual(orders[1].value, { order: 2, total: 3.0 });
      assert.equal(orders[1].headers!.type, 'OrderCreated');
      assert.match(orders[1].headers!.id, /^[0-9a-f-]{36}$/);
    } finally {
      await targets.drop();
    }
  });
});
