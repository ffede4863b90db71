/**
 * The Cassandra sink against a real Apache Cassandra node: cassandra-all from Maven Central, started
 * by scripts/cassandra-server.sh (native port CASSANDRA_PORT, default 19042). A node that cannot
 * start fails the suite with its output; nothing skips. The truth is always SQL over the source.
 *
 * - Types, inserts, updates (to and from null), deletes and a truncate of a PostgreSQL table equal
 *   in Cassandra, in the table the sink created with the documented CQL types.
 * - kill -9 of the pipeline under load, four times: every row equals the source, and every cell's
 *   write time is `base + offset` of the key's last change in the log (a lost batch, or an older
 *   change applied over a newer one, would show); then an old batch applied late by a second sink
 *   (a stalled worker, a replay) changes nothing.
 * - Seed 002's inventory_global (a window aggregation keyed by SKU and warehouse) through kill -9s
 *   equals availability as SQL computes it.
 * - A bad config is reported at its line; an unreachable node with a clear, retried error.
 *
 *   node scripts/run-tests.mjs test/peers/cassandra       (the node is stopped at the end unless
 *                                                          it was running before)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import cassandra from 'cassandra-driver';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import type { SinkBatch, SinkRecord } from '../../src/sinks/types.ts';
import { SCHEMA as INVENTORY_SCHEMA, step, TRUTH_SQL } from '../../examples/inventory/data.ts';
import { killRepeatedly, runSluice, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, freePort, pipelineYaml, readAll, readSchemas, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const PORT = Number(process.env.CASSANDRA_PORT ?? 19042);
const KS = `sluicet_${randomBytes(3).toString('hex')}`;
const quiet = createLogger({ level: 'error' });

function script(cmd: string): { status: number | null; out: string } {
  const r = spawnSync('bash', ['scripts/cassandra-server.sh', cmd], { encoding: 'utf8', timeout: 600_000, env: { ...process.env, CASSANDRA_PORT: String(PORT) } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The sink's YAML (one entry of `sinks:`). */
const sinkYaml = (name: string, extra = '') => `sinks:\n  - name: ${name}\n    type: cassandra\n    connection: {hosts: ["127.0.0.1:${PORT}"], statementTimeout: 30s}\n    keyspace: ${KS}\n    batch: {maxRecords: 200, maxDelayMs: 5}\n${extra}`;

describe('Cassandra sink (a real node)', () => {
  let client: InstanceType<typeof cassandra.Client>;
  let wasRunning = false;

  before(async () => {
    wasRunning = script('status').status === 0;
    const t0 = Date.now();
    const r = script('start');
    assert.equal(r.status, 0, `Cassandra did not start (bash scripts/cassandra-server.sh start, exit ${r.status}):\n${r.out.slice(-6000)}`);
    console.log(`# ${r.out.trim().split('\n').pop()} (script: ${Date.now() - t0} ms${wasRunning ? ', was running' : ''})`);
    client = new cassandra.Client({ contactPoints: [`127.0.0.1:${PORT}`], localDataCenter: 'datacenter1', encoding: { useBigIntAsLong: true } });
    await client.connect();
  });

  after(async () => {
    await client?.execute(`DROP KEYSPACE IF EXISTS ${KS}`).catch(() => {});
    await client?.shutdown();
    if (!wasRunning) script('stop');
  });

  const rowsOf = async (table: string) => (await client.execute(`SELECT * FROM ${KS}.${table}`)).rows;

  describe('a table of many types: inserts, updates, deletes, truncate', () => {
    const f = useDatabase(`CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), qty bigint, ratio double precision, active boolean,
        born date, seen timestamp(3), at timestamptz(3), data bytea, uid uuid, doc jsonb, tags int[], t time(0), small smallint);
      INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g::bigint * 10000000000, g / 7.0, g % 2 = 0, date '2024-01-01' + g, timestamp '2024-01-01 10:00:00.123' + g * interval '1 hour',
        timestamptz '2024-06-01 00:00:00.5+02' + g * interval '1 minute', decode(lpad(to_hex(g), 4, '0'), 'hex'), md5(g::text)::uuid, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)),
        ARRAY[g, g + 1], time '08:00:00' + g * interval '1 second', (g % 100)::smallint
      FROM generate_series(1, 300) g;`);

    const truth = async () =>
      (
        await f.db.client.query(`SELECT id, name, price::text AS price, qty::text AS qty, ratio, active, born::text AS born, (extract(epoch FROM seen) * 1000)::bigint::text AS seen,
        (extract(epoch FROM at) * 1000)::bigint::text AS at, encode(data, 'hex') AS data, uid::text AS uid, doc::text AS doc, tags, t::text AS t, small, to_jsonb(items) ->> 'note' AS note FROM items ORDER BY id`)
      ).rows.map((r) => JSON.stringify(r));
    const inCassandra = async () =>
      (await rowsOf('items'))
        .map((r) => ({
          id: r.id,
          name: r.name,
          price: r.price?.toString() ?? null,
          qty: r.qty?.toString() ?? null,
          ratio: r.ratio,
          active: r.active,
          born: r.born?.toString() ?? null,
          seen: r.seen ? String(r.seen.getTime()) : null,
          at: r.at ? String(r.at.getTime()) : null,
          data: r.data ? r.data.toString('hex') : null,
          uid: r.uid?.toString() ?? null,
          doc: r.doc,
          tags: r.tags,
          t: r.t ? r.t.toString().replace(/\.0+$/, '') : null,
          small: r.small,
          note: r.note ?? null,
        }))
        .sort((a, b) => a.id - b.id)
        .map((r) => JSON.stringify(r));
    const differences = async () => {
      const [want, have] = [await truth(), await inCassandra()];
      const h = new Set(have);
      const w = new Set(want);
      const out = want.filter((r) => !h.has(r)).map((r) => `missing/different: ${r}`);
      out.push(...have.filter((r) => !w.has(r)).map((r) => `extra: ${r}`));
      return out;
    };
    const caughtUp = async (what: string, child: ReturnType<typeof startPipelineProcess>) => {
      let diff: string[] = [];
      await waitUntil(what, async () => (diff = await differences()).length === 0, 90_000).catch((e) => {
        throw new Error(`${(e as Error).message}\n${diff.slice(0, 6).join('\n')}\n${child.stderrText().slice(-3000)}`, { cause: e });
      });
    };

    it('Cassandra equals the source after each step, in a table typed as documented', async () => {
      const cfgPath = join(f.tmp.dir, 'types.yaml');
      // A second sink keeps deleted rows (deletes: soft) with the unwrap metadata columns.
      const soft = `  - name: soft\n    type: cassandra\n    connection: {hosts: ["127.0.0.1:${PORT}"]}\n    keyspace: ${KS}\n    tableName: "{table}_soft"\n    deletes: soft\n    addFields: [op, table, source_ts_ms]\n`;
      writeFileSync(cfgPath, pipelineYaml('ct', f.db.name, f.tmp.dir, '', sinkYaml('cass') + soft));
      const child = startPipelineProcess(cfgPath);
      try {
        await caughtUp('the snapshot in Cassandra', child);
        const types = Object.fromEntries((await client.execute(`SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'items'`, [KS])).rows.map((r) => [r.column_name, r.type]));
        assert.deepEqual(types, {
          id: 'int', name: 'text', price: 'decimal', qty: 'bigint', ratio: 'double', active: 'boolean', born: 'date', seen: 'timestamp', at: 'timestamp', data: 'blob', uid: 'uuid', doc: 'text', tags: 'frozen<list<int>>', t: 'time', small: 'smallint',
        });
        const c = f.db.client;
        // A new source column is added to the Cassandra table (schemaEvolution: add_columns).
        await c.query(`ALTER TABLE items ADD COLUMN note text`);
        await c.query(`UPDATE items SET note = 'note ' || id WHERE id % 5 = 0`);
        await c.query(`UPDATE items SET name = name || ' (renamed)', price = price + 0.01, active = NOT active, tags = ARRAY[7, 8, 9] WHERE id % 3 = 0`);
        await c.query(`UPDATE items SET name = NULL, doc = NULL, born = NULL, data = NULL, tags = NULL WHERE id % 10 = 1`);
        await c.query(`UPDATE items SET name = 'back', doc = '{"back": true}' WHERE id = 11`);
        await c.query(`DELETE FROM items WHERE id % 7 = 0`);
        await c.query(`INSERT INTO items (id, name, qty, uid) VALUES (1000, 'new', -9223372036854775807, gen_random_uuid()), (1001, 'ünïcödé ✓', 0, NULL)`);
        // A key deleted and inserted again: the insert's write time is above the delete's.
        await c.query(`DELETE FROM items WHERE id = 2; INSERT INTO items (id, name) VALUES (2, 'again')`);
        await caughtUp('updates, deletes and inserts in Cassandra', child);
        assert.equal(Object.fromEntries((await client.execute(`SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'items'`, [KS])).rows.map((r) => [r.column_name, r.type])).note, 'text');

        // deletes: soft: every row the source ever had, the deleted ones flagged, with __op, __table, __source_ts_ms.
        const live = new Map((await c.query(`SELECT id, name FROM items`)).rows.map((r) => [r.id as number, r.name as string | null]));
        let softProblems: string[] = [];
        await waitUntil('the soft-delete table', async () => {
          const rows = await rowsOf('items_soft');
          softProblems = [];
          const byId = new Map(rows.map((r) => [r.id as number, r]));
          for (const [id, name] of live) {
            const r = byId.get(id);
            if (!r || r.__deleted !== false || r.name !== name || r.__table !== 'public.items' || !(BigInt(r.__source_ts_ms ?? 0) > 0n)) softProblems.push(`live ${id}: ${JSON.stringify(r ?? null, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
          }
          for (let id = 7; id <= 300; id += 7) {
            const r = byId.get(id);
            if (!r || r.__deleted !== true || r.__op !== 'd') softProblems.push(`deleted ${id}: ${r ? `${r.__deleted} ${r.__op}` : 'missing'}`);
          }
          if (rows.length !== live.size + 42) softProblems.push(`${rows.length} rows, want ${live.size + 42}`);
          return softProblems.length === 0;
        }, 60_000).catch((e) => {
          throw new Error(`${(e as Error).message}\n${softProblems.slice(0, 6).join('\n')}`, { cause: e });
        });

        await c.query(`TRUNCATE items; INSERT INTO items (id, name, qty) VALUES (1, 'after truncate', 1), (5000, 'x', 2)`);
        await caughtUp('the truncate and the rows after it in Cassandra', child);
      } finally {
        await stopProcess(child);
      }
    });
  });

  describe('kill -9 under load, and an old batch applied late', () => {
    const KILLS = Number(process.env.SLUICE_CASSANDRA_CRASH_KILLS ?? 4);
    const f = useDatabase(`CREATE TABLE counters (id int PRIMARY KEY, v int NOT NULL, total bigint NOT NULL);
      INSERT INTO counters SELECT g, 1, 0 FROM generate_series(1, 2000) g;`);

    it(`every row equals the source with the write time of its last change, after ${KILLS} kills`, async () => {
      const cfgPath = join(f.tmp.dir, 'crash.yaml');
      writeFileSync(cfgPath, pipelineYaml('ck', f.db.name, f.tmp.dir, '', `batch:\n  maxRecords: 200\n  maxDelayMs: 5\n${sinkYaml('cass')}`));
      const applied = async () => {
        const rs = await client.execute(`SELECT next_offset FROM ${KS}.sluice_offsets WHERE sink = 'ck/cass'`);
        return rs.rows.reduce((s, r) => s + Number(r.next_offset ?? 0), 0);
      };
      let running = true;
      let nextId = 10_000;
      const live: number[] = [];
      const c = f.db.client;
      const workload = (async () => {
        while (running) {
          await c.query('BEGIN');
          for (let i = 0, n = 1 + Math.floor(Math.random() * 8); i < n; i++) {
            const r = Math.random();
            if (r < 0.75) await c.query(`UPDATE counters SET v = v + 1, total = total + $2 WHERE id = $1`, [1 + Math.floor(Math.random() * 2000), 1 + Math.floor(Math.random() * 100)]);
            else if (r < 0.9) {
              const id = nextId++;
              await c.query(`INSERT INTO counters VALUES ($1, 1, 0)`, [id]);
              live.push(id);
            } else if (live.length) await c.query(`DELETE FROM counters WHERE id = $1`, [live.splice(Math.floor(Math.random() * live.length), 1)[0]]);
          }
          await c.query('COMMIT');
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      let child = startPipelineProcess(cfgPath);
      let kills: number;
      try {
        ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), { kills: KILLS, what: 'the sink writing', progress: applied }));
      } finally {
        running = false;
        await workload;
      }
      assert.equal(kills, KILLS);

      const want = async () => (await c.query(`SELECT id, v, total::text AS total FROM counters ORDER BY id`)).rows.map((r) => `${r.id}:${r.v}:${r.total}`);
      const have = async () => (await client.execute(`SELECT id, v, total FROM ${KS}.counters`)).rows.map((r) => ({ id: r.id as number, s: `${r.id}:${r.v}:${r.total}` })).sort((a, b) => a.id - b.id).map((r) => r.s);
      let diff: string[] = [];
      const differences = async () => {
        const [w, h] = [await want(), await have()];
        const hs = new Set(h);
        const ws = new Set(w);
        return [...w.filter((x) => !hs.has(x)).map((x) => `source ${x}`), ...h.filter((x) => !ws.has(x)).map((x) => `cassandra ${x}`)];
      };
      try {
        await waitUntil('Cassandra caught up with the source', async () => (diff = await differences()).length === 0, 120_000);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${diff.slice(0, 20).join('\n')}\n${child.stderrText().slice(-3000)}`, { cause: e });
      } finally {
        await stopProcess(child);
      }

      // Each row's cells carry the write time of its key's last change in the log: base + offset.
      const logDir = join(f.tmp.dir, 'log');
      const logged = (await readAll(logDir, 'ck.public.counters')).filter((r) => r.value !== null && r.key !== null);
      const last = new Map<number, (typeof logged)[number]>();
      for (const r of logged) last.set(r.key.id, r);
      const bases = new Map((await client.execute(`SELECT topic, partition, base, next_offset FROM ${KS}.sluice_offsets WHERE sink = 'ck/cass'`)).rows.map((r) => [`${r.topic}/${r.partition}`, { base: BigInt(r.base), next: Number(r.next_offset) }]));
      for (const [k, b] of bases) {
        const end = logged.filter((r) => `${r.topic}/${r.partition}` === k).reduce((m, r) => Math.max(m, r.offset + 1), 0);
        assert.equal(b.next, end, `${k}: the stored offset is the end of the partition`);
      }
      const written = (await client.execute(`SELECT id, writetime(v) AS wt FROM ${KS}.counters`)).rows;
      assert.equal(written.length, [...last.values()].filter((r) => r.value.op !== 'd').length);
      let checked = 0;
      for (const row of written) {
        const r = last.get(row.id)!;
        const want = bases.get(`${r.topic}/${r.partition}`)!.base + BigInt(r.offset);
        assert.equal(BigInt(row.wt), want, `row ${row.id}: written at base + offset ${r.offset} of its last change (${r.topic}/${r.partition})`);
        checked++;
      }
      assert.ok(checked > 1000, `${checked} rows checked`);

      // A stalled worker (or a replay) writes an old batch late: the oldest change of every key,
      // and the first deletes. Nothing it writes is newer than what Cassandra holds: nothing changes.
      const before = await have();
      const schemas = await readSchemas(logDir, 'ck');
      const first = new Map<number, (typeof logged)[number]>();
      for (const r of logged) if (!first.has(r.key.id)) first.set(r.key.id, r);
      const toSink = (r: (typeof logged)[number]): SinkRecord => ({ topic: r.topic, partition: r.partition, offset: r.offset, key: JSON.stringify(r.key), value: JSON.stringify(r.value), op: r.value.op, schema: schemas.get(r.headers!.s) });
      const old = [...first.values()].map(toSink);
      const schema = old[0].schema;
      const oldDeletes = logged.filter((r) => r.value.op === 'd').slice(0, 20).map(toSink);
      const late: SinkBatch = { tables: [{ topic: 'ck.public.counters', schema, schemas: [schema], truncate: null, changes: old, upserts: old.filter((r) => r.op !== 'd'), deletes: oldDeletes, keyless: [] }], offsets: [], records: old.length, bytes: 0 };
      const cfg = parseConfig(pipelineYaml('ck', f.db.name, f.tmp.dir, '', sinkYaml('cass')), 'late.yaml', process.env).sinks[0];
      const stale = await sinkSpec('cassandra').create(cfg, { pipeline: 'ck', logger: quiet, id: 'ck/cass' });
      await stale.open();
      try {
        await stale.apply(late);
      } finally {
        await stale.close();
      }
      assert.ok(old.length > 2000 && oldDeletes.length > 0, `${old.length} old changes and ${oldDeletes.length} old deletes applied late`);
      assert.deepEqual(await have(), before, 'an old batch applied late changed nothing');
      assert.deepEqual(await have(), await want());
    });
  });

  describe("seed 002's inventory_global", () => {
    const f = useDatabase(INVENTORY_SCHEMA);

    it('the aggregate table in Cassandra equals availability as SQL computes it, through kill -9s', async () => {
      const cfgPath = join(f.tmp.dir, 'inventory.yaml');
      const processors = `processors:
  - name: inventory_global
    type: window
    inputs: [inv.public.inventory_events, inv.public.order_lines]
    groupBy: {sku: after.sku, warehouse: after.warehouse}
    window: {type: global}
    aggregates:
      received: "sum(ends_with($topic, '.inventory_events') ? after.qty : 0)"
      committed: "sum(ends_with($topic, '.order_lines') && after.status != 'cancelled' ? after.qty : 0)"
      available: "sum(ends_with($topic, '.inventory_events') ? after.qty : (after.status == 'cancelled' ? 0 : -after.qty))"
    format: changes
    output: inventory.global.update
`;
      writeFileSync(cfgPath, pipelineYaml('inv', f.db.name, f.tmp.dir, 'tables: [public.inventory_events, public.order_lines]', `${processors}${sinkYaml('cass', '    topics: [inventory_global]\n')}`));
      let running = true;
      let steps = 0;
      const workload = (async () => {
        for (let n = 1; running || n <= 30; n++) {
          await step(f.db.client, n, n);
          steps = n;
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      const logDir = join(f.tmp.dir, 'log');
      let child = startPipelineProcess(cfgPath);
      try {
        ({ child } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), { kills: 2, what: 'aggregates updated', progress: () => countRecords(logDir, 'inventory.global.update') }));
      } finally {
        running = false;
        await workload;
      }
      const want = async () => (await f.db.client.query(TRUTH_SQL)).rows.map((r) => JSON.stringify(r));
      const have = async () =>
        (await client.execute(`SELECT sku, warehouse, received, committed, available FROM ${KS}.inventory_global`)).rows
          .map((r) => ({ sku: r.sku, warehouse: r.warehouse, received: r.received, committed: r.committed, available: r.available }))
          .sort((a, b) => (a.sku + a.warehouse < b.sku + b.warehouse ? -1 : a.sku + a.warehouse > b.sku + b.warehouse ? 1 : 0))
          .map((r) => JSON.stringify(r));
      let problems: string[] = [];
      try {
        await waitUntil('inventory_global in Cassandra equal to SQL over the source', async () => {
          const [w, h] = [await want(), await have()];
          const hs = new Set(h);
          const ws = new Set(w);
          problems = [...w.filter((x) => !hs.has(x)).map((x) => `SQL ${x}`), ...h.filter((x) => !ws.has(x)).map((x) => `Cassandra ${x}`)];
          return problems.length === 0;
        }, 90_000);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${problems.slice(0, 10).join('\n')}\n${child.stderrText().slice(-3000)}`, { cause: e });
      } finally {
        await stopProcess(child);
      }
      assert.ok(steps >= 30, `${steps} workload steps`);
      const rows = (await have()).length;
      assert.ok(rows > 50, `${rows} SKU × warehouse rows`);
      const pk = (await client.execute(`SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'inventory_global'`, [KS])).rows.filter((r) => r.kind === 'partition_key').map((r) => r.column_name).sort();
      assert.deepEqual(pk, ['sku', 'warehouse'], 'keyed by SKU and warehouse');
    });
  });

  describe('errors', () => {
    const f = useDatabase('CREATE TABLE t (id int PRIMARY KEY)');

    it('a bad config is reported at its line', async () => {
      const cfgPath = join(f.tmp.dir, 'bad.yaml');
      writeFileSync(cfgPath, pipelineYaml('bad', f.db.name, f.tmp.dir, '', sinkYaml('cass', '    consistency: sometimes\n    tableMap: {public.t: "no-such-name"}\n')));
      const r = await runSluice(['validate', cfgPath]);
      assert.notEqual(r.status, 0);
      const text = r.stdout + r.stderr;
      assert.match(text, /CONFIG_INVALID/);
      assert.match(text, new RegExp(`bad\\.yaml:\\d+:\\d+: sinks\\.0\\.consistency: must be one of .*"local_quorum".*\\(got "sometimes"\\)`));
      assert.match(text, /bad\.yaml:\d+:\d+: sinks\.0\.tableMap/);
      const line = Number(/bad\.yaml:(\d+):\d+: sinks\.0\.consistency/.exec(text)![1]);
      const yaml = pipelineYaml('bad', f.db.name, f.tmp.dir, '', sinkYaml('cass', '    consistency: sometimes\n'));
      assert.equal(yaml.split('\n')[line - 1].trim(), 'consistency: sometimes', 'the line named is the one with the bad value');
    });

    it('an unreachable node gives a clear error, and the sink keeps retrying', async () => {
      const port = await freePort();
      const cfgPath = join(f.tmp.dir, 'down.yaml');
      writeFileSync(cfgPath, pipelineYaml('down', f.db.name, f.tmp.dir, '', `sinks:\n  - name: cass\n    type: cassandra\n    connection: {hosts: ["127.0.0.1:${port}"], connectTimeout: 2s}\n    keyspace: ${KS}\n`));
      const child = startPipelineProcess(cfgPath);
      try {
        await waitUntil('the error about the unreachable node', async () => /SINK_CONNECTION_LOST/.test(child.stderrText()), 60_000);
        const text = child.stderrText();
        assert.match(text, new RegExp(`cannot reach Cassandra at 127\\.0\\.0\\.1:${port} \\(127\\.0\\.0\\.1:${port}: ECONNREFUSED\\): start Cassandra there`));
        assert.equal(child.exitCode, null, 'the pipeline keeps running (the error is retried)');
      } finally {
        await stopProcess(child);
      }
    });
  });
});
