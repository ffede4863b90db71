/**
 * `sluice reconcile` against a live pipeline: a PostgreSQL source applied to PostgreSQL, MariaDB and
 * DuckDB while a writer keeps inserting, updating and deleting. Targets are corrupted behind the
 * pipeline's back (a deleted row, a changed value, an extra row per target, keys the writer never
 * touches); reconcile must report exactly those keys, nothing the live writes have in flight, and
 * exit 1; `--repair` re-emits them through the pipeline, a second reconcile exits 0, and the
 * targets equal the source by SQL. DuckDB's file is open in the running pipeline (one process per
 * file): it is compared inside the pipeline (POST /api/actions/reconcile) while it runs, and
 * corrupted, found and repaired with the pipeline stopped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runSluice, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freePort, pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, sourceRows, type ColKind, type Target } from '../helpers/targets.ts';

const COLS: [string, ColKind][] = [['id', 'int'], ['v', 'int'], ['note', 'text'], ['price', 'decimal'], ['ts', 'timestamptz'], ['doc', 'json'], ['flag', 'bool'], ['data', 'bytes']];

const sluice = (args: string[]) => runSluice(['reconcile', ...args]);

/** Runs statements on a DuckDB file in a process of their own, which closes the file when it ends. */
async function duckdbExec(path: string, sql: string[]): Promise<void> {
  const code = `const { DuckDBInstance } = await import('@duckdb/node-api'); const c = await (await DuckDBInstance.create(process.argv[1])).connect(); for (const s of JSON.parse(process.argv[2])) await c.run(s); c.closeSync();`;
  const r = await new Promise<{ status: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', code, path, JSON.stringify(sql)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (status) => resolve({ status, err }));
  });
  assert.equal(r.status, 0, r.err);
}

type Found = { sink: string; id: string; kind: string; columns?: string[] };
function found(report: any): Found[] {
  return report.results
    .flatMap((r: any) => r.keys.map((k: any) => ({ sink: r.sink, id: k.key.id, kind: k.kind, ...(k.columns ? { columns: k.columns.map((c: any) => c.column) } : {}) })))
    .sort((a: Found, b: Found) => (a.sink + a.id < b.sink + b.id ? -1 : 1));
}

describe('sluice reconcile', () => {
  const f = useDatabase(`
    CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text, price numeric(10,2), ts timestamptz, doc jsonb, flag boolean, data bytea);
    INSERT INTO items SELECT g, g, 'note ' || g, g * 1.25, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 minute 0.5 second',
      jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')), g % 2 = 0, decode(md5(g::text), 'hex') FROM generate_series(1, 3000) g;
  `);

  it('finds every corruption under a live workload, nothing false, and repairs it', async () => {
    const targets = await freshTargets(f.tmp.dir);
    const port = await freePort();
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    writeFileSync(cfgPath, pipelineYaml('rec', f.db.name, f.tmp.dir, '', `batch:\n  maxRecords: 500\n  maxDelayMs: 5\nserver:\n  port: ${port}\n${targets.sinksYaml()}`));
    // The writer touches ids 1..1000 and its own ids from 100000 on; the corruptions are in 2001..3000.
    let running = true;
    let nextId = 100_000;
    const w = f.db.client;
    const workload = (async () => {
      while (running) {
        await w.query('BEGIN');
        for (let i = 0; i < 4; i++) {
          const r = Math.random();
          if (r < 0.6) await w.query(`UPDATE items SET v = v + 1, note = md5(random()::text), doc = jsonb_set(doc, '{k}', to_jsonb(v + 1)) WHERE id = $1`, [1 + Math.floor(Math.random() * 1000)]);
          else if (r < 0.85) await w.query(`INSERT INTO items VALUES ($1, 1, 'new', 9.5, now(), '{"n": 1}', true, '\\x00ff')`, [nextId++]);
          else await w.query(`DELETE FROM items WHERE id = (SELECT id FROM items WHERE id >= 100000 ORDER BY random() LIMIT 1)`);
        }
        await w.query('COMMIT');
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    let child = startPipelineProcess(cfgPath);
    const statusPath = join(f.tmp.dir, 'state', 'status.json');
    try {
      for (const t of ['postgres', 'mysql'] as Target[]) await waitUntil(`the snapshot in ${t}`, async () => (await targets.count(t, 'SELECT count(*) FROM items WHERE id <= 3000')) === 3000, 60_000);
      await waitUntil('the pipeline streaming', async () => existsSync(statusPath) && JSON.parse(readFileSync(statusPath, 'utf8')).source?.phase === 'stream', 30_000);

      // Behind the pipeline's back: per target a deleted row, a changed value, an extra row.
      await targets.query('postgres', 'DELETE FROM items WHERE id = 2001');
      await targets.query('postgres', "UPDATE items SET note = 'tampered' WHERE id = 2002");
      await targets.query('postgres', "INSERT INTO items (id, v, note) VALUES (900001, 1, 'extra')");
      await targets.query('mysql', 'DELETE FROM items WHERE id = 2101');
      await targets.query('mysql', 'UPDATE items SET price = price + 0.01 WHERE id = 2102');
      await targets.query('mysql', "INSERT INTO items (id, v, note) VALUES (900002, 1, 'extra')");
      const expected: Found[] = [
        { sink: 'my', id: '2101', kind: 'missing' },
        { sink: 'my', id: '2102', kind: 'differs', columns: ['price'] },
        { sink: 'my', id: '900002', kind: 'extra' },
        { sink: 'pg', id: '2001', kind: 'missing' },
        { sink: 'pg', id: '2002', kind: 'differs', columns: ['note'] },
        { sink: 'pg', id: '900001', kind: 'extra' },
      ];

      // Small chunks: many ranges, most of them seeing the writer's changes in flight.
      const first = await sluice([cfgPath, '--sink', 'pg', '--sink', 'my', '--chunk', '250', '--json', '--quiet', '--wait', '20s']);
      assert.equal(first.status, 1, first.stdout + first.stderr);
      const report = JSON.parse(first.stdout);
      assert.deepEqual(found(report), expected);
      assert.equal(report.pipelineRunning, true);
      for (const r of report.results) assert.ok(r.sourceRows >= 3000 && r.rowsPerSec > 0, JSON.stringify(r));

      // DuckDB, compared inside the running pipeline (the file is its): no drift, nothing false.
      const inside = await (await fetch(`http://127.0.0.1:${port}/api/actions/reconcile`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sinks: ['dk'], chunk: 250, waitMs: 20000 }) })).json();
      assert.equal(inside.ok, true, JSON.stringify(inside.results));
      assert.equal(inside.results[0].sink, 'dk');

      // --repair: sent to the running pipeline, re-checked after the sinks applied it.
      const fix = await sluice([cfgPath, '--sink', 'pg', '--sink', 'my', '--repair', '--json', '--quiet', '--wait', '20s']);
      assert.equal(fix.status, 0, fix.stdout + fix.stderr);
      const fixed = JSON.parse(fix.stdout);
      assert.equal(fixed.repair.requested, 6);
      assert.equal(fixed.repair.fixed, 6);
      const again = await sluice([cfgPath, '--sink', 'pg', '--sink', 'my', '--quiet']);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /source and targets agree/);

      running = false;
      await workload;
      await w.query(`INSERT INTO items (id, v) VALUES (-1, 0)`);
      await waitUntil('the end marker everywhere', async () => (await targets.count('postgres', 'SELECT count(*) FROM items WHERE id = -1')) === 1 && (await targets.count('mysql', 'SELECT count(*) FROM items WHERE id = -1')) === 1, 30_000);
      await new Promise((r) => setTimeout(r, 1500)); // DuckDB's larger batches
      await stopProcess(child);

      // DuckDB, with the pipeline stopped: corrupt, find, repair through the log, apply, agree.
      // (From another process: a DuckDB file opened here would stay locked against the CLI and the pipeline.)
      await duckdbExec(targets.duckPath, ['DELETE FROM items WHERE id = 2201', 'UPDATE items SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 2202', "INSERT INTO items (id, v, note) VALUES (900003, 1, 'extra')"]);
      const stopped = await sluice([cfgPath, '--json', '--quiet']);
      assert.equal(stopped.status, 1, stopped.stderr);
      const sr = JSON.parse(stopped.stdout);
      assert.equal(sr.pipelineRunning, false);
      assert.deepEqual(found(sr), [
        { sink: 'dk', id: '2201', kind: 'missing' },
        { sink: 'dk', id: '2202', kind: 'differs', columns: ['ts'] },
        { sink: 'dk', id: '900003', kind: 'extra' },
      ]);
      const text = await sluice([cfgPath, '--sink', 'dk', '--repair', '--quiet']);
      assert.equal(text.status, 1, 'repaired into the log, applied only when the pipeline runs');
      assert.match(text.stdout, /dk\s+public\.items.*DRIFT/);
      assert.match(text.stdout, /re-emitted into the log/);
      child = startPipelineProcess(cfgPath);
      await waitUntil('the extra DuckDB row deleted by the repair', async () => {
        if (!existsSync(statusPath)) return false;
        const s = JSON.parse(readFileSync(statusPath, 'utf8'));
        const dk = s.sinks?.find((x: any) => x.name === 'dk');
        return s.state === 'running' && dk && Object.values(dk.partitionLag ?? { x: 1 }).every((v) => v === 0) && dk.applied > 0;
      }, 30_000);
      await stopProcess(child);
      const final = await sluice([cfgPath, '--quiet']);
      assert.equal(final.status, 0, final.stdout + final.stderr);

      // The targets equal the source, by SQL.
      const want = await sourceRows(w, 'items', COLS);
      for (const t of ['postgres', 'mysql', 'duckdb'] as Target[]) assert.deepEqual(await targets.rows(t, 'items', COLS), want, t);
      // Every run is in the history.
      const history = readFileSync(join(f.tmp.dir, 'state', 'reconcile', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(history.length >= 6);
      for (const h of history) assert.ok(h.startedAt && h.finishedAt && h.pipeline === 'rec' && typeof h.ok === 'boolean' && Array.isArray(h.results));
    } finally {
      running = false;
      await workload;
      await stopProcess(child);
      await targets.drop();
    }
  });
});
