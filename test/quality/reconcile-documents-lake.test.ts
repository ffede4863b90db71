/**
 * `sluice reconcile` against document and lake targets: a PostgreSQL source applied to MongoDB
 * (mongo-java-server), PostgreSQL JSONB documents, a Delta table and two Iceberg tables (one in the
 * filesystem catalog, one in the JDBC catalog on PostgreSQL; all
 * `mode: merge`), and a Delta bronze table (append: not comparable). The document targets are
 * corrupted behind the running pipeline's back while a writer keeps changing other keys, and
 * reconcile must report exactly the planted keys (the writer's in-flight changes are not drift,
 * and the documents' millisecond timestamps are not either). The lake tables' Parquet files are
 * rewritten with the pipeline stopped (its merges rewrite files), and reconcile must find those.
 * `--repair` then re-emits every planted key through the log, the restarted pipeline applies them,
 * and reconcile finds every target equal to the source.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { runSluice, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { pipelineYaml } from '../helpers/pipeline.ts';

const MONGO_URL = process.env.MONGO_URL_TEST ?? 'mongodb://127.0.0.1:27017';
const sluice = (args: string[]) => runSluice(['reconcile', ...args]);

type Found = { sink: string; table: string; key: string; kind: string; columns?: string[] };
function found(report: any): Found[] {
  return report.results
    .flatMap((r: any) => r.keys.map((k: any) => ({ sink: r.sink, table: r.table, key: Object.values(k.key).join(','), kind: k.kind, ...(k.columns ? { columns: k.columns.map((c: any) => c.column) } : {}) })))
    .sort((a: Found, b: Found) => (a.sink + a.table + a.key < b.sink + b.table + b.key ? -1 : 1));
}

/** Rewrites each Parquet file under `dir` that has a `note` column through `select` (over `f`), in a DuckDB of its own. */
async function rewriteParquet(dir: string, select: (f: string) => string): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.parquet') ? [join(d, e.name)] : []));
  try {
    for (const f of walk(dir)) {
      const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${f}')`)).getRows().map((r) => String(r[0]));
      if (!cols.includes('note')) continue;
      await conn.run(`COPY (${select(`read_parquet('${f}')`)}) TO '${f}.tmp' (FORMAT parquet)`);
      renameSync(`${f}.tmp`, f);
    }
  } finally {
    conn.closeSync();
  }
}

describe('sluice reconcile, document and lake targets', () => {
  const f = useDatabase(`
    CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text, price numeric(10,2), ts timestamptz, d date, doc jsonb, flag boolean, data bytea);
    INSERT INTO items SELECT g, g, 'note ' || g, g * 1.25, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute 0.5 second' + g * interval '1 microsecond',
      date '2024-01-01' + g, jsonb_build_object('k', g, 'x', g * 0.5, 'tags', jsonb_build_array('a', 'b')), g % 2 = 0, decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
    CREATE TABLE pairs (a text, b int, n int, PRIMARY KEY (a, b));
    INSERT INTO pairs SELECT 'k|' || (g % 7), g, g FROM generate_series(1, 200) g;
  `);

  it('finds every planted difference in MongoDB, JSONB, Delta and Iceberg, nothing false, and repairs them', async () => {
    const mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    await mongo.connect().catch((e) => {
      throw new Error(`no MongoDB-compatible server at ${MONGO_URL} (${e.message}); start it with: bash scripts/mongo-server.sh start`, { cause: e });
    });
    const target = await freshDatabase('sluice_t');
    const mongoDb = `rec_${target.name.slice(-6)}`;
    const lake = join(f.tmp.dir, 'lake');
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    writeFileSync(
      cfgPath,
      pipelineYaml(
        'recdocs',
        f.db.name,
        f.tmp.dir,
        '',
        `batch:\n  maxRecords: 500\n  maxDelayMs: 5\nsinks:
  - {name: mongo, type: mongodb, connection: "${MONGO_URL}/${mongoDb}"}
  - {name: jsonb, type: postgres_jsonb, connection: "postgres://postgres@127.0.0.1:5432/${target.name}", schema: docs}
  - {name: silver, type: delta, mode: merge, path: ${join(lake, 'delta')}, batch: {maxRecords: 2000, maxDelayMs: 200}}
  - {name: ice, type: iceberg, mode: merge, path: ${join(lake, 'iceberg')}, batch: {maxRecords: 2000, maxDelayMs: 200}}
  - {name: icej, type: iceberg, mode: merge, path: ${join(lake, 'icejdbc')}, tables: [public.items], catalog: {type: jdbc, connection: "postgres://postgres@127.0.0.1:5432/${target.name}", name: lake}, batch: {maxRecords: 2000, maxDelayMs: 200}}
  - {name: bronze, type: delta, path: ${join(lake, 'bronze')}, tables: [public.items], batch: {maxRecords: 2000, maxDelayMs: 200}}
`,
      ),
    );
    const db = mongo.db(mongoDb);
    // The writer touches ids 1..500 and its own ids from 100000 on; the corruptions are in 1501..2000.
    let running = true;
    let nextId = 100_000;
    const w = f.db.client;
    const workload = (async () => {
      while (running) {
        await w.query('BEGIN');
        for (let i = 0; i < 4; i++) {
          const r = Math.random();
          if (r < 0.6) await w.query(`UPDATE items SET v = v + 1, note = md5(random()::text), ts = clock_timestamp(), doc = jsonb_set(doc, '{k}', to_jsonb(v + 1)) WHERE id = $1`, [1 + Math.floor(Math.random() * 500)]);
          else if (r < 0.85) await w.query(`INSERT INTO items VALUES ($1, 1, 'new', 9.5, clock_timestamp(), current_date, '{"n": 1}', true, '\\x00ff')`, [nextId++]);
          else await w.query(`DELETE FROM items WHERE id = (SELECT id FROM items WHERE id >= 100000 ORDER BY random() LIMIT 1)`);
        }
        await w.query('COMMIT');
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let child = startPipelineProcess(cfgPath);
    const statusPath = join(f.tmp.dir, 'state', 'status.json');
    try {
      await waitUntil('the snapshot in MongoDB and JSONB', async () => (await db.collection('items').countDocuments({ _id: { $lte: 2000 } } as never)) === 2000 && (await db.collection('pairs').countDocuments({})) === 200 && Number((await target.client.query(`SELECT count(*) FROM docs.items WHERE _id::int <= 2000`).catch(() => ({ rows: [{ count: 0 }] }))).rows[0].count) === 2000, 60_000);
      await waitUntil('the pipeline streaming', async () => existsSync(statusPath) && JSON.parse(readFileSync(statusPath, 'utf8')).source?.phase === 'stream', 30_000);

      // Behind the running pipeline's back: a deleted document, a changed field, an extra document.
      await db.collection('items').deleteOne({ _id: 1501 as never });
      await db.collection('items').updateOne({ _id: 1502 as never }, { $set: { note: 'tampered' } });
      await db.collection('items').insertOne({ _id: 900001 as never, id: 900001, v: 1, note: 'extra' });
      // Extra documents without their key fields: the key is read from the _id (one that no
      // integer key can have, and a compound one).
      await db.collection('items').insertOne({ _id: 'not-a-number', v: 1 } as never);
      await db.collection('pairs').insertOne({ _id: 'zz|99', n: 1 } as never);
      assert.equal((await db.collection('pairs').updateOne({ _id: 'k\\|3|10' as never }, { $set: { n: -10 } })).modifiedCount, 1, 'the compound key _id as the sink writes it');
      await target.client.query(`DELETE FROM docs.items WHERE _id = '1601'`);
      await target.client.query(`UPDATE docs.items SET doc = jsonb_set(doc, '{price}', '1602.26') WHERE _id = '1602'`);
      await target.client.query(`INSERT INTO docs.items VALUES ('900002', '{"_id": 900002, "id": 900002, "v": 1}')`);
      const live: Found[] = [
        { sink: 'jsonb', table: 'public.items', key: '1601', kind: 'missing' },
        { sink: 'jsonb', table: 'public.items', key: '1602', kind: 'differs', columns: ['price'] },
        { sink: 'jsonb', table: 'public.items', key: '900002', kind: 'extra' },
        { sink: 'mongo', table: 'public.items', key: '1501', kind: 'missing' },
        { sink: 'mongo', table: 'public.items', key: '1502', kind: 'differs', columns: ['note'] },
        { sink: 'mongo', table: 'public.items', key: '900001', kind: 'extra' },
        { sink: 'mongo', table: 'public.items', key: 'not-a-number', kind: 'extra' },
        { sink: 'mongo', table: 'public.pairs', key: 'k|3,10', kind: 'differs', columns: ['n'] },
        { sink: 'mongo', table: 'public.pairs', key: 'zz,99', kind: 'extra' },
      ];
      const first = await sluice([cfgPath, '--sink', 'mongo', '--sink', 'jsonb', '--chunk', '250', '--json', '--quiet', '--wait', '20s']);
      assert.equal(first.status, 1, first.stdout + first.stderr);
      const report = JSON.parse(first.stdout);
      assert.equal(report.pipelineRunning, true);
      assert.deepEqual(found(report), live, JSON.stringify(report.results.filter((r: any) => r.status === 'error')));
      assert.deepEqual(report.results.flatMap((r: any) => r.keys.filter((k: any) => k.notASourceKey).map((k: any) => k.key)), [{ id: 'not-a-number' }]);
      for (const r of report.results) assert.ok(r.status !== 'error' && r.sourceRows >= 200 && r.rowsPerSec > 0, JSON.stringify(r));

      running = false;
      await workload;
      await w.query(`INSERT INTO items (id, v) VALUES (-1, 0)`);
      await waitUntil('the end marker in every merged target', async () => {
        if ((await db.collection('items').countDocuments({ _id: -1 as never })) !== 1) return false;
        const s = JSON.parse(readFileSync(statusPath, 'utf8'));
        return ['silver', 'ice', 'icej', 'jsonb'].every((n) => {
          const sk = s.sinks?.find((x: any) => x.name === n);
          return sk && Object.values(sk.partitionLag ?? { x: 1 }).every((v) => v === 0);
        });
      }, 60_000);
      await new Promise((r) => setTimeout(r, 1000));
      await stopProcess(child);

      // The lake tables' files, with the pipeline stopped.
      await rewriteParquet(join(lake, 'delta', 'items'), (src) => `SELECT * REPLACE (CASE WHEN id = 1702 THEN 'tampered' ELSE note END AS note) FROM ${src} WHERE id <> 1701`);
      await rewriteParquet(join(lake, 'iceberg', 'public', 'items'), (src) => `SELECT * REPLACE (CASE WHEN id = 1802 THEN v + 1 ELSE v END AS v) FROM ${src} WHERE id <> 1801`);
      // The JDBC catalog's table: an extra row (its metadata location is read from the catalog).
      await rewriteParquet(join(lake, 'icejdbc', 'public', 'items'), (src) => `SELECT * FROM ${src} UNION ALL (SELECT * REPLACE (1900001 AS id) FROM ${src} WHERE id = 1901)`);
      const stopped = await sluice([cfgPath, '--json', '--quiet']);
      assert.equal(stopped.status, 1, stopped.stderr);
      const sr = JSON.parse(stopped.stdout);
      assert.equal(sr.pipelineRunning, false);
      assert.deepEqual(
        found(sr),
        [
          ...live.filter((x) => x.sink === 'jsonb'),
          { sink: 'ice', table: 'public.items', key: '1801', kind: 'missing' },
          { sink: 'ice', table: 'public.items', key: '1802', kind: 'differs', columns: ['v'] },
          { sink: 'icej', table: 'public.items', key: '1900001', kind: 'extra' },
          ...live.filter((x) => x.sink === 'mongo'),
          { sink: 'silver', table: 'public.items', key: '1701', kind: 'missing' },
          { sink: 'silver', table: 'public.items', key: '1702', kind: 'differs', columns: ['note'] },
        ].sort((a, b) => (a.sink + a.table + a.key < b.sink + b.table + b.key ? -1 : 1)),
      );
      const bronze = sr.results.find((r: any) => r.sink === 'bronze' && r.table === 'public.items');
      assert.equal(bronze.status, 'skipped');
      assert.match(bronze.reason, /appends every change as a row \(mode: append\)/);
      for (const r of sr.results.filter((x: any) => x.sink !== 'bronze' && !(x.sink === 'icej' && x.table === 'public.pairs'))) assert.ok(['ok', 'drift'].includes(r.status) && r.sourceRows >= 200, JSON.stringify(r));

      // --repair into the log; the pipeline applies it; every target agrees.
      const fix = await sluice([cfgPath, '--repair', '--quiet']);
      assert.equal(fix.status, 1, 'repaired into the log, applied only when the pipeline runs');
      assert.match(fix.stdout, /re-emitted into the log/);
      assert.match(fix.stdout, /repair: 1 extra row\(s\) have a key no source row can have, so no event can remove them; delete them from the target by hand:\n {2}mongo public\.items \{"id":"not-a-number"\}\n/);
      await db.collection('items').deleteOne({ _id: 'not-a-number' } as never);
      child = startPipelineProcess(cfgPath);
      await waitUntil('the repairs applied', async () => {
        if (!existsSync(statusPath)) return false;
        const s = JSON.parse(readFileSync(statusPath, 'utf8'));
        return s.state === 'running' && ['mongo', 'jsonb', 'silver', 'ice', 'icej'].every((n) => {
          const sk = s.sinks?.find((x: any) => x.name === n);
          return sk && sk.applied > 0 && Object.values(sk.partitionLag ?? { x: 1 }).every((v) => v === 0);
        });
      }, 60_000);
      await stopProcess(child);
      // Mistakes get their codes (docs/errors.md, Reconcile).
      const noSink = await sluice([cfgPath, '--sink', 'nope', '--quiet']);
      assert.equal(noSink.status, 1);
      assert.match(noSink.stderr, /RECONCILE_SINK_UNKNOWN\]: the pipeline has no sink nope \(sinks: mongo, jsonb, silver, ice, icej, bronze\)/);
      const noTable = await sluice([cfgPath, '--table', 'public.nope', '--sink', 'mongo', '--quiet']);
      assert.equal(noTable.status, 1);
      assert.match(noTable.stdout, /public\.nope: RECONCILE_TABLE_UNKNOWN: the source does not capture public\.nope/);
      const final = await sluice([cfgPath, '--quiet']);
      assert.equal(final.status, 0, final.stdout + final.stderr);
      assert.match(final.stdout, /source and targets agree/);
      // The repair landed where the test planted the damage (read back by other means than reconcile).
      assert.equal((await db.collection('items').findOne({ _id: 1501 as never }))?.note, 'note 1501');
      assert.equal(await db.collection('items').countDocuments({ _id: 900001 } as never), 0);
      assert.equal(await db.collection('pairs').countDocuments({ _id: 'zz|99' } as never), 0);
      assert.equal((await target.client.query(`SELECT doc->>'price' AS p FROM docs.items WHERE _id = '1602'`)).rows[0].p, '2002.50');
    } finally {
      running = false;
      await workload;
      await stopProcess(child);
      await db.dropDatabase().catch(() => {});
      await mongo.close();
      await target.drop();
    }
  });
});
