/**
 * The Redis sink through kill -9: a workload keeps incrementing per-row counters (`v`, and
 * `total` by a random amount), inserting and deleting rows while the pipeline process (PostgreSQL
 * → log → Redis) is killed with SIGKILL at random points. At the end every hash equals its source
 * row (its latest version: a batch lost or an old one applied after a newer one would show), no
 * key of a deleted row is left, and the sink's count of applied records per partition, written in
 * the same MULTI/EXEC as the data, equals the number of changes the log holds: no batch applied
 * twice, none skipped. The truth is SQL over the source table and the log, not the sink's own view.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RespClient } from '../../src/sinks/redis/resp.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { dropPrefix, hgetall, keyPrefix, keysUnder, redisClient, REDIS_HOST, REDIS_PORT } from '../helpers/redis.ts';

const KILLS = Number(process.env.SLUICE_REDIS_CRASH_KILLS ?? 6);

describe('Redis sink through kill -9', () => {
  const f = useDatabase(`CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL, total bigint NOT NULL);
    INSERT INTO counters SELECT g, 1, 0 FROM generate_series(1, 2000) g;`);
  const p = keyPrefix();
  let redis: RespClient;
  before(async () => {
    redis = await redisClient();
  });
  after(async () => {
    await dropPrefix(redis, p);
    redis.close();
  });

  it(`Redis equals the source, each change applied once, after ${KILLS} kills under load`, async () => {
    const cfgPath = join(f.tmp.dir, 'redis-crash.yaml');
    writeFileSync(
      cfgPath,
      pipelineYaml('rk', f.db.name, f.tmp.dir, '', `batch:\n  maxRecords: 200\n  maxDelayMs: 5\nsinks:\n  - {name: counters, type: redis, connection: "redis://${REDIS_HOST}:${REDIS_PORT}/0", key: "${p}c:{key}", ttl: 1d, offsetsTable: "${p}off", batch: {maxRecords: 150, maxDelayMs: 5}}\n`),
    );
    const offsetsKey = `${p}off:rk:counters`;
    const appliedNow = async () => Object.entries(await hgetall(redis, offsetsKey)).reduce((s, [k, v]) => s + (k.endsWith(':applied') ? Number(v) : 0), 0);

    let running = true;
    let nextId = 10_000;
    const live: number[] = [];
    const c = f.db.client;
    const workload = (async () => {
      while (running) {
        await c.query('BEGIN');
        for (let i = 0, n = 1 + Math.floor(Math.random() * 8); i < n; i++) {
          const r = Math.random();
          if (r < 0.75) {
            await c.query(`UPDATE counters SET v = v + 1, total = total + $2 WHERE id = $1`, [1 + Math.floor(Math.random() * 2000), 1 + Math.floor(Math.random() * 100)]);
          } else if (r < 0.9) {
            const id = nextId++;
            await c.query(`INSERT INTO counters VALUES ($1, 1, 0)`, [id]);
            live.push(id);
          } else if (live.length) {
            const id = live.splice(Math.floor(Math.random() * live.length), 1)[0];
            await c.query(`DELETE FROM counters WHERE id = $1`, [id]);
          }
        }
        await c.query('COMMIT');
        await new Promise((r) => setTimeout(r, 1));
      }
    })();

    let child = startPipelineProcess(cfgPath);
    let kills: number;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), { kills: KILLS, what: 'the sink writing', progress: appliedNow }));
    } finally {
      running = false;
      await workload;
    }
    assert.equal(kills, KILLS);

    const rows = async () => (await c.query(`SELECT id, v, total::text AS total FROM counters ORDER BY id`)).rows as { id: number; v: number; total: string }[];
    const differences = async (): Promise<string[]> => {
      const want = await rows();
      const out: string[] = [];
      const keys = await keysUnder(redis, `${p}c:`);
      if (keys.length !== want.length) out.push(`${keys.length} keys, ${want.length} rows`);
      const got = await redis.pipeline(want.map((r) => ['HGETALL', `${p}c:${r.id}`]));
      want.forEach((r, i) => {
        const h = got[i] as string[];
        const o: Record<string, string> = {};
        for (let j = 0; j + 1 < h.length; j += 2) o[h[j]] = h[j + 1];
        if (o.v !== String(r.v) || o.total !== r.total || o.id !== String(r.id)) out.push(`row ${r.id}: v ${r.v} total ${r.total}, Redis ${JSON.stringify(o)}`);
      });
      return out;
    };
    let diff: string[] = [];
    try {
      await waitUntil('Redis caught up with the source', async () => (diff = await differences()).length === 0, 120_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${diff.slice(0, 20).join('\n')}\n${child.stderrText().slice(-3000)}`, { cause: e });
    } finally {
      await stopProcess(child);
    }

    // Each change in the log was applied once: the count written with each batch equals the log's.
    const logged = (await readAll(join(f.tmp.dir, 'log'), 'rk.public.counters')).filter((r) => r.value !== null);
    const off = await hgetall(redis, offsetsKey);
    for (const part of [0, 1, 2]) {
      const inPart = logged.filter((r) => r.partition === part);
      assert.ok(inPart.every((r) => r.offset < Number(off[`rk.public.counters/${part}`])), `partition ${part}: every change applied`);
      assert.equal(Number(off[`rk.public.counters/${part}:applied`]), inPart.length, `partition ${part}: ${inPart.length} changes in the log, each applied once`);
    }
  });
});
