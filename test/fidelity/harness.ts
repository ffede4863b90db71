/**
 * The fidelity harness: every case is a source column type with its edge values. Each value goes
 * through the snapshot (rows there before the pipeline starts) and the stream (the same values
 * inserted again while it runs) into every table sink — PostgreSQL, MariaDB, DuckDB — and, where
 * the case says so, the document sinks. Then, per target and value, one of two things must hold:
 *
 * - the target holds the value exactly: read back by the target's own SQL and brought to one
 *   spelling (`canon`), it equals what the source database prints for it;
 * - the target cannot hold it (the case lists the target in `refused`): the sink stopped with
 *   SINK_VALUE_UNREPRESENTABLE, and the message names the table, the column and the value as the
 *   log holds it, and says what to do.
 *
 * A refused value gets a table of its own (`<case>_r<i>`), applied by one sink of its own per
 * refusing target, so each refusal is seen alone; the targets that hold it take that table with
 * the rest. Nothing is skipped: a case a sink does not apply to is not given to it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { parseJson } from '../../src/core/serde/parse.ts';
import type { Value } from '../../src/core/event.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { tableTopic } from '../../src/sources/common/names.ts';
import { showValue } from '../../src/sinks/sql/values.ts';
import { PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER, type Target, type Targets } from '../helpers/targets.ts';

export const MONGO_URL = process.env.MONGO_URL_TEST ?? 'mongodb://127.0.0.1:27017';

/** Where values can go: the table sinks and the document sinks. */
export type Sink = Target | 'jsonb' | 'mongodb';
export const TABLE_SINKS: Target[] = ['postgres', 'mysql', 'duckdb'];

/**
 * How a value is brought to one spelling for comparing: the SQL that reads it in each database
 * and the normalization of what that prints (canon.ts).
 */
export type Canon =
  | 'text'
  /** char(n): trailing spaces do not count (PostgreSQL and MySQL alike). */
  | 'char'
  | 'int'
  | 'bool'
  | 'decimal'
  | 'float4'
  | 'float8'
  | 'bytes'
  | 'date'
  | 'time'
  | 'timetz'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'duration'
  | 'json'
  | { array: Canon }
  | { bits: number; order: 'msb' | 'lsb' };

export interface Val {
  /** The value as a SQL literal of the source. */
  sql: string;
  /** Sinks that cannot hold it: each must stop with SINK_VALUE_UNREPRESENTABLE naming it. */
  refused?: Sink[];
}

export interface Case {
  /** Short name: the table is `fid_<name>`, its value column `v`. */
  name: string;
  /** The source column type. */
  type: string;
  canon: Canon;
  values: Val[];
  /** Document sinks that take this case (their dates are milliseconds: not every case applies). */
  documents?: ('jsonb' | 'mongodb')[];
}

/** The source database of a run. */
export interface SourceDb {
  kind: 'postgres' | 'mysql';
  /** The schema (PostgreSQL) or database (MySQL) the tables are in. */
  schema: string;
  exec(sql: string): Promise<void>;
  rows(sql: string): Promise<unknown[][]>;
  quote(name: string): string;
  /** The pipeline's `source:` block (indented two spaces) for these tables. */
  sourceYaml(tables: string[]): string;
}

interface Plan {
  table: string;
  c: Case;
  values: Val[];
  /** Sinks that hold every value of the table. */
  holders: Sink[];
  /** Sinks that must refuse it (a table of one value). */
  refusers: Sink[];
}

const quiet = createLogger({ level: (process.env.SLUICE_TEST_LOG as 'error') ?? 'error' });

/** The tables a set of cases needs. */
function plan(cases: Case[], sinks: Sink[]): Plan[] {
  const out: Plan[] = [];
  for (const c of cases) {
    const takes = (s: Sink) => TABLE_SINKS.includes(s as Target) || (c.documents ?? []).includes(s as 'jsonb');
    const mine = sinks.filter(takes);
    const plain = c.values.filter((v) => !v.refused?.some((s) => mine.includes(s)));
    if (plain.length) out.push({ table: `fid_${c.name}`, c, values: plain, holders: mine, refusers: [] });
    c.values.forEach((v, i) => {
      const refusers = (v.refused ?? []).filter((s) => mine.includes(s));
      if (!refusers.length) return;
      out.push({ table: `fid_${c.name}_r${i}`, c, values: [v], holders: mine.filter((s) => !refusers.includes(s)), refusers });
    });
  }
  return out;
}

export interface FidelityRun {
  source: SourceDb;
  targets: Targets;
  dir: string;
  cases: Case[];
  /** The sinks to run (default: the three table sinks). */
  sinks?: Sink[];
  /** A PostgreSQL database for the JSONB document sink (the table targets' one will do). */
  jsonbDb?: string;
  /** A MongoDB database name for the MongoDB sink. */
  mongoDb?: string;
}

/** Runs the cases through snapshot and stream into every sink and checks each value. */
export async function runFidelity(o: FidelityRun): Promise<void> {
  const sinks = o.sinks ?? TABLE_SINKS;
  // FIDELITY_CASES=ts,date narrows a run while working on those types (every case runs by default).
  const only = process.env.FIDELITY_CASES?.split(',');
  const plans = plan(only ? o.cases.filter((c) => only.includes(c.name)) : o.cases, sinks);
  if (only && !plans.length) return;
  const src = o.source;
  // Snapshot rows: ids 1…n. Stream rows: the same values at 1001…
  for (const p of plans) {
    await src.exec(`CREATE TABLE ${src.quote(p.table)} (id int PRIMARY KEY, v ${p.c.type})`);
    await src.exec(`INSERT INTO ${src.quote(p.table)} (id, v) VALUES ${p.values.map((v, i) => `(${i + 1}, ${v.sql})`).join(', ')}`);
  }
  const sinkBlocks: string[] = [];
  const expectRows = new Map<string, string[]>(); // sink name → tables it must hold
  const expectFail = new Map<string, Plan>();
  for (const s of sinks) {
    const holds = plans.filter((p) => p.holders.includes(s)).map((p) => p.table);
    if (holds.length) {
      const name = `ok_${s}`;
      sinkBlocks.push(sinkYaml(o, s, name, holds));
      expectRows.set(name, holds);
    }
    for (const p of plans.filter((x) => x.refusers.includes(s))) {
      const name = `no_${s}_${p.table}`;
      sinkBlocks.push(sinkYaml(o, s, name, [p.table]));
      expectFail.set(name, p);
    }
  }
  const yaml = `name: fid
source:
${src.sourceYaml(plans.map((p) => p.table))}
state:
  dir: ${join(o.dir, 'state')}
log:
  dir: ${join(o.dir, 'log')}
  partitions: 2
logging:
  level: error
sinks:
${sinkBlocks.join('')}`;
  const cfg = parseConfig(yaml, 'fidelity.yaml', process.env);
  const ac = new AbortController();
  let crashed: unknown = null;
  const run = runPipeline(cfg, { signal: ac.signal, logger: quiet }).catch((e) => (crashed = e));
  const statusFile = join(o.dir, 'state', 'status.json');
  const status = (): { sinks: { name: string; state: string; error: { code: string; message: string } | null }[]; source: { error?: { code: string; message: string } | null } | null } | null =>
    existsSync(statusFile) ? JSON.parse(readFileSync(statusFile, 'utf8')) : null;
  try {
    // The snapshot is in the log before the stream's rows are written: they must be streamed.
    await waitUntil('the snapshot in the log', async () => {
      if (crashed) throw crashed;
      return (await logCounts(o.dir, plans.map((p) => tableTopic('fid', src.schema, p.table)))).every((n, i) => n >= plans[i].values.length);
    }, 120_000);
    for (const p of plans) await src.exec(`INSERT INTO ${src.quote(p.table)} (id, v) VALUES ${p.values.map((v, i) => `(${i + 1001}, ${v.sql})`).join(', ')}`);
    let last = '';
    await waitUntil('every sink to hold its tables or to stop', async () => {
      if (crashed) throw crashed;
      const st = status();
      if (!st) return false;
      for (const name of expectFail.keys()) {
        const s = st.sinks.find((x) => x.name === name);
        if (s?.state !== 'failed') return (last = `${name}: ${s?.state}`), false;
      }
      for (const [name, tables] of expectRows) {
        const s = st.sinks.find((x) => x.name === name);
        if (s?.state === 'failed') throw new Error(`sink ${name} stopped: [${s.error?.code}] ${s.error?.message}`);
        const sink = name.slice(3) as Sink;
        for (const t of tables) {
          const n = await countIn(o, sink, t).catch(() => -1);
          const want = 2 * plans.find((p) => p.table === t)!.values.length;
          if (n !== want) return (last = `${name}: ${t} has ${n} of ${want} rows`), false;
        }
      }
      return true;
    }, 180_000).catch((e: Error) => {
      throw new Error(`${e.message}; ${last}`);
    });
    const st = status()!;
    assert.equal(st.source?.error ?? null, null, 'the source runs on');
    // Refusals: code, table, column, value, what to do.
    for (const [name, p] of expectFail) {
      const err = st.sinks.find((x) => x.name === name)!.error!;
      const [rec] = await logRecords(o.dir, tableTopic('fid', src.schema, p.table));
      const value = (parseJson(rec) as { after: Record<string, Value> }).after.v;
      const where = `${name} (${p.c.type} ${p.values[0].sql})`;
      assert.equal(err.code, 'SINK_VALUE_UNREPRESENTABLE', `${where}: ${err.message}`);
      assert.ok(err.message.includes(`${src.schema}.${p.table}`), `${where} names the table: ${err.message}`);
      assert.ok(err.message.includes('column v '), `${where} names the column: ${err.message}`);
      assert.ok(err.message.includes(`holds ${showValue(value)}`), `${where} quotes ${showValue(value)}: ${err.message}`);
      assert.match(err.message, /Change the value in the source, or leave the table out of this sink/, where);
    }
    // Exact values: every row, snapshot and streamed, as the source prints it.
    const problems: string[] = [];
    for (const p of plans) {
      const want = await readSource(src, p);
      for (const s of p.holders) {
        const got = await readSink(o, s, p);
        for (const [id, w] of want) {
          const g = got.get(id);
          if (g !== w) problems.push(`${s} ${p.table} (${p.c.type}) id ${id}: got ${g === undefined ? 'no row' : JSON.stringify(g)}, want ${JSON.stringify(w)}`);
        }
      }
    }
    assert.deepEqual(problems, [], `values that did not round-trip:\n  ${problems.join('\n  ')}`);
  } finally {
    ac.abort();
    await run;
  }
}

function sinkYaml(o: FidelityRun, s: Sink, name: string, tables: string[]): string {
  const list = `[${tables.map((t) => JSON.stringify(`${o.source.schema}.${t}`)).join(', ')}]`;
  switch (s) {
    case 'postgres':
      return `  - { name: ${name}, type: postgres, tables: ${list}, connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${o.targets.pgDb} } }\n`;
    case 'mysql':
      return `  - { name: ${name}, type: mysql, tables: ${list}, connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${o.targets.mysqlDb} } }\n`;
    case 'duckdb':
      return `  - { name: ${name}, type: duckdb, tables: ${list}, path: ${name === 'ok_duckdb' ? o.targets.duckPath : join(o.dir, `${name}.duckdb`)}, changeTableName: '' }\n`;
    case 'jsonb':
      // A schema per sink: sinks creating tables in one schema at once collide in PostgreSQL's catalog.
      return `  - { name: ${name}, type: postgres_jsonb, tables: ${list}, schema: ${name === 'ok_jsonb' ? 'docs' : name}, connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${o.jsonbDb} } }\n`;
    case 'mongodb':
      return `  - { name: ${name}, type: mongodb, tables: ${list}, connection: ${JSON.stringify(MONGO_URL)}, database: ${o.mongoDb} }\n`;
  }
}

/** How many records each topic holds (0 when it does not exist yet). */
async function logCounts(dir: string, topics: string[]): Promise<number[]> {
  const log = await openLog(embeddedLogAt(join(dir, 'log')), { readOnly: true });
  try {
    const out: number[] = [];
    for (const t of topics) out.push((await log.topicInfo(t)) ? (await log.offsets(t)).reduce((s, p) => s + p.end - p.start, 0) : 0);
    return out;
  } finally {
    await log.close();
  }
}

/** The committed records of a topic (value JSON text), in offset order per partition. */
async function logRecords(dir: string, topic: string): Promise<string[]> {
  const log = await openLog(embeddedLogAt(join(dir, 'log')), { readOnly: true });
  try {
    if (!(await log.topicInfo(topic))) return [];
    const out: string[] = [];
    for (const p of await log.offsets(topic)) {
      let off = p.start;
      while (off < p.end) {
        const { records, next } = await log.read(topic, p.partition, off, 64 << 20);
        for (const r of records) if (r.value) out.push(r.value.toString());
        off = next;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

async function countIn(o: FidelityRun, s: Sink, table: string): Promise<number> {
  if (s === 'jsonb') return o.targets.count('postgres', `SELECT count(*) FROM docs."${table}"`);
  if (s === 'mongodb') {
    const m = await MongoClient.connect(MONGO_URL);
    try {
      return await m.db(o.mongoDb).collection(table).countDocuments();
    } finally {
      await m.close();
    }
  }
  return o.targets.count(s, `SELECT count(*) FROM "${table}"`);
}

// ---------- reading values in one spelling ----------

type Db = 'postgres' | 'mysql' | 'duckdb';

async function readSource(src: SourceDb, p: Plan): Promise<Map<number, string>> {
  if (src.kind === 'postgres') await src.exec(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'`);
  else await src.exec(`SET time_zone = '+00:00'`);
  const rows = await src.rows(`SELECT id, ${readExpr(src.kind, p.c.canon, src.kind === 'postgres' ? '"v"' : '`v`', true)} FROM ${src.quote(p.table)}`);
  return new Map(rows.map(([id, v]) => [Number(id), canon(p.c.canon, src.kind, v, true)]));
}

async function readSink(o: FidelityRun, s: Sink, p: Plan): Promise<Map<number, string>> {
  if (s === 'jsonb' || s === 'mongodb') return readDocuments(o, s, p);
  if (s === 'postgres') await o.targets.query('postgres', `SET TimeZone = 'UTC'`);
  if (s === 'postgres') await o.targets.query('postgres', `SET IntervalStyle = 'postgres'`);
  const rows = await o.targets.query(s, `SELECT id, ${readExpr(s, p.c.canon, s === 'mysql' ? '`v`' : '"v"', false)} FROM "${p.table}"`);
  return new Map(rows.map(([id, v]) => [Number(id), canon(p.c.canon, s, v)]));
}

/** SQL reading column `c` of canon `k` in database `db` (the source's, or a sink's target) as text. */
function readExpr(db: Db, k: Canon, c: string, source: boolean): string {
  if (typeof k === 'object' && 'array' in k) return db === 'postgres' ? `array_to_json(${c})::text` : db === 'mysql' ? `CAST(${c} AS CHAR)` : `to_json(${c})::VARCHAR`;
  // bit(n) in the source; the bytes of Debezium's Bits in the targets.
  if (typeof k === 'object') return source ? (db === 'postgres' ? `${c}::text` : `LPAD(BIN(${c}), ${k.bits}, '0')`) : db === 'postgres' ? `encode(${c}, 'hex')` : db === 'mysql' ? `LOWER(HEX(${c}))` : `lower(hex(${c}))`;
  switch (k) {
    case 'bytes':
      return db === 'postgres' ? `encode(${c}, 'hex')` : db === 'mysql' ? `LOWER(HEX(${c}))` : `lower(hex(${c}))`;
    case 'bool':
      return db === 'mysql' ? `${c} + 0` : `${c}::text`;
    case 'float4':
    case 'float8':
      return db === 'mysql' ? `CAST(${c} + 0e0 AS CHAR)` : `${c}::text`;
    case 'interval':
      if (db === 'postgres') return `(extract(year from ${c}) * 12 + extract(month from ${c}))::text || '|' || extract(day from ${c})::text || '|' || (extract(hour from ${c}) * 3600000000 + extract(minute from ${c}) * 60000000 + extract(microseconds from ${c}))::numeric(30,0)::text`;
      if (db === 'duckdb') return `(datepart('year', ${c}) * 12 + datepart('month', ${c}))::VARCHAR || '|' || datepart('day', ${c})::VARCHAR || '|' || (datepart('hour', ${c})::HUGEINT * 3600000000 + datepart('minute', ${c}) * 60000000 + datepart('microseconds', ${c}))::VARCHAR`;
      return `CAST(${c} AS CHAR)`;
    case 'duration':
      // A MySQL TIME: a TIME in MySQL, an interval in PostgreSQL and DuckDB.
      if (db === 'postgres' && !source) return `((extract(day from ${c}) * 86400 + extract(hour from ${c}) * 3600 + extract(minute from ${c}) * 60) * 1000000 + extract(microseconds from ${c}))::numeric(30,0)::text`;
      if (db === 'duckdb') return `(((datepart('day', ${c}) * 24 + datepart('hour', ${c}))::BIGINT * 3600000000 + datepart('minute', ${c}) * 60000000 + datepart('microseconds', ${c})))::VARCHAR`;
      return db === 'postgres' ? `${c}::text` : `CAST(${c} AS CHAR)`;
    case 'timetz':
      return db === 'postgres' ? `(${c} AT TIME ZONE 'UTC')::text` : db === 'mysql' ? `CAST(${c} AS CHAR)` : `${c}::VARCHAR`;
    case 'text':
    case 'char':
      // The type's output function (a ::text cast of inet adds the mask: '::1/128').
      return db === 'postgres' ? `format('%s', ${c})` : db === 'mysql' ? `CAST(${c} AS CHAR)` : `${c}::VARCHAR`;
    default:
      return db === 'postgres' ? `${c}::text` : db === 'mysql' ? `CAST(${c} AS CHAR)` : `${c}::VARCHAR`;
  }
}

/** Microseconds of `[-]H:MM:SS[.f]`. */
function clockMicros(s: string): bigint {
  const m = /^(-)?(\d+):(\d\d):(\d\d)(?:\.(\d+))?$/.exec(s);
  if (!m) return BigInt(s);
  const us = ((BigInt(m[2]) * 60n + BigInt(m[3])) * 60n + BigInt(m[4])) * 1_000_000n + BigInt((m[5] ?? '').padEnd(6, '0').slice(0, 6) || '0');
  return m[1] ? -us : us;
}

/** Trailing zeros of a fraction off: `12.500` → `12.5`, `3.000` → `3`. */
const trimFraction = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

/** `0100-01-01 (BC) 00:00:00+00` (DuckDB) or `… BC` (PostgreSQL) → `0100-01-01 00:00:00 BC`. */
function bcLast(s: string): string {
  if (s.includes(' (BC)')) return s.replace(' (BC)', '') + ' BC';
  return s;
}

/** One spelling of a value read by `readExpr` from `db`. */
export function canon(k: Canon, db: Db | 'doc', v: unknown, source = false): string {
  if (v === null || v === undefined) return '∅';
  let s = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : String(v);
  if (typeof k === 'object' && 'array' in k) {
    const el = k.array;
    const walk = (x: unknown): unknown => (Array.isArray(x) ? x.map(walk) : x === null ? null : canon(el, db, typeof x === 'object' ? JSON.stringify(x) : x));
    return JSON.stringify(walk(parseJson(s)));
  }
  if (typeof k === 'object') {
    // bit(n): the source prints the bits; the targets hold bytes (Debezium's Bits).
    if (source) return s;
    const bytes = Buffer.from(s, 'hex');
    const ordered = k.order === 'lsb' ? Buffer.from(bytes).reverse() : bytes;
    return [...ordered].map((b) => b.toString(2).padStart(8, '0')).join('').slice(-k.bits).padStart(k.bits, '0');
  }
  switch (k) {
    case 'bool':
      return /^(t|true|1)$/i.test(s) ? 'true' : 'false';
    case 'decimal':
      return trimFraction(s);
    case 'float4':
    case 'float8': {
      const n = Number(s.replace(/^inf$/, 'Infinity').replace(/^-inf$/, '-Infinity').replace(/^nan$/i, 'NaN'));
      const x = k === 'float4' ? Math.fround(n) : n;
      if (k === 'float4' && Number.isFinite(x) && x !== 0) for (let p = 1; p < 10; p++) if (Math.fround(Number(x.toPrecision(p))) === x) return String(Number(x.toPrecision(p)));
      return Object.is(x, -0) ? '0' : String(x);
    }
    case 'char':
      return s.replace(/ +$/, '');
    case 'int':
      // MySQL prints YEAR 0 as 0000.
      return /^-?\d+$/.test(s) ? BigInt(s).toString() : s;
    case 'time':
      return trimFraction(s);
    case 'timetz':
      return trimFraction(s.replace(/(Z|\+00(:00)?)$/, ''));
    case 'date':
      return bcLast(s);
    case 'timestamp':
    case 'timestamptz':
      s = bcLast(s.replace('T', ' '));
      s = s.replace(/(\+00(:00)?|Z)( BC)?$/, '$3');
      return s.endsWith(' BC') ? trimFraction(s.slice(0, -3)) + ' BC' : trimFraction(s);
    case 'interval': {
      if (db !== 'mysql' && db !== 'doc') return s;
      const m = /^P(-?\d+)Y(-?\d+)M(-?\d+)DT(-?\d+)H(-?\d+)M(-?)(\d+)(?:\.(\d+))?S$/.exec(s);
      if (!m) return `unreadable ${s}`;
      const us = (BigInt(m[4]) * 3600n + BigInt(m[5]) * 60n) * 1_000_000n + (m[6] ? -1n : 1n) * (BigInt(m[7]) * 1_000_000n + BigInt((m[8] ?? '').padEnd(6, '0')));
      return `${BigInt(m[1]) * 12n + BigInt(m[2])}|${m[3]}|${us}`;
    }
    case 'duration':
      return clockMicros(s).toString();
    case 'json':
      return JSON.stringify(sortKeys(parseJson(s)));
    default:
      return s;
  }
}

function sortKeys(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

// ---------- documents ----------

/** The documents of a table's collection, their `v` in one spelling. */
async function readDocuments(o: FidelityRun, s: 'jsonb' | 'mongodb', p: Plan): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (s === 'jsonb') {
    const rows = await o.targets.query('postgres', `SELECT (doc->>'id')::int, (doc->'v')::text FROM docs."${p.table}"`);
    for (const [id, v] of rows) out.set(Number(id), docCanon(p.c.canon, v === null || v === 'null' ? null : String(v)));
    return out;
  }
  const m = await MongoClient.connect(MONGO_URL);
  try {
    for (const d of await m.db(o.mongoDb).collection(p.table).find({}, { useBigInt64: true }).toArray()) out.set(Number(d.id), docCanon(p.c.canon, mongoJson(d.v)));
  } finally {
    await m.close();
  }
  return out;
}

/** A MongoDB value as JSON text, dates as ISO text, Decimal128 and longs with their digits, binary as hex. */
function mongoJson(v: unknown): string | null {
  const w = (x: unknown): string => {
    if (x === null || x === undefined) return 'null';
    if (x instanceof Date) return JSON.stringify(x.toISOString());
    if (Array.isArray(x)) return '[' + x.map(w).join(',') + ']';
    const t = (x as { _bsontype?: string })._bsontype;
    if (t === 'Decimal128' || t === 'Long' || t === 'Int32' || t === 'Double') return String(x);
    if (t === 'Binary') return JSON.stringify(Buffer.from((x as { buffer: Uint8Array }).buffer).toString('hex'));
    if (typeof x === 'bigint') return x.toString();
    if (typeof x === 'object') return '{' + Object.entries(x as object).map(([k, y]) => JSON.stringify(k) + ':' + w(y)).join(',') + '}';
    return JSON.stringify(x);
  };
  return v === undefined || v === null ? null : w(v);
}

/** A document value (JSON text) of canon `k`, in the spelling the source's SQL gives. */
function docCanon(k: Canon, json: string | null): string {
  if (json === null) return '∅';
  const v = parseJson(json);
  if (typeof k === 'object' && 'array' in k) {
    const walk = (x: Value): unknown => (Array.isArray(x) ? x.map(walk) : x === null ? null : docCanon(k.array, typeof x === 'string' ? JSON.stringify(x) : String(x)));
    return JSON.stringify(walk(v));
  }
  switch (k) {
    case 'bytes':
      // JSONB keeps bytes as base64 text; the MongoDB reader gave hex.
      return typeof v === 'string' && /^[0-9a-f]*$/.test(v) && json.length % 2 === 0 ? v : Buffer.from(String(v), 'base64').toString('hex');
    case 'date':
      return String(v).slice(0, 10);
    case 'timestamp':
    case 'timestamptz':
      return canon(k, 'doc', String(v).replace(/Z$/, ''));
    case 'json':
      return JSON.stringify(sortKeys(typeof v === 'string' ? parseJson(v) : v));
    default:
      return canon(k, 'doc', typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : json);
  }
}
