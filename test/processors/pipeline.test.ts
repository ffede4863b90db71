/**
 * Processors in a running pipeline: the unwrap processor reads the source's change topics and
 * writes flat rows to its own topics exactly once across kill -9 of the process (its output commits
 * with its input offsets); a sink with default topics applies the source's tables and not the
 * processor's output; a MySQL source's tables are named `database.table` in `__table`; and a sink
 * pointed at a processor's flat output is refused before anything runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { mysqlPipelineYaml, quietLogger, useMysqlDatabase } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets } from '../helpers/targets.ts';

describe('unwrap processor in a PostgreSQL pipeline (kill -9)', () => {
  const f = useDatabase(`
    CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
    INSERT INTO items SELECT g, 1, 'n' FROM generate_series(1, 500) g;
  `);

  it('writes each change once as a flat row, through kills, and the sink takes only the source tables', async () => {
    const targets = await freshTargets(f.tmp.dir);
    try {
      const cfgPath = join(f.tmp.dir, 'p.yaml');
      const processors = 'processors:\n  - name: flat\n    type: unwrap\n    addFields: [op, table]\n';
      const sinks = `sinks:\n  - name: pg\n    type: postgres\n    connection: {host: 127.0.0.1, port: 5432, user: postgres, database: ${targets.pgDb}}\n`;
      writeFileSync(cfgPath, pipelineYaml('proc', f.db.name, f.tmp.dir, '', `batch:\n  maxRecords: 200\n  maxDelayMs: 5\n${processors}${sinks}`));
      let running = true;
      let nextId = 10_000;
      const workload = (async () => {
        while (running) {
          await f.db.client.query('BEGIN');
          for (let i = 0; i < 3; i++) {
            const r = Math.random();
            if (r < 0.6) await f.db.client.query(`UPDATE items SET v = v + 1 WHERE id = $1`, [1 + Math.floor(Math.random() * 500)]);
            else if (r < 0.85) await f.db.client.query(`INSERT INTO items VALUES ($1, 1, 'new')`, [nextId++]);
            else await f.db.client.query(`DELETE FROM items WHERE id = (SELECT id FROM items WHERE id >= 10000 ORDER BY random() LIMIT 1)`);
          }
          await f.db.client.query('COMMIT');
        }
      })();
      let child = startPipelineProcess(cfgPath);
      const logDir = join(f.tmp.dir, 'log');
      try {
        await waitUntil('flat rows written', async () => (await readAll(logDir, 'flat.')).length > 0, 60_000);
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 400 + Math.random() * 800));
          await stopProcess(child, 'SIGKILL');
          child = startPipelineProcess(cfgPath);
        }
      } catch (e) {
        await stopProcess(child, 'SIGKILL');
        throw e;
      } finally {
        running = false;
        await workload;
      }
      await f.db.client.query(`INSERT INTO items VALUES (-1, 1, 'end marker')`);
      try {
        await waitUntil('the end marker unwrapped and applied', async () => (await readAll(logDir, 'flat.')).some((r) => r.key?.id === -1) && (await targets.count('postgres', 'SELECT count(*) FROM items WHERE id = -1')) === 1, 120_000);
      } finally {
        await stopProcess(child);
      }

      const flat = (await readAll(logDir, 'flat.')).filter((r) => r.topic === 'flat.public.items');
      const table = new Map<number, number>((await f.db.client.query('SELECT id, v FROM items')).rows.map((r: any) => [r.id, r.v]));
      // Per key, the flat rows' versions follow each other (no repeat, no gap) up to the table's,
      // and a deleted key ends with a tombstone.
      const byKey = new Map<number, (number | null)[]>();
      for (const r of flat) byKey.set(r.key.id, [...(byKey.get(r.key.id) ?? []), r.value === null ? null : r.value.v]);
      for (const [id, vs] of byKey) {
        const rows = vs.filter((v): v is number => v !== null);
        for (let i = 1; i < rows.length; i++) assert.equal(rows[i], rows[i - 1] + 1, `key ${id}: flat versions ${vs.join(',')}`);
        if (table.has(id)) assert.equal(vs[vs.length - 1], table.get(id), `key ${id}: flat rows end at the table's version`);
        else assert.equal(vs[vs.length - 1], null, `key ${id}: deleted, so its flat rows end with a tombstone`);
      }
      for (const id of table.keys()) assert.ok(byKey.has(id), `key ${id} has flat rows`);
      // The flat rows carry the metadata fields asked for.
      const sample = flat.find((r) => r.value && r.key.id === -1)!;
      assert.deepEqual(sample.value, { id: -1, v: 1, note: 'end marker', __op: 'c', __table: 'public.items' });
      // The sink applied the source's table, and only it.
      assert.equal(await targets.count('postgres', 'SELECT count(*) FROM items'), table.size);
      assert.equal(await targets.count('postgres', `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT IN ('items', 'sluice_offsets')`), 0, 'no table made of the processor output');
      const status = JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
      assert.equal(status.processors[0].name, 'flat');
    } finally {
      await targets.drop();
    }
  });

  it('refuses a sink pointed at a processor\'s flat rows, naming both', async () => {
    const yaml = pipelineYaml('g', f.db.name, f.tmp.dir, '', 'processors:\n  - {name: flat, type: unwrap}\nsinks:\n  - {name: wh, type: duckdb, path: w.duckdb, topics: ["flat.*"]}\n');
    const path = join(f.tmp.dir, 'graph.yaml');
    writeFileSync(path, yaml);
    const r = spawnSync(process.execPath, ['bin/sluice.js', 'validate', path], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /ENGINE_GRAPH.*\n.*sink wh reads the output of processor flat \(flat\.\{schema\}\.\{table\}\), whose records are flat rows/);
    const loop = parseConfig(pipelineYaml('g', f.db.name, f.tmp.dir, '', 'processors:\n  - {name: p, type: unwrap, inputs: ["*"]}\n'), 'p.yaml', {});
    await assert.rejects(runPipeline(loop), (e: Error & { code?: string }) => e.code === 'ENGINE_GRAPH' && /processor p would read its own output/.test(e.message));
  });
});

describe('unwrap processor in a MySQL pipeline', () => {
  const f = useMysqlDatabase(`CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(10,2)); INSERT INTO orders VALUES (1, 9.99);`);

  it('names the table database.table', async () => {
    const cfg = parseConfig(mysqlPipelineYaml('mp', f.name, f.tmp.dir, `tables: [${f.name}.orders]`, 'processors:\n  - {name: flat, type: unwrap, addFields: [table, op]}\n'), 'p.yaml', {});
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    try {
      await waitUntil('the snapshot row unwrapped', async () => (await readAll(cfg.log, 'flat.')).length > 0, 60_000);
    } finally {
      ac.abort();
      await run;
    }
    const [rec] = await readAll(cfg.log, 'flat.');
    assert.equal(rec.topic, `flat.${f.name}.orders`);
    assert.deepEqual(rec.value, { id: 1, amount: '9.99', __table: `${f.name}.orders`, __op: 'r' });
  });
});
