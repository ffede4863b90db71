/**
 * PostgreSQL → embedded log, end to end against the real server: snapshot, then streaming of
 * insert/update/delete/truncate, restart without loss or duplicates, heartbeats advancing the slot.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/core/logger.ts';
import { runPipeline } from '../../../src/engine/runner.ts';
import { adminClient } from '../../helpers/pg.ts';
import { countRecords, pipelineConfig, readAll, readSchemas, tempDir, useDatabase, waitUntil, logDirOf } from '../../helpers/pipeline.ts';
import { assertResumedSnapshot, changesAcrossTheBoundary } from '../../helpers/snapshot-resume.ts';

describe('postgres source → embedded log', () => {
  const f = useDatabase(`
      CREATE TABLE customers (id int PRIMARY KEY, first_name text NOT NULL, last_name text, email text, balance numeric(30,4), big int8, seen timestamptz);
      CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, note text);
      CREATE TABLE nokey (a int, b text);
      INSERT INTO customers SELECT g, 'first' || g, 'last' || g, 'c' || g || '@example.com', g * 1.5, 9223372036854775807 - g, '2024-01-02 03:04:05.123456+00' FROM generate_series(1, 500) g;
      INSERT INTO orders (customer_id, note) SELECT g % 50 + 1, 'order ' || g FROM generate_series(1, 200) g;
    `);

  it('snapshots existing rows, streams changes, and resumes after a stop with nothing lost or repeated', async () => {
    const cfg = pipelineConfig('t1', f.db.name, f.tmp.dir);
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    const logDir = logDirOf(cfg);
    try {
    await waitUntil('snapshot of 700 rows', async () => (await readAll(logDir, 't1.')).filter((r) => r.value?.op === 'r').length === 700);

    await f.db.client.query(`INSERT INTO customers (id, first_name, big, balance) VALUES (1001, 'Ann', -9223372036854775808, 12345678901234567890.1234)`);
    await f.db.client.query(`UPDATE customers SET email = 'ann@example.com' WHERE id = 1001`);
    await f.db.client.query(`DELETE FROM customers WHERE id = 2`);
    await f.db.client.query(`BEGIN; INSERT INTO nokey VALUES (1, 'x'); UPDATE orders SET note = 'changed' WHERE id = 5; COMMIT`);
    await f.db.client.query(`TRUNCATE nokey`);
    await waitUntil('streamed changes', async () => (await readAll(logDir, 't1.')).some((r) => r.value?.op === 't'));
    } finally {
      ac.abort();
      await run;
    }

    const recs = await readAll(logDir, 't1.');
    const cust = recs.filter((r) => r.topic === 't1.public.customers');
    const snap = cust.filter((r) => r.value?.op === 'r');
    assert.equal(snap.length, 500);
    const s1 = snap.find((r) => r.key.id === 1)!;
    assert.equal(s1.value.after.first_name, 'first1');
    assert.equal(s1.value.after.balance, '1.5000');
    // Debezium's markers: first row of the snapshot, first/last of each table, last of all.
    const marks = (await readAll(logDir, 't1.')).filter((r) => r.value?.op === 'r').map((r) => r.value.source.snapshot);
    assert.deepEqual(marks.filter((m: string) => m !== 'true').sort(), ['first', 'first_in_data_collection', 'last', 'last_in_data_collection']);
    const ins = cust.find((r) => r.value?.op === 'c')!;
    assert.deepEqual(ins.key, { id: 1001 });
    assert.equal(ins.value.before, null);
    assert.equal(ins.value.after.balance, '12345678901234567890.1234');
    assert.equal(ins.value.source.table, 'customers');
    assert.equal(ins.value.source.schema, 'public');
    assert.equal(ins.value.source.db, f.db.name);
    assert.equal(ins.value.source.connector, 'postgresql');
    assert.equal(typeof ins.value.source.lsn, 'number');
    assert.equal(typeof ins.value.source.txId, 'number');
    const upd = cust.find((r) => r.value?.op === 'u')!;
    assert.equal(upd.value.after.email, 'ann@example.com');
    const del = cust.filter((r) => r.key?.id === 2 && r.value?.op !== 'r');
    assert.equal(del.length, 2, 'a delete event then a tombstone');
    assert.equal(del[0].value.op, 'd');
    assert.equal(del[0].value.before.id, 2);
    assert.equal(del[0].value.after, null);
    assert.equal(del[1].value, null);
    assert.equal(del[0].partition, del[1].partition);
    const trunc = recs.filter((r) => r.topic === 't1.public.nokey' && r.value?.op === 't');
    // A truncate goes to every partition, so each partition's consumer sees it in order.
    assert.deepEqual(trunc.map((r) => r.partition).sort(), [0, 1, 2]);
    assert.ok(trunc.every((r) => r.key === null));
    // Raw bytes keep int8 exact.
    const raw = (await readAll(logDir, 't1.public.customers')).length;
    assert.ok(raw > 500);

    // Changes while stopped arrive on restart; nothing earlier is repeated.
    await f.db.client.query(`UPDATE customers SET last_name = 'while-stopped' WHERE id = 10`);
    const ac2 = new AbortController();
    const run2 = runPipeline(cfg, { signal: ac2.signal });
    try {
      await waitUntil('change made while stopped', async () => (await readAll(logDir, 't1.public.customers')).some((r) => r.value?.after?.last_name === 'while-stopped'));
    } finally {
      ac2.abort();
      await run2;
    }
    const again = await readAll(logDir, 't1.');
    assert.equal(again.filter((r) => r.value?.op === 'r').length, 700, 'snapshot not repeated');
    const lsns = again.filter((r) => r.value && r.value.op !== 'r').map((r) => `${r.value.source.lsn}/${r.topic}/${r.partition}/${JSON.stringify(r.key)}/${r.value.op}`);
    assert.equal(new Set(lsns).size, lsns.length, 'no stream event twice');
    assert.equal(again.filter((r) => r.value?.after?.last_name === 'while-stopped').length, 1);
  });

  it('follows ALTER TABLE mid-stream and adds the transaction block when enabled', async () => {
    const tmp3 = tempDir();
    await f.db.client.query(`CREATE TABLE evolving (id int PRIMARY KEY, a text)`);
    const cfg = pipelineConfig('ddl', f.db.name, tmp3.dir, 'slot: sluice_ddl_test\npublication: sluice_ddl_pub\ntables: [public.evolving]\nsnapshot: never\ntransactionMetadata: true');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    try {
      await waitUntil('slot active', async () => (await f.db.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_ddl_test' AND active`)).rowCount === 1);
      await f.db.client.query(`INSERT INTO evolving VALUES (1, 'before')`);
      await f.db.client.query(`ALTER TABLE evolving ADD COLUMN b int DEFAULT 7`);
      await f.db.client.query(`BEGIN; INSERT INTO evolving VALUES (2, 'after', 8); UPDATE evolving SET a = 'x' WHERE id = 1; COMMIT`);
      await f.db.client.query(`ALTER TABLE evolving DROP COLUMN a`);
      await f.db.client.query(`INSERT INTO evolving VALUES (3, 9)`);
      await waitUntil('three inserts', async () => (await readAll(cfg.log, 'ddl.public.evolving')).filter((r) => r.value?.op === 'c').length === 3);
      const recs = (await readAll(cfg.log, 'ddl.public.evolving')).map((r) => r.value);
      const byId = (id: number, op: string) => recs.find((v) => v.op === op && v.after.id === id);
      assert.deepEqual(byId(1, 'c').after, { id: 1, a: 'before' });
      assert.deepEqual(byId(2, 'c').after, { id: 2, a: 'after', b: 8 });
      assert.deepEqual(byId(1, 'u').after, { id: 1, a: 'x', b: 7 });
      assert.deepEqual(byId(3, 'c').after, { id: 3, b: 9 });
      const t2 = byId(2, 'c').transaction;
      const t1u = byId(1, 'u').transaction;
      assert.equal(t2.id, t1u.id, 'same transaction id for both changes of one transaction');
      assert.equal(t2.total_order, 1);
      assert.equal(t1u.total_order, 2);
      assert.equal(t1u.data_collection_order, 2);
      assert.match(t2.id, /^\d+:\d+$/);
      // BEGIN and END records on the transaction topic, END counting the events per table.
      const txs = (await readAll(cfg.log, 'ddl.transaction')).map((r) => r.value);
      const mine = txs.filter((v) => v.id === t2.id);
      assert.deepEqual(mine.map((v) => v.status), ['BEGIN', 'END']);
      assert.equal(mine[1].event_count, 2);
      assert.deepEqual(mine[1].data_collections, [{ data_collection: 'public.evolving', event_count: 2 }]);
      assert.equal(txs.filter((v) => v.status === 'BEGIN').length, 3, 'one BEGIN per transaction that changed the table (the ALTERs send none)');
    } finally {
      ac.abort();
      await run;
      tmp3.remove();
    }
  });

  it('names a column by the type its change was written with, even when a later ALTER … TYPE committed before the change was read', async () => {
    const tmp = tempDir();
    await f.db.client.query(`CREATE TABLE retyped (id int PRIMARY KEY, price int)`);
    const cfg = pipelineConfig('rt', f.db.name, tmp.dir, 'slot: sluice_rt_test\npublication: sluice_rt_pub\ntables: [public.retyped]\nsnapshot: never');
    const creates = async () => (await readAll(cfg.log, 'rt.public.retyped')).filter((r) => r.value?.op === 'c');
    try {
      let ac = new AbortController();
      let run = runPipeline(cfg, { signal: ac.signal });
      try {
        await waitUntil('slot active', async () => (await f.db.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_rt_test' AND active`)).rowCount === 1);
      } finally {
        ac.abort();
        await run;
      }
      // Written while nothing reads the slot: both changes are decoded after the ALTER, always.
      await f.db.client.query(`INSERT INTO retyped VALUES (1, 1)`);
      const before = (await f.db.client.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'retyped'::regclass AND attname = 'price'`)).rows[0].t;
      await f.db.client.query(`ALTER TABLE retyped ALTER COLUMN price TYPE numeric(12,2)`);
      const after = (await f.db.client.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'retyped'::regclass AND attname = 'price'`)).rows[0].t;
      await f.db.client.query(`INSERT INTO retyped VALUES (2, 2.5)`);
      ac = new AbortController();
      run = runPipeline(cfg, { signal: ac.signal });
      try {
        await waitUntil('both inserts', async () => (await creates()).length === 2);
      } finally {
        ac.abort();
        await run;
      }
      const schemas = await readSchemas(cfg.log, 'rt');
      const typeOf = (r: { headers?: Record<string, string> }) => schemas.get(r.headers?.s ?? "")?.columns.find((c: { name: string }) => c.name === 'price')?.sourceType;
      const [one, two] = (await creates()).sort((a, b) => a.value.after.id - b.value.after.id);
      assert.equal(one.value.after.price, 1);
      assert.equal(typeOf(one), before, 'the first change keeps the type it was written with');
      assert.equal(typeOf(two), after);
    } finally {
      tmp.remove();
    }
  });

  it('reconnects by itself when the server drops its connections, losing and repeating nothing', async () => {
    const tmp5 = tempDir();
    await f.db.client.query(`CREATE TABLE flaky (id int PRIMARY KEY, v int)`);
    const cfg = pipelineConfig('flaky', f.db.name, tmp5.dir, 'slot: sluice_flaky_t\npublication: sluice_flaky_pub\ntables: [public.flaky]\nsnapshot: never');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    const admin = await adminClient();
    try {
      let id = 0;
      for (let round = 0; round < 3; round++) {
        await waitUntil('slot active', async () => (await admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_flaky_t' AND active`)).rowCount === 1, 30_000);
        for (let i = 0; i < 50; i++) await f.db.client.query(`INSERT INTO flaky VALUES ($1, $1)`, [++id]);
        // Cut every connection of the pipeline: the walsender and its catalog/heartbeat session.
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sluice' AND datname = $1`, [f.db.name]);
        for (let i = 0; i < 50; i++) await f.db.client.query(`INSERT INTO flaky VALUES ($1, $1)`, [++id]);
      }
      // Each cut costs the source a reconnect with backoff; on a loaded 2-core machine three rounds took over a minute.
      await waitUntil('all 300 rows', async () => (await readAll(cfg.log, 'flaky.public.flaky')).length >= 300, 150_000);
      const ids = (await readAll(cfg.log, 'flaky.public.flaky')).map((r) => r.key.id).sort((a: number, b: number) => a - b);
      assert.deepEqual(ids, Array.from({ length: 300 }, (_, i) => i + 1), 'every row exactly once');
    } finally {
      await admin.end();
      ac.abort();
      await run;
      tmp5.remove();
    }
  });

  it('commits a stream of small transactions as changes only: no position-only commit after each, and the slot still confirmed past the last', async () => {
    const tmp3 = tempDir();
    const cfg = pipelineConfig('pace', f.db.name, tmp3.dir, 'slot: sluice_pace_test\npublication: sluice_pace_pub\ntables: [public.orders]\nsnapshot: never');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    const admin = await adminClient();
    const N = 60;
    try {
      await waitUntil('slot created', async () => (await admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_pace_test' AND active`)).rowCount === 1);
      const before = (await readAll(logDirOf(cfg), 'pace.')).length;
      // One change per transaction, each committed before the next: the source goes idle after
      // every one, which is when a commit of the position alone used to follow each commit of changes.
      for (let i = 0; i < N; i++) {
        await f.db.client.query(`INSERT INTO orders (customer_id, note) VALUES (1, 'paced ${i}')`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const last = (await f.db.client.query(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0].l;
      await waitUntil(`${N} changes in the log`, async () => (await readAll(logDirOf(cfg), 'pace.')).length - before === N);
      await waitUntil('confirmed_flush_lsn past the last transaction', async () => {
        const r = await admin.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'sluice_pace_test'`, [last]);
        return r.rows[0]?.ok === true;
      }, 20_000);
    } finally {
      await admin.end();
      ac.abort();
      await run;
    }
    try {
      // The journal's records (length u32 | crc32 u32 | JSON, see src/log/embedded/journal.ts): the source's commits.
      const j = readFileSync(join(logDirOf(cfg), 'commits.journal'));
      const commits: { parts: unknown[] }[] = [];
      for (let p = 0; p + 8 <= j.length; p += 8 + j.readUInt32BE(p)) {
        const r = JSON.parse(j.toString('utf8', p + 8, p + 8 + j.readUInt32BE(p)));
        if (r.p === 'source:pace') commits.push(r);
      }
      const withChanges = commits.filter((c) => c.parts.length > 0).length;
      const empty = commits.length - withChanges;
      assert.ok(withChanges >= 1 && withChanges <= N, `${withChanges} commits carried the ${N} changes`);
      // Some position-only commits are right (the start, heartbeats, the stop: 0–6 seen); one per transaction is the defect.
      assert.ok(empty <= N / 4, `${empty} of the source's ${commits.length} commits carried no records (${withChanges} carried the ${N} changes)`);
    } finally {
      tmp3.remove();
    }
  });

  it('confirms heartbeat positions so an idle slot does not hold back WAL', async () => {
    const tmp2 = tempDir();
    const cfg = pipelineConfig('hb', f.db.name, tmp2.dir, 'slot: sluice_hb_test\npublication: sluice_hb_pub\ntables: [public.orders]\nsnapshot: never');
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal });
    const admin = await adminClient();
    try {
      await waitUntil('slot created', async () => (await admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_hb_test' AND active`)).rowCount === 1);
      // WAL written elsewhere (another database): nothing for this slot to decode.
      await admin.query(`CREATE TABLE IF NOT EXISTS sluice_wal_filler (x text)`);
      await admin.query(`INSERT INTO sluice_wal_filler SELECT repeat('x', 100) FROM generate_series(1, 2000)`);
      const target = (await admin.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l;
      await waitUntil('confirmed_flush_lsn past the WAL written elsewhere', async () => {
        const r = await admin.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'sluice_hb_test'`, [target]);
        return r.rows[0]?.ok === true;
      }, 20_000);
    } finally {
      await admin.query(`DROP TABLE IF EXISTS sluice_wal_filler`);
      await admin.end();
      ac.abort();
      await run;
      tmp2.remove();
    }
  });

  it('a stop in the middle of a table\'s snapshot keeps its committed chunks; the restart reads the rest, and the stream leaves out exactly what the second read holds', async () => {
    const n = 300_000;
    await f.db.client.query(`CREATE TABLE snapbig (id int PRIMARY KEY, v int NOT NULL, pad text); INSERT INTO snapbig SELECT g, 1, 'x' FROM generate_series(1, ${n}) g`);
    const tmp6 = tempDir();
    try {
      const cfg = pipelineConfig('half', f.db.name, tmp6.dir, 'slot: sluice_half_t\npublication: sluice_half_pub\ntables: [public.snapbig]');
      const topic = 'half.public.snapbig';
      const ac = new AbortController();
      const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'error' }) });
      // Stop as soon as the first chunks are committed: well inside the table.
      await waitUntil('the first chunks of snapbig in the log', async () => (await countRecords(cfg.log, topic)) > 0);
      ac.abort();
      await run;
      const first = await readAll(cfg.log, topic);
      const k = first.length;
      assert.ok(k > 0 && k < n - 10, `the stop came mid-table (${k} of ${n} rows in the log)`);
      // Chunks hold a prefix of the table in key order.
      assert.deepEqual(first.map((r) => r.key.id).sort((a, b) => a - b), Array.from({ length: k }, (_, i) => i + 1));
      for (const sql of changesAcrossTheBoundary('snapbig', k, n)) await f.db.client.query(sql);
      const ac2 = new AbortController();
      const run2 = runPipeline(cfg, { signal: ac2.signal, logger: createLogger({ level: (process.env.SLUICE_TEST_LOG as 'info') ?? 'error' }) });
      try {
        // The last change made while stopped creates key -7: once it is in, everything before it is.
        await waitUntil('the rest of the table read', async () => JSON.parse(readFileSync(join(cfg.state.dir, 'status.json'), 'utf8')).source?.phase === 'stream', 120_000);
        await waitUntil('the changes streamed', async () => (await readAll(cfg.log, topic)).some((r) => r.key?.id === -7), 60_000);
      } finally {
        ac2.abort();
        await run2;
      }
      const table = new Map<number, number>((await f.db.client.query('SELECT id, v FROM snapbig')).rows.map((r: any) => [r.id, r.v]));
      assertResumedSnapshot(await readAll(cfg.log, topic), k, n, table);
    } finally {
      tmp6.remove();
      await f.db.client.query(`DROP TABLE snapbig`);
    }
  });
});
