/**
 * Debezium JSON serialization speed: Sluice's hand-written serializer against JSON.stringify of the
 * same envelopes, in the same process and run. The reference gets its best case: plain objects
 * prepared before the clock starts (int64 values already JavaScript numbers), no replacer. Each
 * round runs every case once, the order alternating between rounds; figures are the median and
 * range of the rounds, the ratio is taken pair by pair within each round.
 *
 *   node --import tsx bench/serde/run.ts [events=200000] [rounds=5]
 */
import type { ChangeEvent, ColumnInfo, FieldSchema, TableSchema } from '../../src/core/event.ts';
import { DebeziumJsonSerializer } from '../../src/core/serde/debezium.ts';
import { postgresDebezium } from '../../src/sources/postgres/debezium.ts';
import { parseValue } from '../../src/core/serde/parse.ts';
import { SLUICE_VERSION } from '../../src/core/version.ts';
import { orderFor, showSpread, spread } from '../common.ts';

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

/** The envelope as a plain JSON-ready object: int64 values as numbers (all are below 2^53 here). */
function plainEnvelope(ev: ChangeEvent): [unknown, unknown] {
  const num = (o: Record<string, unknown> | null) => (o ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])) : null);
  // The same fields in the same order as Sluice writes them.
  const { version, connector, name, ts_ms, ts_us, snapshot, db, sequence, ...rest } = ev.source as Record<string, unknown>;
  const source = { version, connector, name, ts_ms, snapshot, db, sequence, ts_us, ts_ns: (ts_us as number) * 1000, ...rest };
  const value = { before: num(ev.before), after: num(ev.after), source, transaction: ev.transaction ?? null, op: ev.op, ts_ms: ev.ts_ms, ts_us: ev.ts_ms * 1000, ts_ns: ev.ts_ms * 1e6 };
  return [num(ev.key as Record<string, unknown>), value];
}

interface Case {
  name: string;
  /** Items the case goes through per round. */
  count: number;
  /** Handles item i; returns the bytes it wrote. */
  fn: (i: number) => number;
}

const events = makeEvents(N);
const prepared = events.map(plainEnvelope);
const plain = new DebeziumJsonSerializer({ schemas: false, source: postgresDebezium, serverName: 'shop' });
const withSchema = new DebeziumJsonSerializer({ schemas: true, source: postgresDebezium, serverName: 'shop' });
const values = events.slice(0, Math.min(N, 50_000)).map((ev) => plain.value(ev));
const texts = values.map((v) => v.toString());

const REF = 'reference: JSON.stringify of plain objects';
const OURS = 'sluice: keyString + valueString';
const PARSE_REF = 'reference: JSON.parse';
const PARSE = 'parse.ts: parseValue (schemaless, + table)';
const cases: Case[] = [
  { name: REF, count: N, fn: (i) => JSON.stringify(prepared[i][0]).length + JSON.stringify(prepared[i][1]).length },
  { name: OURS, count: N, fn: (i) => plain.keyString(events[i])!.length + plain.valueString(events[i]).length },
  { name: 'sluice: key() + value() (Buffers)', count: N, fn: (i) => plain.key(events[i])!.length + plain.value(events[i]).length },
  { name: 'sluice: with schema part (strings)', count: N, fn: (i) => withSchema.keyString(events[i])!.length + withSchema.valueString(events[i]).length },
  { name: PARSE_REF, count: values.length, fn: (i) => (JSON.parse(texts[i]), 0) },
  { name: PARSE, count: values.length, fn: (i) => (parseValue(values[i], { table }), 0) },
];

const rates = new Map<string, number[]>(cases.map((c) => [c.name, []]));
const bytesPer = new Map<string, number>();
console.log(`Debezium JSON serialization, ${N} events × ${ROUNDS} rounds in alternating order, Node ${process.version}; median (min – max)`);
for (let r = 0; r < ROUNDS; r++) {
  for (const c of orderFor(r, cases)) {
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < c.count; i++) bytes += c.fn(i);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.get(c.name)!.push(c.count / s);
    bytesPer.set(c.name, bytes / c.count);
  }
}
for (const c of cases) {
  const b = bytesPer.get(c.name)!;
  console.log(`${c.name.padEnd(44)} ${showSpread(spread(rates.get(c.name)!)).padStart(34)} events/s${b ? `   ${b.toFixed(0)} B/event` : ''}`);
}
const ratio = (a: string, b: string) => showSpread(spread(rates.get(a)!.map((x, i) => x / rates.get(b)![i])), 2);
console.log(`sluice / reference, serializing: ${ratio(OURS, REF)}×; parsing: ${ratio(PARSE, PARSE_REF)}× (pair by pair, per round)`);
