/**
 * The snapshot's `COPY … TO STDOUT` reader against the real server: every value comes back as the
 * same text a query's result carries (pg's own parsing of the same rows is the truth), whatever
 * bytes it holds (tabs, newlines, backslashes, the text `\N`, multibyte UTF-8, control characters),
 * and a read stopped early cancels the COPY on the server and leaves the connection usable. A
 * resumed table's read (its last key written into the COPY's query as literals) starts right after
 * that key, whatever the key's text or bytes hold.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { copyRows } from '../../../src/sources/postgres/copy-out.ts';
import { orderExpression, type PgKeyColumn } from '../../../src/sources/postgres/keys.ts';
import { keyAfter } from '../../../src/sources/postgres/snapshot.ts';
import { freshDatabase } from '../../helpers/pg.ts';

describe('COPY TO STDOUT reader', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  before(async () => {
    db = await freshDatabase('sluice_copyout');
  });
  after(async () => {
    await db?.drop();
  });

  it('reads every value as the text a query returns, escapes and NULLs included', async () => {
    const c = db.client;
    await c.query(`CREATE TABLE nasty (id int PRIMARY KEY, t text, b bytea, j jsonb, a text[], n numeric, ts timestamptz)`);
    const texts = ['plain', 'tab\there', 'new\nline', 'cr\rreturn', 'back\\slash', '\\N', 'N', '', ' ', 'ünïcødé ✓ 𝄞', 'ctl\u0001\u0008\u000b\u000c\u007f', 'trailing\\', '\\\\x41', 'a\tb\nc\\d'];
    for (let i = 0; i < texts.length; i++) {
      await c.query(`INSERT INTO nasty VALUES ($1::int, $2, convert_to($2, 'UTF8'), jsonb_build_object('s', $2::text), ARRAY[$2::text, NULL, 'x'], $1::int * 1.5, '2024-02-29 12:34:56.789+00')`, [i, texts[i]]);
    }
    await c.query(`INSERT INTO nasty VALUES (100, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const want = (await c.query({ text: 'SELECT id, t, b, j, a, n, ts FROM nasty ORDER BY id', rowMode: 'array', types: { getTypeParser: () => (v: string) => v } })).rows;
    const got: (string | null)[][] = [];
    for await (const rows of copyRows(c, '(SELECT id, t, b, j, a, n, ts FROM nasty ORDER BY id)', 7)) got.push(...rows);
    assert.equal(got.length, texts.length + 1);
    assert.deepEqual(got, want);
    // The text column holds exactly what was inserted (not merely what pg parsed the same way).
    assert.deepEqual(got.slice(0, texts.length).map((r) => r[1]), texts);
    assert.equal(got[texts.length][1], null);
  });

  it('a resumed read starts right after the last key read, for keys of text with quotes and backslashes, bytea and int', async () => {
    const c = db.client;
    await c.query(`CREATE TABLE keyed (name text, b bytea, n int, v int, PRIMARY KEY (name, b, n))`);
    const names = ["O'Brien", "it''s", 'back\\slash', '\\x41', 'tab\there', 'ünï', 'Z', 'a', "'; DROP TABLE keyed; --"];
    let v = 0;
    for (const name of names) for (const b of ['\\x00', '\\x27', '\\x5c5c']) for (const n of [-1, 2]) await c.query(`INSERT INTO keyed VALUES ($1, $2::bytea, $3, $4)`, [name, b, n, v++]);
    const keys: PgKeyColumn[] = [
      { name: 'name', index: 0, order: 'bytes', typeName: 'text', collate: 'collate' },
      { name: 'b', index: 1, order: 'bytes', typeName: 'bytea', collate: 'no' },
      { name: 'n', index: 2, order: 'number', typeName: 'integer', collate: 'no' },
    ];
    const exprs = keys.map((k) => orderExpression(k, false));
    const read = async (where: string) => {
      const out: (string | null)[][] = [];
      for await (const rows of copyRows(c, `(SELECT name, b, n, v FROM keyed${where} ORDER BY ${exprs.join(', ')})`, 4)) out.push(...rows);
      return out;
    };
    const all = await read('');
    assert.equal(all.length, names.length * 6);
    for (let i = 0; i < all.length; i++) {
      const rest = await read(` WHERE ${keyAfter(c, keys, exprs, all[i].slice(0, 3))}`);
      assert.deepEqual(rest, all.slice(i + 1), `after key ${JSON.stringify(all[i].slice(0, 3))}`);
    }
    assert.equal((await c.query('SELECT count(*)::int AS n FROM keyed')).rows[0].n, all.length, 'the table is intact');
  });

  it('a read stopped early cancels the COPY on the server; the connection then runs the next statement', async () => {
    const c = db.client;
    const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p;
    let rows = 0;
    await c.query('BEGIN');
    // Five million rows: it is the cancel that ends this COPY, not its end.
    for await (const batch of copyRows(c, "(SELECT g, repeat('x', 100) FROM generate_series(1, 5000000) g)", 2, 1000)) {
      rows += batch.length;
      if (rows >= 5000) break;
    }
    assert.ok(rows >= 5000 && rows < 1_000_000, `read ${rows} rows before stopping`);
    // The server canceled the statement: its transaction is aborted (a COPY read to its end would not be).
    await assert.rejects(c.query('SELECT 1'), /current transaction is aborted/);
    await c.query('ROLLBACK');
    assert.equal((await c.query('SELECT 41 + 1 AS x')).rows[0].x, 42, 'the connection answers the next statement');
    assert.equal((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p, pid, 'on the same server session');
  });

  it('an error inside the COPY reaches the reader with the server\'s message', async () => {
    await assert.rejects(
      (async () => {
        for await (const rows of copyRows(db.client, '(SELECT 1 / (g - 3) FROM generate_series(1, 5) g)', 1)) void rows;
      })(),
      /division by zero/,
    );
    assert.equal((await db.client.query('SELECT 1 AS x')).rows[0].x, 1);
  });
});
