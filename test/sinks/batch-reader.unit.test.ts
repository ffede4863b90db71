/**
 * The sink reader reduces a batch to one change per key by comparing key bytes in place, and walks
 * the embedded log's batch payloads without a record object per change (Log.readPayloads). These
 * tests hold it to what the test itself wrote: the last change of each key, per table, from any
 * starting offset (also one inside a stored batch), through the payload walk and through plain
 * `Log.read` (the path of the Kafka and NATS logs), with keys that only differ in their last byte,
 * non-ASCII keys, tombstones and records wrapped in Connect schemas beside plain ones.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChangeEvent, TableSchema } from '../../src/core/event.ts';
import { SCHEMA_HEADER, schemaRecordOf, schemaTopicOf } from '../../src/core/schemas.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { BatchReader, type ReadBatch } from '../../src/engine/batch-reader.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import type { SinkBatch, SinkRecord } from '../../src/sinks/types.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';

const PREFIX = 'br';
const TABLES = ['items', 'parts'];
const topicOf = (t: string) => `${PREFIX}.public.${t}`;

const tableOf = (name: string): TableSchema => ({
  schema: 'public',
  table: name,
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 25, typeName: 'text', typeModifier: -1, key: true, optional: false, schema: { type: 'string', optional: false } },
    { name: 'qty', typeOid: 23, typeName: 'integer', typeModifier: -1, key: false, optional: true, schema: { type: 'int32', optional: true } },
  ],
});

/** What the test wrote, in order: [table, op, id, qty]; null op: a tombstone of the key. */
type Change = [string, ChangeEvent['op'] | null, string, number];

/** Keys that differ in their last byte only, non-ASCII ones, and the same ids in both tables. */
function workload(): Change[] {
  const ids = ['k1', 'k2', 'k10', 'k11', 'ключ', 'ключ2', '鍵', '😀', 'a"b', 'a\\b'];
  for (let i = 0; i < 40; i++) ids.push(`id-${i}`);
  const out: Change[] = [];
  let q = 0;
  for (let round = 0; round < 6; round++) {
    for (const table of TABLES) {
      for (const [n, id] of ids.entries()) {
        const r = (n + round) % 5;
        if (round === 0) out.push([table, 'c', id, q++]);
        else if (r === 0) {
          out.push([table, 'd', id, q++]);
          out.push([table, null, id, q++]);
        } else if (r === 1 && round > 1) out.push([table, 'c', id, q++]);
        else out.push([table, 'u', id, q++]);
      }
    }
  }
  return out;
}

/**
 * Appends the changes in `commits` commits. The changes of every third key carry their Connect
 * schema in key and value (`serialization.schemas`): a key's records keep one form, as a topic's
 * do, since the form decides the partition.
 */
async function write(log: Log, changes: Change[], commits: number): Promise<void> {
  const { producer } = await log.openProducer('br');
  const plain = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: PREFIX });
  const wrapped = new DebeziumJsonSerializer({ schemas: true, source: postgresDebezium, serverName: PREFIX });
  const schemaIds = new Map<string, string>();
  for (const t of TABLES) {
    const s = schemaRecordOf('postgresql', topicOf(t), tableOf(t));
    schemaIds.set(t, s.id);
    producer.append(schemaTopicOf(PREFIX), { key: s.id, value: JSON.stringify(s), timestamp: Date.now() });
  }
  const per = Math.ceil(changes.length / commits);
  const wrappedKeys = new Set([...new Set(changes.map((c) => c[2]))].filter((_, n) => n % 3 === 0));
  for (const [i, [t, op, id, qty]] of changes.entries()) {
    const topic = topicOf(t);
    const ev: ChangeEvent = {
      topic,
      key: { id },
      before: op === 'd' ? { id, qty } : null,
      after: op === 'd' ? null : { id, qty },
      source: { version: '0', connector: 'postgresql', name: PREFIX, ts_ms: 1_700_000_000_000, snapshot: 'false', db: 'br', schema: 'public', table: t, txId: 1, lsn: 1, sequence: null, xmin: null },
      op: op ?? 'd',
      ts_ms: 0,
      table: tableOf(t),
    };
    const ser = wrappedKeys.has(id) ? wrapped : plain;
    producer.append(topic, { key: ser.keyString(ev), value: op === null ? null : ser.valueString(ev), timestamp: 0, headers: { [SCHEMA_HEADER]: schemaIds.get(t)! } });
    if ((i + 1) % per === 0) await producer.commit(`c${i}`);
  }
  await producer.commit('end');
  await producer.close();
}

/** The same log without `readPayloads`: what a reader of a Kafka or NATS log gets. */
function withoutPayloads(log: Log): Log {
  return new Proxy(log, { get: (target, p) => (p === 'readPayloads' ? undefined : Reflect.get(target, p, target)) });
}

/** Every batch from `from` (topic → partition → offset) to the end. */
async function readAll(log: Log, max: number, from?: Map<string, Map<number, number>>): Promise<SinkBatch[]> {
  const schemas = new SchemaStore(log, schemaTopicOf(PREFIX));
  await schemas.refresh();
  const reader = new BatchReader(log, schemas);
  for (const t of TABLES) reader.addTopic(topicOf(t), 3, from?.get(topicOf(t)));
  const out: SinkBatch[] = [];
  for (let b; (b = await reader.next({ maxRecords: max, maxBytes: 1 << 30, maxDelayMs: 0 }, 0)); ) out.push(b);
  return out;
}

/** A batch as [table, id] → [op, qty] of its last change per key, parsed from the envelopes the sink gets. */
function reduced(b: SinkBatch): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const t of b.tables) {
    for (const r of [...t.upserts, ...t.deletes]) {
      const v = JSON.parse(r.value);
      const img = v.after ?? v.before;
      assert.equal(JSON.parse(r.key!).id, img.id, `the key of ${t.topic}@${r.offset} is its row's`);
      out.set(`${t.topic.split('.').pop()}:${img.id}`, [r.op, img.qty]);
    }
  }
  return out;
}

/** The last change of each key among `changes` (tombstones change nothing: their delete came just before). */
function lastOf(changes: Change[]): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const [t, op, id, qty] of changes) if (op !== null) out.set(`${t}:${id}`, [op, qty]);
  return out;
}

async function withLog(fn: (log: Log) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-br-'));
  const log = await openLog(embeddedLogAt(join(dir, 'log')));
  try {
    for (const t of TABLES) await log.ensureTopic(topicOf(t), { partitions: 3 });
    await log.ensureTopic(schemaTopicOf(PREFIX), { partitions: 1 });
    await fn(log);
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('sink reader', () => {
  it('reduces a batch to the last change of each key, through the payload walk and through Log.read alike', async () => {
    await withLog(async (log) => {
      const changes = workload();
      await write(log, changes, 7);
      assert.ok(log.readPayloads, 'the embedded log offers the payload walk');
      const want = lastOf(changes);
      for (const [how, l] of [['payloads', log], ['Log.read', withoutPayloads(log)]] as const) {
        const [b, ...more] = await readAll(l, 1_000_000);
        assert.equal(more.length, 0, `${how}: one batch`);
        assert.deepEqual(new Map([...reduced(b)].sort()), new Map([...want].sort()), `${how}: the batch's last change per key is the last one written`);
        const n = b.tables.reduce((s, t) => s + t.changes.length, 0);
        assert.equal(n, changes.filter((c) => c[1] !== null).length, `${how}: every change, no tombstone, is in the change list`);
        for (const t of b.tables) {
          const order = new Map(changes.filter((c) => c[0] === t.topic.split('.').pop()).map((c, i) => [`${c[2]}#${c[3]}`, i]));
          for (const r of t.changes) {
            const img = JSON.parse(r.value).after ?? JSON.parse(r.value).before;
            assert.ok(order.has(`${img.id}#${img.qty}`), `${how}: ${t.topic}@${r.offset} is a change written`);
          }
        }
      }
    });
  });

  it('batches of any size, from offsets inside stored batches, hand out each change once, in order per partition', async () => {
    await withLog(async (log) => {
      const changes = workload();
      // One commit: one stored batch per partition, so every start below lies inside one.
      await write(log, changes, 1);
      const from = new Map<string, Map<number, number>>();
      for (const t of TABLES) from.set(topicOf(t), new Map((await log.offsets(topicOf(t))).map((p) => [p.partition, Math.floor(p.end / 3) + 1])));
      // The truth from offset `from` on: the log's records there, parsed (tombstones skipped).
      const after: Change[] = [];
      const seen = new Set<string>();
      for (const t of TABLES) {
        for (const p of await log.offsets(topicOf(t))) {
          for (let at = from.get(topicOf(t))!.get(p.partition)!; at < p.end; ) {
            const { records, next } = await log.read(topicOf(t), p.partition, at, 1 << 20);
            for (const r of records) {
              if (r.value === null) continue;
              const text = r.value.toString();
              const v = JSON.parse(text.startsWith('{"schema":') ? JSON.stringify(JSON.parse(text).payload) : text);
              const img = v.after ?? v.before;
              after.push([t, v.op, img.id, img.qty]);
              seen.add(`${topicOf(t)}/${p.partition}@${r.offset}`);
            }
            at = next;
          }
        }
      }
      for (const [how, l] of [['payloads', log], ['Log.read', withoutPayloads(log)]] as const) {
        for (const max of [1, 7, 100, 1_000_000]) {
          const got = new Set<string>();
          const last = new Map<string, number>();
          const merged = new Map<string, [string, number]>();
          for (const b of await readAll(l, max, from)) {
            for (const t of b.tables) {
              for (const r of t.changes) {
                const at = `${r.topic}/${r.partition}@${r.offset}`;
                assert.ok(!got.has(at), `${how}, batches of ${max}: ${at} handed out once`);
                got.add(at);
                const prev = last.get(`${r.topic}/${r.partition}`) ?? -1;
                assert.ok(r.offset > prev, `${how}, batches of ${max}: offsets rise within ${r.topic}/${r.partition}`);
                last.set(`${r.topic}/${r.partition}`, r.offset);
              }
            }
            for (const [k, v] of reduced(b)) merged.set(k, v);
          }
          assert.deepEqual([...got].sort(), [...seen].sort(), `${how}, batches of ${max}: every change at or after the start, none before`);
          assert.deepEqual(new Map([...merged].sort()), new Map([...lastOf(after)].sort()), `${how}, batches of ${max}: the last change per key`);
        }
      }
    });
  });

  it('decodes batches into buffers it reuses only once every batch that took from them is released', async () => {
    await withLog(async (log) => {
      const changes = workload();
      // Many commits: each partition holds dozens of stored batches, each decoded into a buffer of the reader's.
      await write(log, changes, 60);
      const schemas = new SchemaStore(log, schemaTopicOf(PREFIX));
      await schemas.refresh();
      // Reads of 8 KiB: each partition reads its stored batches a few at a time, into slabs it must reuse.
      const reader = new BatchReader(log, schemas, false, 8 << 10);
      for (const t of TABLES) reader.addTopic(topicOf(t), 3, undefined);
      /** Batches read but not released, each with a copy of its records' bytes as they were read. */
      const open: { batch: ReadBatch; copies: [SinkRecord, Buffer][] }[] = [];
      const handed: string[] = [];
      const buffers = new Set<ArrayBufferLike>();
      let batches = 0;
      let viewed = 0;
      for (let b; (b = await reader.next({ maxRecords: 7, maxBytes: 1 << 30, maxDelayMs: 0 }, 0)); ) {
        batches++;
        const copies: [SinkRecord, Buffer][] = [];
        for (const t of b.tables) {
          for (const r of t.changes) {
            // Records in Connect's schema wrapping come decoded (text); the others as bytes in the reader's buffers.
            if (r.bytes) {
              buffers.add(r.bytes.buffer);
              copies.push([r, Buffer.from(r.bytes)]);
            }
            const v = JSON.parse(r.value.startsWith('{"schema":') ? JSON.stringify(JSON.parse(r.value).payload) : r.value);
            const img = v.after ?? v.before;
            handed.push(`${t.topic.split('.').pop()}:${v.op}:${img.id}:${img.qty}`);
          }
        }
        viewed += copies.length;
        open.push({ batch: b, copies });
        // Up to three batches stay unreleased while later ones are read: their records must not change.
        for (const o of open) for (const [r, copy] of o.copies) assert.ok(r.bytes!.equals(copy), `batch ${o.batch.seq}: ${r.topic}/${r.partition}@${r.offset} still holds what it held when read (batch ${b.seq} read since)`);
        if (open.length === 3) reader.release(open.shift()!.batch);
      }
      const written = changes.filter((c) => c[1] !== null).map(([t, op, id, qty]) => `${t}:${op}:${id}:${qty}`);
      assert.deepEqual(handed.sort(), written.sort(), 'every change written, once, with its own data');
      const stored = (await Promise.all(TABLES.map((t) => log.offsets(topicOf(t))))).flat().length * 60;
      assert.ok(batches > 100, `many batches read (${batches})`);
      assert.ok(viewed > written.length / 2, `most changes came as bytes (${viewed} of ${written.length})`);
      assert.ok(buffers.size <= 12, `the ${batches} batches, from up to ${stored} stored ones, went through ${buffers.size} buffers: they are reused`);
    });
  });
});
