/**
 * Every common PostgreSQL type, through the real replication stream (text and binary mode) and
 * the snapshot, into the log: the JSON a consumer reads must hold the exact value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPipeline } from '../../../src/engine/runner.ts';
import { pipelineConfig, readAll, tempDir, useDatabase, waitUntil, logDirOf } from '../../helpers/pipeline.ts';

const ROW = `(
  1, true, 32767, 2147483647, 9223372036854775807, -9223372036854775808,
  1.5, 3.141592653589793, 'NaN',
  123456789012345678901234567890.123456789, 12.50,
  'x', 'varchar ✓', 'text "quoted" \\ back', 'a   ',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "é"}',
  '\\x00ff10'::bytea,
  '2024-02-29', '13:14:15.123456', '13:14:15.5+02:00',
  '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123456+05:30', '1999-12-31 23:59:59+00',
  '1 year 2 mons 3 days 04:05:06.5',
  B'1', B'10110', B'1011',
  '192.168.0.1/24', 'happy', 42,
  ARRAY[1, NULL, 3], ARRAY[['a', 'b,c'], ['"q"', NULL]], ARRAY['2024-01-01 00:00:00+00'::timestamptz],
  '12.34'::money, 'x'::char(1), '(1,2)'::point, '[1,10)'::int4range
)`;

const EXPECTED: Record<string, unknown> = {
  id: 1,
  c_bool: true,
  c_int2: 32767,
  c_int4: 2147483647,
  c_int8_max: '9223372036854775807',
  c_int8_min: '-9223372036854775808',
  c_float4: 1.5,
  c_float8: 3.141592653589793,
  c_float_nan: 'NaN',
  c_numeric: '123456789012345678901234567890.123456789',
  c_numeric_scale: '12.50',
  c_char: 'x',
  c_varchar: 'varchar ✓',
  c_text: 'text "quoted" \\ back',
  c_bpchar: 'a   ',
  c_uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  c_json: '{"a": [1, 2, {"b": null}]}',
  c_jsonb: '{"a": "é", "z": 1}',
  c_bytea: Buffer.from([0, 255, 16]).toString('base64'),
  c_date: 19782,
  c_time: 47655123456,
  c_timetz: '11:14:15.5Z',
  c_timestamp: 1709212455123456,
  c_timestamptz: '2024-02-29T07:44:15.123456Z',
  c_timestamptz_whole: '1999-12-31T23:59:59.000000Z',
  // ISO 8601, years, months, days and time apart (intervalHandling: string, the default).
  c_interval: 'P1Y2M3DT4H5M6.5S',
  c_bit1: true,
  c_bit5: Buffer.from([0b10110]).toString('base64'),
  // varbit as its bits: bytes would lose its length.
  c_varbit: '1011',
  c_inet: '192.168.0.1/24',
  c_enum: 'happy',
  c_domain: 42,
  c_int_arr: [1, null, 3],
  c_text_arr: [['a', 'b,c'], ['"q"', null]],
  c_tstz_arr: ['2024-01-01T00:00:00.000000Z'],
  c_money: '$12.34',
  c_char1: 'x',
  c_point: '(1,2)',
  c_range: '[1,10)',
};

describe('postgres types → events', () => {
  const f = useDatabase(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE all_types (
        id int PRIMARY KEY, c_bool bool, c_int2 int2, c_int4 int4, c_int8_max int8, c_int8_min int8,
        c_float4 float4, c_float8 float8, c_float_nan float8,
        c_numeric numeric, c_numeric_scale numeric(6,2),
        c_char "char", c_varchar varchar(20), c_text text, c_bpchar char(4),
        c_uuid uuid, c_json json, c_jsonb jsonb, c_bytea bytea,
        c_date date, c_time time, c_timetz timetz, c_timestamp timestamp, c_timestamptz timestamptz, c_timestamptz_whole timestamptz,
        c_interval interval, c_bit1 bit(1), c_bit5 bit(5), c_varbit varbit, c_inet inet, c_enum mood, c_domain posint,
        c_int_arr int[], c_text_arr text[], c_tstz_arr timestamptz[],
        c_money money, c_char1 char(1), c_point point, c_range int4range
      );
      CREATE TABLE nulls (id int PRIMARY KEY, a int, b text, c timestamptz, d numeric, e jsonb, f bytea, g int[]);
      SET TimeZone = 'America/New_York';
      INSERT INTO all_types VALUES ${ROW};
      INSERT INTO nulls VALUES (1);
    `);

  it('snapshot and stream (text mode) give the exact values', async () => {
    const cfg = pipelineConfig('types', f.db.name, f.tmp.dir, 'tables: [public.all_types, public.nulls]');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    try {
      await waitUntil('snapshot', async () => (await readAll(cfg.log, 'types.public.all_types')).length === 1);
      await f.db.client.query(`INSERT INTO all_types VALUES ${ROW.replace('1, true', '2, true')}`);
      await f.db.client.query(`INSERT INTO nulls VALUES (2)`);
      await waitUntil('streamed rows', async () => (await readAll(cfg.log, 'types.public.')).length === 4);
    } finally {
      ac.abort();
      await run;
    }
    const recs = await readAll(cfg.log, 'types.public.all_types');
    const snap = recs.find((r) => r.value.op === 'r')!.value.after;
    const live = recs.find((r) => r.value.op === 'c')!.value.after;
    // int8 extremes must be exact in the raw JSON; JSON.parse would round them.
    for (const v of [snap, live]) {
      for (const [k, want] of Object.entries(EXPECTED)) {
        if (k === 'id' || k.startsWith('c_int8')) continue;
        assert.deepEqual(v[k], want, `${k}: got ${JSON.stringify(v[k])}, want ${JSON.stringify(want)}`);
      }
    }
    const raw = await rawValues(logDirOf(cfg));
    for (const text of raw) {
      assert.match(text, /"c_int8_max":9223372036854775807[,}]/);
      assert.match(text, /"c_int8_min":-9223372036854775808[,}]/);
    }
    const n = await readAll(cfg.log, 'types.public.nulls');
    for (const r of n) assert.deepEqual(r.value.after, { id: r.value.after.id, a: null, b: null, c: null, d: null, e: null, f: null, g: null });
  });

  it('binary mode gives the same values for the types it supports', async () => {
    const tmp2 = tempDir();
    await f.db.client.query(`CREATE TABLE bin_types (id int PRIMARY KEY, b bool, i2 int2, i8 int8, f8 float8, n numeric, n2 numeric(10,3), t text, u uuid, j jsonb, by bytea, d date, ts timestamp, tz timestamptz)`);
    const cfg = pipelineConfig('bin', f.db.name, tmp2.dir, 'tables: [public.bin_types]\nbinary: true\nsnapshot: never\nslot: bin_slot_t\npublication: bin_pub_t');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    try {
      await waitUntil('slot', async () => (await f.db.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'bin_slot_t' AND active`)).rowCount === 1);
      await f.db.client.query(`INSERT INTO bin_types VALUES (1, true, -5, 9007199254740993, -0.25, -123456789.000000001, 0.001, 'héllo', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1]}', '\\x0001', '1969-12-31', '1969-12-31 23:59:59.999999', '2024-02-29 13:14:15.000001+00')`);
      await waitUntil('row', async () => (await readAll(cfg.log, 'bin.public.bin_types')).length === 1);
    } finally {
      ac.abort();
      await run;
    }
    const [r] = await readAll(cfg.log, 'bin.public.bin_types');
    assert.deepEqual({ ...r.value.after, i8: undefined }, {
      id: 1, b: true, i2: -5, i8: undefined, f8: -0.25, n: '-123456789.000000001', n2: '0.001', t: 'héllo', u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: '{"k": [1]}', by: Buffer.from([0, 1]).toString('base64'), d: -1, ts: -1, tz: '2024-02-29T13:14:15.000001Z',
    });
    assert.match((await rawValues(logDirOf(cfg), 'bin.public.bin_types'))[0], /"i8":9007199254740993[,}]/);
    tmp2.remove();
  });

  it('an unchanged TOASTed column is the placeholder, never a silent null; REPLICA IDENTITY FULL gives the value', async () => {
    const tmp4 = tempDir();
    await f.db.client.query(`CREATE TABLE toasty (id int PRIMARY KEY, big text, n int); CREATE TABLE toasty_full (id int PRIMARY KEY, big text, n int); ALTER TABLE toasty_full REPLICA IDENTITY FULL`);
    // Random text does not compress, so 10 kB of it is really stored out of line.
    const big = (await f.db.client.query(`SELECT string_agg(md5(random()::text), '') AS s FROM generate_series(1, 320)`)).rows[0].s as string;
    await f.db.client.query(`INSERT INTO toasty VALUES (1, $1, 0); INSERT INTO toasty_full VALUES (1, $1, 0)`.replace(/\$1/g, `'${big}'`));
    const cfg = pipelineConfig('toast', f.db.name, tmp4.dir, 'tables: [public.toasty, public.toasty_full]\nslot: toast_slot_t\npublication: toast_pub_t');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    try {
      await waitUntil('snapshot', async () => (await readAll(cfg.log, 'toast.public.')).length === 2);
      await f.db.client.query(`UPDATE toasty SET n = 1; UPDATE toasty_full SET n = 1`);
      await waitUntil('updates', async () => (await readAll(cfg.log, 'toast.public.')).filter((r) => r.value?.op === 'u').length === 2);
    } finally {
      ac.abort();
      await run;
    }
    const ups = (await readAll(cfg.log, 'toast.public.')).filter((r) => r.value?.op === 'u');
    const plain = ups.find((r) => r.topic === 'toast.public.toasty')!.value;
    const full = ups.find((r) => r.topic === 'toast.public.toasty_full')!.value;
    assert.equal(plain.after.n, 1);
    assert.equal(plain.after.big, '__debezium_unavailable_value');
    assert.equal(full.after.big, big);
    assert.equal(full.before.big, big);
    assert.equal(full.before.n, 0);
    tmp4.remove();
  });

  it('an unsupported type stops the pipeline with an error that names the column and what to do', async () => {
    const tmp3 = tempDir();
    await f.db.client.query(`CREATE TYPE opaque_t; CREATE FUNCTION opaque_in(cstring) RETURNS opaque_t AS 'textin' LANGUAGE internal IMMUTABLE STRICT; CREATE FUNCTION opaque_out(opaque_t) RETURNS cstring AS 'textout' LANGUAGE internal IMMUTABLE STRICT; CREATE TYPE opaque_t (INPUT = opaque_in, OUTPUT = opaque_out, LIKE = text, CATEGORY = 'X')`);
    await f.db.client.query(`CREATE TABLE weird (id int PRIMARY KEY, o opaque_t); INSERT INTO weird VALUES (1, 'zzz')`);
    const cfg = pipelineConfig('weird', f.db.name, tmp3.dir, 'tables: [public.weird]');
    await assert.rejects(runPipeline(cfg), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'PG_UNSUPPORTED_TYPE');
      assert.match(e.message, /column public\.weird\.o has type public\.opaque_t/);
      assert.match(e.message, /Exclude the table|generated column/);
      return true;
    });
    tmp3.remove();
  });
});

async function rawValues(logDir: string, topic = 'types.public.all_types'): Promise<string[]> {
  const { embeddedLogAt, openLog } = await import('../../../src/log/open.ts');
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    const out: string[] = [];
    for (const p of await log.offsets(topic)) for (const r of (await log.read(topic, p.partition, p.start)).records) out.push(r.value!.toString());
    return out;
  } finally {
    await log.close();
  }
}
