/**
 * bench/capture-kafka: the same WAL backlog delivered to Kafka by Sluice (log.backend: kafka,
 * exactly-once transactions) and by Debezium's PostgreSQL connector in Kafka Connect standalone,
 * round after round in alternating order, each in a process of its own; prints changes/s, peak RSS
 * and CPU time of each as the median and range, and the ratios pair by pair.
 *
 * Every round has its own Sluice pipeline (slot, topics) and its own Debezium slot, all created
 * before the backlog is written, so each run decodes exactly the same WAL. Debezium's topics and
 * Sluice's get a prefix unique to the round; all are deleted at the end.
 *
 *   node --import tsx bench/capture-kafka/run.ts [--rows 1000000] [--workload small|mixed|both] [--rounds 3] [--sink] [--profile]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { parseConfig } from '../../src/config/index.ts';
import { orderFor, peakRssOf, showSpread, spread, startOnce, summarize, writeConfig } from '../common.ts';
import { generate } from '../capture-postgres/workload.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    workload: { type: 'string', default: 'both' },
    rounds: { type: 'string', default: '3' },
    sink: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    heap: { type: 'string', default: '-Xmx1g' },
  },
});
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const DB = 'sluice_bench_kafka';
const BROKER = '127.0.0.1:9092';
const conn = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const DBZ = 'Debezium (Connect)';
const SLUICE = 'Sluice (kafka log)';
const [DBZ_, SLUICE_] = [DBZ, SLUICE];
const DBZ_SINK = 'Debezium JDBC sink';
const SLUICE_SINK = 'Sluice postgres sink';
const RUN_ID = `bk${process.pid}`;
const HEAP = values.heap!;

const kafka = new Kafka({ clientId: 'sluice-bench-kafka', brokers: [BROKER], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();

// Kafka Connect's jars (fetched once by scripts/kafka-connect.sh, not edited here). The worker is
// started with java directly rather than through `kafka-connect.sh run`, whose JVM flags are the
// tests' (C1 only, serial GC, -Xmx512m): the benchmark gives it a full JIT, the default GC and HEAP.
const pluginPath = execFileSync('bash', ['scripts/kafka-connect.sh', 'plugin-path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const connectCache = dirname(pluginPath);
const connectVersions = execFileSync('bash', ['scripts/kafka-connect.sh', 'versions'], { encoding: 'utf8' }).trim();

async function client(database: string): Promise<pg.Client> {
  const c = new pg.Client({ ...conn, database });
  c.on('error', () => {}); // a dropped database ends its sessions; the query that needs it fails anyway
  await c.connect();
  return c;
}

export interface Run { workload: string; tool: string; round: number; order: number; changes: number; seconds: number; perSec: number; steadyPerSec: number; rssMiB: number; cpuUserS: number; cpuSysS: number; loadavg: number }

async function dropAll(): Promise<void> {
  const a = await client('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.end();
}

/** utime and stime of a process so far, seconds (Linux /proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuOf(pid: number): { user: number; sys: number } {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/** Committed records in the topics (read_committed end offsets minus start), 0 for topics not there yet. */
async function recordsIn(topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) {
    try {
      for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high) - Number(p.low);
    } catch {
      /* not created yet */
    }
  }
  return n;
}

/** A sink whose target row count stays wrong this long is stopped and reported as incomplete. */
const STALL_MS = 20_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Timed { seconds: number; firstSeconds: number; rss: number; user: number; sys: number; incomplete?: number }

/**
 * Times a process from its spawn until `done()` says every change is in Kafka; `first` is when the
 * first record shows in `topics` (so startup can be told apart). Stops it with SIGTERM afterwards.
 */
async function timeProcess(child: ChildProcess, topics: string[], done: () => Promise<boolean>, t0: bigint, what: string, output: () => string): Promise<Timed> {
  let exited = false;
  child.once('exit', () => (exited = true));
  let stopRss = false;
  const rssP = peakRssOf(child.pid!, () => stopRss);
  let first = 0n;
  let end = 0n;
  const limit = Date.now() + 30 * 60_000;
  while (!end) {
    if (exited) throw new Error(`${what} exited before every change was in Kafka; its output:\n${output().slice(-4000)}`);
    if (Date.now() > limit) throw new Error(`${what}: not every change in Kafka after 30 minutes`);
    if (!first && process.hrtime.bigint() - t0 > 180_000_000_000n) throw new Error(`${what}: no record in Kafka 3 minutes after its start; its output:\n${output().slice(-4000)}`);
    if (!first && (await recordsIn(topics)) > 0) first = process.hrtime.bigint();
    if (await done()) end = process.hrtime.bigint();
    else await sleep(50);
  }
  const cpu = cpuOf(child.pid!);
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  if (!exited) child.kill('SIGTERM');
  await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
  clearTimeout(killer);
  stopRss = true;
  const rss = await rssP;
  return { seconds: Number(end - t0) / 1e9, firstSeconds: Number((first || end) - t0) / 1e9, rss, user: cpu.user, sys: cpu.sys };
}

const props = (p: Record<string, string>) => Object.entries(p).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';

/** Kafka Connect standalone with Debezium's PostgreSQL connector streaming `slot` into topics `<prefix>.public.<table>`. */
async function debezium(dir: string, workload: string, slot: string, publication: string, prefix: string, records: number): Promise<Timed> {
  mkdirSync(dir, { recursive: true });
  const worker = join(dir, 'worker.properties');
  writeFileSync(
    worker,
    props({
      'bootstrap.servers': BROKER,
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': 'false',
      'value.converter.schemas.enable': 'false',
      'offset.storage.file.filename': join(dir, 'connect.offsets'),
      listeners: `http://127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}`,
      'plugin.path': pluginPath,
    }),
  );
  const connector = join(dir, 'debezium.properties');
  writeFileSync(
    connector,
    props({
      name: `${prefix}-source`,
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'tasks.max': '1',
      'database.hostname': conn.host,
      'database.port': String(conn.port),
      'database.user': conn.user,
      'database.password': '',
      'database.dbname': DB,
      'topic.prefix': prefix,
      'plugin.name': 'pgoutput',
      'slot.name': slot,
      'publication.name': publication,
      'publication.autocreate.mode': 'disabled',
      'snapshot.mode': 'no_data',
      'table.include.list': `public.${workload}`,
      'topic.creation.default.replication.factor': '1',
      'topic.creation.default.partitions': '1',
    }),
  );
  let err = '';
  const t0 = process.hrtime.bigint();
  const child = spawn('java', [HEAP, '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${connectCache}/log4j2.properties`, '-cp', `${connectCache}/lib/*`, 'org.apache.kafka.connect.cli.ConnectStandalone', worker, connector], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logFile = join(dir, 'connect.log');
  child.stderr!.on('data', (d) => {
    err += d;
    if (err.length > 200_000) err = err.slice(-100_000);
    if (process.env.BENCH_DEBUG) process.stderr.write(d);
  });
  void logFile;
  const topic = `${prefix}.public.${workload}`;
  return timeProcess(child, [topic], async () => (await recordsIn([topic])) >= records, t0, 'Kafka Connect', () => err);
}

/** Sluice's pipeline at `configPath` in a child; done when it says its last record is committed. */
async function sluice(configPath: string, topic: string, records: number, profileDir?: string): Promise<Timed & { child: { seconds: number; loadedRssMiB: number; userS: number; sysS: number } }> {
  const args = ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), new URL('./drain-child.ts', import.meta.url).pathname, configPath, String(records)];
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exitP = new Promise<void>((r) => child.once('exit', () => r()));
  // The child stops by itself once done; wait for its report instead of SIGTERM.
  let exited = false;
  child.once('exit', () => (exited = true));
  let stopRss = false;
  const rssP = peakRssOf(child.pid!, () => stopRss);
  let first = 0n;
  let end = 0n;
  let cpu = { user: NaN, sys: NaN };
  while (!end) {
    if (out.startsWith('done')) {
      end = process.hrtime.bigint();
      cpu = cpuOf(child.pid!);
      break;
    }
    if (exited) throw new Error(`Sluice exited before every change was in Kafka:\n${err.slice(-4000)}`);
    if (!first && (await recordsIn([topic])) > 0) first = process.hrtime.bigint();
    await sleep(out ? 0 : 20);
  }
  await exitP;
  stopRss = true;
  const rss = await rssP;
  const report = JSON.parse(out.split('\n')[1]);
  return { seconds: Number(end - t0) / 1e9, firstSeconds: Number((first || end) - t0) / 1e9, rss, user: cpu.user, sys: cpu.sys, child: report };
}

function sluiceYaml(name: string, workload: string, dir: string, logPrefix: string, schemas: boolean): string {
  return `name: ${name}
source:
  type: postgres
  connection: postgres://postgres@127.0.0.1:5432/${DB}
  tables: [public.${workload}]
  snapshot: never
  heartbeatIntervalMs: 0
state:
  dir: ${dir}/state
log:
  backend: kafka
  brokers: ['${BROKER}']
  topicPrefix: ${logPrefix}
  partitions: 1
serialization:
  schemas: ${schemas}
logging:
  level: warn
`;
}

async function benchWorkload(workload: string): Promise<Run[]> {
  await dropAll();
  const a = await client('postgres');
  await a.query(`CREATE DATABASE ${DB}`);
  await a.end();
  const db = await client(DB);
  if (workload === 'small') await db.query(`CREATE TABLE small (id int PRIMARY KEY, v int, name text)`);
  else await db.query(`CREATE TABLE mixed (id int8 PRIMARY KEY, qty int8, amount numeric(12,2), note text, at timestamptz, doc jsonb, ref uuid, flag bool, raw bytea, day date, tags text[])`);
  const publication = `dbz_pub_${workload}`;
  await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${workload}`);
  const work = join(tmpdir(), `sluice-bench-kafka-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const rounds: { configPath: string; sluiceTopic: string; dbzSlot: string; dbzPrefix: string }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const dir = join(work, `round${r}`);
    mkdirSync(dir, { recursive: true });
    const name = `bench_${workload}_r${r}`;
    const logPrefix = `${RUN_ID}.sluice.`;
    const yaml = sluiceYaml(name, workload, dir, logPrefix, false);
    await startOnce(parseConfig(yaml, 'bench.yaml', process.env));
    const dbzSlot = `dbz_${workload}_r${r}`;
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [dbzSlot]);
    rounds.push({ configPath: writeConfig(dir, yaml), sluiceTopic: `${logPrefix}${name}.public.${workload}`, dbzSlot, dbzPrefix: `${RUN_ID}.dbz_${workload}_r${r}` });
  }
  // The sink half's input: one more Sluice pipeline over the same backlog, writing with the schema
  // part (the JDBC sink needs it), drained once after the capture rounds.
  const sinkSrc = { name: `bench_${workload}_sink`, dir: join(work, 'sinksrc') };
  let sinkSrcConfig = '';
  if (values.sink) {
    mkdirSync(sinkSrc.dir, { recursive: true });
    const yaml = sluiceYaml(sinkSrc.name, workload, sinkSrc.dir, `${RUN_ID}.sluice.`, true);
    await startOnce(parseConfig(yaml, 'bench.yaml', process.env));
    sinkSrcConfig = writeConfig(sinkSrc.dir, yaml);
  }
  process.stderr.write(`[bench] ${workload}: generating ${ROWS} changes of backlog…\n`);
  const t0 = Date.now();
  const { changes, records } = await generate(db, workload, ROWS);
  process.stderr.write(`[bench] ${workload}: ${changes} changes (${records} records with tombstones) in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds\n`);

  const runs: Run[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = rounds[r];
    for (const [order, tool] of orderFor(r, [DBZ, SLUICE]).entries()) {
      const load = loadavg()[0];
      let x: Timed;
      if (tool === DBZ) x = await debezium(join(work, `round${r}`, 'dbz'), workload, round.dbzSlot, `dbz_pub_${workload}`, round.dbzPrefix, records);
      else {
        const profileDir = values.profile ? join('bench/capture-kafka/out/profile', `${workload}-r${r}`) : undefined;
        const s = await sluice(round.configPath, round.sluiceTopic, records, profileDir);
        process.stderr.write(`[bench] ${workload} round ${r + 1}: sluice child: pipeline ${s.child.seconds.toFixed(1)} s after loading (${s.child.loadedRssMiB.toFixed(0)} MiB loaded), CPU user ${s.child.userS.toFixed(1)} s sys ${s.child.sysS.toFixed(1)} s\n`);
        x = s;
      }
      const steady = x.seconds - x.firstSeconds;
      runs.push({ workload, tool, round: r, order, changes, seconds: x.seconds, perSec: changes / x.seconds, steadyPerSec: steady > 0 ? changes / steady : NaN, rssMiB: x.rss, cpuUserS: x.user, cpuSysS: x.sys, loadavg: load });
      const l = runs[runs.length - 1];
      process.stderr.write(`[bench] ${workload} round ${r + 1}: ${tool}: ${x.seconds.toFixed(1)} s from spawn (first record at ${x.firstSeconds.toFixed(1)} s): ${Math.round(l.perSec)} changes/s (${Math.round(l.steadyPerSec)}/s from the first record), peak RSS ${l.rssMiB.toFixed(0)} MiB, CPU user ${l.cpuUserS.toFixed(1)} s sys ${l.cpuSysS.toFixed(1)} s, load ${load.toFixed(1)}\n`);
    }
  }
  if (values.sink) {
    const topic = `${RUN_ID}.sluice.${sinkSrc.name}.public.${workload}`;
    const x = await sluice(sinkSrcConfig, topic, records);
    process.stderr.write(`[bench] ${workload}: the sink half's topic (Sluice, schemas: true) written in ${x.seconds.toFixed(1)} s: ${Math.round(changes / x.seconds)} changes/s, peak RSS ${x.rss.toFixed(0)} MiB\n`);
    const rowsWanted = Number((await db.query(`SELECT count(*)::int AS n FROM ${workload}`)).rows[0].n);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [order, tool] of orderFor(r, [DBZ_SINK, SLUICE_SINK]).entries()) {
        const target = `${DB}_t_${tool === DBZ_SINK ? 'dbz' : 'sluice'}_${workload}_r${r}`;
        const a = await client('postgres');
        await a.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
        await a.query(`CREATE DATABASE ${target}`);
        await a.end();
        const load = loadavg()[0];
        const dir = join(work, `sink-r${r}-${tool === DBZ_SINK ? 'dbz' : 'sluice'}`);
        const y = tool === DBZ_SINK ? await jdbcSink(dir, topic, target, workload, rowsWanted) : await sluiceSink(dir, `${sinkSrc.name}.public.${workload}`, sinkSrc.name, `pg_r${r}`, target, workload, rowsWanted);
        const steady = y.seconds - y.firstSeconds;
        if (y.incomplete !== undefined) {
          process.stderr.write(`[bench] ${workload} sink round ${r + 1}: ${tool}: INCOMPLETE, ${y.incomplete} rows in the target against ${rowsWanted} in the source; not counted\n`);
          continue;
        }
        runs.push({ workload, tool, round: r, order, changes, seconds: y.seconds, perSec: changes / y.seconds, steadyPerSec: steady > 0 ? changes / steady : NaN, rssMiB: y.rss, cpuUserS: y.user, cpuSysS: y.sys, loadavg: load });
        const l = runs[runs.length - 1];
        process.stderr.write(`[bench] ${workload} sink round ${r + 1}: ${tool}: ${y.seconds.toFixed(1)} s from spawn (first row at ${y.firstSeconds.toFixed(1)} s): ${Math.round(l.perSec)} changes/s (${Math.round(l.steadyPerSec)}/s from the first row), peak RSS ${l.rssMiB.toFixed(0)} MiB, CPU user ${l.cpuUserS.toFixed(1)} s sys ${l.cpuSysS.toFixed(1)} s, load ${load.toFixed(1)}\n`);
        const b = await client('postgres');
        await b.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
        await b.end();
      }
    }
  }
  await db.end();
  rmSync(work, { recursive: true, force: true });
  return runs;
}

/** Rows in the target table, -1 while it does not exist. */
async function rowsIn(database: string, table: string): Promise<number> {
  const c = await client(database);
  try {
    return Number((await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
  } catch {
    return -1;
  } finally {
    await c.end();
  }
}

/** Times a sink process from its spawn until the target table holds `want` rows; stops it then. */
async function timeSink(child: ChildProcess, target: string, table: string, want: number, t0: bigint, what: string, output: () => string): Promise<Timed> {
  let lastN = -2;
  let lastChange = Date.now();
  let incomplete: number | undefined;
  let exited = false;
  child.once('exit', () => (exited = true));
  let stopRss = false;
  const rssP = peakRssOf(child.pid!, () => stopRss);
  let first = 0n;
  let end = 0n;
  const limit = Date.now() + 30 * 60_000;
  while (!end) {
    if (exited) throw new Error(`${what} exited before the target was complete; its output:\n${output().slice(-4000)}`);
    if (Date.now() > limit) throw new Error(`${what}: target not complete after 30 minutes`);
    const n = await rowsIn(target, table);
    if (!first && n > 0) first = process.hrtime.bigint();
    if (n !== lastN) [lastN, lastChange] = [n, Date.now()];
    if (n === want) end = process.hrtime.bigint();
    else if (first && Date.now() - lastChange > STALL_MS) {
      // Stalled with the wrong count: the sink is done (or stuck) and the target differs from the source.
      process.stderr.write(`[bench] ${what}: the target holds ${n} rows, the source ${want}, unchanged for ${STALL_MS / 1000} s: stopped; ${target} is kept for inspection\n`);
      incomplete = n;
      end = process.hrtime.bigint();
    } else {
      if (!first && process.hrtime.bigint() - t0 > 180_000_000_000n) throw new Error(`${what}: no row in the target 3 minutes after its start; its output:\n${output().slice(-4000)}`);
      await sleep(200);
    }
  }
  const cpu = cpuOf(child.pid!);
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  if (!exited) child.kill('SIGTERM');
  await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
  clearTimeout(killer);
  stopRss = true;
  return { seconds: Number(end - t0) / 1e9, firstSeconds: Number((first || end) - t0) / 1e9, rss: await rssP, user: cpu.user, sys: cpu.sys, incomplete };
}

/** Debezium's JDBC sink in Kafka Connect standalone, applying `topic` (JsonConverter with schemas) to `target`. */
async function jdbcSink(dir: string, topic: string, target: string, table: string, want: number): Promise<Timed> {
  mkdirSync(dir, { recursive: true });
  const worker = join(dir, 'worker.properties');
  writeFileSync(
    worker,
    props({
      'bootstrap.servers': BROKER,
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': 'true',
      'value.converter.schemas.enable': 'true',
      'offset.storage.file.filename': join(dir, 'connect.offsets'),
      'consumer.isolation.level': 'read_committed',
      'consumer.auto.offset.reset': 'earliest',
      listeners: `http://127.0.0.1:${20000 + Math.floor(Math.random() * 20000)}`,
      'plugin.path': pluginPath,
    }),
  );
  const connector = join(dir, 'jdbc.properties');
  writeFileSync(
    connector,
    props({
      name: `${RUN_ID}-${target}-jdbc-${Date.now()}`,
      'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
      'tasks.max': '1',
      topics: topic,
      'connection.url': `jdbc:postgresql://${conn.host}:${conn.port}/${target}`,
      'connection.username': conn.user,
      'connection.password': '',
      'insert.mode': 'upsert',
      'primary.key.mode': 'record_key',
      'delete.enabled': 'true',
      'schema.evolution': 'basic',
      'collection.name.format': '${source.table}',
      'use.time.zone': 'UTC',
    }),
  );
  let err = '';
  const t0 = process.hrtime.bigint();
  const child = spawn('java', [HEAP, '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${connectCache}/log4j2.properties`, '-cp', `${connectCache}/lib/*`, 'org.apache.kafka.connect.cli.ConnectStandalone', worker, connector], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => {
    err += d;
    if (err.length > 200_000) err = err.slice(-100_000);
    if (process.env.BENCH_DEBUG) process.stderr.write(d);
  });
  return timeSink(child, target, table, want, t0, 'the JDBC sink', () => err);
}

/**
 * Sluice's PostgreSQL sink: `sluice run --only sinks` on a source-less pipeline over the Kafka topic.
 * It carries the writing pipeline's name: a sink finds the schemas of Sluice-written records in
 * `<pipeline name>.__schemas`, so a source-less pipeline under another name does not find them
 * (SINK_SCHEMA_MISSING). The sink's name is new each round (its consumer group and target offsets).
 */
async function sluiceSink(dir: string, topic: string, name: string, sinkName: string, target: string, table: string, want: number): Promise<Timed> {
  mkdirSync(dir, { recursive: true });
  const cfg = writeConfig(
    dir,
    `name: ${name}
log:
  backend: kafka
  brokers: ['${BROKER}']
  topicPrefix: ${RUN_ID}.sluice.
state:
  dir: ${dir}/state
sinks:
  - name: ${sinkName}
    type: postgres
    connection: postgres://postgres@127.0.0.1:5432/${target}
    topics: ['${topic}']
logging:
  level: warn
`,
  );
  let err = '';
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [new URL('../../bin/sluice.js', import.meta.url).pathname, 'run', cfg, '--only', 'sinks'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => {
    err += d;
    if (process.env.BENCH_DEBUG) process.stderr.write(d);
  });
  return timeSink(child, target, table, want, t0, 'the Sluice sink', () => err);
}

async function deleteBenchTopics(): Promise<void> {
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${RUN_ID}.`));
  if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 60_000 });
  process.stderr.write(`[bench] deleted ${mine.length} bench topics\n`);
}

const workloads = values.workload === 'both' ? ['small', 'mixed'] : [values.workload!];
const runs: Run[] = [];
try {
  for (const w of workloads) runs.push(...(await benchWorkload(w)));
} finally {
  await deleteBenchTopics().catch((e) => process.stderr.write(`[bench] deleting topics: ${e}\n`));
  await dropAll().catch(() => {});
  await admin.disconnect();
}

console.log(`\ncapture-kafka: ${ROWS} changes per workload, ${ROUNDS} rounds in alternating order, ${process.platform} ${cpus().length} cores, Node ${process.version}, Connect JVM ${HEAP} (${connectVersions})`);
console.log('median (min – max) over the rounds; changes/s from the process start until every change is committed in Kafka (in brackets: from its first record); RSS = peak of the process');
for (const w of workloads) {
  for (const tool of [DBZ, SLUICE, DBZ_SINK, SLUICE_SINK]) {
    const xs = runs.filter((r) => r.workload === w && r.tool === tool);
    if (!xs.length) continue;
    const f = (g: (x: Run) => number, d = 0) => showSpread(spread(xs.map(g)), d);
    console.log(`${w.padEnd(6)} ${tool.padEnd(20)} ${f((x) => x.perSec).padStart(32)} changes/s  [${f((x) => x.steadyPerSec)}]  peak RSS ${f((x) => x.rssMiB)} MiB  CPU user ${f((x) => x.cpuUserS, 1)} s sys ${f((x) => x.cpuSysS, 1)} s`);
  }
  // Ratios pair by pair within a round; a round missing either run (an incomplete sink) is left out.
  const pair = (g: (s: Run, d: Run) => number, [DBZ, SLUICE] = [DBZ_, SLUICE_]) => {
    const xs = [...new Set(runs.filter((x) => x.workload === w).map((x) => x.round))].flatMap((r) => {
      const [d, s] = [DBZ, SLUICE].map((t) => runs.find((x) => x.workload === w && x.round === r && x.tool === t));
      return d && s ? [g(s, d)] : [];
    });
    return xs.length ? showSpread(spread(xs), 2) : 'n/a';
  };
  console.log(`${w}: capture, Sluice / Debezium throughput ${pair((s, d) => s.perSec / d.perSec)}× (from first record ${pair((s, d) => s.steadyPerSec / d.steadyPerSec)}×), memory ${pair((s, d) => s.rssMiB / d.rssMiB)}× (pair by pair)`);
  const med = (tool: string, g: (x: Run) => number) => spread(runs.filter((x) => x.workload === w && x.tool === tool).map(g)).median;
  const times = med(SLUICE_, (x) => x.perSec) / med(DBZ_, (x) => x.perSec);
  const mem = med(SLUICE_, (x) => x.rssMiB) / med(DBZ_, (x) => x.rssMiB);
  summarize([
    { bench: 'capture-kafka', what: `${w}: changes/s into Kafka`, figure: med(SLUICE_, (x) => x.perSec), reference: { name: 'Debezium (Connect)', figure: med(DBZ_, (x) => x.perSec) }, target: '≥ 2× reference (issue 11)', met: times >= 2 },
    { bench: 'capture-kafka', what: `${w}: peak RSS MiB`, figure: med(SLUICE_, (x) => x.rssMiB), reference: { name: 'Debezium (Connect)', figure: med(DBZ_, (x) => x.rssMiB) }, target: '≤ 0.25× reference (issue 11)', met: mem <= 0.25 },
  ]);
  if (values.sink) {
    const k: [string, string] = [DBZ_SINK, SLUICE_SINK];
    console.log(`${w}: sink, Sluice / Debezium JDBC throughput ${pair((s, d) => s.perSec / d.perSec, k)}× (from first row ${pair((s, d) => s.steadyPerSec / d.steadyPerSec, k)}×), memory ${pair((s, d) => s.rssMiB / d.rssMiB, k)}× (pair by pair)`);
  }
}
mkdirSync('bench/capture-kafka/out', { recursive: true });
writeFileSync('bench/capture-kafka/out/results.json', JSON.stringify(runs, null, 2));
