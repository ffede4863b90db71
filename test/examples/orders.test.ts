/**
 * Seed 001's order pipeline as examples/orders ships it: an order service writes order events to a
 * MongoDB collection at least once (5% twice, same change_id) while the pipeline is killed with
 * kill -9 three times; after a final drain, DuckDB holds each change once and every order's current
 * state, equal to what the collection itself says. The MongoDB server is mongo-java-server with
 * its oplog (scripts/mongo-server.sh, port 27018).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { check } from '../../examples/orders/check.ts';
import { OrderService } from '../../examples/orders/data.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, tempDir } from '../helpers/pipeline.ts';

const MONGO = 'mongodb://127.0.0.1:27018';

describe('examples/orders', () => {
  const tmp = tempDir('sluice-orders-');
  let client: MongoClient;
  before(async () => {
    execFileSync('bash', ['scripts/mongo-server.sh', 'start'], { env: { ...process.env, MONGO_PORT: '27018', MONGO_OPLOG: '1' }, stdio: 'inherit' });
    client = new MongoClient(`${MONGO}/?directConnection=true`);
    await client.connect();
  });
  after(async () => {
    await client?.close();
    tmp.remove();
  });

  it('each change once and each order as the collection says, through kill -9s under load', async () => {
    const dbName = `orders_${process.pid}`;
    const db = client.db(dbName);
    await db.dropDatabase();
    const env = { ORDERS_MONGO: MONGO, ORDERS_DB: dbName, ORDERS_DIR: tmp.dir };
    const cfg = join(process.cwd(), 'examples/orders/pipeline.yaml');
    const logDir = join(tmp.dir, 'log');
    const svc = await OrderService.open(db, 7);
    await svc.write(300); // some before the pipeline starts: the snapshot's
    let running = true;
    let rounds = 0;
    const workload = (async () => {
      while (running || rounds < 10) {
        await svc.write(300);
        rounds++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    let child = startPipelineProcess(cfg, [], [], env);
    let kills: number;
    const sourceTopic = `orders.${dbName}.order_events`;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfg, [], [], env), { kills: 3, what: 'unique changes passed', progress: () => countRecords(logDir, `unique_changes.${sourceTopic}`) }));
    } finally {
      running = false;
      await workload;
    }
    // Let the source capture the rest, then take the log to its end through the processors and DuckDB.
    const total = await db.collection('order_events').countDocuments();
    const deadline = Date.now() + 60_000;
    while ((await countRecords(logDir, sourceTopic)) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await stopProcess(child);
    const drain = spawnSync(process.execPath, ['bin/sluice.js', 'run', cfg, '--drain', '--only', 'processors,sinks'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(drain.status, 0, drain.stderr.slice(-3000));
    const r = await check(db, tmp.dir);
    assert.deepEqual(r.problems, []);
    assert.equal(kills, 3);
    assert.ok(r.repeats > 50 && r.orders > 100, `a workload with repeats: ${JSON.stringify({ ...r, problems: undefined })}`);
    await db.dropDatabase();
  });
});
