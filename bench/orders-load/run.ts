/**
 * bench/orders-load: seed 001's load test. The orders example (examples/orders: MongoDB change
 * stream → dedupe on change_id → per-order window → DuckDB) runs as its own process while an order
 * service writes events at a fixed rate; each event's end-to-end lag is the time from the service
 * stamping it (`ts`, just before its insert) to DuckDB's commit of its row (`__synced_at` of the
 * change table `order_events_changes`), read after the run. Reported per rate: events written, the
 * rate reached, lag p50/p95/p99/max, the pipeline's CPU (share of one core) and peak RSS.
 *
 * The reference, measured in the same run on the same events: a plain change-stream reader with
 * the MongoDB driver in this process (`collection.watch()`), its lag from `ts` to receiving the
 * event. It is the floor the server itself sets (mongo-java-server here), before any log, processor
 * or warehouse.
 *
 *   npm run bench:orders-load -- [--rates 1000,2000] [--seconds 600] [--config bench/orders-load/direct.yaml] [--mongo mongodb://host:port]
 *
 * `--config bench/orders-load/direct.yaml`: the same without the processors (source, log and DuckDB
 * only), which tells their part of the lag from the processors'.
 *
 * Seed 001's target: CDC lag < 100 ms (p99 here, end to end, which is stricter).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { MongoClient } from 'mongodb';
import { OrderService } from '../../examples/orders/data.ts';
import { countRecords, readAll } from '../../test/helpers/pipeline.ts';
import { startPipelineProcess, stopProcess, peakRssMiB } from '../../test/helpers/child.ts';
import { summarize } from '../common.ts';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '600' }, mongo: { type: 'string' }, config: { type: 'string', default: 'examples/orders/pipeline.yaml' } } });
const RATES = values.rates.split(',').map(Number);
const SECONDS = Number(values.seconds);
// Without --mongo: a fresh mongo-java-server with an oplog of its own on port 27019, stopped at the
// end (its change streams scan the oplog, so the test servers' long oplogs would slow them).
const OWN = values.mongo === undefined;
const MONGO = values.mongo ?? 'mongodb://127.0.0.1:27019';
const serverEnv = { ...process.env, MONGO_PORT: '27019', MONGO_OPLOG: '1' };
if (OWN) execFileSync('bash', ['scripts/mongo-server.sh', 'start'], { env: serverEnv, stdio: 'inherit' });
const CFG = join(process.cwd(), values.config);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (s: number[], p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN);
const cpuSeconds = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};

interface Result {
  rate: number;
  events: number;
  reached: number;
  lag: { p50: number; p95: number; p99: number; max: number };
  ref: { p50: number; p95: number; p99: number; max: number };
  /** The lag split at the source's event (its `ts_ms`, when it built the event): write → source, source → DuckDB. */
  hops: { source: { p50: number; p99: number }; rest: { p50: number; p99: number } };
  cpu: number;
  rssMiB: number;
  drainMs: number;
}

async function run(client: MongoClient, rate: number): Promise<Result> {
  const dbName = `orders_load_${rate}`;
  const db = client.db(dbName);
  await db.dropDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-orders-load-'));
  const env = { ORDERS_MONGO: MONGO, ORDERS_DB: dbName, ORDERS_DIR: dir };
  const svc = await OrderService.open(db, rate);
  const topic = `orders.${dbName}.order_events`;
  // The reference reader, opened before the pipeline.
  const refLags: number[] = [];
  const watch = db.collection('order_events').watch([], {});
  let watching = true;
  const reader = (async () => {
    while (watching) {
      const ev = (await watch.tryNext().catch(() => null)) as { fullDocument?: { ts?: Date } } | null;
      if (ev?.fullDocument?.ts) refLags.push(Date.now() - ev.fullDocument.ts.getTime());
      else if (!ev) await sleep(5);
    }
  })();
  const child = startPipelineProcess(CFG, [], [], env);
  try {
    // Streaming: a first event has passed the whole pipeline.
    await svc.write(1);
    for (const end = Date.now() + 60_000; (await countRecords(join(dir, "log"), topic).catch(() => 0)) < 1; ) {
      if (Date.now() > end) throw new Error(`the pipeline did not start:\n${child.stderrText().slice(-2000)}`);
      await sleep(100);
    }
    const cpu0 = cpuSeconds(child.pid!);
    const t0 = Date.now();
    let written = 0;
    // Every 10 ms, the changes due by then (each change is ~1.05 events with the retries' repeats).
    for (let tick = 1; Date.now() - t0 < SECONDS * 1000; tick++) {
      const due = Math.floor((rate * tick) / 100 / 1.05);
      const n = due - Math.floor((rate * (tick - 1)) / 100 / 1.05);
      if (n > 0) written += await svc.write(n);
      const wait = t0 + tick * 10 - Date.now();
      if (wait > 0) await sleep(wait);
      if (tick % 1000 === 0) process.stderr.write(`  ${rate}/s: ${written} events in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    const writeMs = Date.now() - t0;
    const total = await db.collection('order_events').countDocuments();
    const tEnd = Date.now();
    while ((await countRecords(join(dir, 'log'), topic)) < total) {
      if (Date.now() - tEnd > 300_000) throw new Error('the pipeline did not catch up within 5 minutes');
      await sleep(50);
    }
    const drainMs = Date.now() - tEnd;
    await sleep(2000);
    const cpu = (cpuSeconds(child.pid!) - cpu0) / ((Date.now() - t0) / 1000);
    const rssMiB = peakRssMiB(child.pid!);
    await stopProcess(child);
    watching = false;
    await reader;
    await watch.close();
    const inst = await DuckDBInstance.create(join(dir, 'warehouse.duckdb'));
    const conn = await inst.connect();
    const rows = (await conn.runAndReadAll(`SELECT epoch_ms(__synced_at) - epoch_ms(ts) AS lag FROM order_events_changes WHERE _id <> '1' ORDER BY lag`)).getRows().map((r) => Number(r[0]));
    const synced = new Map((await conn.runAndReadAll(`SELECT _id::VARCHAR, epoch_ms(ts), epoch_ms(__synced_at) FROM order_events_changes WHERE _id <> '1'`)).getRows().map((r) => [String(r[0]), [Number(r[1]), Number(r[2])]]));
    conn.closeSync();
    inst.closeSync();
    // Where the time goes: the source's event time (`ts_ms`, set as it builds the event) splits each lag in two.
    const srcLags: number[] = [];
    const restLags: number[] = [];
    for (const rec of await readAll(join(dir, 'log'), topic)) {
      const v = rec.value;
      const s = v && synced.get(String(v.after?._id));
      if (!s) continue;
      srcLags.push(v.ts_ms - s[0]);
      restLags.push(s[1] - v.ts_ms);
    }
    const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
    const hops = { source: { p50: pct(sorted(srcLags), 50), p99: pct(srcLags, 99) }, rest: { p50: pct(sorted(restLags), 50), p99: pct(restLags, 99) } };
    const ref = refLags.sort((a, b) => a - b);
    const q = (s: number[]) => ({ p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1] ?? NaN });
    return { rate, events: written, reached: Math.round((written / writeMs) * 1000), lag: q(rows), ref: q(ref), hops, cpu, rssMiB, drainMs };
  } finally {
    await stopProcess(child);
    watching = false;
    await db.dropDatabase().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const client = new MongoClient(`${MONGO}/?directConnection=true`);
await client.connect();
const results: Result[] = [];
try {
  for (const rate of RATES) {
    process.stderr.write(`orders load: ${rate} events/s for ${SECONDS} s\n`);
    results.push(await run(client, rate));
  }
} finally {
  await client.close();
  if (OWN) execFileSync('bash', ['scripts/mongo-server.sh', 'stop'], { env: serverEnv, stdio: 'inherit' });
}
console.log(`\nseed 001 orders load test (${SECONDS} s per rate): end-to-end lag, service write → DuckDB commit; reference: a plain driver change-stream reader, write → event received`);
console.log('| target rate | events | rate reached | lag p50 | p95 | p99 | max | reference p50 | p95 | p99 | max | pipeline CPU | peak RSS | caught up after |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  console.log(`| ${r.rate}/s | ${r.events} | ${r.reached}/s | ${r.lag.p50} ms | ${r.lag.p95} ms | ${r.lag.p99} ms | ${r.lag.max} ms | ${r.ref.p50} ms | ${r.ref.p95} ms | ${r.ref.p99} ms | ${r.ref.max} ms | ${(r.cpu * 100).toFixed(0)}% | ${r.rssMiB.toFixed(0)} MiB | ${r.drainMs} ms |`);
}
console.log('\nthe lag split at the source event (its ts_ms): write → source event, source event → DuckDB commit (log, processors, sink)');
for (const r of results) console.log(`${r.rate}/s: write → source p50 ${r.hops.source.p50} ms, p99 ${r.hops.source.p99} ms; source → DuckDB p50 ${r.hops.rest.p50} ms, p99 ${r.hops.rest.p99} ms`);
summarize(results.map((r) => ({ bench: 'orders-load', what: `${r.rate}/s: end-to-end lag p99 (ms)`, figure: r.lag.p99, reference: { name: 'driver watch() p99', figure: r.ref.p99 }, target: '< 100 ms (seed 001)', met: r.lag.p99 < 100 })));
