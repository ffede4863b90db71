/**
 * The engine's side of a source's commits (engine/source-task.ts's LogSink) on the embedded log:
 * two commits in flight, completing in order, each promoting only the schema records it carried.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ChangeEvent, TableSchema } from '../../src/core/event.ts';
import { ComponentMetrics, Registry } from '../../src/core/metrics.ts';
import { schemaRecordOf, schemaTopicOf } from '../../src/core/schemas.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import type { EventSink, Source } from '../../src/core/source.ts';
import { LogSink } from '../../src/engine/source-task.ts';
import { SchemaLedger, SchemaStore } from '../../src/engine/schema-topic.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';

const tableOf = (name: string): TableSchema => ({
  schema: 'public',
  table: name,
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
    { name: 'v', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true } },
  ],
});

function event(table: TableSchema, id: number): ChangeEvent {
  return {
    topic: `t.public.${table.table}`,
    key: { id: BigInt(id) },
    before: null,
    after: { id: BigInt(id), v: `row ${id}` },
    source: { version: '0', connector: 'postgresql', name: 't', ts_ms: 1, snapshot: 'false', db: 'd', schema: 'public', table: table.table, txId: id, lsn: id, sequence: null, xmin: null },
    op: 'c',
    ts_ms: 1,
    table,
  };
}

/** A source whose position is the number of events appended; it records what it was told is durable. */
class CountingSource implements Source {
  appended = 0;
  readonly durables: string[] = [];
  async run(_sink: EventSink): Promise<void> {}
  checkpoint(): string {
    return String(this.appended);
  }
  canCommit(): boolean {
    return true;
  }
  durable(checkpoint: string): void {
    this.durables.push(checkpoint);
  }
  status(): Record<string, unknown> {
    return {};
  }
  async stop(): Promise<void> {}
}

describe('LogSink on the embedded log', () => {
  it('runs two commits at once, completes them in order, and promotes each schema only with the commit that carried it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-logsink-'));
    try {
      const log = await openLog(embeddedLogAt(dir));
      const schemaTopic = schemaTopicOf('t');
      await log.ensureTopic(schemaTopic, { partitions: 1 });
      const { producer } = await log.openProducer('source:t');
      const source = new CountingSource();
      const ledger = new SchemaLedger();
      const every = { maxRecords: 1, maxBytes: 1 << 20, maxDelayMs: 1000 };
      const sink = new LogSink(log, producer, source, new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: 't' }), new ComponentMetrics(new Registry(), { pipeline: 't', component: 'source' }), { connector: 'postgresql', schemaTopic, topicDefaults: { partitions: 1 }, batch: every, bulk: every }, ledger);
      const [a, b] = [tableOf('a'), tableOf('b')];
      const [idA, idB] = [schemaRecordOf('postgresql', 't.public.a', a).id, schemaRecordOf('postgresql', 't.public.b', b).id];
      await sink.declareTopic('t.public.a');
      await sink.declareTopic('t.public.b');

      sink.append(event(a, 1));
      source.appended = 1;
      assert.equal(sink.maybeCommit(), undefined, 'the first commit starts without a wait');
      sink.append(event(b, 2));
      source.appended = 2;
      assert.equal(sink.maybeCommit(), undefined, 'the second starts beside the first');
      sink.append(event(b, 3));
      source.appended = 3;
      const wait = sink.maybeCommit();
      assert.ok(wait instanceof Promise, 'with two in flight the source is asked to wait');
      assert.ok(ledger.has(idA) && ledger.has(idB), 'schemas in flight are not written again');
      assert.ok(!ledger.committed.has(idA) && !ledger.committed.has(idB), 'nor counted as committed yet');

      await wait;
      assert.deepEqual(source.durables, ['1'], 'the first commit is durable first, alone');
      assert.ok(ledger.committed.has(idA), "the first commit's schema is committed");
      assert.ok(!ledger.committed.has(idB), "the second commit's schema is not, while that commit runs");

      await sink.commit();
      assert.deepEqual(source.durables, ['1', '2', '3'], 'durable in the order the commits were started');
      assert.ok(ledger.committed.has(idB));
      await producer.close();
      await log.close();

      // What the log holds, read back after reopening: every change once, the schemas once each, the last checkpoint.
      const again = await openLog(embeddedLogAt(dir));
      assert.equal((await again.openProducer('source:t')).checkpoint, '3');
      const store = new SchemaStore(again, schemaTopic);
      await store.refresh();
      assert.deepEqual([...store.ids()].sort(), [idA, idB].sort());
      assert.equal((await again.read('t.public.a', 0, 0)).records.length, 1);
      assert.deepEqual((await again.read('t.public.b', 0, 0)).records.map((r) => JSON.parse(r.key!.toString()).id), [2, 3]);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a schema whose commit failed is written again by the next attempt', () => {
    const ledger = new SchemaLedger();
    ledger.pending.add('s1');
    const first = ledger.seal();
    ledger.pending.add('s2');
    ledger.seal();
    ledger.promote(first);
    assert.ok(ledger.committed.has('s1') && ledger.has('s2'));
    // The second commit failed: the source task forgets what was not committed.
    ledger.forget();
    assert.ok(ledger.has('s1'), 'the committed schema stays known');
    assert.ok(!ledger.has('s2'), 'the failed commit’s schema is appended again');
  });
});
