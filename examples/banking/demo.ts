/**
 * The whole banking demo in one process: (re)creates the banking database with seeded mock data,
 * runs pipeline.yaml (snapshot, then the binlog) into the operational layer and the analytics,
 * starts the live workload, the lag tracker and the dashboard.
 *
 *   npx tsx examples/banking/demo.ts [--rate 5] [--port 8080] [--host 127.0.0.1] [--seconds 0] [--keep] [--config FILE]
 *
 * --keep reuses the database, the log and the documents as they are (resumes where it stopped);
 * without it everything is rebuilt: tables, ./data/banking, and the ODL/analytics databases.
 */
import { readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { loadConfig, type PipelineConfig } from '../../src/config/index.ts';
import type { DocumentSinkConfig } from '../../src/config/types.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { openMongoStores } from '../../src/sinks/document/mongodb.ts';
import { openPgJsonStores } from '../../src/sinks/document/pgjson.ts';
import type { DocumentStores } from '../../src/sinks/document/stores.ts';
import { startDashboard } from './dashboard.ts';
import { bankingConnectionUrl, createSchema, generate, startWorkload } from './generate.ts';
import { createLagTracker } from './lag.ts';
import { checkAnalytics, checkLag, checkOdl } from './verify.ts';

const say = (s: string) => console.log(`\x1b[36m[banking]\x1b[0m ${s}`);

function documentSink(cfg: PipelineConfig): DocumentSinkConfig {
  const sink = cfg.sinks.find((s) => s.type === 'mongodb' || s.type === 'postgres_jsonb') as DocumentSinkConfig | undefined;
  if (!sink?.derive) throw new Error('the config needs a mongodb or postgres_jsonb sink with derive: (see examples/banking/pipeline.yaml)');
  return sink;
}

/** Drops what an earlier run left in the document stores: a fresh snapshot must not meet old offsets. */
async function resetDocuments(sink: DocumentSinkConfig): Promise<void> {
  if (sink.type === 'mongodb') {
    for (const [url, db] of [[sink.connection, sink.database], [sink.derive!.connection, sink.derive!.database]]) {
      const c = new MongoClient(url);
      await c.connect();
      await c.db(db).dropDatabase();
      await c.close();
    }
    return;
  }
  for (const [conn, schema] of [[sink.connection, sink.schema], [sink.derive!.connection, sink.derive!.schema]] as const) {
    const c = new pg.Client({ host: conn.host, port: conn.port, user: conn.user, password: conn.password, database: conn.database });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema.replace(/"/g, '""')}" CASCADE`);
    await c.end();
  }
}

async function openStores(sink: DocumentSinkConfig): Promise<DocumentStores> {
  if (sink.type === 'mongodb') return openMongoStores({ url: sink.connection, database: sink.database, derive: { url: sink.derive!.connection, database: sink.derive!.database } });
  return openPgJsonStores({ name: `${sink.name}-dashboard`, connection: sink.connection, schema: sink.schema, derive: sink.derive });
}

/** `open()`, or exit with what to do when `what` is unreachable (instead of a driver's stack trace). */
async function reach<T>(what: string, url: string, fix: string, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    console.error(`${what} is not reachable at ${url.replace(/\/\/[^@/]*@/, '//')} (${(e as Error).message}): ${fix}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '5' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      seconds: { type: 'string', default: '0' },
      customers: { type: 'string', default: '100' },
      seed: { type: 'string', default: '42' },
      keep: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      config: { type: 'string', default: fileURLToPath(new URL('./pipeline.yaml', import.meta.url)) },
    },
  });
  const cfg = await loadConfig(values.config!);
  if (!values.verbose) cfg.logging = { ...cfg.logging, level: 'warn' };
  const sink = documentSink(cfg);

  const conn = await reach('MySQL/MariaDB', bankingConnectionUrl(), 'start it and turn the row-based binlog on: bash scripts/setup.sh (see README.md for a real server)', () => mysql.createConnection({ uri: bankingConnectionUrl() }));
  const storeUrl = sink.type === 'mongodb' ? sink.connection : `postgres://${sink.connection.host}:${sink.connection.port}/${sink.connection.database}`;
  const stores = await reach('the document store', storeUrl, sink.type === 'mongodb' ? 'start a MongoDB-compatible server: bash scripts/mongo-server.sh start' : 'start PostgreSQL', () => openStores(sink));
  let generated: Awaited<ReturnType<typeof generate>> | null = null;
  if (!values.keep) {
    await createSchema(conn, { reset: true });
    const g = await generate(conn, { customers: Number(values.customers), seed: Number(values.seed) });
    generated = g;
    say(`banking database: ${g.customers} customers, ${g.accounts} accounts, ${g.transactions} transactions, ${g.agreements} agreements (seed ${values.seed})`);
    if (cfg.log.backend === 'embedded') rmSync(resolve(cfg.log.dir), { recursive: true, force: true });
    await resetDocuments(sink);
  } else await createSchema(conn);

  const ac = new AbortController();
  const pipeline = runPipeline(cfg, { signal: ac.signal });
  pipeline.catch((e: Error) => {
    console.error(`pipeline failed: ${e.message}`);
    process.exitCode = 1;
    ac.abort();
  });

  // The workload starts once the snapshot is in the log, so the lag it measures is streaming's.
  const statusPath = resolve(cfg.state.dir, 'status.json');
  const snapshotBy = Date.now() + 120_000;
  while (!ac.signal.aborted && Date.now() < snapshotBy) {
    try {
      if (JSON.parse(readFileSync(statusPath, 'utf8')).source?.phase === 'stream') break;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // …and once the documents and analytics of the snapshot are written, so the first writes do not
  // queue behind the initial load.
  if (generated) {
    const want = generated;
    while (!ac.signal.aborted && Date.now() < snapshotBy) {
      // transaction_patterns is derived last of a batch: when it has every customer, the others are complete too.
      const [tx, metrics, patterns] = await Promise.all(
        ['transactions', 'account_metrics', 'transaction_patterns'].map((c) => (c === 'transactions' ? stores.data : stores.derived!).count(c).catch(() => 0)),
      );
      if (tx >= want.transactions && metrics >= want.accounts && patterns >= want.customers) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  say('snapshot applied to the operational layer and the analytics; streaming the binlog');
  const lag = createLagTracker({ odl: stores.data, analytics: stores.derived! });
  const workloadConn = await mysql.createConnection({ uri: bankingConnectionUrl() });
  const workload = await startWorkload(workloadConn, { ratePerSec: Number(values.rate), onCommit: (c) => lag.record(c) });
  const dash = await startDashboard({ port: Number(values.port), host: values.host, odl: stores.data, analytics: stores.derived!, workload, lag });
  say(`pipeline ${cfg.name} running; workload at ${values.rate} writes/s; dashboard on ${dash.url}`);
  say('try: mariadb -uroot -h127.0.0.1 banking -e "UPDATE accounts SET balance = balance + 100 WHERE account_id = 1"   (Ctrl-C stops)');

  const stop = new Promise<void>((done) => {
    process.once('SIGINT', () => done());
    ac.signal.addEventListener('abort', () => done());
    if (Number(values.seconds) > 0) setTimeout(done, Number(values.seconds) * 1000).unref();
  });
  await stop;
  say('stopping the workload');
  await workload.stop();
  // A quiet point: every write the workload made is visible (or 30 s passed), then check.
  const quietBy = Date.now() + 30_000;
  while (lag.snapshot().pending > 0 && Date.now() < quietBy && !ac.signal.aborted) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1000));
  const s = lag.snapshot();
  say(`end-to-end lag over the last minute (MySQL commit → visible): ODL p50 ${s.odl.p50} ms, p95 ${s.odl.p95} ms, max ${s.odl.max} ms; analytics p50 ${s.analytics.p50} ms, p95 ${s.analytics.p95} ms, max ${s.analytics.max} ms; ${s.pending} pending, ${s.expired} expired`);
  const st = workload.stats();
  say(`workload: ${st.total} writes committed to MySQL`);
  if (!ac.signal.aborted) {
    const checks = [checkLag(s), await checkOdl(conn, stores.data), await checkAnalytics(conn, stores.derived!)];
    for (const l of checks.flatMap((c) => c.lines)) say(l);
    const passed = checks.every((c) => c.ok);
    if (!passed) process.exitCode = 1;
    say(passed ? 'check passed: every probed change became visible, the operational layer equals MySQL field for field, and the analytics equal SQL over MySQL' : 'check FAILED (see above)');
  }
  await lag.stop();
  await dash.close();
  ac.abort();
  await pipeline.catch(() => undefined);
  await stores.close();
  await workloadConn.end();
  await conn.end();
}

await main();
