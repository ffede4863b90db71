/**
 * A keyed event-time window (2-second tumbling windows per customer: count, sum, distinct
 * merchants, max) over a PostgreSQL table under load, through kill -9 of the pipeline process (six to four per variant).
 * Its windows live in keyed state that commits with the output and the input offsets, so after all
 * the kills every window is emitted exactly once with exactly the records SQL over the source puts
 * in it, and every late record (behind the watermark) is on the late topic exactly once.
 *
 * The truth is SQL over the source table: the watermark before each row is the largest event time
 * of the rows committed before it less the 1 s bound (a window function over the commit order),
 * which decides late rows; the rest group by customer and window. One log partition keeps the
 * processor's read order the commit order (see docs/processing.md on watermarks and partitions).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

// Once with the state in memory, once on disk with 4 entries cached (so nearly every window is read
// back from disk), once spread over two worker threads (parallelism: 2, each with its part of the
// state in its own changelog partition).
for (const variant of ['memory', 'disk', 'parallel'] as const) describe(`window processor through kill -9, ${variant === 'parallel' ? 'over two worker threads' : `state in ${variant}`}`, () => {
  const store = variant === 'disk' ? 'disk' : 'memory';
  // Fifteen kills over the three variants, which commit through the same task code (six in one thread, in memory; five on disk; four over two threads).
  const KILLS = variant === 'memory' ? 6 : variant === 'disk' ? 5 : 4;
  const f = useDatabase(`CREATE TABLE tx (id int PRIMARY KEY, customer int NOT NULL, amount numeric(10,2) NOT NULL, merchant int NOT NULL, ts_ms bigint NOT NULL);`);

  it(`emits each window once with the rows SQL puts in it, and each late row once, through ${KILLS} kills`, async () => {
    const cfgPath = join(f.tmp.dir, 'win.yaml');
    const yaml = pipelineYaml(
      'wc',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxRecords: 200
  maxDelayMs: 5
processors:
  - name: features
    type: window
    inputs: [source]
    groupBy: {customer: after.customer}
    timestamp: after.ts_ms
    window: {type: tumbling, size: 2s}
    watermark: 1s
    aggregates: {n: count(), total: sum(after.amount), merchants: count_distinct(after.merchant), hi: max(after.amount)}
${variant === 'disk' ? `    state: {store: disk, memoryKeys: 4}\n` : variant === 'parallel' ? `    parallelism: 2\n` : ''}`,
    )
      .replace('partitions: 3', 'partitions: 1')
      .replace('level: warn', 'level: info');
    writeFileSync(cfgPath, yaml);
    const BASE = 1_800_000_000_000;
    let running = true;
    let next = 1;
    const workload = (async () => {
      while (running) {
        const ids = Array.from({ length: 1 + Math.floor(Math.random() * 30) }, () => next++);
        // Event time runs 20 ms per row, a little out of order; 3% of rows come 5–15 s behind (late).
        const ts = ids.map((id) => BASE + id * 20 - (Math.random() < 0.03 ? 5000 + Math.floor(Math.random() * 10_000) : Math.floor(Math.random() * 800)));
        await f.db.client.query(`INSERT INTO tx SELECT g, g % 17, (g * 7919 % 100000) / 100.0, g % 11, t FROM unnest($1::int[], $2::bigint[]) AS u(g, t)`, [ids, ts]);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const logDir = join(f.tmp.dir, 'log');
    const windows = async () => (await readAll(logDir, 'features')).filter((r) => r.topic === 'features');
    let child = startPipelineProcess(cfgPath);
    let kills: number;
    let restored = false;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), {
        kills: KILLS,
        what: 'windows emitted',
        progress: async () => (await windows()).length,
        onRestart: (c) => {
          restored ||= c.stderrText().includes('restored its state') && c.stderrText().includes(`store=${store}`) && c.stderrText().includes(`parallelism=${variant === 'parallel' ? 2 : 1}`);
          // On disk, by default under the pipeline's state.dir (a kill leaves it; the next start wipes and rebuilds it).
          if (store === 'disk') assert.ok(existsSync(join(f.tmp.dir, 'state', 'processors', 'wc', 'features')), 'the on-disk state under state.dir/processors');
        },
      }));
    } finally {
      running = false;
      await workload;
    }
    assert.equal(kills, KILLS);

    const truth = `WITH o AS (
        SELECT id, customer, amount, merchant, ts_ms, (ts_ms / 2000) * 2000 AS ws,
               max(ts_ms) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 1000 AS wm
        FROM tx)`;
    const want = (
      await f.db.client.query(`${truth}
      SELECT customer, ws::float8 AS ws, count(*)::int AS n, sum(amount)::float8 AS total, count(DISTINCT merchant)::int AS merchants, max(amount)::float8 AS hi
      FROM o WHERE wm IS NULL OR ws + 2000 > wm
      GROUP BY customer, ws HAVING ws + 2000 <= (SELECT max(ts_ms) - 1000 FROM tx)
      ORDER BY customer, ws`)
    ).rows as { customer: number; ws: number; n: number; total: number; merchants: number; hi: number }[];
    const wantLate = (await f.db.client.query(`${truth} SELECT id FROM o WHERE wm IS NOT NULL AND ws + 2000 <= wm ORDER BY id`)).rows.map((r) => r.id as number);
    assert.ok(want.length > 200 && wantLate.length > 20, `the workload closed windows (${want.length}) and had late rows (${wantLate.length})`);
    try {
      await waitUntil('the window caught up with the workload', async () => (await windows()).length >= want.length && (await readAll(logDir, 'features.late')).length >= wantLate.length, 120_000);
      await new Promise((r) => setTimeout(r, 1500));
      // What an operator sees: where the state lives and how much of it there is.
      const st = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', cfgPath], { encoding: 'utf8' });
      const held = { memory: /state: \d+ entries in memory$/m, disk: /state: \d+ entries on disk \([0-4] cached in memory\)$/m, parallel: /state: \d+ entries in memory of 2 worker threads$/m }[variant];
      assert.match(st.stdout, /processor features \(window\): running, \d+ records processed this run, state: /, st.stdout + st.stderr);
      assert.match(st.stdout, held, st.stdout + st.stderr);
    } finally {
      await stopProcess(child);
    }
    assert.ok(restored, 'a restarted process restored the window state from its changelog');

    const got = (await windows()).map((r) => r.value);
    const seen = new Map<string, number>();
    for (const g of got) seen.set(`${g.customer}|${g.window_start}`, (seen.get(`${g.customer}|${g.window_start}`) ?? 0) + 1);
    assert.deepEqual([...seen].filter(([, n]) => n > 1), [], 'no window emitted twice');
    const rows = got.map((g) => ({ customer: g.customer, ws: Date.parse(g.window_start), n: g.n, total: g.total, merchants: g.merchants, hi: g.hi })).sort((a, b) => a.customer - b.customer || a.ws - b.ws);
    assert.equal(rows.length, want.length, 'every closed window emitted');
    rows.forEach((r, i) => {
      const w = want[i];
      assert.deepEqual([r.customer, r.ws, r.n, r.merchants, r.hi], [w.customer, w.ws, w.n, w.merchants, w.hi], `window ${w.customer}@${w.ws}`);
      assert.ok(Math.abs(r.total - w.total) < 1e-6, `window ${w.customer}@${w.ws}: total ${r.total} ≠ ${w.total}`);
    });
    const late = (await readAll(logDir, 'features.late')).map((r) => r.value.after.id as number);
    assert.deepEqual(late, wantLate, 'each late row on the late topic once, in commit order');
    // The state changelog: one partition per thread, and both threads held windows.
    const state = await readAll(logDir, 'wc.state.features');
    const parts = new Set(state.map((r) => r.partition));
    assert.deepEqual([...parts].sort(), variant === 'parallel' ? [0, 1] : [0], 'state changelog partitions written');
  });
});
