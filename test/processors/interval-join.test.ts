/**
 * The interval join in a running PostgreSQL pipeline: orders paired with the payments of the same
 * order made within 10 minutes after it (event times from the rows), each pair once, checked
 * against the same join in SQL over the source tables. A payment before its order or too late
 * pairs with nothing; the pipeline is restarted between the two halves of the workload, so pairs
 * across the restart come from the buffered state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('interval join in a pipeline', () => {
  const f = useDatabase(`
    CREATE TABLE orders (id int PRIMARY KEY, placed_at timestamptz NOT NULL, total numeric(10,2) NOT NULL);
    CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL, paid_at timestamptz NOT NULL, amount numeric(10,2) NOT NULL);
  `);

  it('pairs each order with its payments within 10 minutes, as SQL joins them, across a restart', async () => {
    const yaml = pipelineYaml(
      'ij',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
processors:
  - name: paid
    type: interval-join
    inputs: [ij.public.orders]
    right: [ij.public.payments]
    on: after.id
    rightOn: after.order_id
    timestamp: after.placed_at
    rightTimestamp: after.paid_at
    between: {lower: 0, upper: 10m}
    watermark: 1m
    as: payment
    state: {commitInterval: 100ms}
`,
    ).replace('partitions: 3', 'partitions: 1');
    const cfg = parseConfig(yaml, join(f.tmp.dir, 'ij.yaml'), {});
    const base = Date.UTC(2026, 11, 1, 8, 0, 0);
    /** Orders one minute apart; each has 0–3 payments, 0–14 minutes after it (some before it), written in time order. */
    const rows: { t: number; sql: string; args: unknown[] }[] = [];
    for (let id = 0; id < 120; id++) {
      const placed = base + id * 60_000;
      rows.push({ t: placed, sql: 'INSERT INTO orders VALUES ($1, $2, $3)', args: [id, new Date(placed), id * 1.5] });
      for (let j = 0; j < id % 4; j++) {
        const paid = placed + ((id * 7 + j * 5) % 15) * 60_000 - (j === 2 ? 120_000 : 0);
        rows.push({ t: paid, sql: 'INSERT INTO payments VALUES ($1, $2, $3, $4)', args: [id * 10 + j, id, new Date(paid), j + 1] });
      }
    }
    rows.sort((a, b) => a.t - b.t);
    /** The first hour's rows before the restart, the rest after it. */
    const cut = base + 60 * 60_000;
    const write = async (half: 0 | 1) => {
      for (const r of rows) if ((r.t < cut) === (half === 0)) await f.db.client.query(r.sql, r.args);
    };
    const paired = async () => (await readAll(cfg.log, 'paid')).filter((r) => r.topic === 'paid');

    let ac = new AbortController();
    let run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    try {
      // Rows written before the slot exists would come from the snapshot, table by table in key
      // order, not in the commit order that keeps this workload's times in order.
      await waitUntil('the replication slot', async () => (await f.db.client.query(`SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND active`)).rowCount === 1, 30_000);
      await write(0);
      await waitUntil('pairs of the first half', async () => (await paired()).length > 20, 30_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      ac.abort();
      await run;
    }
    ac = new AbortController();
    run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    let want: string[] = [];
    try {
      await write(1);
      want = (
        await f.db.client.query(`SELECT o.id || '-' || p.id AS pair FROM orders o JOIN payments p ON p.order_id = o.id AND p.paid_at BETWEEN o.placed_at AND o.placed_at + interval '10 minutes' ORDER BY 1`)
      ).rows.map((r) => r.pair as string);
      await waitUntil('every pair', async () => (await paired()).length >= want.length, 30_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      ac.abort();
      await run;
    }
    const got = (await paired()).map((r) => `${r.value.id}-${r.value.payment.id}`).sort();
    assert.deepEqual(got, [...want].sort());
    assert.ok((await paired()).some((r) => r.value.id < 60 && Date.parse(r.value.payment.paid_at) >= cut), 'pairs of an order before the restart with a payment after it');
    for (const r of await paired()) assert.deepEqual(r.key, { id: r.value.id }, "the order's key");
  });
});
