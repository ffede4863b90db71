/**
 * Row keys as every source builds them: the key of a row, whether two keys are equal, how a key is
 * kept in a checkpoint (JSON, exact), and how two keys compare in the order a snapshot reads a table.
 *
 * Key order matters when a snapshot resumes in the middle of a table: rows up to the last committed
 * key were read at one point of the source's history and the rest at a later one, so the stream
 * must tell, for a change to the table, on which side of that key it falls. A source reads its
 * tables in an order these comparators reproduce exactly (numbers by value, bytes and text by their
 * bytes; text keys are read in binary order, `COLLATE "C"` / `BINARY`, for that reason).
 */
import type { Row, TableSchema, Value } from '../../core/event.ts';

export function keyOf(table: Pick<TableSchema, 'keyColumns'>, row: Row): Row | null {
  if (table.keyColumns.length === 0) return null;
  const k: Row = {};
  for (const c of table.keyColumns) k[c] = row[c] ?? null;
  return k;
}

/** Same value, whatever JS type carries it (a bigint and a number, two Buffers). */
export function sameValue(x: Value, y: Value): boolean {
  if (x === y) return true;
  if (Buffer.isBuffer(x) && Buffer.isBuffer(y)) return x.equals(y);
  if (typeof x === 'bigint' || typeof y === 'bigint') return String(x) === String(y);
  if (x !== null && y !== null && typeof x === 'object' && typeof y === 'object') return JSON.stringify(x) === JSON.stringify(y);
  return false;
}

export function sameKey(a: Row, b: Row): boolean {
  for (const k in a) if (!sameValue(a[k], b[k])) return false;
  return true;
}

// ---------- keys in checkpoints ----------

/** A key value as JSON: bigints and Buffers tagged so they come back as they were. */
type KeyJson = null | boolean | number | string | { b: string } | { n: string } | KeyJson[];

function toJson(v: Value): KeyJson {
  if (typeof v === 'bigint') return { n: v.toString() };
  if (Buffer.isBuffer(v)) return { b: v.toString('base64') };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return v;
}

function fromJson(v: KeyJson): Value {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') return 'n' in v ? BigInt(v.n) : Buffer.from(v.b, 'base64');
  return v;
}

export const encodeKey = (k: Row): Record<string, KeyJson> => Object.fromEntries(Object.entries(k).map(([c, v]) => [c, toJson(v)]));
export const decodeKey = (k: Record<string, KeyJson>): Row => Object.fromEntries(Object.entries(k).map(([c, v]) => [c, fromJson(v)]));

// ---------- key order ----------

/**
 * How a key column's values compare: `number` (integers of any size, decimals as text, floats, times
 * as numbers), `bytes` (Buffers, and strings by their UTF-8 bytes: binary collation), `bool`,
 * `instant` (ISO-8601 timestamps with a zone).
 */
export type KeyOrder = 'number' | 'bytes' | 'bool' | 'instant';

/** Compares exact numbers given as number, bigint or decimal text (`-12.50`, `NaN` sorts last). */
export function compareNumbers(a: Value, b: Value): number {
  if (typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && Number.isFinite(b)) return a - b;
  if ((typeof a === 'bigint' || Number.isSafeInteger(a)) && (typeof b === 'bigint' || Number.isSafeInteger(b))) {
    const x = BigInt(a as number | bigint);
    const y = BigInt(b as number | bigint);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return compareDecimalText(numText(a), numText(b));
}

function numText(v: Value): string {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (!Number.isFinite(v)) return v > 0 ? 'Infinity' : '-Infinity';
    if (Number.isInteger(v)) return BigInt(v).toString();
  }
  return String(v);
}

/** Decimal text compare: sign, integer digits, fraction; NaN above everything, ±Infinity at the ends. */
export function compareDecimalText(a: string, b: string): number {
  const rank = (s: string) => (s === 'NaN' ? 3 : s === 'Infinity' ? 2 : s === '-Infinity' ? -2 : 0);
  const ra = rank(a);
  const rb = rank(b);
  if (ra || rb) return ra - rb;
  const neg = (s: string) => s.startsWith('-');
  if (neg(a) !== neg(b)) return neg(a) ? (isZero(a) && isZero(b) ? 0 : -1) : isZero(a) && isZero(b) ? 0 : 1;
  const sign = neg(a) ? -1 : 1;
  const [ai, af = ''] = a.replace(/^[-+]/, '').split('.');
  const [bi, bf = ''] = b.replace(/^[-+]/, '').split('.');
  const ia = ai.replace(/^0+(?=\d)/, '');
  const ib = bi.replace(/^0+(?=\d)/, '');
  if (ia.length !== ib.length) return sign * (ia.length - ib.length);
  if (ia !== ib) return sign * (ia < ib ? -1 : 1);
  const n = Math.max(af.length, bf.length);
  const fa = af.padEnd(n, '0');
  const fb = bf.padEnd(n, '0');
  return fa === fb ? 0 : sign * (fa < fb ? -1 : 1);
}

const isZero = (s: string) => /^[-+]?0*(\.0*)?$/.test(s);

function toBytes(v: Value): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
}

/** Microseconds since the epoch of an ISO-8601 instant (`2024-01-02T03:04:05.123456Z`, any offset). */
function instantMicros(v: Value): bigint {
  if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v);
  const m = /^([+-]?\d{4,})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d(?::?\d\d)?)?$/.exec(String(v));
  if (!m) return BigInt(Date.parse(String(v))) * 1000n;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  let us = BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0').slice(0, 6) || '0');
  const z = m[8];
  if (z && z !== 'Z') {
    const sign = z[0] === '-' ? -1n : 1n;
    const d = z.slice(1).replace(':', '');
    us -= sign * (BigInt(Number(d.slice(0, 2)) * 60 + Number(d.slice(2, 4) || '0')) * 60_000_000n);
  }
  return us;
}

export function compareValues(order: KeyOrder, a: Value, b: Value): number {
  switch (order) {
    case 'number':
      return compareNumbers(a, b);
    case 'bool':
      return Number(Boolean(a)) - Number(Boolean(b));
    case 'instant': {
      const x = instantMicros(a);
      const y = instantMicros(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default:
      return Buffer.compare(toBytes(a), toBytes(b));
  }
}

/** A comparator of keys in the order given per key column (the columns in key order). */
export function keyComparator(columns: { name: string; order: KeyOrder }[]): (a: Row, b: Row) => number {
  return (a, b) => {
    for (const c of columns) {
      const d = compareValues(c.order, a[c.name] ?? null, b[c.name] ?? null);
      if (d !== 0) return d;
    }
    return 0;
  };
}
