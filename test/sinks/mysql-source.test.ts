/**
 * A MariaDB source applied to every table sink (PostgreSQL, MariaDB, DuckDB): MySQL's types —
 * DECIMAL, BIGINT UNSIGNED past 2^63, ENUM/SET, DATE/DATETIME(6)/TIMESTAMP(6)/TIME(6)/YEAR, BIT(1),
 * JSON, BLOB — arrive in each target equal to the source, through the snapshot and the stream
 * (inserts, updates, deletes, a primary-key change).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { mysqlAdmin, useMysqlDatabase } from '../helpers/mysql.ts';
import { checksum, freshTargets, normalize, TARGETS, type ColKind, type Targets } from '../helpers/targets.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';

const COLS: [string, ColKind][] = [
  ['id', 'int'],
  ['big', 'decimal'],
  ['amount', 'decimal'],
  ['name', 'text'],
  ['note', 'text'],
  ['status', 'text'],
  ['tags', 'text'],
  ['born', 'text'],
  ['at', 'timestamp'],
  ['stamp', 'timestamptz'],
  ['dur', 'time'],
  ['yr', 'int'],
  ['flag', 'bool'],
  ['tiny', 'int'],
  ['ratio', 'float'],
  ['doc', 'json'],
  ['raw', 'bytes'],
];

async function sourceRows(db: string): Promise<string[][]> {
  const c = await mysqlAdmin(db);
  try {
    await c.query(`SET time_zone = '+00:00'`);
    const exprs = COLS.map(([n, k]) => (k === 'bytes' ? `LOWER(HEX(\`${n}\`))` : k === 'bool' ? `\`${n}\` + 0` : `CAST(\`${n}\` AS CHAR)`));
    const [rows] = await c.query({ sql: `SELECT ${exprs.join(', ')} FROM t`, rowsAsArray: true });
    return (rows as unknown[][]).map((r) => r.map((v, i) => normalize(COLS[i][1], v))).sort((a, b) => (a.join('\u0001') < b.join('\u0001') ? -1 : 1));
  } finally {
    await c.end();
  }
}

describe('mysql source → table sinks', () => {
  const f = useMysqlDatabase(`
    CREATE TABLE t (
      id INT PRIMARY KEY, big BIGINT UNSIGNED, amount DECIMAL(15,2), name VARCHAR(100) NOT NULL, note TEXT,
      status ENUM('ACTIVE','INACTIVE','SUSPENDED'), tags SET('a','b','c'), born DATE, at DATETIME(6), stamp TIMESTAMP(6) NULL,
      dur TIME(6), yr YEAR, flag BIT(1), tiny TINYINT, ratio DOUBLE, doc JSON, raw BLOB);
    INSERT INTO t VALUES
      (1, 18446744073709551615, 2500.75, 'Zoë "quoted" \\\\ back', 'line1\\nline2', 'ACTIVE', 'a,c', '1969-07-20', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.654321', '-838:59:59.000000', 2024, b'1', -128, 0.1, '{"k": [1, 2], "s": "x"}', X'00FF10'),
      (2, 0, -0.01, 'plain', NULL, NULL, '', NULL, NULL, NULL, NULL, NULL, b'0', 127, -1.5e300, NULL, NULL);
  `);
  let targets: Targets;

  it('snapshot and stream arrive equal in PostgreSQL, MariaDB and DuckDB', async () => {
    targets = await freshTargets(f.tmp.dir);
    try {
      const yaml = `name: msink
source:
  type: mysql
  connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${f.name} }
  tables: [${f.name}.t]
state:
  dir: ${f.tmp.dir}/state
log:
  dir: ${f.tmp.dir}/log
logging:
  level: error
${targets.sinksYaml('tableName: t')}`;
      const cfg = parseConfig(yaml, 'test.yaml', process.env);
      const applied = new Map<string, number>();
      const ac = new AbortController();
      let failed: unknown = null;
      const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'error' }), onSinkApplied: (s, b) => applied.set(s, (applied.get(s) ?? 0) + b.records) }).catch((e) => (failed = e));
      // On a timeout, show how each target differs from the source.
      const explain = async (e: unknown) => {
        const want = await sourceRows(f.name);
        for (const tg of TARGETS) assert.deepEqual(await targets.rows(tg, 't', COLS).catch((x: Error) => [[x.message]]), want, `${tg} differs from the source`);
        throw e;
      };
      const same = async () => {
        if (failed) throw failed;
        const want = checksum(await sourceRows(f.name));
        for (const tg of TARGETS) {
          const got = checksum(await targets.rows(tg, 't', COLS).catch(() => []));
          if (got.count !== want.count || got.sum !== want.sum) return false;
        }
        return true;
      };
      try {
        await waitUntil('snapshot applied to every sink', same).catch(explain);
        await f.q(`INSERT INTO t VALUES (3, 9223372036854775808, 99999999999.99, 'three', 'n', 'SUSPENDED', 'b', '2000-02-29', '1999-12-31 23:59:59.999999', '1970-01-01 00:00:01.000001', '00:00:00.5', 1901, b'1', 0, 3.25, '[]', X'')`);
        await f.q(`UPDATE t SET amount = amount + 0.01, status = 'INACTIVE', doc = '{"k": null}', at = '2030-06-01 00:00:00' WHERE id = 1`);
        await f.q(`DELETE FROM t WHERE id = 2`);
        await f.q(`UPDATE t SET id = 30 WHERE id = 3`);
        await waitUntil('stream applied to every sink', same).catch(explain);
      } finally {
        ac.abort();
        await run;
      }
      const want = await sourceRows(f.name);
      assert.equal(want.length, 2);
      for (const tg of TARGETS) assert.deepEqual(await targets.rows(tg, 't', COLS), want, `${tg} equals the source`);
      // Exact past 2^63 in every target.
      for (const tg of TARGETS) assert.ok((await targets.rows(tg, 't', COLS)).some((r) => r[1] === '18446744073709551615'), `${tg} keeps BIGINT UNSIGNED max`);
    } finally {
      await targets.drop();
    }
  });
});
