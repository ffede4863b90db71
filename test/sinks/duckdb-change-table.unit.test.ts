/**
 * The DuckDB sink's change table holds each logged change exactly once, with the logged values,
 * through what can make a batch meet change ids the table already holds: a restart (a new sink
 * reads what the table holds), a batch applied twice, a replay from offset 0 after the stored
 * offsets were deleted, a replay that mixes applied and new changes. The truth is the log itself,
 * read and parsed here; the current-state table must equal the last image of each key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { ChangeEvent, Row, TableSchema } from '../../src/core/event.ts';
import { SCHEMA_HEADER, schemaRecordOf, schemaTopicOf } from '../../src/core/schemas.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import type { Sink, SinkBatch } from '../../src/sinks/types.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';

const PREFIX = 'ct';
const TOPIC = `${PREFIX}.public.items`;
const quiet = createLogger({ level: 'error' });

const table: TableSchema = {
  schema: 'public',
  table: 'items',
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
    { name: 'name', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true } },
    { name: 'qty', typeOid: 23, typeName: 'integer', typeModifier: -1, key: false, optional: true, schema: { type: 'int32', optional: true } },
  ],
};

/** Appends changes: `[op, id, qty]` each (name derived), in this order. */
async function append(log: Log, changes: [ChangeEvent['op'], number, number][]): Promise<void> {
  await appendRows(
    log,
    table,
    changes.map(([op, id, qty]) => [op, { id: BigInt(id), name: `item ${id} "${qty}"`, qty }]),
  );
}

/** Appends changes of `t` (key column `id`): `[op, row]` each (a delete's row is its before image), in this order. */
async function appendRows(log: Log, t: TableSchema, changes: [ChangeEvent['op'], Row][]): Promise<void> {
  const { producer } = await log.openProducer('ct');
  const ser = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: PREFIX });
  const topic = `${PREFIX}.public.${t.table}`;
  const schema = schemaRecordOf('postgresql', topic, t);
  producer.append(schemaTopicOf(PREFIX), { key: schema.id, value: JSON.stringify(schema), timestamp: Date.now() });
  for (const [op, img] of changes) {
    const id = img.id as bigint;
    const ev: ChangeEvent = {
      topic,
      key: { id },
      // A delete's before image is the row given (REPLICA IDENTITY FULL); an update's, the key only.
      before: op === 'd' ? img : op === 'c' ? null : { ...Object.fromEntries(Object.keys(img).map((k) => [k, null])), id },
      after: op === 'd' ? null : img,
      source: { version: '0', connector: 'postgresql', name: PREFIX, ts_ms: 1_700_000_000_000 + Number(id), snapshot: 'false', db: 'ct', schema: 'public', table: t.table, txId: 1, lsn: 1, sequence: null, xmin: null },
      op,
      ts_ms: Date.now(),
      table: t,
    };
    producer.append(topic, { key: ser.keyString(ev), value: ser.valueString(ev), timestamp: 0, headers: { [SCHEMA_HEADER]: schema.id } });
  }
  await producer.commit('x');
  await producer.close();
}

/** The log's changes as the change table must hold them: id → [op, key id, name, qty]. */
async function truth(log: Log): Promise<Map<string, [string, string, string | null, number | null]>> {
  const out = new Map<string, [string, string, string | null, number | null]>();
  for (let p = 0; p < 3; p++) {
    for (let at = 0; ; ) {
      const { records, next } = await log.read(TOPIC, p, at, 1 << 20);
      for (const r of records) {
        if (!r.value) continue;
        const v = JSON.parse(r.value.toString());
        const img = v.after ?? v.before;
        out.set(String(BigInt(p) * 2n ** 40n + BigInt(r.offset)), [v.op, String(img.id), img.name, img.qty]);
      }
      if (next === at) break;
      at = next;
    }
  }
  return out;
}

/** Every batch from `offsets` (or 0) to the end, at most `max` changes each. */
async function batches(log: Log, max: number, offsets?: Map<string, Map<number, number>>, topic = TOPIC): Promise<SinkBatch[]> {
  const schemas = new SchemaStore(log, schemaTopicOf(PREFIX));
  await schemas.refresh();
  const reader = new BatchReader(log, schemas);
  reader.addTopic(topic, 3, offsets?.get(topic));
  const out: SinkBatch[] = [];
  for (let b; (b = await reader.next({ maxRecords: max, maxBytes: 1 << 30, maxDelayMs: 0 }, 0)); ) out.push(b);
  return out;
}

/** A fresh embedded log with the items topic (3 partitions) and the schema topic, in a temp dir removed after `fn`. */
async function withLog(fn: (log: Log, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ct-'));
  const log = await openLog(embeddedLogAt(join(dir, 'log')));
  try {
    await log.ensureTopic(TOPIC, { partitions: 3 });
    await log.ensureTopic(schemaTopicOf(PREFIX), { partitions: 1 });
    await fn(log, dir);
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The DuckDB sink's config writing to `duck`. */
const duckSink = (duck: string, extra = '') => parseConfig(`name: ct\nsource: { type: postgres, connection: { database: x } }\nsinks:\n  - { name: w, type: duckdb, path: ${duck}${extra} }\n`, 'ct.yaml', process.env).sinks[0];

describe('DuckDB change table', () => {
  it('holds each logged change once through restarts, batches applied twice and replays', async () => {
    await withLog(async (log, dir) => {
      const duck = join(dir, 'w.duckdb');
      const cfg = duckSink(duck);
      const open = async (): Promise<[Sink, Map<string, Map<number, number>>]> => {
        const s = await sinkSpec('duckdb').create(cfg, { pipeline: 'ct', logger: quiet, id: 'ct/w' });
        return [s, await s.open()];
      };
      const ids = Array.from({ length: 300 }, (_, i) => i + 1);
      await append(log, ids.map((id) => ['c', id, id] as [ChangeEvent['op'], number, number]));
      await append(log, [...ids.filter((id) => id % 3 === 0).map((id) => ['u', id, id + 1000] as [ChangeEvent['op'], number, number]), ...ids.filter((id) => id % 7 === 0).map((id) => ['d', id, 0] as [ChangeEvent['op'], number, number])]);

      // A first sink applies the first two batches only.
      let [sink, stored] = await open();
      const first = await batches(log, 60, stored);
      for (const b of first.slice(0, 2)) await sink.apply(b);
      await sink.close();
      // Restarted: it goes on from its offsets; then the last batch is applied once more.
      [sink, stored] = await open();
      const rest = await batches(log, 60, stored);
      assert.ok(rest.length > 2);
      for (const b of rest) await sink.apply(b);
      await sink.apply(rest[rest.length - 1]);
      // New changes, then everything from offset 0 as one batch, twice: old and new change ids mixed.
      await append(log, ids.filter((id) => id % 5 === 0 && id % 7 !== 0).map((id) => ['u', id, id + 2000] as [ChangeEvent['op'], number, number]));
      const all = await batches(log, 1_000_000);
      assert.equal(all.length, 1);
      await sink.apply(all[0]);
      await sink.apply(all[0]);
      await sink.close();
      // The stored offsets deleted: a restarted sink replays the whole log in small batches.
      const conn = await (await DuckDBInstance.fromCache(duck)).connect();
      await conn.run('DELETE FROM sluice_offsets');
      [sink, stored] = await open();
      assert.equal(stored.size, 0);
      for (const b of await batches(log, 50, stored)) await sink.apply(b);
      await sink.close();

      const want = await truth(log);
      const rows = (await conn.runAndReadAll(`SELECT __change_id, __op, id, name, qty FROM items_changes ORDER BY __change_id`)).getRows();
      assert.equal(rows.length, want.size, 'one row per logged change');
      for (const [cid, op, id, name, qty] of rows) {
        const w = want.get(String(cid));
        assert.ok(w, `change id ${cid} is a logged change`);
        assert.deepEqual([op, String(id), name, qty === null ? null : Number(qty)], w, `change ${cid}`);
      }
      // The current state: the last image of each key that was not deleted.
      const last = new Map<string, [string, string | null, number | null]>();
      for (const [, [op, id, name, qty]] of [...want].sort((a, b) => (BigInt(a[0]) % 2n ** 40n < BigInt(b[0]) % 2n ** 40n ? -1 : 1))) {
        if (op === 'd') last.delete(id);
        else last.set(id, [id, name, qty]);
      }
      const cur = (await conn.runAndReadAll(`SELECT id, name, qty FROM items ORDER BY id`)).getRows().map(([id, name, qty]) => [String(id), name, Number(qty)]);
      assert.deepEqual(cur, [...last.values()].sort((a, b) => Number(a[0]) - Number(b[0])));
      conn.closeSync();
    });
  });

  it('a batch of new changes in which keys take several values: the change table holds every value, the current state the last', async () => {
    await withLog(async (log, dir) => {
      const duck = join(dir, 'w.duckdb');
      // Keys 1..40 created, then each updated three times; keys divisible by 4 deleted and keys
      // divisible by 8 created again and updated once more: within one batch, every key's earlier
      // values are superseded by a later change of the same key.
      const ids = Array.from({ length: 40 }, (_, i) => i + 1);
      type C = [ChangeEvent['op'], number, number];
      await append(log, [
        ...ids.map((id): C => ['c', id, id]),
        ...[1, 2, 3].flatMap((n) => ids.map((id): C => ['u', id, id * 10 + n])),
        ...ids.filter((id) => id % 4 === 0).map((id): C => ['d', id, id * 10 + 3]),
        ...ids.filter((id) => id % 8 === 0).flatMap((id): C[] => [['c', id, -id], ['u', id, -id - 1]]),
      ]);
      const cfg = duckSink(duck);
      const sink = await sinkSpec('duckdb').create(cfg, { pipeline: 'ct', logger: quiet, id: 'ct/w' });
      assert.equal((await sink.open()).size, 0, 'a new sink: every change id of the batch is new to the change table');
      const all = await batches(log, 1_000_000);
      assert.equal(all.length, 1, 'every change in one batch');
      await sink.apply(all[0]);
      await sink.close();

      // The truth: the log's own changes, parsed here.
      const want = await truth(log);
      assert.equal(want.size, 40 + 120 + 10 + 10);
      const conn = await (await DuckDBInstance.fromCache(duck)).connect();
      try {
        const rows = (await conn.runAndReadAll('SELECT __change_id, __op, id, name, qty FROM items_changes ORDER BY __change_id')).getRows();
        assert.equal(rows.length, want.size, 'one row per logged change, superseded ones included');
        for (const [cid, op, id, name, qty] of rows) assert.deepEqual([op, String(id), name, qty === null ? null : Number(qty)], want.get(String(cid)), `change ${cid} holds its own values, not its key's last`);
        // Key 5 went through 5, 51, 52, 53: each value once in the change table.
        assert.deepEqual((await conn.runAndReadAll('SELECT qty FROM items_changes WHERE id = 5 ORDER BY qty')).getRows().map(([q]) => Number(q)), [5, 51, 52, 53]);
        // The current state: keys not divisible by 4 at their third update, keys divisible by 8 at their last value, the rest gone.
        const cur = (await conn.runAndReadAll('SELECT id, name, qty FROM items ORDER BY id')).getRows().map(([id, name, qty]) => [Number(id), name, Number(qty)]);
        const expected = ids.filter((id) => id % 4 !== 0 || id % 8 === 0).map((id) => (id % 8 === 0 ? [id, `item ${id} "${-id - 1}"`, -id - 1] : [id, `item ${id} "${id * 10 + 3}"`, id * 10 + 3]));
        assert.deepEqual(cur, expected);
      } finally {
        conn.closeSync();
      }
    });
  });

  it('converts superseded changes and delete images only for the change table: without one, their values cannot refuse the batch', async () => {
    await withLog(async (log, dir) => {
      const prices: TableSchema = {
        schema: 'public',
        table: 'prices',
        keyColumns: ['id'],
        columns: [
          { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
          { name: 'price', typeOid: 1700, typeName: 'numeric(5,2)', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true } },
        ],
      };
      const topic = `${PREFIX}.public.prices`;
      await log.ensureTopic(topic, { partitions: 3 });
      // Key 1's first value does not fit numeric(5,2), its last does; key 3's delete carries a
      // before image that does not fit (the log holds what it holds).
      await appendRows(log, prices, [
        ['c', { id: 1n, price: '123456.5' }],
        ['c', { id: 2n, price: '1.25' }],
        ['u', { id: 1n, price: '7.50' }],
        ['c', { id: 3n, price: '1.00' }],
        ['d', { id: 3n, price: '999999.99' }],
      ]);
      const [batch] = await batches(log, 1000, undefined, topic);
      for (const changeTableName of ['', '{table}_changes']) {
        const duck = join(dir, `w${changeTableName ? 'c' : ''}.duckdb`);
        const cfg = duckSink(duck, `, changeTableName: '${changeTableName}'`);
        const sink = await sinkSpec('duckdb').create(cfg, { pipeline: 'ct', logger: quiet, id: 'ct/w' });
        await sink.open();
        try {
          if (changeTableName) {
            await assert.rejects(sink.apply(batch), (e: Error & { code?: string }) => e.code === 'SINK_VALUE_UNREPRESENTABLE' && /column price of table public\.prices holds "123456\.5"/.test(e.message), 'the change table takes every change: refused, naming the value');
          } else {
            await sink.apply(batch);
            const conn = await (await DuckDBInstance.fromCache(duck)).connect();
            assert.deepEqual((await conn.runAndReadAll('SELECT id, price::VARCHAR FROM prices ORDER BY id')).getRows().map(([id, p]) => [Number(id), p]), [[1, '7.50'], [2, '1.25']]);
            conn.closeSync();
          }
        } finally {
          await sink.close();
        }
      }
    });
  });
});
