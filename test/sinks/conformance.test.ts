/**
 * The sink conformance suite, run against every sink (PostgreSQL, MariaDB, DuckDB) through the
 * whole pipeline from a real PostgreSQL source: inserts/updates/deletes/key changes/truncates, all
 * types, replays of the same batch, schema change mid-stream, soft deletes with unwrap fields.
 * Each scenario ends with every target table equal to its source table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { createLogger } from '../../src/core/logger.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { schemaTopicOf } from '../../src/core/schemas.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import { parseKey, parseValue } from '../../src/core/serde/parse.ts';
import { unwrap } from '../../src/processors/unwrap/unwrap.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { pipelineYaml, readAll, tempDir, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, sourceRows, TARGETS, type ColKind, type Targets } from '../helpers/targets.ts';

const quiet = createLogger({ level: (process.env.SLUICE_TEST_LOG as "error") ?? "error" });

interface Running {
  stop(): Promise<void>;
  statusFile: string;
}

function start(name: string, db: string, dir: string, targets: Targets, sinkExtra = '', top = ''): Running {
  const cfg = parseConfig(pipelineYaml(name, db, dir, '', `${top}\n${targets.sinksYaml(sinkExtra)}`), 'test.yaml', process.env);
  const ac = new AbortController();
  const done = runPipeline(cfg, { signal: ac.signal, logger: quiet });
  done.catch(() => {});
  return {
    statusFile: join(dir, 'state', 'status.json'),
    async stop() {
      ac.abort();
      await done;
    },
  };
}

/** Waits until `table` holds the same rows in every target as in the source. */
async function converge(src: pg.Client, targets: Targets, table: string, cols: [string, ColKind][], timeoutMs = 30_000): Promise<void> {
  let last = '';
  await waitUntil(`${table} equal in every sink`, async () => {
    const want = await sourceRows(src, table, cols);
    for (const t of TARGETS) {
      const got = await targets.rows(t, table, cols).catch((e: Error) => {
        last = `${t}: ${e.message}`;
        return null;
      });
      if (!got) return false;
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        last = `${t}: ${got.length} rows vs ${want.length} in the source`;
        return false;
      }
    }
    return true;
  }, timeoutMs).catch((e: Error) => {
    throw new Error(`${e.message}; ${last}`);
  });
  // One more assertion that prints a diff when it fails.
  const want = await sourceRows(src, table, cols);
  for (const t of TARGETS) assert.deepEqual(await targets.rows(t, table, cols), want, `${t}: ${table}`);
}

describe('sink conformance (PostgreSQL, MariaDB, DuckDB)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let targets: Targets;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => {
    await db.drop();
  });

  const ITEMS: [string, ColKind][] = [['id', 'int'], ['name', 'text'], ['qty', 'int'], ['price', 'decimal']];
  const PAIRS: [string, ColKind][] = [['a', 'int'], ['b', 'text'], ['v', 'int']];

  it('applies inserts, updates, deletes, key changes and truncates; the change table holds each change once', async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    await c.query(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric(10,2));
      CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b));
      CREATE TABLE notes (id int PRIMARY KEY, body text);
      INSERT INTO items SELECT g, 'item ' || g, g, g * 1.25 FROM generate_series(1, 200) g;
      INSERT INTO pairs SELECT g % 10, 'k' || g, g FROM generate_series(1, 50) g;
      INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 30) g;`);
    const run = start('conf1', db.name, tmp.dir, targets);
    try {
      await converge(c, targets, 'items', ITEMS);
      await c.query(`INSERT INTO items SELECT g, 'item ' || g, g, g * 1.25 FROM generate_series(201, 300) g`);
      await c.query(`UPDATE items SET qty = qty * 2, name = name || ' (x2)' WHERE id % 7 = 0`);
      await c.query(`DELETE FROM items WHERE id % 11 = 0`);
      await c.query(`UPDATE items SET id = id + 10000 WHERE id BETWEEN 20 AND 25`); // key changes
      await c.query(`BEGIN; UPDATE items SET qty = 1 WHERE id = 1; UPDATE items SET qty = 2 WHERE id = 1; UPDATE items SET qty = 3 WHERE id = 1;
        INSERT INTO items VALUES (999, 'short-lived', 1, 1); DELETE FROM items WHERE id = 999;
        UPDATE items SET id = 30 WHERE id = 10030; UPDATE items SET id = 10030 WHERE id = 30; COMMIT`);
      await c.query(`DELETE FROM items WHERE id = 2; INSERT INTO items VALUES (2, 'back again', 2, 2.50)`);
      await c.query(`UPDATE pairs SET v = v + 100 WHERE a = 3; UPDATE pairs SET b = b || '-renamed' WHERE a = 4; DELETE FROM pairs WHERE a = 5`);
      await c.query(`INSERT INTO notes VALUES (100, 'before truncate'); TRUNCATE notes; INSERT INTO notes SELECT g, 'after ' || g FROM generate_series(1, 5) g`);
      await converge(c, targets, 'items', ITEMS);
      await converge(c, targets, 'pairs', PAIRS);
      await converge(c, targets, 'notes', [['id', 'int'], ['body', 'text']]);
    } finally {
      await run.stop();
    }
    // A key change is a delete of the old key (then its tombstone) and a create of the new one.
    const items = await readAll(join(tmp.dir, 'log'), 'conf1.public.items');
    const old20 = items.filter((r) => r.key?.id === 20 && r.value?.op !== 'r');
    assert.deepEqual(old20.map((r) => r.value?.op ?? 'tombstone'), ['d', 'tombstone']);
    assert.deepEqual(items.filter((r) => r.key?.id === 10020).map((r) => [r.value.op, r.value.before, r.value.after.id]), [['c', null, 10020]]);
    // The DuckDB change table has exactly the log's changes of items, each once.
    const logged = items.filter((r) => r.value !== null).length;
    assert.equal(await targets.count('duckdb', 'SELECT count(*) FROM items_changes'), logged);
    assert.equal(await targets.count('duckdb', 'SELECT count(DISTINCT __change_id) FROM items_changes'), logged);
    const deletes = (await readAll(join(tmp.dir, 'log'), 'conf1.public.items')).filter((r) => r.value?.op === 'd').length;
    assert.equal(await targets.count('duckdb', `SELECT count(*) FROM items_changes WHERE __op = 'd'`), deletes);
    assert.equal(await targets.count('duckdb', `SELECT count(*) FROM notes_changes WHERE __op = 't'`), 1, 'the truncate is one change, though it is in every partition');
    await targets.drop();
    tmp.remove();
  });

  it("applies the log written with serialization.schemas (Kafka Connect's JSON with schemas in keys and values) the same", async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    await c.query(`CREATE TABLE sk (id int PRIMARY KEY, name text, qty int, price numeric(10,2));
      CREATE TABLE sk2 (a int, b text, v int, PRIMARY KEY (a, b));
      INSERT INTO sk SELECT g, 'item ' || g, g, g * 1.25 FROM generate_series(1, 100) g;
      INSERT INTO sk2 SELECT g % 10, 'k' || g, g FROM generate_series(1, 50) g;`);
    const run = start('confs', db.name, tmp.dir, targets, '', 'serialization: { schemas: true }');
    try {
      await converge(c, targets, 'sk', ITEMS);
      // Deletes, updates and key changes of rows applied by earlier batches: the sinks find them by
      // the key, which carries its schema too in this form.
      await c.query(`DELETE FROM sk WHERE id % 3 = 0`);
      await c.query(`UPDATE sk SET qty = -qty WHERE id % 5 = 0`);
      await c.query(`UPDATE sk SET id = id + 1000 WHERE id BETWEEN 10 AND 14`);
      await c.query(`DELETE FROM sk2 WHERE a = 4; UPDATE sk2 SET v = 0 WHERE a = 5`);
      await converge(c, targets, 'sk', ITEMS);
      await converge(c, targets, 'sk2', PAIRS);
    } finally {
      await run.stop();
    }
    const keys = await readAll(join(tmp.dir, 'log'), 'confs.public.sk');
    assert.ok(keys.some((r) => r.value?.payload?.op === 'd'), 'the log holds deletes, keys and values with their schema');
    await targets.drop();
    tmp.remove();
  });

  it('maps every common type', async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    const cols: [string, ColKind, string][] = [
      ['id', 'int', 'int PRIMARY KEY'],
      ['c_small', 'int', 'smallint'],
      ['c_big', 'int', 'bigint'],
      ['c_bool', 'bool', 'boolean'],
      ['c_num', 'decimal', 'numeric(20,6)'],
      ['c_float', 'float', 'double precision'],
      ['c_text', 'text', 'text'],
      ['c_varchar', 'text', 'varchar(20)'],
      ['c_bytes', 'bytes', 'bytea'],
      ['c_date', 'date', 'date'],
      ['c_time', 'time', 'time(6)'],
      ['c_ts', 'timestamp', 'timestamp(6)'],
      ['c_tstz', 'timestamptz', 'timestamptz'],
      ['c_json', 'json', 'jsonb'],
      ['c_uuid', 'text', 'uuid'],
      ['c_arr', 'array', 'int[]'],
    ];
    await c.query(`CREATE TABLE typed (${cols.map(([n, , t]) => `${n} ${t}`).join(', ')})`);
    const row1 = `(1, 32767, 9007199254740993, true, 12345678901234.123456, 1.25, 'héllo ''quoted'' "double" \\ back', 'short', '\\x00ff10', '2024-02-29', '23:59:59.999999',
      '1999-12-31 23:59:59.999999', '2024-02-29 07:44:15.123456+02', '{"a": [1, 2, {"b": null}], "z": "ü"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,3}')`;
    const row2 = `(2, ${cols.slice(1).map(() => 'NULL').join(', ')})`;
    const row3 = `(3, -32768, -9223372036854775808, false, -0.000001, -1e-10, '', '', '\\x', '1969-07-20', '00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '[]', '00000000-0000-0000-0000-000000000000', '{}')`;
    // What a bulk load's text format has to carry: tab, newline, CR, backslash, a value spelled
    // like its NULL marker (\N) or the word NULL, 4-byte UTF-8, and bytes of every special value.
    const row4 = `(4, 0, 0, true, 0, 0, E'tab\\there, newline\\nand crlf\\r\\n, backslash \\\\ and \\\\N, the word NULL, 🙂 and 𝄞', E'\\t\\\\N\\n', '\\x00090a0d5c4e22275cff', NULL, NULL,
      NULL, NULL, '{"s": "tab\\t nl\\n bs\\\\ quote\\" 🙂", "n": "\\\\N"}', NULL, '{4,5}')`;
    const row5 = `(5, NULL, NULL, NULL, NULL, NULL, E'\\\\N', 'NULL', '\\x5c', NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;
    // Rows enough for the bulk paths (MySQL loads a table's batch of 128 rows or more), every
    // column set from g, some NULL.
    const many = (from: number, to: number) => `INSERT INTO typed SELECT g, g % 65536 - 32768, g * -1000003, g % 3 = 0, g * 1.000001, g * 0.1,
      'text ' || g || E'\\t' || repeat('é🙂', g % 4), CASE WHEN g % 5 <> 0 THEN 'v' || g END, decode(lpad(to_hex(g), 8, '0'), 'hex'), date '2000-01-01' + g,
      time '00:00:00' + g * interval '1.000001 second', timestamp '2000-01-01' + g * interval '1 hour 0.000001 second',
      timestamptz '2000-01-01 00:00:00+00' + g * interval '1 day 0.123456 second', jsonb_build_object('g', g, 's', E'tab\\t' || g), md5(g::text)::uuid, ARRAY[g, -g]
      FROM generate_series(${from}, ${to}) g`;
    await c.query(`INSERT INTO typed VALUES ${row1}`); // snapshot
    await c.query(many(100, 399));
    const run = start('conf2', db.name, tmp.dir, targets);
    try {
      const kinds = cols.map(([n, k]) => [n, k] as [string, ColKind]);
      await converge(c, targets, 'typed', kinds);
      await c.query(`BEGIN; INSERT INTO typed VALUES ${row2}, ${row3}, ${row4}, ${row5}; ${many(1000, 1299)}; COMMIT`); // streamed
      await c.query(`UPDATE typed SET c_big = 9223372036854775807, c_num = 99999999999999.999999, c_text = 'updated ✓' WHERE id = 1`);
      await converge(c, targets, 'typed', kinds);
    } finally {
      await run.stop();
    }
    await targets.drop();
    tmp.remove();
  });

  it('replaying the same batch changes nothing', async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    await c.query(`CREATE TABLE replay (id int PRIMARY KEY, name text, qty int); INSERT INTO replay SELECT g, 'r' || g, g FROM generate_series(1, 300) g`);
    const cols: [string, ColKind][] = [['id', 'int'], ['name', 'text'], ['qty', 'int']];
    const cfg = parseConfig(pipelineYaml('conf3', db.name, tmp.dir, '', targets.sinksYaml()), 'test.yaml', process.env);
    const run = start('conf3', db.name, tmp.dir, targets);
    try {
      await converge(c, targets, 'replay', cols); // the snapshot is in
      await c.query(`UPDATE replay SET qty = qty + 1000 WHERE id % 3 = 0; DELETE FROM replay WHERE id % 5 = 0; UPDATE replay SET id = id + 1000 WHERE id < 10`);
      await converge(c, targets, 'replay', cols);
    } finally {
      await run.stop();
    }
    const changesBefore = await targets.count('duckdb', 'SELECT count(*) FROM replay_changes');
    // Read the whole log again as one batch and apply it to each sink, twice.
    const log = await openLog(embeddedLogAt(join(tmp.dir, 'log')), { readOnly: true });
    try {
      for (const sc of cfg.sinks) {
        const sink = await sinkSpec(sc.type).create(sc, { pipeline: 'test', logger: quiet, id: `conf3/${sc.name}` });
        await sink.open();
        const reader = new BatchReader(log, new SchemaStore(log, schemaTopicOf('conf3')));
        const topic = 'conf3.public.replay';
        reader.addTopic(topic, 3, undefined);
        const batch = await reader.next({ maxRecords: 1_000_000, maxBytes: 1 << 30, maxDelayMs: 0 }, 0);
        assert.ok(batch && batch.records > 300, 'the replayed batch holds the snapshot and the changes');
        await sink.apply(batch);
        await sink.apply(batch);
        await sink.close();
      }
    } finally {
      await log.close();
    }
    const want = await sourceRows(c, 'replay', cols);
    for (const t of TARGETS) assert.deepEqual(await targets.rows(t, 'replay', cols), want, `${t} after replays`);
    assert.equal(await targets.count('duckdb', 'SELECT count(*) FROM replay_changes'), changesBefore, 'no change recorded twice');
    await targets.drop();
    tmp.remove();
  });

  it('follows ADD COLUMN mid-stream, and stops with a clear error on an incompatible type change', async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    await c.query(`CREATE TABLE evolving (id int PRIMARY KEY, qty int); INSERT INTO evolving SELECT g, g FROM generate_series(1, 50) g`);
    const run = start('conf4', db.name, tmp.dir, targets);
    try {
      await converge(c, targets, 'evolving', [['id', 'int'], ['qty', 'int']]);
      await c.query(`INSERT INTO evolving VALUES (51, 51); ALTER TABLE evolving ADD COLUMN note text DEFAULT 'none', ADD COLUMN amount numeric(8,2)`);
      await c.query(`INSERT INTO evolving VALUES (52, 52, 'new row', 5.25); UPDATE evolving SET note = 'touched', amount = 1.5 WHERE id <= 5`);
      // Rows not touched since the ALTER keep NULL in the target: their events never carried the column.
      await c.query(`UPDATE evolving SET note = note WHERE id > 5`);
      await converge(c, targets, 'evolving', [['id', 'int'], ['qty', 'int'], ['note', 'text'], ['amount', 'decimal']]);
      const before = await sourceRows(c, 'evolving', [['id', 'int'], ['qty', 'int']]);
      await c.query(`ALTER TABLE evolving ALTER COLUMN qty TYPE text USING 'q' || qty; UPDATE evolving SET qty = 'not a number' WHERE id = 1`);
      let status: { sinks: { name: string; state: string; error: { code: string; message: string } | null }[] } = { sinks: [] };
      await waitUntil('every sink stopped on the type change', async () => {
        status = JSON.parse(readFileSync(run.statusFile, 'utf8'));
        return status.sinks.length === 3 && status.sinks.every((s) => s.state === 'failed');
      }, 20_000);
      for (const s of status.sinks) {
        assert.equal(s.error?.code, 'SINK_SCHEMA_INCOMPATIBLE', s.name);
        assert.match(s.error!.message, /column qty of public\.evolving now holds string values/, s.name);
        assert.match(s.error!.message, /ALTER TABLE .* then restart/, s.name);
      }
      // Nothing already applied is lost.
      for (const t of TARGETS) assert.deepEqual(await targets.rows(t, 'evolving', [['id', 'int'], ['qty', 'int']]), before, t);
    } finally {
      await run.stop();
    }
    await targets.drop();
    tmp.remove();
  });

  it('soft deletes and the unwrap fields __op, __table, __source_ts_ms agree with the unwrap transform', async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    const c = db.client;
    await c.query(`CREATE TABLE soft (id int PRIMARY KEY, name text); INSERT INTO soft SELECT g, 's' || g FROM generate_series(1, 20) g`);
    const run = start('conf5', db.name, tmp.dir, targets, 'deletes: soft\naddFields: [op, table, source_ts_ms]');
    try {
      await converge(c, targets, 'soft', [['id', 'int'], ['name', 'text']]); // the snapshot is in
      await c.query(`UPDATE soft SET name = 'changed' WHERE id <= 5; DELETE FROM soft WHERE id > 15; INSERT INTO soft VALUES (100, 'new')`);
      await waitUntil('soft deletes applied everywhere', async () => {
        for (const t of TARGETS) {
          const n = await targets.count(t, 'SELECT count(*) FROM soft WHERE "__deleted"');
          if (n !== 5) return false;
        }
        return true;
      }, 30_000);
    } finally {
      await run.stop();
    }
    // What the unwrap transform makes of each key's last event, with deletes rewritten.
    const recs = (await readAll(join(tmp.dir, 'log'), 'conf5.public.soft')).filter((r) => r.value !== null);
    const lastByKey = new Map<string, (typeof recs)[number]>();
    for (const r of recs) lastByKey.set(JSON.stringify(r.key), r);
    const expected = [...lastByKey.values()]
      .map((r) => unwrap(parseValue(JSON.stringify(r.value)), parseKey(JSON.stringify(r.key)), { addFields: ['op', 'table', 'source_ts_ms'], delete: 'rewrite' }))
      .map((u) => {
        const row = (u as { row: Record<string, unknown> }).row;
        const deleted = row.__deleted === 'true';
        return [String(row.id), deleted ? '∅' : String(row.__op), String(row.__table), deleted ? 'true' : 'false'];
      })
      .sort((a, b) => Number(a[0]) - Number(b[0]));
    for (const t of TARGETS) {
      const got = (await targets.rows(t, 'soft', [['id', 'int'], ['__op', 'text'], ['__table', 'text'], ['__deleted', 'bool']]))
        // A soft delete only sets the flag: __op keeps the last upsert's value.
        .map((r) => (r[3] === 'true' ? [r[0], '∅', r[2], r[3]] : r))
        .sort((a, b) => Number(a[0]) - Number(b[0]));
      assert.deepEqual(got, expected, t);
      assert.equal(await targets.count(t, 'SELECT count(*) FROM soft WHERE "__source_ts_ms" > 1700000000000'), 21, `${t}: __source_ts_ms set`);
    }
    await targets.drop();
    tmp.remove();
  });
});
