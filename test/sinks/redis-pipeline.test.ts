/**
 * A real pipeline into Redis: PostgreSQL (snapshot, then inserts, updates, deletes and NULLs) →
 * the log → two Redis sinks, one writing hashes with a TTL, one JSON strings keyed by a row field.
 * At the end Redis holds exactly the source table (compared with SQL over it): one key per row,
 * the fields of each, the TTL on each hash, no key of a deleted row, and the offsets hash of each
 * sink.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { PipelineConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { planTopology } from '../../src/engine/topology.ts';
import type { RespClient } from '../../src/sinks/redis/resp.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { dropPrefix, hgetall, keyPrefix, keysUnder, redisClient } from '../helpers/redis.ts';

const quiet = createLogger({ level: 'error' });

interface SourceRow {
  customer_id: number;
  name: string | null;
  risk: string | null;
  orders: number;
  flagged: boolean | null;
  extra: unknown;
}

describe('PostgreSQL → Redis sink (hashes with TTL, JSON strings)', () => {
  const f = useDatabase(`CREATE TABLE features (customer_id int PRIMARY KEY, name text, risk numeric(6,2), orders int NOT NULL, flagged boolean, extra jsonb);
    INSERT INTO features SELECT g, 'c' || g, (g % 97) * 1.25, g % 7, g % 3 = 0, CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('seen', g, 'tags', jsonb_build_array('a', g)) END FROM generate_series(1, 300) g;`);
  const p = keyPrefix();
  let redis: RespClient;
  let cfg: PipelineConfig;
  before(async () => {
    redis = await redisClient();
  });
  after(async () => {
    await dropPrefix(redis, p);
    redis.close();
  });

  const sourceRows = async (): Promise<SourceRow[]> => (await f.db.client.query(`SELECT customer_id, name, risk::text AS risk, orders, flagged, extra FROM features ORDER BY customer_id`)).rows;

  /** What the hash of a source row holds: non-null fields as text, JSON for jsonb. */
  const hashOf = (r: SourceRow): Record<string, string> => {
    const o: Record<string, string> = { customer_id: String(r.customer_id), orders: String(r.orders) };
    if (r.name !== null) o.name = r.name;
    if (r.risk !== null) o.risk = r.risk;
    if (r.flagged !== null) o.flagged = String(r.flagged);
    if (r.extra !== null) o.extra = JSON.stringify(r.extra);
    return o;
  };

  /** Differences between Redis and the source table ([] when equal). */
  const differences = async (): Promise<string[]> => {
    const rows = await sourceRows();
    const out: string[] = [];
    const hashKeys = await keysUnder(redis, `${p}h:`);
    const jsonKeys = await keysUnder(redis, `${p}j:`);
    const want = new Set(rows.map((r) => r.customer_id));
    if (hashKeys.length !== rows.length) out.push(`${hashKeys.length} hash keys, ${rows.length} rows`);
    if (jsonKeys.length !== rows.length) out.push(`${jsonKeys.length} json keys, ${rows.length} rows`);
    for (const k of hashKeys) if (!want.has(Number(k.slice(`${p}h:`.length)))) out.push(`${k}: no such row`);
    for (const r of rows) {
      const h = await hgetall(redis, `${p}h:${r.customer_id}`);
      const w = hashOf(r);
      // jsonb text is compared as JSON (key order and spacing are the database's).
      if (h.extra !== undefined && w.extra !== undefined && JSON.stringify(JSON.parse(h.extra)) === JSON.stringify(JSON.parse(w.extra))) h.extra = w.extra;
      try {
        assert.deepEqual(h, w);
      } catch {
        out.push(`hash ${r.customer_id}: ${JSON.stringify(h)} != ${JSON.stringify(w)}`);
      }
      const j = (await redis.call('GET', `${p}j:features:${r.customer_id}`)) as string | null;
      const wj = { customer_id: r.customer_id, name: r.name, risk: r.risk === null ? null : Number(r.risk), orders: r.orders, flagged: r.flagged, extra: r.extra };
      try {
        assert.deepEqual(j === null ? null : JSON.parse(j), wj);
      } catch {
        out.push(`json ${r.customer_id}: ${j} != ${JSON.stringify(wj)}`);
      }
      if (out.length > 10) break;
    }
    return out;
  };

  it('Redis equals the source table after a snapshot and a stream of changes', async () => {
    const yaml = pipelineYaml(
      'rp',
      f.db.name,
      f.tmp.dir,
      '',
      `sinks:
  - {name: hashes, type: redis, connection: "redis://127.0.0.1:6379/0", key: "${p}h:{key}", ttl: 1h, offsetsTable: "${p}off", batch: {maxRecords: 50, maxDelayMs: 5}}
  - {name: docs, type: redis, connection: {host: 127.0.0.1, port: 6379}, format: json, key: "${p}j:{table}:{customer_id}", offsetsTable: "${p}off"}
`,
    );
    cfg = parseConfig(yaml, 'rp.yaml', {});
    const ac = new AbortController();
    const done = runPipeline(cfg, { signal: ac.signal, logger: quiet });
    done.catch(() => {});
    try {
      await waitUntil('the snapshot in Redis', async () => (await keysUnder(redis, `${p}h:`)).length === 300 && (await keysUnder(redis, `${p}j:`)).length === 300, 60_000);
      const c = f.db.client;
      for (let i = 0; i < 40; i++) {
        await c.query('BEGIN');
        await c.query(`UPDATE features SET orders = orders + 1, risk = round((random() * 100)::numeric, 2) WHERE customer_id % 40 = $1`, [i]);
        await c.query(`INSERT INTO features VALUES ($1, 'new', NULL, 0, NULL, '{"n": [1, {"x": null}]}')`, [1000 + i]);
        if (i % 4 === 0) await c.query(`DELETE FROM features WHERE customer_id = $1`, [i * 7 + 1]);
        if (i % 5 === 0) await c.query(`UPDATE features SET name = NULL, flagged = NULL, extra = NULL WHERE customer_id = $1`, [i * 3 + 2]);
        await c.query('COMMIT');
      }
      let diff: string[] = [];
      await waitUntil('Redis equal to the source table', async () => (diff = await differences()).length === 0, 60_000).catch((e) => {
        throw new Error(`${(e as Error).message}\n${diff.join('\n')}`, { cause: e });
      });
    } finally {
      ac.abort();
      await done;
    }
    // Deleted rows have no key.
    for (let i = 0; i < 40; i += 4) {
      assert.equal(await redis.call('EXISTS', `${p}h:${i * 7 + 1}`, `${p}j:features:${i * 7 + 1}`), 0, `row ${i * 7 + 1} was deleted`);
    }
    // Every hash expires within the hour; the JSON sink set no TTL.
    for (const k of await keysUnder(redis, `${p}h:`)) {
      const ttl = (await redis.call('PTTL', k)) as number;
      assert.ok(ttl > 3_000_000 && ttl <= 3_600_000, `${k}: PTTL ${ttl}`);
    }
    for (const k of (await keysUnder(redis, `${p}j:`)).slice(0, 50)) assert.equal(await redis.call('PTTL', k), -1, k);
    // Each sink's offsets stand at the log's end of every partition of the table's topic, and the
    // records it counts as applied are exactly the changes the log holds (each applied once).
    const logged = (await readAll(join(f.tmp.dir, 'log'), 'rp.public.features')).filter((r) => r.value !== null);
    for (const sink of ['hashes', 'docs']) {
      const off = await hgetall(redis, `${p}off:rp:${sink}`);
      for (const part of [0, 1, 2]) {
        const inPart = logged.filter((r) => r.partition === part);
        const next = Number(off[`rp.public.features/${part}`]);
        assert.ok(inPart.every((r) => r.offset < next), `${sink}: partition ${part} applied up to ${next}`);
        assert.equal(Number(off[`rp.public.features/${part}:applied`]), inPart.length, `${sink}: records of partition ${part} applied once each`);
      }
    }
  });

  it('a map processor’s rows cannot feed the sink yet: the graph check says so', () => {
    const yaml = pipelineYaml('rm', f.db.name, f.tmp.dir, '', `processors:\n  - {name: feat, type: map, base: after}\nsinks:\n  - {name: r, type: redis, topics: [feat], key: "${p}m:{key}"}\n`);
    assert.throws(() => planTopology(parseConfig(yaml, 'rm.yaml', {})), (e: any) => e.code === 'ENGINE_GRAPH' && /sink r reads the output of processor feat/.test(e.message));
  });
});
