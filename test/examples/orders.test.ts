/**
 * Seed 001's order pipeline as examples/orders ships it: an order service writes order changes at
 * least once (5% twice, same change_id) while the pipeline is killed with kill -9 three times;
 * after a final drain, DuckDB holds each change once and every order's current state, equal to
 * SQL over the source's events.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { check } from '../../examples/orders/check.ts';
import { SCHEMA, service } from '../../examples/orders/data.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, useDatabase } from '../helpers/pipeline.ts';

describe('examples/orders', () => {
  const f = useDatabase(SCHEMA);

  it('each change once and each order as SQL says, through kill -9s under load', async () => {
    const env = { ORDERS_DB: f.db.name, ORDERS_DIR: f.tmp.dir, ORDERS_SLOT: `ord_${f.db.name.slice(-8)}` };
    const cfg = join(process.cwd(), 'examples/orders/pipeline.yaml');
    const logDir = join(f.tmp.dir, 'log');
    let running = true;
    let rounds = 0;
    const workload = (async () => {
      while (running || rounds < 10) {
        await service(f.db.client, 300, ++rounds);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    let child = startPipelineProcess(cfg, [], [], env);
    let kills: number;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfg, [], [], env), { kills: 3, what: 'unique changes passed', progress: () => countRecords(logDir, 'unique_changes.orders.public.order_events') }));
    } finally {
      running = false;
      await workload;
    }
    // Let the source capture the rest, then take the log to its end through the processors and DuckDB.
    const total = Number((await f.db.client.query('SELECT count(*) FROM order_events')).rows[0].count);
    const deadline = Date.now() + 60_000;
    while ((await countRecords(logDir, 'orders.public.order_events')) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await stopProcess(child);
    const drain = spawnSync(process.execPath, ['bin/sluice.js', 'run', cfg, '--drain', '--only', 'processors,sinks'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(drain.status, 0, drain.stderr.slice(-3000));
    const r = await check(f.db.client, f.tmp.dir);
    assert.deepEqual(r.problems, []);
    assert.equal(kills, 3);
    assert.ok(r.repeats > 50 && r.orders > 100, `a workload with repeats: ${JSON.stringify({ ...r, problems: undefined })}`);
  });
});
