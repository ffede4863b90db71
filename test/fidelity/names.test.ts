/**
 * Any table name the database accepts: tables named with a space, a quote and a semicolon, a dot and
 * non-ASCII letters, created while a pipeline that captures every table runs, reach every table
 * sink under their own names, through a restart; and the same names listed in `tables` (written
 * as docs/topics.md says) are snapshotted and streamed. For both sources.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { tableTopic } from '../../src/sources/common/names.ts';
import { useMysqlDatabase } from '../helpers/mysql.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { tempDir, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, TARGETS, type Targets } from '../helpers/targets.ts';

const quiet = createLogger({ level: (process.env.SLUICE_TEST_LOG as 'error') ?? 'error' });

/** The names of the issue, and a plain one. */
const NAMES = ['Order Items', 'Quote"d;Table', 'dot.ted', 'Größe_注文'];

interface Db {
  schema: string;
  q(sql: string): Promise<void>;
  quote(n: string): string;
  sourceYaml(tables: string): string;
}

/** Runs the pipeline until `until` holds, then stops it; fails if a task fails meanwhile. */
async function runUntil(name: string, dir: string, db: Db, tables: string, targets: Targets, until: () => Promise<boolean>, during?: () => Promise<void>): Promise<void> {
  const yaml = `name: ${name}
source:
${db.sourceYaml(tables)}
state:
  dir: ${join(dir, 'state')}
log:
  dir: ${join(dir, 'log')}
logging:
  level: error
${targets.sinksYaml()}`;
  const ac = new AbortController();
  let crashed: unknown = null;
  const run = runPipeline(parseConfig(yaml, 'names.yaml', process.env), { signal: ac.signal, logger: quiet }).catch((e) => (crashed = e));
  const statusFile = join(dir, 'state', 'status.json');
  let last = '';
  try {
    if (during) {
      await waitUntil('the pipeline to stream', async () => existsSync(statusFile) && JSON.parse(readFileSync(statusFile, 'utf8')).source?.phase === 'stream');
      await during();
    }
    await waitUntil('every sink to hold the tables', async () => {
      if (crashed) throw crashed;
      const st = existsSync(statusFile) ? JSON.parse(readFileSync(statusFile, 'utf8')) : null;
      const failed = [st?.source?.error, ...(st?.sinks ?? []).map((s: { error: unknown; state: string }) => (s.state === 'failed' ? s.error : null))].find(Boolean);
      if (failed) throw new Error(`a task failed: ${JSON.stringify(failed)}`);
      if (await until()) return true;
      last = JSON.stringify(await Promise.all(NAMES.map((n) => idsIn(targets, n))));
      return false;
    }, 90_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${last}`);
    });
  } finally {
    ac.abort();
    await run;
  }
  if (crashed) throw crashed;
}

/** Rows of `table` in every target, as sorted ids; the target table has the source table's name. */
async function idsIn(targets: Targets, table: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TARGETS) {
    const q = t === 'mysql' ? '`' + table.replace(/`/g, '``') + '`' : '"' + table.replace(/"/g, '""') + '"';
    const rows = await targets.query(t, `SELECT id FROM ${q} ORDER BY id`, true).catch((e: Error) => e);
    out[t] = Array.isArray(rows) ? rows.map((r) => String(r[0])).join(',') : `no table (${(rows as Error).message.split('\n')[0]})`;
  }
  return out;
}

async function topics(dir: string): Promise<string[]> {
  const log = await openLog(embeddedLogAt(join(dir, 'log')), { readOnly: true });
  try {
    return (await log.listTopics()).map((t) => t.name);
  } finally {
    await log.close();
  }
}

function suite(kind: 'postgres' | 'mysql', open: () => Db, allTables: string, listed: (names: string[]) => string) {
  describe(`table names (${kind} source)`, () => {
    let targets: Targets;
    let tmp: ReturnType<typeof tempDir>;
    before(async () => {
      tmp = tempDir();
      targets = await freshTargets(tmp.dir);
    });
    after(async () => {
      await targets?.drop();
      tmp?.remove();
    });

    it('tables created while every table is captured reach every sink under their names, through a restart', async () => {
      const db = open();
      const dir = join(tmp.dir, 'all');
      await db.q(`CREATE TABLE plain (id int PRIMARY KEY)`);
      await db.q(`INSERT INTO plain VALUES (1)`);
      const want = (ids: string) => Object.fromEntries(TARGETS.map((t) => [t, ids]));
      await runUntil('names', dir, db, allTables, targets, async () => {
        for (const n of NAMES) if (JSON.stringify(await idsIn(targets, n)) !== JSON.stringify(want('1,2'))) return false;
        return true;
      }, async () => {
        for (const n of NAMES) {
          await db.q(`CREATE TABLE ${db.quote(n)} (id int PRIMARY KEY)`);
          await db.q(`INSERT INTO ${db.quote(n)} VALUES (1), (2)`);
        }
      });
      for (const n of NAMES) assert.deepEqual(await idsIn(targets, n), want('1,2'), n);
      // The topics are the documented escapes of the names, and nothing else.
      const have = await topics(dir);
      for (const n of NAMES) assert.ok(have.includes(tableTopic('names', db.schema, n)), `${tableTopic('names', db.schema, n)} among ${have.join(' ')}`);
      // A restart reads the checkpoint and goes on: the stopped pipeline did not stay stopped.
      await runUntil('names', dir, db, allTables, targets, async () => JSON.stringify(await idsIn(targets, NAMES[1])) === JSON.stringify(want('1,2,3')), async () => {
        await db.q(`INSERT INTO ${db.quote(NAMES[1])} VALUES (3)`);
      });
    });

    it('the names listed in `tables` are snapshotted and streamed', async () => {
      const db = open();
      const dir = join(tmp.dir, 'listed');
      const names = NAMES.map((n) => `L ${n}`);
      for (const n of names) {
        await db.q(`CREATE TABLE ${db.quote(n)} (id int PRIMARY KEY)`);
        await db.q(`INSERT INTO ${db.quote(n)} VALUES (1)`);
      }
      await runUntil('listed', dir, db, listed(names), targets, async () => {
        for (const n of names) if (Object.values(await idsIn(targets, n)).some((ids) => ids !== '1,2')) return false;
        return true;
      }, async () => {
        for (const n of names) await db.q(`INSERT INTO ${db.quote(n)} VALUES (2)`);
      });
    });
  });
}

let pg: Awaited<ReturnType<typeof freshDatabase>>;
before(async () => {
  pg = await freshDatabase();
});
after(async () => {
  await pg?.drop();
});

const pgQuote = (n: string) => '"' + n.replace(/"/g, '""') + '"';
suite(
  'postgres',
  () => ({
    schema: 'public',
    q: async (sql) => void (await pg.client.query(sql)),
    quote: pgQuote,
    sourceYaml: (tables) => `  type: postgres
  connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${pg.name} }
  slot: names_${pg.name.slice(-6)}_${tables === '[]' ? 'all' : 'listed'}
  publication: names_${tables === '[]' ? 'all' : 'listed'}
  heartbeatIntervalMs: 500
  tables: ${tables}`,
  }),
  '[]',
  // Written as the docs say: a name with a dot or a quote in double quotes, a quote doubled.
  (names) => `[${names.map((n) => JSON.stringify(`public.${pgQuote(n)}`)).join(', ')}]`,
);

const my = useMysqlDatabase();
const myQuote = (n: string) => '`' + n.replace(/`/g, '``') + '`';
suite(
  'mysql',
  () => ({
    schema: my.name,
    q: async (sql) => void (await my.conn.query(sql)),
    quote: myQuote,
    sourceYaml: (tables) => `  type: mysql
  connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${my.name} }
  heartbeatIntervalMs: 500
  tables: ${tables}`,
  }),
  '[]',
  // MySQL's own quotes work too.
  (names) => `[${names.map((n) => JSON.stringify(`${my.name}.${myQuote(n)}`)).join(', ')}]`,
);
