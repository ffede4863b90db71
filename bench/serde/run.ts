/**
 * Debezium JSON serialization speed: Sluice's hand-written serializer against JSON.stringify of the
 * same envelope objects (with a bigint → string replacer, the least a generic writer needs), in the
 * same process and run. Prints events/s for key+value, with and without the schema part.
 *
 *   node --import tsx bench/serde/run.ts [events=200000] [rounds=5]
 */
import type { ChangeEvent, ColumnInfo, FieldSchema, TableSchema } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { parseValue } from '../../src/core/serde/parse.ts';
import { SLUICE_VERSION } from '../../src/core/version.ts';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 5);

const col = (name: string, schema: FieldSchema, key = false): ColumnInfo => ({ name, typeOid: 0, typeName: schema.type, typeModifier: -1, key, optional: schema.optional, schema });
const table: TableSchema = {
  schema: 'public',
  table: 'orders',
  keyColumns: ['id'],
  columns: [
    col('id', { type: 'int64', optional: false }, true),
    col('customer_id', { type: 'int32', optional: false }),
    col('status', { type: 'string', optional: true }),
    col('total', { type: 'string', optional: true }),
    col('created_at', { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1 }),
    col('note', { type: 'string', optional: true }),
  ],
};

function makeEvents(n: number): ChangeEvent[] {
  const out: ChangeEvent[] = [];
  for (let i = 0; i < n; i++) {
    const id = BigInt(1_000_000 + i);
    const after = { id, customer_id: i % 5000, status: i % 3 ? 'paid' : 'new', total: `${(i % 997) + 1}.${i % 100}`, created_at: '2024-05-20T10:11:12.123456Z', note: i % 7 ? null : 'gift "wrap" ✓' };
    out.push({
      topic: 'shop.public.orders',
      key: { id },
      before: null,
      after,
      source: { version: SLUICE_VERSION, connector: 'postgresql', name: 'shop', ts_ms: 1716200000000 + i, ts_us: (1716200000000 + i) * 1000 + 123, snapshot: 'false', db: 'shop', sequence: `["23653648","${23653872 + i * 64}"]`, schema: 'public', table: 'orders', txId: 768 + (i >> 4), lsn: 23653872 + i * 64, xmin: null },
      op: 'c',
      ts_ms: 1716200000131 + i,
      transaction: null,
      table,
    });
  }
  return out;
}

const replacer = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

function reference(ev: ChangeEvent): [string, string] {
  const value = { before: ev.before, after: ev.after, source: ev.source, op: ev.op, ts_ms: ev.ts_ms, ts_us: ev.ts_ms * 1000, ts_ns: ev.ts_ms * 1e6, transaction: ev.transaction ?? null };
  return [JSON.stringify(ev.key, replacer), JSON.stringify(value, replacer)];
}

function run(name: string, events: ChangeEvent[], fn: (ev: ChangeEvent) => number): number {
  let best = 0;
  let bytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    bytes = 0;
    for (let i = 0; i < events.length; i++) bytes += fn(events[i]);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.max(best, events.length / s);
  }
  console.log(`${name.padEnd(44)} ${Math.round(best).toLocaleString('en-US').padStart(12)} events/s   ${(bytes / events.length).toFixed(0)} B/event`);
  return best;
}

const events = makeEvents(N);
const plain = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: 'shop' });
const withSchema = new DebeziumJsonSerializer({ schemas: true, source: postgresDebezium, serverName: 'shop' });

console.log(`Debezium JSON serialization, ${N} events × ${ROUNDS} rounds (best round), Node ${process.version}`);
const ref = run('reference: JSON.stringify + bigint replacer', events, (ev) => {
  const [k, v] = reference(ev);
  return k.length + v.length;
});
const ours = run('sluice: keyString + valueString', events, (ev) => plain.keyString(ev)!.length + plain.valueString(ev).length);
run('sluice: key() + value() (Buffers)', events, (ev) => plain.key(ev)!.length + plain.value(ev).length);
run('sluice: with schema part (strings)', events, (ev) => withSchema.keyString(ev)!.length + withSchema.valueString(ev).length);
const values = events.slice(0, Math.min(N, 50_000)).map((ev) => plain.value(ev));
run('parse.ts: parseValue (schemaless, + table)', events.slice(0, values.length), (() => {
  let i = 0;
  return () => {
    parseValue(values[i++ % values.length], { table });
    return 0;
  };
})());
run('reference: JSON.parse', events.slice(0, values.length), (() => {
  let i = 0;
  return () => {
    JSON.parse(values[i++ % values.length].toString());
    return 0;
  };
})());
console.log(`sluice / reference: ${(ours / ref).toFixed(2)}×`);
