/**
 * Seed 002's fraud enricher as examples/fraud ships it: its own pipeline.yaml, generator and check,
 * against the machine's PostgreSQL and Redis. Transactions (a little out of order, 2% minutes
 * late, two customers on a spree) go through the 2-minute windows while the generator writes, and
 * the pipeline is killed (kill -9) and restarted under that load; the check then finds every
 * window, feature, alert and late transaction equal to SQL over the source table.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { check } from '../../examples/fraud/check.ts';
import { generate, SCHEMA } from '../../examples/fraud/data.ts';
import type { RespClient } from '../../src/sinks/redis/resp.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { dropPrefix, keyPrefix, redisClient } from '../helpers/redis.ts';

describe('examples/fraud', () => {
  const f = useDatabase(SCHEMA);
  const keys = keyPrefix() + 'features';
  let redis: RespClient;
  before(async () => {
    redis = await redisClient();
  });
  after(async () => {
    await dropPrefix(redis, keys);
    redis.close();
  });

  it('features, alerts and late transactions equal SQL over the source, through kill -9s under load', async () => {
    const env = { FRAUD_DB: f.db.name, FRAUD_DIR: f.tmp.dir, FRAUD_KEYS: keys, FRAUD_SLOT: `fraud_${f.db.name.slice(-8)}` };
    const cfg = join(process.cwd(), 'examples/fraud/pipeline.yaml');
    const logDir = join(f.tmp.dir, 'log');
    let child = startPipelineProcess(cfg, [], [], env);
    let kills = 0;
    const total = 24_000;
    const writing = (async () => {
      // In batches with pauses, so the kills land while transactions flow.
      for (let first = 1; first <= total; first += 2000) {
        await generate(f.db.client, { transactions: 2000, firstId: first, seed: first });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    try {
      await waitUntil('windows closing', async () => (await readAll(logDir, 'features')).some((r) => r.topic === 'features'), 60_000);
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 400 + Math.random() * 600));
        await stopProcess(child, 'SIGKILL');
        kills++;
        child = startPipelineProcess(cfg, [], [], env);
      }
      await writing;
      await waitUntil('the last transaction through the window', async () => {
        return (await check({ pg: f.db.client, redis, logDir, keys })).problems.length === 0;
      }, 120_000);
    } catch (e) {
      await stopProcess(child, 'SIGKILL');
      throw new Error(`${(e as Error).message}\n${child.stderrText().slice(-3000)}`, { cause: e });
    }
    await stopProcess(child);
    assert.equal(kills, 3);
    const r = await check({ pg: f.db.client, redis, logDir, keys });
    assert.deepEqual(r.problems, []);
    assert.ok(r.windows > 1000 && r.customers === 200 && r.late > 100 && r.alerts > 10, `a workload worth checking: ${JSON.stringify({ ...r, problems: undefined })}`);
  });
});
