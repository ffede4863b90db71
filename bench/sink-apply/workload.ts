/**
 * The log the sink benchmarks read: N creates then updates of the same keys (all, or a share) of a 6-column table
 * (id bigint, name text, qty int, price numeric(12,2), updated timestamptz, note text), written
 * as Debezium JSON by the serializer the PostgreSQL source uses, in 3 partitions, with the schema
 * record in the schema topic. Used by sink-apply and log-read.
 */
import type { ChangeEvent, TableSchema } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { SCHEMA_HEADER, schemaRecordOf, schemaTopicOf } from '../../src/core/schemas.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Codec } from '../../src/log/embedded/format.ts';
import type { LogConfig } from '../../src/config/types.ts';

export const PREFIX = 'bench';
export const TOPIC = `${PREFIX}.public.items`;

const str = (optional: boolean) => ({ type: 'string' as const, optional });
export const table: TableSchema = {
  schema: 'public',
  table: 'items',
  keyColumns: ['id'],
  columns: [
    { name: 'id', typeOid: 20, typeName: 'bigint', typeModifier: -1, key: true, optional: false, schema: { type: 'int64', optional: false } },
    { name: 'name', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: str(true) },
    { name: 'qty', typeOid: 23, typeName: 'integer', typeModifier: -1, key: false, optional: true, schema: { type: 'int32', optional: true } },
    { name: 'price', typeOid: 1700, typeName: 'numeric(12,2)', typeModifier: -1, key: false, optional: true, schema: str(true) },
    { name: 'updated', typeOid: 1184, typeName: 'timestamp with time zone', typeModifier: -1, key: false, optional: true, schema: { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1 } },
    { name: 'note', typeOid: 25, typeName: 'text', typeModifier: -1, key: false, optional: true, schema: str(true) },
  ],
};

export function row(i: number, pass: number) {
  return { id: BigInt(i), name: `item ${i}`, qty: (i * 7 + pass) % 1000, price: `${(i % 100000) + pass}.${String(i % 100).padStart(2, '0')}`, updated: new Date(Date.UTC(2026, 0, 1) + i * 1000 + pass).toISOString().replace('Z', '000Z'), note: pass ? `updated note ${i}` : `note ${i}` };
}

/**
 * Writes the workload into a new embedded log at `logDir`, its batches stored as `compression`
 * says (default: the log's default): ROWS creates, then updates of every `1 / updates`-th key
 * (default all). Returns the number of changes.
 */
export async function fillLog(logDir: string, ROWS: number, compression?: Codec, updates = 1): Promise<number> {
  const every = Math.max(1, Math.round(1 / updates));
  const log = await openLog({ ...embeddedLogAt(logDir), ...(compression ? { compression } : {}) } as LogConfig);
  await log.ensureTopic(TOPIC, { partitions: 3 });
  await log.ensureTopic(schemaTopicOf(PREFIX), { partitions: 1 });
  const { producer } = await log.openProducer('bench');
  const ser = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: PREFIX });
  const schema = schemaRecordOf('postgresql', TOPIC, table);
  producer.append(schemaTopicOf(PREFIX), { key: schema.id, value: JSON.stringify(schema), timestamp: Date.now() });
  const headers = { [SCHEMA_HEADER]: schema.id };
  let n = 0;
  for (const pass of [0, 1]) {
    for (let i = 1; i <= ROWS; i++) {
      if (pass && i % every) continue;
      const ev: ChangeEvent = {
        topic: TOPIC,
        key: { id: BigInt(i) },
        before: null,
        after: row(i, pass),
        source: { version: '0', connector: 'postgresql', name: PREFIX, ts_ms: Date.now(), snapshot: 'false', db: 'bench', schema: 'public', table: 'items', txId: 1000 + n, lsn: 100_000 + n, sequence: null, xmin: null },
        op: pass ? 'u' : 'c',
        ts_ms: Date.now(),
        table,
      };
      producer.append(TOPIC, { key: ser.keyString(ev), value: ser.valueString(ev), timestamp: ev.source.ts_ms, headers });
      if (++n % 20_000 === 0) await producer.commit(String(n));
    }
  }
  await producer.commit(String(n));
  await producer.close();
  await log.close();
  return n;
}
