/**
 * Fidelity from a PostgreSQL source: every type's edge values (harness.ts), through snapshot and
 * stream, into PostgreSQL, MariaDB and DuckDB, each value exact or refused with a coded error that
 * names it. Then what the harness cannot hold in one table: a value a change event cannot carry
 * (a timestamp past 294247 AD) stops the source, naming it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPipeline } from '../../src/engine/runner.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { pipelineConfig, tempDir } from '../helpers/pipeline.ts';
import { freshTargets, type Targets } from '../helpers/targets.ts';
import { PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { MongoClient } from 'mongodb';
import { MONGO_URL, runFidelity, type Case, type SourceDb } from './harness.ts';

const MY = ['mysql'] as const;
const NOT_MYSQL = { refused: [...MY] };

/** PostgreSQL's types at their edges: the issue's values first, then the all-types cases. */
export const PG_CASES: Case[] = [
  {
    name: 'ts',
    type: 'timestamp',
    canon: 'timestamp',
    values: [
      { sql: `'9999-12-31 23:59:59.999999'` },
      { sql: `'2262-04-11 23:47:16.854775'` },
      { sql: `'2255-06-05 23:47:34.740993'` },
      { sql: `'1970-01-01 00:00:00'` },
      { sql: `'1969-12-31 23:59:59.999999'` },
      { sql: `'2000-02-29 12:00:00.5'` },
      { sql: `'0001-01-01 00:00:00'` },
      { sql: `'0100-03-01 00:00:00 BC'`, ...NOT_MYSQL },
      { sql: `'4713-01-01 00:00:00 BC'`, ...NOT_MYSQL },
      { sql: `'10000-01-01 00:00:00'`, ...NOT_MYSQL },
      { sql: `'294246-12-31 23:59:59.999999'`, ...NOT_MYSQL },
      { sql: `'infinity'`, ...NOT_MYSQL },
      { sql: `'-infinity'`, ...NOT_MYSQL },
    ],
  },
  {
    name: 'tstz',
    type: 'timestamptz',
    canon: 'timestamptz',
    values: [
      { sql: `'9999-12-31 23:59:59.999999+00'` },
      { sql: `'2262-04-11 23:47:16.854775+00'` },
      { sql: `'2024-02-29 13:14:15.123456+05:30'` },
      { sql: `'1999-12-31 23:59:59+00'` },
      { sql: `'0001-01-01 00:00:00+00'` },
      { sql: `'0100-01-01 00:00:00+00 BC'`, ...NOT_MYSQL },
      { sql: `'10000-01-01 00:00:00+00'`, ...NOT_MYSQL },
      { sql: `'infinity'`, ...NOT_MYSQL },
      { sql: `'-infinity'`, ...NOT_MYSQL },
    ],
  },
  {
    name: 'date',
    type: 'date',
    canon: 'date',
    values: [
      { sql: `'9999-12-31'` },
      { sql: `'0001-01-01'` },
      { sql: `'2024-02-29'` },
      { sql: `'1969-12-31'` },
      { sql: `'0044-03-15 BC'`, ...NOT_MYSQL },
      { sql: `'4713-01-01 BC'`, ...NOT_MYSQL },
      { sql: `'5874897-12-31'`, ...NOT_MYSQL },
      { sql: `'infinity'`, ...NOT_MYSQL },
      { sql: `'-infinity'`, ...NOT_MYSQL },
    ],
  },
  { name: 'time', type: 'time', canon: 'time', values: [{ sql: `'24:00:00'` }, { sql: `'00:00:00'` }, { sql: `'23:59:59.999999'` }, { sql: `'13:14:15.123456'` }] },
  { name: 'timetz', type: 'timetz', canon: 'timetz', values: [{ sql: `'13:14:15.5+02:00'` }, { sql: `'00:00:00+00'` }, { sql: `'23:59:59.999999+00'` }] },
  {
    name: 'interval',
    type: 'interval',
    canon: 'interval',
    values: [
      { sql: `'1 year 2 mons'` },
      { sql: `'1 mon'` },
      { sql: `'1 day'` },
      { sql: `'24:00:00'` },
      { sql: `'-178000000 years'` },
      { sql: `'178000000 years'` },
      { sql: `'2562047788:00:54.775807'` },
      { sql: `'-2562047788:00:54.775807'` },
      { sql: `'-1 years -2 mons +3 days -04:05:06.5'` },
      { sql: `'0'` },
    ],
  },
  { name: 'varbit', type: 'varbit', canon: 'text', values: [{ sql: `B'10101'` }, { sql: `B'0001'` }, { sql: `B''` }, { sql: `B'1'` }] },
  { name: 'bit5', type: 'bit(5)', canon: { bits: 5, order: 'msb' }, values: [{ sql: `B'10110'` }, { sql: `B'00000'` }, { sql: `B'11111'` }] },
  {
    name: 'numeric',
    type: 'numeric',
    canon: 'decimal',
    values: [
      { sql: `'123456789012345678901234567890.123456789'` },
      { sql: `'-0.000000000000000000000000000001'` },
      { sql: `'0'` },
      { sql: `'99999999999999999999999999999999999'` },
      { sql: `'0.0000000000000000000000000000001'`, ...NOT_MYSQL },
      { sql: `'999999999999999999999999999999999999'`, ...NOT_MYSQL },
      { sql: `'NaN'`, ...NOT_MYSQL },
      { sql: `'Infinity'`, ...NOT_MYSQL },
    ],
  },
  { name: 'numeric62', type: 'numeric(6,2)', canon: 'decimal', values: [{ sql: `'12.50'` }, { sql: `'-9999.99'` }, { sql: `'NaN'`, refused: ['mysql', 'duckdb'] }] },
  {
    name: 'float8',
    type: 'float8',
    canon: 'float8',
    values: [{ sql: `'1.7976931348623157e308'` }, { sql: `'5e-324'` }, { sql: `'-0'` }, { sql: `'0.1'` }, { sql: `'NaN'`, ...NOT_MYSQL }, { sql: `'Infinity'`, ...NOT_MYSQL }, { sql: `'-Infinity'`, ...NOT_MYSQL }],
  },
  { name: 'float4', type: 'float4', canon: 'float4', values: [{ sql: `'3.4028235e38'` }, { sql: `'1e-45'` }, { sql: `'1.5'` }, { sql: `'NaN'`, ...NOT_MYSQL }] },
  { name: 'int8', type: 'int8', canon: 'int', values: [{ sql: `9223372036854775807` }, { sql: `-9223372036854775808` }, { sql: `0` }] },
  { name: 'int4', type: 'int4', canon: 'int', values: [{ sql: `2147483647` }, { sql: `-2147483648` }] },
  { name: 'int2', type: 'int2', canon: 'int', values: [{ sql: `32767` }, { sql: `-32768` }] },
  { name: 'bool', type: 'bool', canon: 'bool', values: [{ sql: `true` }, { sql: `false` }] },
  { name: 'text', type: 'text', canon: 'text', values: [{ sql: `''` }, { sql: `E'tab\\there\\nnewline'` }, { sql: `'emoji 🙂 and ü'` }, { sql: `'quote '' " \\ back'` }, { sql: `E'control \\x01 and \\x1f, cr \\r, \\\\N not null'` }] },
  { name: 'char4', type: 'char(4)', canon: 'char', values: [{ sql: `'a'` }, { sql: `'abcd'` }] },
  { name: 'bytea', type: 'bytea', canon: 'bytes', values: [{ sql: `'\\x00ff10'` }, { sql: `'\\x'` }] },
  { name: 'uuid', type: 'uuid', canon: 'text', values: [{ sql: `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'` }] },
  { name: 'jsonb', type: 'jsonb', canon: 'json', values: [{ sql: `'{"a": [1, 2.50, {"b": null}], "big": 12345678901234567890123, "é": "x"}'` }, { sql: `'{"s": "back\\\\slash \\"q\\" tab\\t \\u0001", "t": "\\\\N"}'` }] },
  { name: 'int_arr', type: 'int[]', canon: { array: 'int' }, values: [{ sql: `'{1,NULL,3}'` }, { sql: `'{}'` }] },
  { name: 'int8_arr', type: 'int8[]', canon: { array: 'int' }, values: [{ sql: `'{9223372036854775807,-9223372036854775808}'` }] },
  { name: 'text_arr2', type: 'text[]', canon: { array: 'text' }, values: [{ sql: `'{a,"b,c"}'` }, { sql: `'{{a,"b,c"},{"\\"q\\"",NULL}}'`, refused: ['duckdb'] }] },
  { name: 'int_arr3', type: 'int[]', canon: { array: 'int' }, values: [{ sql: `'{{{1,2},{3,4}},{{5,6},{7,8}}}'`, refused: ['duckdb'] }] },
  { name: 'date_arr', type: 'date[]', canon: { array: 'date' }, values: [{ sql: `'{2024-02-29,infinity,0044-03-15 BC,5874897-12-31}'` }] },
  { name: 'ts_arr', type: 'timestamp[]', canon: { array: 'timestamp' }, values: [{ sql: `'{"9999-12-31 23:59:59.999999","2262-04-11 23:47:16.854775",infinity}'` }] },
  { name: 'tstz_arr', type: 'timestamptz[]', canon: { array: 'timestamptz' }, values: [{ sql: `'{"2024-01-01 00:00:00+00","0100-01-01 00:00:00+00 BC"}'` }] },
  { name: 'num_arr', type: 'numeric[]', canon: { array: 'decimal' }, values: [{ sql: `'{1.50,-0.001,NaN}'` }] },
  { name: 'inet', type: 'inet', canon: 'text', values: [{ sql: `'192.168.0.1/24'` }, { sql: `'::1'` }] },
  { name: 'range', type: 'int4range', canon: 'text', values: [{ sql: `'[1,10)'` }, { sql: `'empty'` }] },
  { name: 'point', type: 'point', canon: 'text', values: [{ sql: `'(1,2)'` }] },
];

const DOCS = ['jsonb', 'mongodb'] as const;

/**
 * What the document sinks hold (docs/connectors/documents.md): numbers, text, exact decimals, bytes,
 * JSON, arrays of any depth, and dates to the millisecond — a Date has no microseconds, no
 * infinity and no year past 275760, so those stop the sink, naming the value.
 */
export const DOC_CASES: Case[] = [
  { name: 'd_int8', type: 'int8', canon: 'int', documents: [...DOCS], values: [{ sql: `9223372036854775807` }, { sql: `-9223372036854775808` }, { sql: `0` }] },
  { name: 'd_text', type: 'text', canon: 'text', documents: [...DOCS], values: [{ sql: `'emoji 🙂 and ü'` }, { sql: `''` }] },
  { name: 'd_num', type: 'numeric', canon: 'decimal', documents: [...DOCS], values: [{ sql: `'1234567890123456789012345678.123456'` }, { sql: `'-0.001'` }] },
  { name: 'd_float8', type: 'float8', canon: 'float8', documents: [...DOCS], values: [{ sql: `'1.7976931348623157e308'` }, { sql: `'0.1'` }, { sql: `'NaN'`, refused: ['mysql', 'jsonb'] }] },
  { name: 'd_bool', type: 'bool', canon: 'bool', documents: [...DOCS], values: [{ sql: `true` }] },
  { name: 'd_bytea', type: 'bytea', canon: 'bytes', documents: [...DOCS], values: [{ sql: `'\\x00ff10'` }] },
  { name: 'd_jsonb', type: 'jsonb', canon: 'json', documents: [...DOCS], values: [{ sql: `'{"a": [1, 2.5, {"b": null}], "s": "é"}'` }] },
  { name: 'd_arr2', type: 'text[]', canon: { array: 'text' }, documents: [...DOCS], values: [{ sql: `'{{a,"b,c"},{"\\"q\\"",NULL}}'`, refused: ['duckdb'] }] },
  { name: 'd_int8_arr', type: 'int8[]', canon: { array: 'int' }, documents: [...DOCS], values: [{ sql: `'{9223372036854775807,-1}'` }] },
  {
    name: 'd_date',
    type: 'date',
    canon: 'date',
    documents: [...DOCS],
    values: [{ sql: `'9999-12-31'` }, { sql: `'1000-01-01'` }, { sql: `'infinity'`, refused: ['mysql', ...DOCS] }, { sql: `'5874897-12-31'`, refused: ['mysql', ...DOCS] }],
  },
  {
    name: 'd_ts',
    type: 'timestamp(3)',
    canon: 'timestamp',
    documents: [...DOCS],
    values: [{ sql: `'9999-12-31 23:59:59.999'` }, { sql: `'1969-12-31 23:59:59.999'` }, { sql: `'-infinity'`, refused: ['mysql', ...DOCS] }],
  },
];

function pgSource(db: Awaited<ReturnType<typeof freshDatabase>>, extra = ''): SourceDb {
  return {
    kind: 'postgres',
    schema: 'public',
    exec: async (sql) => void (await db.client.query(sql)),
    rows: async (sql) => (await db.client.query({ text: sql, rowMode: 'array' })).rows,
    quote: (n) => `"${n.replace(/"/g, '""')}"`,
    sourceYaml: (tables) => `  type: postgres
  connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${db.name} }
  slot: fid_${db.name.slice(-6)}
  tables: [${tables.map((t) => `public.${t}`).join(', ')}]
  heartbeatIntervalMs: 500
${extra}`,
  };
}

describe('fidelity: PostgreSQL source → every sink', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  let targets: Targets;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
  });
  after(async () => {
    await targets?.drop();
    await db?.drop();
    tmp?.remove();
  });

  it('every edge value arrives exactly, or stops the sink that cannot hold it with a coded error naming it', async () => {
    await runFidelity({ source: pgSource(db), targets, dir: tmp.dir, cases: PG_CASES });
  });

  it('the document sinks hold their values exactly, or stop naming the value', async () => {
    const mongoDb = `fid_${db.name.slice(-10)}`;
    try {
      await runFidelity({ source: pgSource(db, '  publication: fid_docs\n'), targets, dir: join(tmp.dir, 'docs'), cases: DOC_CASES, sinks: ['jsonb', 'mongodb'], jsonbDb: targets.pgDb, mongoDb });
    } finally {
      const m = await MongoClient.connect(MONGO_URL);
      await m.db(mongoDb).dropDatabase().catch(() => {});
      await m.close();
    }
  });

  it('a timestamp beyond what a change event holds (past 294247 AD) stops the source with PG_BAD_VALUE naming table, column and value', async () => {
    const t = tempDir();
    try {
      await db.client.query(`CREATE TABLE far (id int PRIMARY KEY, at timestamp); INSERT INTO far VALUES (1, '294276-12-31 23:59:59')`);
      const cfg = pipelineConfig('far', db.name, t.dir, 'tables: [public.far]\nslot: far_slot');
      await assert.rejects(runPipeline(cfg), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'PG_BAD_VALUE', e.message);
        assert.match(e.message, /column at \(timestamp without time zone\) of table public\.far/);
        assert.match(e.message, /294276-12-31 23:59:59/);
        assert.match(e.message, /exclude the table from source\.tables|generated column/);
        return true;
      });
    } finally {
      t.remove();
    }
  });
});
