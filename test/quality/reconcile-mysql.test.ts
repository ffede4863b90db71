/**
 * `sluice reconcile` with a MariaDB source applied to PostgreSQL while a writer keeps inserting,
 * updating and deleting other keys. The target is corrupted behind the pipeline's back (a deleted
 * row, two changed values, an extra row); reconcile must report exactly the keys the test
 * corrupted, nothing the live writes have in flight (it waits on the source's durable binlog
 * position), and exit 1; `--repair` re-emits them from MariaDB through the running pipeline as the
 * MySQL snapshot builds its events, the re-check finds them fixed, and the target equals the source
 * by SQL.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { openLog } from '../../src/log/open.ts';
import { isStreaming, mysqlAdmin, mysqlPipelineYaml, quietLogger, useMysqlDatabase } from '../helpers/mysql.ts';
import { runSluice } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { freePort, waitUntil } from '../helpers/pipeline.ts';
import { normalize, type ColKind } from '../helpers/targets.ts';

const sluice = (args: string[]) => runSluice(['reconcile', ...args]);

type Found = { id: string; kind: string; columns?: string[] };
function found(report: any): Found[] {
  return report.results
    .flatMap((r: any) => r.keys.map((k: any) => ({ id: k.key.id, kind: k.kind, ...(k.columns ? { columns: k.columns.map((c: any) => c.column) } : {}) })))
    .sort((a: Found, b: Found) => Number(a.id) - Number(b.id));
}

const COLS: [string, ColKind][] = [['id', 'int'], ['v', 'int'], ['note', 'text'], ['price', 'decimal'], ['ts', 'timestamp'], ['at', 'timestamptz'], ['flag', 'bool'], ['data', 'bytes']];

describe('sluice reconcile, MariaDB source', () => {
  const f = useMysqlDatabase(`
    CREATE TABLE items (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(100), price DECIMAL(10,2), ts DATETIME(6), at TIMESTAMP(6) NULL DEFAULT NULL, flag TINYINT(1), data VARBINARY(16));
    INSERT INTO items SELECT seq, seq, CONCAT('note ', seq), seq * 1.25, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 60500000 MICROSECOND,
      TIMESTAMP'2024-06-01 00:00:00' + INTERVAL seq * 1000001 MICROSECOND, seq % 2 = 0, UNHEX(MD5(seq)) FROM seq_1_to_3000;
  `);
  it('finds exactly the planted corruptions under a live workload and repairs them from MariaDB', async () => {
    const target = await freshDatabase('sluice_t');
    await target.client.query(`SET TimeZone = 'UTC'`);
    const port = await freePort();
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    const yaml = mysqlPipelineYaml(
      'recm',
      f.name,
      f.tmp.dir,
      `tables: [${f.name}.items]`,
      `batch:\n  maxRecords: 500\n  maxDelayMs: 5\nserver:\n  port: ${port}\nsinks:\n  - name: pg\n    type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`,
    );
    writeFileSync(cfgPath, yaml);
    const cfg = parseConfig(yaml, cfgPath, process.env);

    const ac = new AbortController();
    let failed: unknown = null;
    const pipeline = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() }).catch((e) => {
      failed = e;
    });
    const alive = () => {
      if (failed) throw failed;
    };

    // The writer touches ids 1..1000 and its own ids from 100000 on; the corruptions are in 2001..3000.
    const w = await mysqlAdmin(f.name);
    await w.query(`SET time_zone = '+00:00'`);
    let writing = true;
    let commits = 0;
    let nextId = 100_000;
    const workload = (async () => {
      while (writing) {
        await w.query('BEGIN');
        for (let i = 0; i < 4; i++) {
          const r = Math.random();
          if (r < 0.6) await w.query(`UPDATE items SET v = v + 1, note = MD5(RAND()), at = NOW(6) WHERE id = ?`, [1 + Math.floor(Math.random() * 1000)]);
          else if (r < 0.85) await w.query(`INSERT INTO items VALUES (?, 1, 'new', 9.5, NOW(6), NOW(6), 1, 0x00ff)`, [nextId++]);
          else await w.query(`DELETE FROM items WHERE id >= 100000 ORDER BY RAND() LIMIT 1`);
        }
        await w.query('COMMIT');
        commits++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const stopWriting = async () => {
      writing = false;
      await workload;
    };
    try {
      const pgCount = async (sql: string) => Number((await target.client.query(sql)).rows[0].count);
      await waitUntil('the snapshot in PostgreSQL', async () => (alive(), (await pgCount('SELECT count(*) FROM items WHERE id <= 3000')) === 3000));
      await waitUntil('the pipeline streaming', async () => (alive(), isStreaming(cfg.state.dir)));

      // Behind the pipeline's back; what the test corrupted is the truth reconcile is held to.
      const planted: Found[] = [];
      const corrupt = async (sql: string, what: Found) => {
        assert.equal((await target.client.query(sql)).rowCount, 1, sql);
        planted.push(what);
      };
      await corrupt('DELETE FROM items WHERE id = 2001', { id: '2001', kind: 'missing' });
      await corrupt(`UPDATE items SET note = 'tampered' WHERE id = 2002`, { id: '2002', kind: 'differs', columns: ['note'] });
      await corrupt(`UPDATE items SET ts = ts + interval '1 microsecond', price = price + 0.01 WHERE id = 2003`, { id: '2003', kind: 'differs', columns: ['price', 'ts'] });
      await corrupt(`INSERT INTO items (id, v, note) VALUES (900001, 1, 'extra')`, { id: '900001', kind: 'extra' });

      // Small chunks: many ranges, most of them seeing the writer's changes in flight.
      const commitsBefore = commits;
      const first = await sluice([cfgPath, '--chunk', '250', '--json', '--quiet', '--wait', '20s']);
      alive();
      assert.equal(first.status, 1, first.stdout + first.stderr);
      assert.ok(commits > commitsBefore, 'the writer kept changing rows during the reconcile');
      const report = JSON.parse(first.stdout);
      assert.equal(report.pipelineRunning, true);
      assert.deepEqual(found(report), planted);
      const [r] = report.results;
      assert.equal(r.caughtUp, true, 'the re-check saw the durable binlog position pass');
      assert.ok(r.sourceRows >= 3000 && r.ranges > 1, JSON.stringify(r));

      // --repair: sent to the running pipeline, re-checked after the sink applied it.
      const fix = await sluice([cfgPath, '--repair', '--json', '--quiet', '--wait', '20s']);
      alive();
      assert.equal(fix.status, 0, fix.stdout + fix.stderr);
      const fixed = JSON.parse(fix.stdout);
      assert.deepEqual({ requested: fixed.repair.requested, fixed: fixed.repair.fixed, reads: fixed.repair.reads, deletes: fixed.repair.deletes }, { requested: 4, fixed: 4, reads: 3, deletes: 1 });

      // The target equals the source, by SQL, once the pipeline applied an end marker.
      await stopWriting();
      await f.q(`INSERT INTO items (id, v) VALUES (-1, 0)`);
      await waitUntil('the end marker in PostgreSQL', async () => (alive(), (await pgCount('SELECT count(*) FROM items WHERE id = -1')) === 1));
      // Partitions apply independently: wait until the sink holds everything the log held by then.
      const topic = `recm.${f.name}.items`;
      const log = await openLog(cfg.log, { readOnly: true });
      const ends = await log.offsets(topic).finally(() => log.close());
      await waitUntil('the sink at the end of the log', async () => {
        alive();
        const sk = JSON.parse(readFileSync(join(cfg.state.dir, 'status.json'), 'utf8')).sinks?.find((x: any) => x.name === 'pg');
        return ends.every((p) => (sk?.offsets?.[`${topic}/${p.partition}`] ?? 0) >= p.end);
      });
      const again = await sluice([cfgPath, '--quiet']);
      assert.equal(again.status, 0, again.stdout + again.stderr);
      const norm = (rows: unknown[][]) => rows.map((row) => row.map((v, i) => normalize(COLS[i][1], v))).sort((a, b) => Number(a[0]) - Number(b[0]));
      const want = norm((await f.conn.query({ sql: `SELECT id, v, note, CAST(price AS CHAR), CAST(ts AS CHAR), CAST(at AS CHAR), flag, LOWER(HEX(data)) FROM items`, rowsAsArray: true }))[0] as unknown[][]);
      const got = norm((await target.client.query({ text: `SELECT id, v, note, price::text, ts::text, at::text, flag::text, encode(data, 'hex') FROM items`, rowMode: 'array' })).rows);
      assert.equal(got.length, want.length);
      assert.deepEqual(got, want);
      alive();
    } finally {
      await stopWriting().catch(() => {});
      ac.abort();
      await pipeline;
      await w.end().catch(() => {});
      await target.drop();
    }
  });
});
