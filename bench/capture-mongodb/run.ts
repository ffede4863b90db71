/**
 * bench/capture-mongodb: drains the same change-stream backlog with the MongoDB driver's plain
 * change-stream read (the reference: `collection.watch()` from the cluster time before the backlog,
 * each change decoded by the driver and dropped) and with Sluice (the MongoDB source in Debezium's
 * shape, serializing to JSON and committing to the durable embedded log, in a process of its own),
 * round after round in alternating order, and prints changes/s of each as the median and range,
 * with Sluice's peak RSS.
 *
 * The server is a fresh mongo-java-server with an oplog on port 27020 (started and stopped here):
 * no real mongod runs on this project's machines. Its change streams scan its oplog, which sets the
 * pace of both readers; the ratio is what the figure means.
 *
 *   npm run bench:mongodb -- [--rows 100000] [--rounds 3]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal128, Int32, Long, MongoClient, ObjectId, Timestamp } from 'mongodb';
import { parseConfig } from '../../src/config/index.ts';
import { drainInChild, orderFor, showSpread, spread, startOnce, summarize, writeConfig, sizeOptions } from '../common.ts';

const { rows: ROWS, rounds: ROUNDS } = sizeOptions({ rows: '100000', workload: 'mixed' });
const PORT = '27020';
const URL = `mongodb://127.0.0.1:${PORT}`;
const env = { ...process.env, MONGO_PORT: PORT, MONGO_OPLOG: '1' };
const DRIVER = 'driver watch()';
const SLUICE = 'sluice → durable log';

execFileSync('bash', ['scripts/mongo-server.sh', 'start'], { env, stdio: 'inherit' });
const client = new MongoClient(`${URL}/?directConnection=true`);
await client.connect();

/** The server's newest oplog time, just after which a reader starts. */
async function now(): Promise<Timestamp> {
  const last = await client.db('local').collection('oplog.rs').find({}, { projection: { ts: 1 } }).sort({ ts: -1 }).limit(1).toArray();
  const ts = last[0]?.ts as Timestamp | undefined;
  return new Timestamp({ t: ts ? ts.high >>> 0 : 0, i: ts ? (ts.low >>> 0) + 1 : 0 });
}

/** The backlog: `ROWS` inserts of an 8-field document with several BSON types. */
async function backlog(db: string): Promise<void> {
  const c = client.db(db).collection('events');
  for (let i = 0; i < ROWS; i += 1000) {
    const docs = [];
    for (let n = i; n < Math.min(i + 1000, ROWS); n++) {
      docs.push({ _id: new ObjectId(), seq: new Int32(n), big: Long.fromNumber(n * 7), amount: Decimal128.fromString(`${n % 100000}.25`), note: `text ${n}`, at: new Date(1_700_000_000_000 + n), tags: ['a', 'b'], flag: n % 2 === 0 });
    }
    await c.insertMany(docs);
  }
}

async function driverRead(db: string, from: Timestamp): Promise<number> {
  const t0 = process.hrtime.bigint();
  const cs = client.db(db).collection('events').watch([], { startAtOperationTime: from, batchSize: 10_000 });
  let n = 0;
  while (n < ROWS) if (await cs.tryNext()) n++;
  await cs.close();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const runs: { tool: string; round: number; seconds: number; rss?: number }[] = [];
const base = join(tmpdir(), `sluice-bench-mongo-${process.pid}`);
try {
  for (let r = 0; r < ROUNDS; r++) {
    const db = `bench_cap_${r}`;
    await client.db(db).dropDatabase();
    await client.db(db).createCollection('events');
    const dir = join(base, `r${r}`);
    mkdirSync(dir, { recursive: true });
    const yaml = `name: capmongo${r}\nsource:\n  type: mongodb\n  connection: ${URL}/${db}?directConnection=true\n  collections: [${db}.events]\n  snapshot: never\n  snapshotFetchSize: 10000\nstate:\n  dir: ${dir}/state\nlog:\n  dir: ${dir}/log\n  partitions: 3\nlogging:\n  level: warn\n`;
    const path = writeConfig(dir, yaml);
    // The pipeline's start point, then the backlog it drains.
    await startOnce(parseConfig(yaml, path, process.env));
    const from = await now();
    await backlog(db);
    for (const tool of orderFor(r, [DRIVER, SLUICE])) {
      if (tool === DRIVER) runs.push({ tool, round: r, seconds: await driverRead(db, from) });
      else {
        const d = await drainInChild(path, ROWS);
        runs.push({ tool, round: r, seconds: d.seconds, rss: d.peakRssMiB });
      }
      process.stderr.write(`  round ${r + 1}: ${tool} ${(ROWS / runs[runs.length - 1].seconds).toFixed(0)} changes/s\n`);
    }
    await client.db(db).dropDatabase();
  }
} finally {
  await client.close();
  execFileSync('bash', ['scripts/mongo-server.sh', 'stop'], { env, stdio: 'inherit' });
  rmSync(base, { recursive: true, force: true });
}
const rate = (tool: string) => spread(runs.filter((x) => x.tool === tool).map((x) => ROWS / x.seconds));
const d = rate(DRIVER);
const s = rate(SLUICE);
const ratio = spread(runs.filter((x) => x.tool === SLUICE).map((x) => runs.find((y) => y.tool === DRIVER && y.round === x.round)!.seconds / x.seconds));
console.log(`\nMongoDB capture, ${ROWS} inserts of 8-field documents, ${ROUNDS} rounds (median (min – max)):`);
console.log(`| reader | changes/s | peak RSS |`);
console.log(`| --- | --- | --- |`);
console.log(`| ${DRIVER} (reference) | ${showSpread(d)} | — |`);
console.log(`| ${SLUICE} | ${showSpread(s)} | ${showSpread(spread(runs.filter((x) => x.rss).map((x) => x.rss!)))} MiB |`);
console.log(`Sluice / driver, round by round: ${showSpread(ratio, 2)}×`);
summarize([{ bench: 'capture-mongodb', what: 'changes/s', figure: Math.round(s.median), reference: { name: DRIVER, figure: Math.round(d.median) }, target: 'beside the driver (no target in the issue)', met: true }]);
