/**
 * The PostgreSQL sink's COPY rows (src/sinks/postgres/copy.ts), checked by PostgreSQL itself:
 * envelopes written by JSON.stringify (not Sluice's serializer) with hostile strings are turned into
 * COPY text, loaded into a real table, and read back; each value must equal the string JSON.parse
 * gives, and what `json_to_recordset` gives for the same JSON (the sink's other path). A refused
 * row fails the COPY with the server's error and leaves the connection usable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { freshDatabase } from '../helpers/pg.ts';
import { ByteSink } from '../../src/core/bytes.ts';
import { copyIn, copyRow, type CopyLayout } from '../../src/sinks/postgres/copy.ts';
import { copyRowsAsValues } from '../../src/sinks/postgres/sink.ts';

const HOSTILE = [
  '',
  'plain',
  'tab\there, newline\nthere, cr\r',
  'back\\slash \\N \\t not escapes',
  'quote " and \' and /',
  'control \u0001 \u001f \u007f',
  'emoji 🙂 ü 中文 𝄞',
  '\\',
  'ends with backslash \\',
  '\b\f',
];

describe('PostgreSQL sink: COPY rows from envelope bytes', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  async function load(c: pg.Client, table: string, layout: CopyLayout, envelopes: string[], ops: string[] = []): Promise<unknown[][]> {
    const out = new ByteSink(16);
    const cells = new Int32Array(2 * layout.names.length);
    envelopes.forEach((e, i) => copyRow(out, Buffer.from(e), ops[i] ?? 'c', layout, cells));
    await copyIn(c, table, out.view());
    return (await c.query({ text: `SELECT * FROM ${table} ORDER BY 1`, rowMode: 'array' })).rows;
  }

  it('every string, number, boolean, null, nested value and absent field arrives as json_to_recordset reads it', async () => {
    const c = db.client;
    await c.query('CREATE TABLE t (n int, s text, x text, j text, b text, z text, missing text, "__sluice_op" text, "__sluice_ts" text)');
    const layout: CopyLayout = { names: ['n', 's', 'x', 'j', 'b', 'z', 'missing'], rewrite: [null, null, null, null, null, null, null], zoned: [false, false, false, false, false, false, false], meta: true };
    const afters = HOSTILE.map((s, n) => ({ n, s, x: n % 2 ? 12.5e3 : -7, j: { k: s, arr: [1, 'a\\b', null] }, b: n % 3 === 0, z: null }));
    // Out-of-order keys and whitespace, as another writer might lay an envelope out.
    const envelopes = afters.map((a, i) => (i === 3 ? `{ "before" : null , "after" : { "s" : ${JSON.stringify(a.s)}, "n" : ${a.n}, "z": null, "j": ${JSON.stringify(a.j)}, "x": ${a.x}, "b": ${a.b} },"source":{"ts_ms":1700000000123},"op":"u"}` : JSON.stringify({ before: null, after: a, source: { version: '1', ts_ms: 1700000000000 + i }, op: 'c' })));
    const rows = await load(c, 't', layout, envelopes, envelopes.map((_, i) => (i === 3 ? 'u' : 'c')));
    const viaJson = (await c.query({ text: `SELECT n::int, s, x, j, b, z FROM json_to_recordset($1::json) AS u(n text, s text, x text, j text, b text, z text) ORDER BY 1`, values: [JSON.stringify(afters)], rowMode: 'array' })).rows;
    assert.equal(rows.length, HOSTILE.length);
    for (let i = 0; i < rows.length; i++) {
      const [n, s, x, j, b, z, missing, op, ts] = rows[i] as (string | number | null)[];
      assert.equal(n, i);
      assert.equal(s, HOSTILE[i], `string ${JSON.stringify(HOSTILE[i])}`);
      assert.deepEqual(JSON.parse(String(j)), afters[i].j);
      assert.equal(z, null);
      assert.equal(missing, null);
      assert.equal(op, i === 3 ? 'u' : 'c');
      assert.equal(ts, i === 3 ? '1700000000123' : String(1700000000000 + i));
      assert.deepEqual([n, s, x, j, b, z], viaJson[i], `row ${i} as json_to_recordset reads it`);
    }
  });

  it("the same rows inline (a small batch's VALUES list of E'' literals) are what COPY reads from them", async () => {
    const c = db.client;
    const cols = '(n int, s text, j text, z text, "__sluice_op" text, "__sluice_ts" text)';
    await c.query(`CREATE TABLE viacopy ${cols}; CREATE TABLE viavalues ${cols}`);
    const layout: CopyLayout = { names: ['n', 's', 'j', 'z'], rewrite: [null, null, null, null], zoned: [false, false, false, false], meta: true };
    const envelopes = HOSTILE.map((s, n) => JSON.stringify({ before: null, after: { n, s, j: { k: s, q: "it's" }, z: n % 2 ? null : `${s}'${s}` }, source: { ts_ms: 1700000000000 + n }, op: 'c' }));
    const out = new ByteSink(16);
    const cells = new Int32Array(2 * layout.names.length);
    envelopes.forEach((e) => copyRow(out, Buffer.from(e), 'c', layout, cells));
    await copyIn(c, 'viacopy', out.view());
    await c.query(`INSERT INTO viavalues SELECT c1::int, c2, c3, c4, c5, c6 FROM (VALUES ${copyRowsAsValues(out.view())}) AS u(c1, c2, c3, c4, c5, c6)`);
    const [a, b] = await Promise.all(['viacopy', 'viavalues'].map(async (t) => (await c.query({ text: `SELECT * FROM ${t} ORDER BY 1`, rowMode: 'array' })).rows));
    assert.equal(a.length, HOSTILE.length);
    assert.deepEqual(b, a);
    assert.deepEqual(b.map((r) => r[1]), HOSTILE, 'and each string is the one written');
  });

  it('timestamptz with signed and zero ISO years is staged in the spelling PostgreSQL reads', async () => {
    const c = db.client;
    await c.query('CREATE TABLE tz (id int, v text)');
    const values = ['2024-02-29T13:14:15.123456Z', '0000-01-01T00:00:00Z', '-000099-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', 'infinity', '-infinity'];
    const layout: CopyLayout = { names: ['id', 'v'], rewrite: [null, null], zoned: [false, true], meta: false };
    const rows = await load(c, 'tz', layout, values.map((v, id) => JSON.stringify({ before: null, after: { id, v }, source: {}, op: 'c' })));
    const got = (await c.query({ text: `SELECT v::timestamptz = w::timestamptz FROM tz JOIN (VALUES (0, '2024-02-29 13:14:15.123456+00'), (1, '0001-01-01 00:00:00+00 BC'), (2, '0100-01-01 00:00:00+00 BC'), (3, '10000-01-01 00:00:00+00'), (4, 'infinity'), (5, '-infinity')) AS e(id, w) USING (id) ORDER BY id`, rowMode: 'array' })).rows;
    assert.equal(rows.length, values.length);
    assert.deepEqual(got, values.map(() => [true]));
  });

  it('a row the server refuses fails the COPY with its error, and the connection goes on', async () => {
    const c = db.client;
    await c.query('CREATE TABLE ints (id int)');
    const layout: CopyLayout = { names: ['id'], rewrite: [null], zoned: [false], meta: false };
    await assert.rejects(
      load(c, 'ints', layout, ['{"after":{"id":1}}', '{"after":{"id":"x"}}']),
      (e: Error & { code?: string }) => e.code === '22P02' && /invalid input syntax for type integer: "x"/.test(e.message),
    );
    assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM ints')).rows, [{ n: 0 }]);
  });
});
