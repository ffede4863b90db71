/**
 * The stream–table join in a running PostgreSQL pipeline: payments enriched with the current row of
 * their customer, read from the customers table's change topic and kept as keyed state. Each phase
 * of the test changes the customers, waits until the join has committed the change to its state
 * topic, then inserts payments: each payment's row must hold its customer as SQL over the source
 * said at that time (none for an unknown or deleted customer). The pipeline is stopped and started
 * again in the middle: the restarted join has the table from its state, not from re-reading it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('stream–table join', () => {
  const f = useDatabase(`
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, tier text NOT NULL, secret text);
    CREATE TABLE payments (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
    INSERT INTO customers SELECT g, 'c' || g, 'basic', 'pw' || g FROM generate_series(1, 50) g;
  `);

  it('enriches each payment with its customer as SQL said when it was inserted, also after a restart', async () => {
    const yaml = pipelineYaml(
      'jn',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
processors:
  - name: enriched
    type: join
    inputs: [jn.public.payments]
    table: [jn.public.customers]
    on: after.customer_id
    as: customer
    fields: [name, tier]
  - name: known
    type: join
    inputs: [jn.public.payments]
    table: [jn.public.customers]
    on: after.customer_id
    tableKey: after.id
    as: c
    kind: inner
`,
    );
    const cfg = parseConfig(yaml, join(f.tmp.dir, 'jn.yaml'), {});
    const customers = async () => new Map((await f.db.client.query(`SELECT id, name, tier FROM customers`)).rows.map((r) => [r.id as number, { name: r.name, tier: r.tier }]));
    const stateRecords = async () => (await readAll(cfg.log, 'jn.state.enriched')).length;
    /** payment id → the customer row SQL had when the payment was inserted (undefined: none). */
    const want = new Map<number, { name: string; tier: string } | undefined>();
    const pay = async (ids: number[], customerOf: (id: number) => number) => {
      const now = await customers();
      await f.db.client.query(`INSERT INTO payments SELECT g, c, g * 1.25 FROM unnest($1::int[], $2::int[]) AS u(g, c)`, [ids, ids.map(customerOf)]);
      for (const id of ids) want.set(id, now.get(customerOf(id)));
    };

    let ac = new AbortController();
    let run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    try {
      // Phase 1: the snapshot's 50 customers are in the join's state; payments for them and for unknown customers.
      await waitUntil('the customers in the join state', async () => (await stateRecords()) >= 50, 60_000);
      await pay([...Array(100)].map((_, i) => i + 1), (id) => (id % 10 === 0 ? 900 + id : 1 + (id % 50)));
      // The join follows read order, and the two tables are two topics: let it take the payments before the next change.
      await waitUntil('the phase-1 payments joined', async () => (await readAll(cfg.log, 'enriched.')).length >= 100, 30_000);
      // Phase 2: customers change (a new tier, a new customer, one deleted); then more payments.
      await f.db.client.query(`UPDATE customers SET tier = 'gold', secret = 'x' WHERE id <= 10`);
      await f.db.client.query(`INSERT INTO customers VALUES (51, 'c51', 'new', NULL)`);
      await f.db.client.query(`DELETE FROM customers WHERE id = 20`);
      await waitUntil('the customer changes in the join state', async () => (await stateRecords()) >= 50 + 12, 30_000);
      await pay([...Array(60)].map((_, i) => 101 + i), (id) => 1 + (id % 60));
      await waitUntil('the phase-2 payments joined', async () => (await readAll(cfg.log, 'enriched.')).length >= 160, 30_000);
    } finally {
      ac.abort();
      await run;
    }
    // Phase 3, after a restart: the table comes from the state topic (no customer is read again), then one more change.
    ac = new AbortController();
    run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    try {
      await pay([...Array(40)].map((_, i) => 161 + i), (id) => 1 + (id % 55));
      await waitUntil('the phase-3 payments joined', async () => (await readAll(cfg.log, 'enriched.')).length >= 200, 30_000);
      await f.db.client.query(`UPDATE customers SET name = 'renamed' WHERE id = 3`);
      await waitUntil('the rename in the join state', async () => (await readAll(cfg.log, 'jn.state.enriched')).some((r) => r.value?.name === 'renamed'), 30_000);
      await pay([201, 202], () => 3);
      await waitUntil('every payment joined', async () => (await readAll(cfg.log, 'enriched.')).length >= 202, 30_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      ac.abort();
      await run;
    }

    const left = await readAll(cfg.log, 'enriched.');
    assert.deepEqual([...new Set(left.map((r) => r.topic))], ['enriched.jn.public.payments']);
    assert.equal(left.length, 202, 'one row per payment, none twice');
    for (const r of left) {
      const id = r.value.id as number;
      assert.deepEqual(r.value.customer, want.get(id) ?? null, `payment ${id} (customer ${r.value.customer_id})`);
      assert.equal(Number(r.value.amount), id * 1.25);
      assert.deepEqual(r.key, { id }, 'the payment key');
    }
    assert.ok([...want.values()].filter((v) => v === undefined).length >= 10, 'payments of unknown and deleted customers were written with null (left join)');
    // The inner join writes only payments with a customer, and keeps every column (no `fields`).
    const inner = await readAll(cfg.log, 'known.');
    assert.deepEqual(inner.map((r) => r.value.id as number).sort((a, b) => a - b), [...want].filter(([, v]) => v).map(([id]) => id).sort((a, b) => a - b));
    for (const r of inner) assert.deepEqual(Object.keys(r.value.c).sort(), ['id', 'name', 'secret', 'tier']);
  });
});
