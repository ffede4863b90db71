/**
 * The MySQL sink's bulk path (LOAD DATA LOCAL INFILE into a staging table, then INSERT … SELECT)
 * against MariaDB: values its text format has to escape arrive byte for byte (tab, newline, CR,
 * backslash, NUL, a text spelled like the NULL marker `\N`, 4-byte UTF-8, bytes of every value);
 * a server that refuses LOAD DATA LOCAL (at open, or between batches) still gets the same rows,
 * through INSERT statements, and a warning; a value the target column cannot hold is refused as
 * the INSERT path refuses it, nothing of the batch applied.
 *
 * The log is written here with the serializer the PostgreSQL source uses, so the truth each row is
 * compared with is the values written, not anything the sink produced.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { ChangeEvent, TableSchema, Value } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { SCHEMA_HEADER, schemaRecordOf, schemaTopicOf } from '../../src/core/schemas.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import type { Sink } from '../../src/sinks/types.ts';
import { mysqlAdmin, useMysqlDatabase } from '../helpers/mysql.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';

const PREFIX = 'ml';
const str = { type: 'string' as const, optional: true };
const HARD: TableSchema = {
  schema: 'public',
  table: 'hard',
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
    { name: 't', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: str },
    { name: 'v', typeOid: 1043, typeName: 'character varying(12)', typeModifier: -1, key: false, optional: true, schema: str },
    { name: 'b', typeOid: 17, typeName: 'bytea', typeModifier: -1, key: false, optional: true, schema: { type: 'bytes', optional: true } },
    { name: 'j', typeOid: 3802, typeName: 'jsonb', typeModifier: -1, key: false, optional: true, schema: { ...str, name: 'io.debezium.data.Json', version: 1 } },
    { name: 'n', typeOid: 1700, typeName: 'numeric(12,2)', typeModifier: -1, key: false, optional: true, schema: str },
    { name: 'ts', typeOid: 1184, typeName: 'timestamp with time zone', typeModifier: -1, key: false, optional: true, schema: { ...str, name: 'io.debezium.time.ZonedTimestamp', version: 1 } },
    { name: 'flag', typeOid: 16, typeName: 'boolean', typeModifier: -1, key: false, optional: true, schema: { type: 'boolean', optional: true } },
  ],
};
/** A table keyed by text: the upsert finds rows by keys holding what the load escapes. */
const KEYED: TableSchema = {
  schema: 'public',
  table: 'keyed',
  keyColumns: ['k'],
  columns: [
    { name: 'k', typeOid: 25, typeName: 'text', typeModifier: -1, key: true, optional: false, schema: { type: 'string', optional: false } },
    { name: 'n', typeOid: 23, typeName: 'integer', typeModifier: -1, key: false, optional: true, schema: { type: 'int32', optional: true } },
  ],
};

const EVERY_BYTE = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const TEXTS = [
  'tab\there, newline\nand crlf\r\n, backslash \\ and \\N, the word NULL, NUL \u0000 within',
  '\\N',
  'NULL',
  '',
  'ends with a backslash \\',
  '\\\t\\\n\\\\',
  '🙂 𝄞 4-byte UTF-8, é ü ß 中文',
  'é🙂\t'.repeat(20_000),
];
const BYTES = [EVERY_BYTE, Buffer.alloc(0), Buffer.from('\\'), Buffer.from('\\N'), Buffer.from([0, 9, 10, 13, 92, 78]), Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256))];
const KEYS = ['a\tb', 'a\\b', '\\N', 'NULL', 'line\nbreak', '🙂', 'a', 'A', '', ...Array.from({ length: 150 }, (_, i) => `k${i}\t`)];

/** Row `i` of `hard` as written in pass 0 (creates) or 1 (updates). */
function hardRow(i: number, pass: number): Record<string, Value> {
  return {
    id: BigInt(i),
    t: TEXTS[(i + pass) % TEXTS.length],
    v: ['\t\\N\n', 'NULL', '\\', '', '🙂🙂', null][(i + pass) % 6],
    b: BYTES[(i + pass) % BYTES.length],
    j: JSON.stringify({ s: TEXTS[(i + 3 * pass) % 7], n: '\\N', i }),
    n: `${pass ? '-' : ''}${i}.${String(i % 100).padStart(2, '0')}`,
    ts: new Date(Date.UTC(2024, 1, 29, 7, 44, 15) + i * 1000 + pass).toISOString().replace('Z', '123Z'),
    flag: i % 3 === 0 ? null : (i + pass) % 2 === 0,
  };
}

/** Rows of `hard`: the sink loads a table's batch of 128 rows or more (fewer go as INSERT statements). */
const ROWS = 300;

/** Writes `ROWS` creates of `hard` and one of each key of `keyed`, then updates of all of them. */
async function writeLog(dir: string): Promise<void> {
  const log = await openLog(embeddedLogAt(dir));
  const ser = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: PREFIX });
  await log.ensureTopic(schemaTopicOf(PREFIX), { partitions: 1 });
  const { producer } = await log.openProducer('test');
  const events: ChangeEvent[] = [];
  for (const [table, rows] of [
    [HARD, (pass: number) => Array.from({ length: ROWS }, (_, i) => hardRow(i + 1, pass))],
    [KEYED, (pass: number) => KEYS.map((k, i) => ({ k, n: i + 100 * pass }))],
  ] as const) {
    const topic = `${PREFIX}.public.${table.table}`;
    await log.ensureTopic(topic, { partitions: 1 });
    const schema = schemaRecordOf('postgresql', topic, table);
    producer.append(schemaTopicOf(PREFIX), { key: schema.id, value: JSON.stringify(schema), timestamp: Date.now() });
    for (const pass of [0, 1]) {
      for (const after of rows(pass)) {
        const key = Object.fromEntries(table.keyColumns.map((k) => [k, (after as Record<string, Value>)[k]]));
        events.push({ topic, key, before: null, after, op: pass ? 'u' : 'c', ts_ms: Date.now(), table, source: { version: '0', connector: 'postgresql', name: PREFIX, ts_ms: Date.now(), snapshot: 'false', db: 'x', schema: 'public', table: table.table, txId: 1, lsn: 1, sequence: null, xmin: null } });
      }
    }
  }
  for (const ev of events) producer.append(ev.topic, { key: ser.keyString(ev), value: ser.valueString(ev), timestamp: Date.now(), headers: { [SCHEMA_HEADER]: schemaRecordOf('postgresql', ev.topic, ev.table).id } });
  await producer.commit('1');
  await producer.close();
  await log.close();
}

/** The log's changes in two batches per table: the creates, then the updates. */
async function batches(dir: string) {
  const log = await openLog(embeddedLogAt(dir), { readOnly: true });
  try {
    const out = [];
    for (const [table, n] of [
      ['hard', ROWS],
      ['keyed', KEYS.length],
    ] as const) {
      const reader = new BatchReader(log, new SchemaStore(log, schemaTopicOf(PREFIX)));
      reader.addTopic(`${PREFIX}.public.${table}`, 1, undefined);
      for (let k = 0; k < 2; k++) {
        const b = await reader.next({ maxRecords: n, maxBytes: 1 << 30, maxDelayMs: 0 }, 0);
        assert.ok(b && b.records === n, `batch ${k} of ${table} holds its ${n} changes`);
        out.push(b);
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** A logger that keeps its lines. */
function keptLogger() {
  const lines: string[] = [];
  const logger = createLogger({
    level: 'warn',
    stream: new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  });
  return { logger, lines };
}

async function openSink(db: string, logger: ReturnType<typeof createLogger>, name = 'my'): Promise<Sink> {
  const cfg = parseConfig(`name: ml\nsource: { type: postgres, connection: { database: x } }\nsinks:\n  - { name: ${name}, type: mysql, connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${db} } }\n`, 'ml.yaml', process.env);
  const sink = await sinkSpec('mysql').create(cfg.sinks[0], { pipeline: 'ml', logger, id: `ml/${name}` });
  await sink.open();
  return sink;
}

/** The server's count of LOAD DATA statements (every session's: others can only add to it). */
async function loads(): Promise<number> {
  const c = await mysqlAdmin();
  try {
    const [rows] = await c.query({ sql: `SHOW GLOBAL STATUS LIKE 'Com_load'`, rowsAsArray: true });
    return Number((rows as unknown[][])[0][1]);
  } finally {
    await c.end();
  }
}

const hex = (v: Value): string | null => (v === null ? null : Buffer.isBuffer(v) ? v.toString('hex').toUpperCase() : Buffer.from(String(v)).toString('hex').toUpperCase());

/** What `hard` and `keyed` must hold after both batches: the updates' values, as the log has them. */
function truth(): { hard: unknown[][]; keyed: unknown[][] } {
  const hard = Array.from({ length: ROWS }, (_, i) => {
    const r = hardRow(i + 1, 1);
    return [String(r.id), hex(r.t), hex(r.v), hex(r.b), hex(r.j), r.n, (r.ts as string).replace('T', ' ').replace('Z', ''), r.flag === null ? null : r.flag ? '1' : '0'];
  });
  const keyed = KEYS.map((k, i) => [hex(k), String(i + 100)]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
  return { hard, keyed };
}

async function held(db: string): Promise<{ hard: unknown[][]; keyed: unknown[][] }> {
  const c = await mysqlAdmin(db);
  try {
    const [hard] = await c.query({ sql: 'SELECT CAST(id AS CHAR), HEX(t), HEX(v), HEX(b), HEX(j), CAST(n AS CHAR), CAST(ts AS CHAR), CAST(flag AS CHAR) FROM hard ORDER BY id', rowsAsArray: true });
    const [keyed] = await c.query({ sql: 'SELECT HEX(k), CAST(n AS CHAR) FROM keyed ORDER BY HEX(k)', rowsAsArray: true });
    return { hard: hard as unknown[][], keyed: keyed as unknown[][] };
  } finally {
    await c.end();
  }
}

/** Runs `fn` with the server's local_infile at `on`, and puts it back ON after. */
async function withLocalInfile<T>(on: boolean, fn: () => Promise<T>): Promise<T> {
  const c = await mysqlAdmin();
  try {
    await c.query(`SET GLOBAL local_infile = ${on ? 1 : 0}`);
    return await fn();
  } finally {
    await c.query('SET GLOBAL local_infile = 1').catch(() => {});
    await c.end();
  }
}

describe('MySQL sink: upserts loaded with LOAD DATA LOCAL INFILE', () => {
  const f = useMysqlDatabase();
  const logDir = () => join(f.tmp.dir, 'log');

  it('values the load escapes arrive byte for byte: tab, newline, CR, backslash, NUL, \\N, 4-byte UTF-8, every byte', async () => {
    await writeLog(logDir());
    const { logger, lines } = keptLogger();
    const sink = await openSink(f.name, logger);
    const before = await loads();
    try {
      for (const b of await batches(logDir())) await sink.apply(b);
    } finally {
      await sink.close();
    }
    assert.deepEqual(await held(f.name), truth());
    // Through the loads, not INSERT statements: nothing fell back (that logs a warning).
    assert.deepEqual(lines, []);
    assert.ok((await loads()) - before >= 4, 'the server ran a LOAD DATA per table and batch');
  });

  it('a server that refuses LOAD DATA LOCAL gets the same rows through INSERT statements, with a warning saying how to allow it', async () => {
    for (const when of ['at open', 'after open'] as const) {
      const db = `${f.name}_${when === 'at open' ? 'o' : 'a'}`;
      await f.q(`CREATE DATABASE \`${db}\``);
      try {
        const { logger, lines } = keptLogger();
        // local_infile is the server's: it is off only for as long as the sink needs to meet it.
        const sink = when === 'at open' ? await withLocalInfile(false, () => openSink(db, logger)) : await openSink(db, logger);
        try {
          const all = await batches(logDir());
          if (when === 'at open') for (const b of all) await sink.apply(b);
          else {
            await withLocalInfile(false, () => sink.apply(all[0]));
            for (const b of all.slice(1)) await sink.apply(b);
          }
        } finally {
          await sink.close();
        }
        assert.deepEqual(await held(db), truth(), when);
        assert.equal(lines.length, 1, `${when}: one warning: ${lines.join('')}`);
        assert.match(lines[0], when === 'at open' ? /local_infile is OFF/ : /refused LOAD DATA LOCAL INFILE/);
        assert.match(lines[0], /SET GLOBAL local_infile = 1/);
      } finally {
        await f.q(`DROP DATABASE IF EXISTS \`${db}\``);
      }
    }
  });

  it('a value the target column cannot hold is refused as the INSERT statements refuse it, and nothing of the batch is applied', async () => {
    const db = `${f.name}_r`;
    await f.q(`CREATE DATABASE \`${db}\``);
    try {
      // A target made narrower than the source's varchar(12): the server would store a cut value.
      await f.q(`CREATE TABLE \`${db}\`.hard (id BIGINT NOT NULL PRIMARY KEY, t LONGTEXT, v VARCHAR(3), b LONGBLOB, j LONGTEXT, n DECIMAL(12,2), ts DATETIME(6), flag TINYINT(1)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
      const { logger } = keptLogger();
      const sink = await openSink(db, logger);
      let err: { code?: string; message: string } | null = null;
      try {
        await sink.apply((await batches(logDir()))[0]).catch((e) => (err = e));
      } finally {
        await sink.close();
      }
      assert.ok(err, 'the batch is refused');
      const e = err as { code?: string; message: string };
      assert.equal(e.code, 'SINK_REJECTED', e.message);
      assert.match(e.message, /^MySQL refused the batch: table public\.hard: Data too long for column 'v' at row \d+ \(ER_DATA_TOO_LONG\); nothing of this batch was applied/);
      const c = await mysqlAdmin(db);
      try {
        const [[n]] = (await c.query({ sql: 'SELECT COUNT(*) FROM hard', rowsAsArray: true })) as unknown as [[number]];
        assert.equal(Number(n), 0, 'no row of the batch applied');
        const [[o]] = (await c.query({ sql: 'SELECT COUNT(*) FROM sluice_offsets', rowsAsArray: true })) as unknown as [[number]];
        assert.equal(Number(o), 0, 'no offset stored');
      } finally {
        await c.end();
      }
    } finally {
      await f.q(`DROP DATABASE IF EXISTS \`${db}\``);
    }
  });
});
