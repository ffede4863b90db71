/**
 * Seeds 002/003's medallion lakehouse as examples/lakehouse ships it: PostgreSQL into Delta Lake
 * and MariaDB into Iceberg, each with bronze (every change), silver (current rows), analytics
 * (seed 003's customer transform, by the derive processor) and, on the Delta side, gold (orders and
 * revenue per customer, by a window). Customers and orders change under load on both databases
 * while both pipelines run; then every layer equals SQL over its source (examples/lakehouse/
 * check.ts, DuckDB over the lake files), and the formats' own readers agree on the analytics
 * tables: Delta Kernel and Iceberg Java read exactly the transformed customers SQL computes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { check } from '../../examples/lakehouse/check.ts';
import { MYSQL_SCHEMA, PG_SCHEMA, step, TRUTH } from '../../examples/lakehouse/data.ts';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { useMysqlDatabase } from '../helpers/mysql.ts';
import { PG_HOST, PG_PORT } from '../helpers/pg.ts';
import { useDatabase, waitUntil } from '../helpers/pipeline.ts';

const KERNEL = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;
const ICEBERG = new URL('../../scripts/iceberg-reader.sh', import.meta.url).pathname;

function javaRows(args: string[]): Record<string, unknown>[] {
  const r = spawnSync('bash', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { rows: Record<string, unknown>[] }).rows;
}

const analyticsLine = (r: Record<string, unknown>) => [r.customer_id, r.email, r.full_name, r.location, r.tier].map((v) => String(v ?? '∅')).join('|');

describe('examples/lakehouse', () => {
  const pgf = useDatabase(PG_SCHEMA);
  const my = useMysqlDatabase(MYSQL_SCHEMA);

  it('bronze, silver, analytics and gold equal SQL over PostgreSQL (Delta) and MariaDB (Iceberg); Kernel and Iceberg Java read the transformed customers', async () => {
    const dir = pgf.tmp.dir;
    const env = { ...process.env, LAKEHOUSE_DIR: dir, LAKEHOUSE_PG_DB: pgf.db.name, LAKEHOUSE_MY_DB: my.name, LAKEHOUSE_SLOT: `lh_${pgf.db.name.slice(-8)}`, PGHOST: PG_HOST, PGPORT: String(PG_PORT) };
    const pgExec = (sql: string, params: unknown[] = []) => {
      let i = 0;
      return pgf.db.client.query(sql.replace(/\?/g, () => `$${++i}`), params);
    };
    const myExec = (sql: string, params: unknown[] = []) => my.conn.query(sql, params);
    // Some history before the pipelines start: their snapshots carry it.
    for (let n = 1; n <= 4; n++) {
      await step(pgExec, n);
      await step(myExec, n);
    }
    const quiet = createLogger({ level: 'error' });
    const ac = new AbortController();
    const load = (f: string) => parseConfig(readFileSync(join('examples/lakehouse', f), 'utf8'), join('examples/lakehouse', f), env);
    const runs = [runPipeline(load('pipeline-postgres.yaml'), { signal: ac.signal, logger: quiet }), runPipeline(load('pipeline-mysql.yaml'), { signal: ac.signal, logger: quiet })];
    for (const r of runs) r.catch(() => {});
    let problems: string[] = ['not checked yet'];
    try {
      for (let n = 5; n <= 24; n++) {
        await step(pgExec, n);
        await step(myExec, n);
        await new Promise((r) => setTimeout(r, 40));
      }
      await waitUntil('every layer equal to SQL over its source', async () => (problems = await check(dir, { pg: pgf.db.client, my: my.conn })).length === 0, 120_000).catch((e) => {
        throw new Error(`${(e as Error).message}\n  ${problems.join('\n  ')}`, { cause: e });
      });
    } finally {
      ac.abort();
      await Promise.allSettled(runs);
    }
    // The formats' own readers: the analytics tables hold exactly seed 003's transform of the source.
    const pgTruth = (await pgf.db.client.query(TRUTH.analytics)).rows.map(analyticsLine).sort();
    assert.ok(pgTruth.length > 50, `${pgTruth.length} customers`);
    assert.deepEqual(javaRows([KERNEL, join(dir, 'delta/analytics/customers')]).map(analyticsLine).sort(), pgTruth, 'Delta Kernel reads the transformed PostgreSQL customers');
    const myTruth = ((await my.conn.query(TRUTH.analytics))[0] as Record<string, unknown>[]).map(analyticsLine).sort();
    const iceRows = javaRows([ICEBERG, 'scan', '--table', join(dir, 'iceberg/analytics/analytics/customers')]);
    assert.deepEqual(iceRows.map(analyticsLine).sort(), myTruth, 'Iceberg Java reads the transformed MariaDB customers');
    assert.ok(iceRows.every((r) => r._source_system === 'mysql_cdc' && ['INSERT', 'UPDATE'].includes(String(r._cdc_operation)) && /^\d+$/.test(String(r._cdc_timestamp))), 'the metadata columns are filled');
  });
});
