/**
 * A sink's `onError` policy against the real targets (PostgreSQL, MariaDB, DuckDB). The target's
 * copy of one table, `items`, refuses some of its changes (a CHECK constraint: qty < 1000, which
 * the source lacks); `orders` and `people` are fine. For each policy and each target:
 *
 * - `stop`: the sink fails with SINK_REJECTED, as before policies existed;
 * - `skip_table`: `items` is held at the refused change (status.json, `sluice status`, /health,
 *   metrics), its target holds exactly the log's changes before the held position, and every other
 *   table equals the source; a restart after the target is fixed applies the rest;
 * - `dlq`: the dead-letter topic holds exactly the refused changes (once each, with the reason and
 *   the input position), `items` equals the log replayed without them, and the other tables equal
 *   the source; a restart applies none of them.
 *
 * Then the same under kill -9 of the pipeline process at random points while a workload runs, and
 * once exactly between a dead letter's commit and the target's commit past it: the continuing
 * table equals the source with every change applied once, and the dead-letter topic holds every
 * refused change exactly once.
 *
 * The truths are the source database and the log itself (replayed by the test, per key).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { DLQ_HEADERS } from '../../src/engine/sink-policy.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { adminClient, freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, readAll, tempDir, waitUntil, type ReadRecord } from '../helpers/pipeline.ts';
import { freshTargets, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, normalize, sourceRows, TARGETS, type ColKind, type Target, type Targets } from '../helpers/targets.ts';

export type Policy = 'stop' | 'skip_table' | 'dlq';
export const SHORT: Record<Policy, string> = { stop: 'stop', skip_table: 'skip', dlq: 'dlq' };
const PREFIX: Record<Target, string> = { postgres: 'pg', mysql: 'my', duckdb: 'dk' };

export const ITEMS: [string, ColKind][] = [['id', 'int'], ['qty', 'int'], ['note', 'text']];
export const ORDERS: [string, ColKind][] = [['id', 'int'], ['n', 'int']];
export const PEOPLE: [string, ColKind][] = [['id', 'int'], ['name', 'text']];

/** The sink names of a policy, by target. */
export const sinkName = (target: Target, policy: Policy): string => `${PREFIX[target]}_${SHORT[policy]}`;

/** YAML of three sinks (one per target) with `policy`. */
export function sinksYaml(policy: Policy, t: Targets, batch = 'batch: { maxRecords: 40, maxDelayMs: 5 }'): string {
  return `  - name: ${sinkName('postgres', policy)}
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${t.pgDb} }
    onError: ${policy}
    ${batch}
  - name: ${sinkName('mysql', policy)}
    type: mysql
    connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${t.mysqlDb} }
    onError: ${policy}
    ${batch}
  - name: ${sinkName('duckdb', policy)}
    type: duckdb
    path: ${t.duckPath}
    onError: ${policy}
    ${batch}
`;
}

const DUCK_ITEMS = `CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER CONSTRAINT qty_small CHECK (qty < 1000), note VARCHAR)`;

/** Runs SQL on a DuckDB file in a process of its own (this one must not hold the file while a pipeline process writes it). */
export function duckExec(path: string, sql: string): void {
  const script = `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { const i = await DuckDBInstance.create(process.argv[1]); const c = await i.connect(); for (const s of JSON.parse(process.argv[2])) await c.run(s); c.closeSync(); })`;
  const r = spawnSync(process.execPath, ['-e', script, path, JSON.stringify(sql.split(';').filter((s) => s.trim()))], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Creates `items` in every target with the CHECK constraint the source lacks. */
export async function createRefusingItems(t: Targets): Promise<void> {
  const pgc = await adminClient(t.pgDb);
  await pgc.query(`CREATE TABLE items (id integer PRIMARY KEY, qty integer CONSTRAINT qty_small CHECK (qty < 1000), note text)`);
  await pgc.end();
  const my = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER });
  await my.query(`CREATE DATABASE \`${t.mysqlDb}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await my.query(`CREATE TABLE \`${t.mysqlDb}\`.items (id INT NOT NULL PRIMARY KEY, qty INT NULL, note LONGTEXT NULL, CONSTRAINT qty_small CHECK (qty < 1000)) ENGINE=InnoDB`);
  await my.end();
  duckExec(t.duckPath, DUCK_ITEMS);
}

/** Drops the constraint from every target's `items` (DuckDB cannot: the table is rebuilt without it, with `exec`). */
async function acceptAllItems(t: Targets, duck: (sql: string) => Promise<void>): Promise<void> {
  const pgc = await adminClient(t.pgDb);
  await pgc.query(`ALTER TABLE items DROP CONSTRAINT qty_small`);
  await pgc.end();
  const my = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, database: t.mysqlDb });
  await my.query(`ALTER TABLE items DROP CONSTRAINT qty_small`);
  await my.end();
  await duck(`CREATE TABLE items_new (id INTEGER PRIMARY KEY, qty INTEGER, note VARCHAR); INSERT INTO items_new SELECT id, qty, note FROM items; DROP TABLE items; ALTER TABLE items_new RENAME TO items`);
}

const env = (r: ReadRecord) => (r.value?.payload ?? r.value) as { op: string; after: Record<string, unknown> | null } | null;

/** Whether a log record is a change the targets' `items` refuses. */
export const refusedChange = (r: ReadRecord): boolean => {
  const e = env(r);
  return !!e && e.op !== 'd' && e.op !== 't' && Number(e.after?.qty) >= 1000;
};

/** `items` rows after replaying the log records that `take` keeps, key by key in log order (keys never span partitions). */
export function replayItems(records: ReadRecord[], take: (r: ReadRecord) => boolean): string[] {
  const state = new Map<string, Record<string, unknown>>();
  for (const r of [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const e = env(r);
    if (!e || !take(r)) continue;
    if (e.op === 't') state.clear();
    else if (e.op === 'd') state.delete(JSON.stringify(r.key));
    else state.set(JSON.stringify(r.key), e.after!);
  }
  return [...state.values()].map((a) => ITEMS.map(([c, k]) => normalize(k, a[c])).join(' | ')).sort();
}

export const asLines = (rows: string[][]): string[] => rows.map((r) => r.join(' | ')).sort();

export interface DeadLetter {
  sink: string;
  code: string;
  message: string;
  key: string;
  input: { topic: string; partition: number; offset: number };
  value: string;
}

/** Every record of the dead-letter topic. */
export async function readDeadLetters(logDir: string, topic: string): Promise<DeadLetter[]> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    if (!(await log.topicInfo(topic))) return [];
    const out: DeadLetter[] = [];
    for (const p of await log.offsets(topic)) {
      let at = p.start;
      while (at < p.end) {
        const { records, next } = await log.read(topic, p.partition, at, 1 << 20);
        for (const r of records) {
          const h = r.headers ?? {};
          out.push({
            sink: h[DLQ_HEADERS.sink],
            code: h[DLQ_HEADERS.code],
            message: h[DLQ_HEADERS.message],
            key: r.key?.toString() ?? '',
            input: { topic: h[DLQ_HEADERS.topic], partition: Number(h[DLQ_HEADERS.partition]), offset: Number(h[DLQ_HEADERS.offset]) },
            value: r.value?.toString() ?? '',
          });
        }
        at = next;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** The raw value of a log record. */
async function rawValue(logDir: string, topic: string, partition: number, offset: number): Promise<string | null> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    const { records } = await log.read(topic, partition, offset, 1);
    const r = records.find((x) => x.offset === offset);
    return r?.value?.toString() ?? null;
  } finally {
    await log.close();
  }
}

interface SinkStatus {
  name: string;
  state: string;
  error: { code: string; message: string } | null;
  held: { table: string; topic: string; partition: number; offset: number; error: { code: string; message: string }; offsets: Record<string, number> }[];
  deadLettered: number;
  offsets: Record<string, number>;
}

const statusOf = (dir: string): { pid: number; sinks: SinkStatus[] } => JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8'));

describe('sink error policies (onError)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  const targets = {} as Record<Policy, Targets>;
  const POLICIES: Policy[] = ['stop', 'skip_table', 'dlq'];
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    for (const p of POLICIES) {
      mkdirSync(join(tmp.dir, p));
      targets[p] = await freshTargets(join(tmp.dir, p));
      await createRefusingItems(targets[p]);
    }
    await db.client.query(`CREATE TABLE orders (id int PRIMARY KEY, n int);
      CREATE TABLE people (id int PRIMARY KEY, name text);
      CREATE TABLE items (id int PRIMARY KEY, qty int, note text);
      INSERT INTO orders SELECT g, g FROM generate_series(1, 300) g;
      INSERT INTO people SELECT g, 'person ' || g FROM generate_series(1, 300) g;
      INSERT INTO items SELECT g, g % 500, 'item ' || g FROM generate_series(1, 300) g;`);
  });
  after(async () => {
    for (const p of POLICIES) await targets[p]?.drop();
    await db?.drop();
    tmp?.remove();
  });

  it('stop fails the sink, skip_table holds the refused table, dlq dead-letters the refused changes; the other tables go on in every target', async () => {
    const logDir = join(tmp.dir, 'log');
    const yaml = pipelineYaml('errpol', db.name, tmp.dir, '', `server:\n  port: 0\nbatch:\n  maxDelayMs: 5\nsinks:\n${POLICIES.map((p) => sinksYaml(p, targets[p])).join('')}`);
    const cfg = parseConfig(yaml, 'test.yaml', process.env);
    const logs = new PassThrough();
    let logText = '';
    logs.on('data', (d) => (logText += d));
    const lines = () => logText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const start = () => {
      const ac = new AbortController();
      const done = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'info', format: 'json', stream: logs }) });
      done.catch(() => {});
      return { stop: async () => (ac.abort(), await done) };
    };
    const rowsIn = (p: Policy, t: Target, table: string, cols: [string, ColKind][]) => targets[p].rows(t, table, cols).then(asLines);
    let why = '';
    const equalToSource = async (p: Policy, t: Target, table: string, cols: [string, ColKind][]) => {
      const got = await rowsIn(p, t, table, cols).catch((e: Error) => e.message);
      const want = asLines(await sourceRows(db.client, table, cols));
      if (JSON.stringify(got) === JSON.stringify(want)) return true;
      const sinks = (() => {
        try {
          return statusOf(tmp.dir).sinks.map((s) => `${s.name} ${s.state} ${s.error?.code ?? ''} held ${s.held.length}`).join(', ');
        } catch {
          return '';
        }
      })();
      why = `${SHORT[p]} ${t} ${table}: ${typeof got === 'string' ? got : `${got.length} rows vs ${want.length}, e.g. ${got.filter((l) => !want.includes(l)).slice(0, 2).join('; ')} / ${want.filter((l) => !got.includes(l)).slice(0, 2).join('; ')}`}; sinks: ${sinks}`;
      return false;
    };

    let run = start();
    try {
      await waitUntil('every sink applied the snapshot', async () => {
        for (const p of POLICIES) for (const t of TARGETS) for (const [table, cols] of [['orders', ORDERS], ['people', PEOPLE], ['items', ITEMS]] as const) if (!(await equalToSource(p, t, table, cols))) return false;
        return true;
      }, 90_000);

      // Changes the targets accept, then three the targets' items refuse (7 and 8 updated to a qty
      // of 5000, 1001 inserted with 2000) among ones they accept, then more of both kinds.
      // The refused rows are not changed again.
      await db.client.query(`BEGIN; UPDATE orders SET n = n + 1 WHERE id <= 100; INSERT INTO people SELECT g, 'new ' || g FROM generate_series(301, 350) g; UPDATE items SET note = 'T1' WHERE id <= 50; COMMIT`);
      await db.client.query(`BEGIN; UPDATE items SET qty = 5000 WHERE id IN (7, 8); INSERT INTO items VALUES (1001, 2000, 'refused'), (1002, 5, 'accepted'); DELETE FROM items WHERE id = 9; UPDATE orders SET n = n + 1 WHERE id > 250; COMMIT`);
      await db.client.query(`BEGIN; UPDATE items SET note = 'T3' WHERE id BETWEEN 100 AND 120; DELETE FROM people WHERE id <= 10; INSERT INTO orders VALUES (1001, 1); COMMIT`);

      await waitUntil('orders and people equal the source in every skip_table and dlq target', async () => {
        for (const p of ['skip_table', 'dlq'] as const) for (const t of TARGETS) for (const [table, cols] of [['orders', ORDERS], ['people', PEOPLE]] as const) if (!(await equalToSource(p, t, table, cols))) return false;
        return true;
      }, 60_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${why}\n${logText.slice(-3000)}`);
      });
      const items = (await readAll(logDir, 'errpol.public.items')).filter((r) => r.topic === 'errpol.public.items');
      const refused = items.filter(refusedChange);
      assert.equal(refused.length, 3, 'the log holds the three changes the targets refuse');

      // dlq: items equals the log without the refused changes; the dead-letter topic holds each of them once per sink.
      const wantDlq = replayItems(items, (r) => !refusedChange(r));
      assert.ok(wantDlq.includes('7 | 7 | T1') && wantDlq.includes('1002 | 5 | accepted') && !wantDlq.some((l) => l.startsWith('1001 ')), 'the replay keeps the last accepted state of each refused row');
      await waitUntil('dlq targets: items equal the log without the refused changes', async () => {
        for (const t of TARGETS) if (JSON.stringify(await rowsIn('dlq', t, 'items', ITEMS)) !== JSON.stringify(wantDlq)) return false;
        return true;
      }, 30_000);
      const dead = await readDeadLetters(logDir, 'errpol.dlq');
      for (const t of TARGETS) {
        const mine = dead.filter((d) => d.sink === sinkName(t, 'dlq'));
        assert.deepEqual(mine.map((d) => `${d.input.partition}@${d.input.offset}`).sort(), refused.map((r) => `${r.partition}@${r.offset}`).sort(), `${t}: the dead-letter topic holds exactly the refused changes, once each`);
        for (const d of mine) {
          assert.equal(d.code, 'SINK_REJECTED');
          assert.match(d.message, /qty_small|CHECK\(\(qty < 1000\)\)/, `${t}: the reason names the constraint: ${d.message}`);
          assert.equal(d.input.topic, 'errpol.public.items');
          assert.equal(d.key, `${d.input.topic}/${d.input.partition}/${d.input.offset}`, 'keyed by input position');
          assert.equal(d.value, await rawValue(logDir, d.input.topic, d.input.partition, d.input.offset), 'the input record as the log holds it');
        }
      }
      assert.equal(dead.length, 9, 'no other dead letters');

      // skip_table: items held at a refused change; the target holds exactly the log before the held position.
      let st = statusOf(tmp.dir);
      await waitUntil('skip_table sinks hold items, stop sinks failed', async () => {
        st = statusOf(tmp.dir);
        return TARGETS.every((t) => st.sinks.find((s) => s.name === sinkName(t, 'skip_table'))?.held.length === 1 && st.sinks.find((s) => s.name === sinkName(t, 'stop'))?.state === 'failed');
      }, 30_000);
      const heldPositions = new Map<Target, SinkStatus['held'][0]>();
      for (const t of TARGETS) {
        const s = st.sinks.find((x) => x.name === sinkName(t, 'skip_table'))!;
        assert.equal(s.state, 'running');
        const [h] = s.held;
        heldPositions.set(t, h);
        assert.equal(h.table, 'public.items');
        assert.equal(h.topic, 'errpol.public.items');
        assert.equal(h.error.code, 'SINK_REJECTED');
        assert.match(h.error.message, /qty_small|CHECK\(\(qty < 1000\)\)/);
        assert.ok(refused.some((r) => r.partition === h.partition && r.offset === h.offset), `${t}: held at a refused change (${h.partition}@${h.offset})`);
        assert.equal(h.offsets[h.partition] ?? 0, h.offset, `${t}: the partition of the refused change stands at it`);
        const want = replayItems(items, (r) => r.offset < (h.offsets[r.partition] ?? 0));
        assert.deepEqual(await rowsIn('skip_table', t, 'items', ITEMS), want, `${t}: items holds exactly the changes before the held position`);
        assert.deepEqual(s.offsets[`errpol.public.items/${h.partition}`], h.offset, 'status offsets agree');
        const stop = st.sinks.find((x) => x.name === sinkName(t, 'stop'))!;
        assert.equal(stop.error?.code, 'SINK_REJECTED', `${t}: stop fails the sink as before`);
      }
      // Later changes to items are not applied while it is held; other tables keep going.
      await db.client.query(`UPDATE items SET note = 'T4' WHERE id BETWEEN 200 AND 300; UPDATE orders SET n = n + 7 WHERE id < 20`);
      await waitUntil('orders after T4 in the skip_table targets', async () => {
        for (const t of TARGETS) if (!(await equalToSource('skip_table', t, 'orders', ORDERS))) return false;
        return true;
      }, 30_000);
      const itemsNow = (await readAll(logDir, 'errpol.public.items')).filter((r) => r.topic === 'errpol.public.items');
      for (const t of TARGETS) {
        const h = heldPositions.get(t)!;
        assert.deepEqual(await rowsIn('skip_table', t, 'items', ITEMS), replayItems(itemsNow, (r) => r.offset < (h.offsets[r.partition] ?? 0)), `${t}: items still held`);
      }

      // Operators see it: /health, /metrics and the JSON logs.
      const url = lines().find((l) => l.msg === 'http server listening')!.url as string;
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 503, 'the stop sinks failed');
      const hb = (await health.json()) as { held: string[] };
      assert.equal(hb.held.length, 3);
      assert.match(hb.held[0], /^sink pg_skip holds public\.items: \[SINK_REJECTED\] /);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      for (const t of TARGETS) {
        const labels = `pipeline="errpol",component="sink",sink="${sinkName(t, 'skip_table')}"`;
        assert.match(metrics, new RegExp(`sluice_sink_held_tables\\{${labels}\\} 1\\n`));
        const dl = `pipeline="errpol",component="sink",sink="${sinkName(t, 'dlq')}"`;
        assert.match(metrics, new RegExp(`sluice_sink_dead_letters_total\\{${dl}\\} 3\\n`));
        assert.match(metrics, new RegExp(`sluice_errors_total\\{${dl},stage="sink"\\} 3\\n`));
      }
      for (const t of TARGETS) {
        const dl = lines().filter((l) => l.msg.startsWith('sink dead-lettered') && l.sink === sinkName(t, 'dlq'));
        assert.equal(dl.length, 3);
        assert.ok(dl.every((l) => l.level === 'warn' && l.table === 'public.items' && l.code === 'SINK_REJECTED' && l.dlq === 'errpol.dlq' && refused.some((r) => r.partition === l.partition && r.offset === l.offset)));
        const hl = lines().filter((l) => l.msg.startsWith('sink holds a table') && l.sink === sinkName(t, 'skip_table'));
        assert.equal(hl.length, 1);
        assert.equal(hl[0].level, 'error');
      }
    } finally {
      await run.stop();
    }

    // sluice status shows the held tables and the dead letters.
    const out = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--log-dir', logDir, '--state-dir', join(tmp.dir, 'state')], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    for (const t of TARGETS) {
      const h = heldPositionsOf(statusOf(tmp.dir), sinkName(t, 'skip_table'));
      assert.match(out.stdout, new RegExp(`^ {2}sink ${sinkName(t, 'skip_table')} \\(${t}\\): stopped, \\d+ changes applied this run, \\d+ records behind the log(, lag \\d+ ms)?, 1 table held`, 'm'));
      assert.ok(out.stdout.includes(`    held public.items (errpol.public.items) at partition ${h.partition} offset ${h.offset}: error SINK_REJECTED: `), out.stdout);
      assert.match(out.stdout, new RegExp(`^ {2}sink ${sinkName(t, 'dlq')} \\(${t}\\): stopped, .*, 3 changes dead-lettered this run`, 'm'));
    }
    assert.match(out.stdout, /^ {2}errpol\.dlq {2}9 records/m);

    // The targets are fixed; a restart retries the held table (and the failed sinks) from where they stand.
    for (const p of ['stop', 'skip_table'] as const) {
      await acceptAllItems(targets[p], async (sql) => {
        const { DuckDBInstance } = await import('@duckdb/node-api');
        const c = await (await DuckDBInstance.fromCache(targets[p].duckPath)).connect();
        try {
          for (const s of sql.split(';')) await c.run(s);
        } finally {
          c.closeSync();
        }
      });
    }
    run = start();
    try {
      await waitUntil('every stop and skip_table target equals the source', async () => {
        for (const p of ['stop', 'skip_table'] as const) for (const t of TARGETS) for (const [table, cols] of [['orders', ORDERS], ['people', PEOPLE], ['items', ITEMS]] as const) if (!(await equalToSource(p, t, table, cols))) return false;
        return true;
      }, 60_000);
      await waitUntil('no held tables in status.json', async () => statusOf(tmp.dir).sinks.every((s) => s.held.length === 0 && s.state === 'running'), 10_000);
      // dlq: nothing dead-lettered is applied on restart, nothing is dead-lettered twice.
      const items = (await readAll(logDir, 'errpol.public.items')).filter((r) => r.topic === 'errpol.public.items');
      await waitUntil('dlq targets: items equal the log without the refused changes', async () => {
        for (const t of TARGETS) if (JSON.stringify(await rowsIn('dlq', t, 'items', ITEMS)) !== JSON.stringify(replayItems(items, (r) => !refusedChange(r)))) return false;
        return true;
      }, 30_000);
      assert.equal((await readDeadLetters(logDir, 'errpol.dlq')).length, 9);
    } finally {
      await run.stop();
    }
  });
});

function heldPositionsOf(st: { sinks: SinkStatus[] }, sink: string): SinkStatus['held'][0] {
  return st.sinks.find((s) => s.name === sink)!.held[0];
}

describe('sink error policies: log records that are not change events', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  let targets: Targets;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    await db.client.query(`CREATE TABLE orders (id int PRIMARY KEY, n int); INSERT INTO orders SELECT g, g FROM generate_series(1, 200) g;`);
  });
  after(async () => {
    await targets?.drop();
    await db?.drop();
    tmp?.remove();
  });

  it('dlq dead-letters them with SINK_BAD_RECORD, skip_table holds their topic, the other tables go on', async () => {
    const logDir = join(tmp.dir, 'log');
    // A topic under the pipeline's prefix holding a record that is not JSON and one without a schema header.
    const log = await openLog(embeddedLogAt(logDir), {});
    const bad = ['not a change event', '{"before":null,"after":{"id":2},"op":"c"}'];
    try {
      await log.ensureTopic('errbad.public.junk', { partitions: 1 });
      const { producer } = await log.openProducer('test junk writer');
      for (const v of bad) producer.append('errbad.public.junk', { key: null, value: v, timestamp: Date.now() }, 0);
      await producer.commit('done');
      await producer.close();
    } finally {
      await log.close();
    }
    const sinks = `  - name: pg_dlq
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${targets.pgDb} }
    onError: dlq
  - name: pg_skip
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${targets.pgDb} }
    tableName: 'skip_{table}'
    onError: skip_table
`;
    const cfg = parseConfig(pipelineYaml('errbad', db.name, tmp.dir, '', `sinks:\n${sinks}`), 'test.yaml', process.env);
    const ac = new AbortController();
    const done = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'info' }) });
    done.catch(() => {});
    try {
      await db.client.query(`UPDATE orders SET n = n * 2 WHERE id % 3 = 0`);
      const want = asLines(await sourceRows(db.client, 'orders', ORDERS));
      await waitUntil('orders equal the source in both sinks', async () => {
        for (const t of ['orders', 'skip_orders']) if (JSON.stringify(asLines(await targets.rows('postgres', t, ORDERS).catch(() => []))) !== JSON.stringify(want)) return false;
        return true;
      }, 60_000);
      let st = statusOf(tmp.dir);
      await waitUntil('the dlq sink past the junk topic, the skip_table sink holding it', async () => {
        st = statusOf(tmp.dir);
        const d = st.sinks.find((s) => s.name === 'pg_dlq');
        const k = st.sinks.find((s) => s.name === 'pg_skip');
        return d?.offsets['errbad.public.junk/0'] === 2 && k?.held.length === 1;
      }, 30_000);
      const dead = await readDeadLetters(logDir, 'errbad.dlq');
      assert.deepEqual(dead.map((d) => [d.sink, d.code, d.key, d.value]), bad.map((v, i) => ['pg_dlq', 'SINK_BAD_RECORD', `errbad.public.junk/0/${i}`, v]));
      assert.match(dead[0].message, /no "op" field/);
      assert.match(dead[1].message, /no schema header/);
      const [h] = st.sinks.find((s) => s.name === 'pg_skip')!.held;
      assert.deepEqual([h.table, h.topic, h.partition, h.offset, h.error.code], ['public.junk', 'errbad.public.junk', 0, 0, 'SINK_BAD_RECORD']);
      assert.equal(st.sinks.find((s) => s.name === 'pg_skip')!.offsets['errbad.public.junk/0'] ?? 0, 0, 'the held topic stands at its first record');
    } finally {
      ac.abort();
      await done;
    }
  });
});

describe('sink error policies under kill -9', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  const targets = {} as Record<'skip_table' | 'dlq', Targets>;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    for (const p of ['skip_table', 'dlq'] as const) {
      mkdirSync(join(tmp.dir, p));
      targets[p] = await freshTargets(join(tmp.dir, p));
      await createRefusingItems(targets[p]);
    }
    await db.client.query(`CREATE TABLE orders (id int PRIMARY KEY, v int NOT NULL, n int);
      CREATE TABLE items (id int PRIMARY KEY, qty int, note text);
      INSERT INTO orders SELECT g, 1, g FROM generate_series(1, 3000) g;
      INSERT INTO items SELECT g, g % 900, 'item ' || g FROM generate_series(1, 3000) g;`);
  });
  after(async () => {
    for (const p of ['skip_table', 'dlq'] as const) await targets[p]?.drop();
    await db?.drop();
    tmp?.remove();
  });

  it('neither loses nor repeats a change of the continuing tables, nor a dead letter', async () => {
    const CYCLES = Number(process.env.SLUICE_SINK_CRASH_CYCLES ?? 6);
    const logDir = join(tmp.dir, 'log');
    const cfgPath = join(tmp.dir, 'pipeline.yaml');
    writeFileSync(cfgPath, pipelineYaml('errkill', db.name, tmp.dir, '', `batch:\n  maxRecords: 300\n  maxDelayMs: 5\nsinks:\n${sinksYaml('skip_table', targets.skip_table, 'batch: { maxRecords: 200, maxDelayMs: 5 }')}${sinksYaml('dlq', targets.dlq, 'batch: { maxRecords: 200, maxDelayMs: 5 }')}`).replace('level: warn', 'level: info'));
    const c = db.client;
    // Workload: orders change all the time (each update bumps v); items mostly take values the
    // targets accept, and now and then one they refuse, on a row never changed again.
    let running = true;
    let txs = 0;
    let nextOrder = 100_000;
    let nextItem = 100_000;
    let doomed = 2000;
    const workload = (async () => {
      while (running) {
        await c.query('BEGIN');
        for (let i = 0, n = 1 + Math.floor(Math.random() * 4); i < n; i++) {
          const r = Math.random();
          if (r < 0.4) await c.query(`UPDATE orders SET v = v + 1, n = (random() * 1e6)::int WHERE id = $1`, [1 + Math.floor(Math.random() * 3000)]);
          else if (r < 0.5) await c.query(`INSERT INTO orders VALUES ($1, 1, 0)`, [nextOrder++]);
          else if (r < 0.55) await c.query(`DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE id >= 100000 ORDER BY random() LIMIT 1)`);
          else if (r < 0.85) await c.query(`UPDATE items SET qty = (random() * 999)::int, note = md5(random()::text) WHERE id = $1`, [1 + Math.floor(Math.random() * 1000)]);
          // Refused changes are rare (2% of the operations, as bad rows are): each costs a dlq
          // sink about log2(batch) target transactions to isolate, which DuckDB commits slowly.
          else if (r < 0.98) await c.query(`INSERT INTO items VALUES ($1, 1, 'new')`, [nextItem++]);
          else if (r < 0.99) await c.query(`INSERT INTO items VALUES ($1, 5000, 'refused insert')`, [nextItem++]);
          else await c.query(`UPDATE items SET qty = 5000, note = 'refused update' WHERE id = $1`, [doomed++]);
        }
        await c.query('COMMIT');
        txs++;
      }
    })();
    let child = startPipelineProcess(cfgPath, ['--log-format', 'json']);
    try {
      for (let i = 0; i < CYCLES; i++) {
        await new Promise((r) => setTimeout(r, i === 0 ? 2500 : 600 + Math.random() * 1400));
        await stopProcess(child, 'SIGKILL');
        child = startPipelineProcess(cfgPath, ['--log-format', 'json']);
      }
    } finally {
      running = false;
      await workload;
    }
    assert.ok(txs > 100, `the workload ran (${txs} transactions)`);
    assert.ok(doomed > 2000, 'the workload made refused changes');

    // Once exactly between a dead letter's commit and the target's commit past it: the PostgreSQL
    // target's offsets commit for items without items data (only the commit past a dead letter
    // does that here: the workload deletes no items) waits 4 s, and the process is killed then.
    // Everything the workload committed is in the log once a later marker row reaches a target.
    await c.query(`INSERT INTO orders VALUES (99999, 1, -1)`);
    await waitUntil('the marker in the PostgreSQL dlq target', async () => (await targets.dlq.rows('postgres', 'orders', [['id', 'int']], 'id = 99999')).length === 1, 180_000);
    await waitUntil('the PostgreSQL dlq sink caught up with the workload', async () => {
      const st = statusOf(tmp.dir);
      const s = st.sinks.find((x) => x.name === 'pg_dlq');
      if (st.pid !== child.pid || !s) return false;
      const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
      try {
        return (await log.offsets('errkill.public.items')).every((o) => (s.offsets[`errkill.public.items/${o.partition}`] ?? 0) >= o.end);
      } finally {
        await log.close();
      }
    }, 180_000);
    const pgc = await adminClient(targets.dlq.pgDb);
    let killedAt: { partition: number; offset: number } | null = null;
    try {
      await waitUntil('the PostgreSQL dlq sink created its offsets table', async () => (await pgc.query(`SELECT 1 FROM pg_tables WHERE tablename = 'sluice_offsets'`)).rowCount === 1);
      await pgc.query(`CREATE FUNCTION touched() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('sluice_test.touched', '1', true); RETURN NULL; END $$;
        CREATE TRIGGER touched AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION touched();
        CREATE FUNCTION slow_offsets() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          IF NEW.topic = 'errkill.public.items' AND NEW.next_offset <> OLD.next_offset AND coalesce(current_setting('sluice_test.touched', true), '') <> '1' THEN PERFORM pg_sleep(4); END IF;
          RETURN NEW; END $$;
        CREATE TRIGGER slow_offsets BEFORE UPDATE ON sluice_offsets FOR EACH ROW EXECUTE FUNCTION slow_offsets();`);
      const before = new Set((await readDeadLetters(logDir, 'errkill.dlq')).filter((d) => d.sink === 'pg_dlq').map((d) => `${d.input.partition}@${d.input.offset}`));
      await c.query(`INSERT INTO items VALUES ($1, 7000, 'refused before the kill')`, [nextItem++]);
      await waitUntil('the PostgreSQL dlq sink dead-lettered the new refused change', async () => {
        const fresh = (await readDeadLetters(logDir, 'errkill.dlq')).filter((d) => d.sink === 'pg_dlq' && !before.has(`${d.input.partition}@${d.input.offset}`) && JSON.parse(d.value).after?.qty === 7000);
        if (fresh.length) killedAt = fresh[0].input;
        return fresh.length > 0;
      }, 120_000).catch(async (e: Error) => {
        const dl = (await readDeadLetters(logDir, 'errkill.dlq')).filter((d) => d.sink === 'pg_dlq' && !before.has(`${d.input.partition}@${d.input.offset}`));
        const acts = (await pgc.query(`SELECT state, wait_event, left(query, 200) AS q FROM pg_stat_activity WHERE datname = current_database()`)).rows;
        const all = (await readDeadLetters(logDir, 'errkill.dlq')).filter((d) => d.sink === 'pg_dlq').map((d) => `${d.input.partition}@${d.input.offset}`);
        const interesting = child.stderrText().split('\n').filter((l) => /pg_dlq/.test(l) && /dead-letter|moved past|retrying|started|stopped/.test(l)).map((l) => l.slice(0, 300));
        throw new Error(`${e.message}: all pg_dlq dead letters ${all.join(' ')}; before ${[...before].join(' ')}; lines ${interesting.join('\n')}; new dead letters ${JSON.stringify(dl.map((d) => d.input))}; status ${JSON.stringify(statusOf(tmp.dir).sinks.find((x) => x.name === 'pg_dlq'))}; sessions ${JSON.stringify(acts)}\n${child.stderrText().slice(-3000)}`);
      });
      await stopProcess(child, 'SIGKILL');
      const stored = await pgc.query(`SELECT next_offset FROM sluice_offsets WHERE sink = 'errkill/pg_dlq' AND topic = 'errkill.public.items' AND "partition" = $1`, [killedAt!.partition]);
      assert.ok(Number(stored.rows[0]?.next_offset ?? 0) <= killedAt!.offset, 'the kill landed between the dead letter and the target commit past it');
      await pgc.query(`DROP TRIGGER slow_offsets ON sluice_offsets; DROP TRIGGER touched ON items`);
    } finally {
      await pgc.end();
    }
    child = startPipelineProcess(cfgPath, ['--log-format', 'json']);
    try {
      // PostgreSQL and MariaDB can be read while the pipeline runs; DuckDB once it stopped.
      const want = asLines(await sourceRows(c, 'orders', [['id', 'int'], ['v', 'int'], ['n', 'int']]));
      let last = '';
      await waitUntil('orders equal the source in the PostgreSQL and MariaDB targets', async () => {
        for (const p of ['skip_table', 'dlq'] as const) {
          for (const t of ['postgres', 'mysql'] as const) {
            const got = asLines(await targets[p].rows(t, 'orders', [['id', 'int'], ['v', 'int'], ['n', 'int']]));
            if (JSON.stringify(got) !== JSON.stringify(want)) {
              last = `${p} ${t}: ${got.length} rows vs ${want.length}`;
              return false;
            }
          }
        }
        return true;
      }, 120_000).catch((e: Error) => {
        throw new Error(`${e.message} (${last})\n${child.stderrText().slice(-3000)}`);
      });
      let behind = '';
      await waitUntil('every sink at the end of the log or holding items', async () => {
        const st = statusOf(tmp.dir);
        if (st.pid !== child.pid) return false;
        const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
        try {
          for (const topic of ['errkill.public.orders', 'errkill.public.items']) {
            for (const o of await log.offsets(topic)) {
              for (const s of st.sinks) {
                if (topic.endsWith('items') && s.held.length) continue;
                if ((s.offsets[`${topic}/${o.partition}`] ?? 0) < o.end) {
                  behind = `sink ${s.name} (${s.state}${s.error ? `, ${s.error.code}: ${s.error.message}` : ''}) at ${topic}/${o.partition} ${s.offsets[`${topic}/${o.partition}`] ?? 0} of ${o.end}, holding ${JSON.stringify(s.held)}`;
                  return false;
                }
              }
            }
          }
          return st.sinks.length === 6;
        } finally {
          await log.close();
        }
      }, 240_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${behind}\n${child.stderrText().split('\n').filter((l) => /"level":"(warn|error)"/.test(l)).slice(-20).join('\n')}`);
      });
      const lines = child.stderrText().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
      const moved = lines.find((l) => l.msg === 'sink moved past records it dead-lettered before its last stop' && l.sink === 'pg_dlq');
      assert.ok(moved, `the restarted sink finished the interrupted dead letter; its lines: ${lines.filter((l) => l.sink === 'pg_dlq').map((l) => JSON.stringify(l).slice(0, 300)).join('\n')}`);
      assert.deepEqual(moved.positions, [`errkill.public.items/${killedAt!.partition}@${killedAt!.offset + 1}`]);
    } finally {
      await stopProcess(child, 'SIGTERM');
    }

    const ORDER_COLS: [string, ColKind][] = [['id', 'int'], ['v', 'int'], ['n', 'int']];
    const want = asLines(await sourceRows(c, 'orders', ORDER_COLS));
    const logged = await readAll(logDir, 'errkill.public.');
    const orderChanges = logged.filter((r) => r.topic === 'errkill.public.orders' && r.value !== null).length;
    const items = logged.filter((r) => r.topic === 'errkill.public.items');
    const refused = items.filter(refusedChange);
    assert.ok(refused.length >= 3, `refused changes in the log (${refused.length})`);
    for (const p of ['skip_table', 'dlq'] as const) {
      for (const t of TARGETS) assert.deepEqual(asLines(await targets[p].rows(t, 'orders', ORDER_COLS)), want, `${p} ${t}: orders equal the source`);
      // DuckDB's change table: each logged change once.
      assert.equal(await targets[p].count('duckdb', 'SELECT count(*) FROM orders_changes'), orderChanges, `${p}: each logged orders change is in the change table once`);
      assert.equal(await targets[p].count('duckdb', `SELECT count(*) FROM (SELECT id, v FROM orders_changes WHERE __op <> 'd' GROUP BY id, v HAVING count(*) > 1)`), 0, `${p}: no orders change applied twice`);
    }
    const dead = await readDeadLetters(logDir, 'errkill.dlq');
    const wantItems = replayItems(items, (r) => !refusedChange(r));
    for (const t of TARGETS) {
      assert.deepEqual(asLines(await targets.dlq.rows(t, 'items', ITEMS)), wantItems, `dlq ${t}: items equal the log without the refused changes`);
      const mine = dead.filter((d) => d.sink === sinkName(t, 'dlq')).map((d) => `${d.input.partition}@${d.input.offset}`);
      assert.deepEqual(mine.sort(), refused.map((r) => `${r.partition}@${r.offset}`).sort(), `dlq ${t}: every refused change dead-lettered exactly once`);
    }
    const st = statusOf(tmp.dir);
    for (const t of TARGETS) {
      const [h] = st.sinks.find((s) => s.name === sinkName(t, 'skip_table'))!.held;
      assert.ok(h && refused.some((r) => r.partition === h.partition && r.offset === h.offset), `skip_table ${t}: items held at a refused change`);
      assert.deepEqual(asLines(await targets.skip_table.rows(t, 'items', ITEMS)), replayItems(items, (r) => r.offset < (h.offsets[r.partition] ?? 0)), `skip_table ${t}: items holds exactly the changes before the held position`);
    }
  });
});
