/**
 * Seed 002's inventory global aggregation as examples/inventory ships it: receipts and order lines
 * (reserved, then shipped, cancelled, resized, moved to another warehouse, removed) change under
 * load while the pipeline is killed with kill -9 three times; the target table inventory_global
 * then equals availability as SQL over the source tables computes it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { check } from '../../examples/inventory/check.ts';
import { SCHEMA, step } from '../../examples/inventory/data.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { countRecords, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('examples/inventory', () => {
  const f = useDatabase(SCHEMA);
  let dw: Awaited<ReturnType<typeof freshDatabase>>;
  before(async () => {
    dw = await freshDatabase('sluice_t');
  });
  after(async () => {
    await dw.drop();
  });

  it('inventory_global equals availability as SQL computes it, through kill -9s under load', async () => {
    const env = { INVENTORY_DB: f.db.name, INVENTORY_DW: dw.name, INVENTORY_DIR: f.tmp.dir, INVENTORY_SLOT: `inv_${f.db.name.slice(-8)}` };
    const cfg = join(process.cwd(), 'examples/inventory/pipeline.yaml');
    const logDir = join(f.tmp.dir, 'log');
    let running = true;
    let steps = 0;
    const workload = (async () => {
      for (let n = 1; running || n <= 30; n++) {
        await step(f.db.client, n, n);
        steps = n;
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    let child = startPipelineProcess(cfg, [], [], env);
    let kills: number;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfg, [], [], env), { kills: 3, what: 'aggregates updated', progress: () => countRecords(logDir, 'inventory.global.update') }));
    } finally {
      running = false;
      await workload;
    }
    try {
      let problems: string[] = [];
      await waitUntil('inventory_global equal to SQL over the source', async () => (problems = await check(f.db.client, dw.client)).length === 0, 60_000).catch((e) => {
        throw new Error(`${(e as Error).message}\n${problems.join('\n')}\n${child.stderrText().slice(-2000)}`, { cause: e });
      });
    } finally {
      await stopProcess(child);
    }
    assert.equal(kills, 3);
    assert.ok(steps >= 30, `${steps} workload steps`);
    const rows = Number((await dw.client.query('SELECT count(*) FROM inventory_global')).rows[0].count);
    assert.ok(rows > 50, `${rows} SKU × warehouse rows`);
    const cancelled = Number((await f.db.client.query(`SELECT count(*) FROM order_lines WHERE status = 'cancelled'`)).rows[0].count);
    assert.ok(cancelled > 0, 'the workload cancelled lines (their stock came back)');
  });
});
