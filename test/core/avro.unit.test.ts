/**
 * Sluice's Avro codec (src/core/avro/) against the Avro 1.12 specification: the specification's own
 * encoding examples and Parsing Canonical Form / fingerprint vectors (Avro's share/test/data/schema-tests.txt),
 * round trips over every type and logical type, the long edge values (−2^63, 2^63−1, ±2^53) checked against
 * a reference zig-zag varint written here with bigints, union branch choice, and the errors: malformed
 * schemas (code, what and JSON path), values that do not match (field path), bytes that do not decode, and
 * container files damaged in each part (which block). Java's reader and writer are the other side in
 * avro-java.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  AvroCodec,
  AvroReader,
  AvroWriter,
  canonicalForm,
  ContainerReader,
  ContainerStreamReader,
  ContainerWriter,
  encodeContainer,
  fingerprint64,
  openContainerFile,
  parseSchema,
  parseSchemaText,
  readContainer,
  readContainerFile,
  schemaToJson,
  stringifySchema,
  writeContainerFile,
  type AvroSchema,
  type RecordSchema,
} from '../../src/core/avro/index.ts';
import { SluiceError } from '../../src/core/errors.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const codecOf = (json: unknown, opts = {}): AvroCodec => new AvroCodec(parseSchema(json), opts);

/** Asserts that fn throws a SluiceError with this code whose message matches every pattern. */
function throwsCode(fn: () => unknown, code: string, ...patterns: RegExp[]): SluiceError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SluiceError, `expected a SluiceError ${code}, got ${err === undefined ? 'no error' : String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

async function rejectsCode(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SluiceError, `expected a SluiceError ${code}, got ${err === undefined ? 'no error' : String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const re of patterns) assert.match(err.message, re);
}

/** The reference: a long's zig-zag varint computed with bigints, byte by byte. */
function referenceLong(v: bigint): string {
  let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
  const out: number[] = [];
  do {
    const b = Number(z & 0x7fn);
    z >>= 7n;
    out.push(z > 0n ? b | 0x80 : b);
  } while (z > 0n);
  return hex(Buffer.from(out));
}

const LONG_EDGES: bigint[] = [
  0n, 1n, -1n, 63n, -64n, 64n, -65n, 8191n, -8192n, 8192n,
  2n ** 31n - 1n, -(2n ** 31n), 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n, 2n ** 35n, -(2n ** 35n),
  2n ** 49n - 1n, 2n ** 49n, -(2n ** 49n), 2n ** 52n, -(2n ** 52n), -(2n ** 52n) - 1n,
  2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n, -(2n ** 53n) - 1n,
  2n ** 56n, 2n ** 62n, -(2n ** 62n), 2n ** 63n - 1n, -(2n ** 63n), 6_123_456_789_012_345_678n,
];
const isSafe = (v: bigint): boolean => v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);

describe('Avro binary encoding: the specification examples', () => {
  it('longs and ints are zig-zag varints', () => {
    const long = codecOf('long');
    const int = codecOf('int');
    for (const [v, h] of [[0, '00'], [-1, '01'], [1, '02'], [-2, '03'], [2, '04'], [-64, '7f'], [64, '8001']] as const) {
      assert.equal(hex(long.encode(v)), h);
      assert.equal(hex(int.encode(v)), h);
      assert.equal(long.decode(Buffer.from(h, 'hex')), v);
    }
  });

  it('strings, records, arrays and unions', () => {
    assert.equal(hex(codecOf('string').encode('foo')), '06666f6f');
    const test = codecOf({ type: 'record', name: 'test', fields: [{ name: 'a', type: 'long' }, { name: 'b', type: 'string' }] });
    assert.equal(hex(test.encode({ a: 27, b: 'foo' })), '3606666f6f');
    assert.deepEqual(test.decode(Buffer.from('3606666f6f', 'hex')), { a: 27, b: 'foo' });
    assert.equal(hex(codecOf({ type: 'array', items: 'long' }).encode([3, 27])), '04063600');
    const u = codecOf(['null', 'string']);
    assert.equal(hex(u.encode(null)), '00');
    assert.equal(hex(u.encode('a')), '020261');
    const e = codecOf({ type: 'enum', name: 'Foo', symbols: ['A', 'B', 'C', 'D'] });
    assert.equal(hex(e.encode('D')), '06');
    assert.equal(e.decode(Buffer.from('06', 'hex')), 'D');
  });
});

describe('Avro binary encoding: longs', () => {
  const long = codecOf('long');
  const big = codecOf('long', { longs: 'bigint' });
  const num = codecOf('long', { longs: 'number' });

  it('every edge value encodes as the reference varint and decodes back exactly', () => {
    for (const v of LONG_EDGES) {
      const bytes = long.encode(v);
      assert.equal(hex(bytes), referenceLong(v), `bigint ${v}`);
      if (isSafe(v)) assert.equal(hex(long.encode(Number(v))), referenceLong(v), `number ${v}`);
      // auto: a number when safe, a bigint beyond.
      assert.deepEqual(long.decode(bytes), isSafe(v) ? Number(v) : v, `auto ${v}`);
      assert.equal(big.decode(bytes), v, `bigint ${v}`);
      if (isSafe(v)) assert.equal(num.decode(bytes), Number(v));
      else throwsCode(() => num.decode(bytes), 'AVRO_LONG_PRECISION', new RegExp(`${v}`), /bigint/);
    }
  });

  it('random longs of every size match the reference', () => {
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 5000; i++) {
      x = BigInt.asUintN(64, x * 6364136223846793005n + 1442695040888963407n);
      const v = BigInt.asIntN(64, x) >> BigInt(i % 64);
      const bytes = long.encode(v);
      assert.equal(hex(bytes), referenceLong(v));
      assert.equal(big.decode(bytes), v);
    }
  });

  it('refuses numbers that are not safe integers and bigints beyond 64 bits', () => {
    throwsCode(() => long.encode(2 ** 53), 'AVRO_VALUE_INVALID', /expected a long/, /9007199254740992/);
    throwsCode(() => long.encode(1.5), 'AVRO_VALUE_INVALID', /expected a long/);
    throwsCode(() => long.encode(2n ** 63n), 'AVRO_VALUE_INVALID', /-2\^63 to 2\^63-1/);
    throwsCode(() => long.encode(-(2n ** 63n) - 1n), 'AVRO_VALUE_INVALID');
    throwsCode(() => long.encode('5'), 'AVRO_VALUE_INVALID', /got "5" \(a string\)/);
  });

  it('ints: the 32-bit range only', () => {
    const int = codecOf('int');
    for (const v of [0, -1, 2 ** 31 - 1, -(2 ** 31), 123456]) assert.equal(int.decode(int.encode(v)), v);
    throwsCode(() => int.encode(2 ** 31), 'AVRO_VALUE_INVALID', /expected an int/);
    throwsCode(() => int.encode(0.5), 'AVRO_VALUE_INVALID');
    // A varint of more than 32 bits where an int belongs.
    throwsCode(() => int.decode(long.encode(2 ** 40)), 'AVRO_DATA_INVALID', /longer than 32 bits/);
  });

  it('a long of 11 varint bytes or one past 64 bits is refused', () => {
    throwsCode(() => big.decode(Buffer.from('ffffffffffffffffff03', 'hex')), 'AVRO_DATA_INVALID', /longer than 64 bits/);
    throwsCode(() => big.decode(Buffer.from('ffffffff', 'hex')), 'AVRO_DATA_INVALID');
  });
});

describe('Avro binary encoding: round trips over every type', () => {
  const schema = {
    type: 'record',
    name: 'All',
    namespace: 'sluice.test',
    fields: [
      { name: 'n', type: 'null' },
      { name: 'b', type: 'boolean' },
      { name: 'i', type: 'int' },
      { name: 'l', type: 'long' },
      { name: 'f', type: 'float' },
      { name: 'd', type: 'double' },
      { name: 'by', type: 'bytes' },
      { name: 's', type: 'string' },
      { name: 'fx', type: { type: 'fixed', name: 'F4', size: 4 } },
      { name: 'e', type: { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN', 'BLUE'] } },
      { name: 'a', type: { type: 'array', items: 'string' } },
      { name: 'm', type: { type: 'map', values: 'long' } },
      { name: 'u', type: ['null', 'string', 'F4', 'Color'] },
      { name: 'nested', type: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'double' }, { name: 'tags', type: { type: 'array', items: 'Color' } }] } },
      { name: 'inners', type: { type: 'array', items: 'Inner' } },
      { name: 'dec', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
      { name: 'decf', type: { type: 'fixed', name: 'D16', size: 16, logicalType: 'decimal', precision: 38, scale: 10 } },
      { name: 'uuid', type: { type: 'string', logicalType: 'uuid' } },
      { name: 'uuidf', type: { type: 'fixed', name: 'U16', size: 16, logicalType: 'uuid' } },
      { name: 'date', type: { type: 'int', logicalType: 'date' } },
      { name: 'tm', type: { type: 'int', logicalType: 'time-millis' } },
      { name: 'tu', type: { type: 'long', logicalType: 'time-micros' } },
      { name: 'tsm', type: { type: 'long', logicalType: 'timestamp-millis' } },
      { name: 'tsu', type: { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true } },
      { name: 'tsn', type: { type: 'long', logicalType: 'timestamp-nanos' } },
      { name: 'ltsu', type: { type: 'long', logicalType: 'local-timestamp-micros' } },
      { name: 'dur', type: { type: 'fixed', name: 'Dur', size: 12, logicalType: 'duration' } },
    ],
  };
  const codec = codecOf(schema);
  const value = {
    n: null,
    b: true,
    i: -2147483648,
    l: 2n ** 63n - 1n,
    f: Math.fround(0.1),
    d: -1e300,
    by: Buffer.from([0, 255, 128]),
    s: 'héllo 日本 😀',
    fx: Buffer.from('abcd'),
    e: 'BLUE',
    a: ['', 'x'.repeat(200), 'ünï'],
    m: { a: 1, 'b c': -(2n ** 60n), __proto__x: 3 },
    u: 'GREEN',
    nested: { x: 1.5, tags: ['RED', 'RED'] },
    inners: [{ x: -0, tags: [] }, { x: NaN, tags: ['BLUE'] }],
    dec: '-1234567.89',
    decf: '-9999999999999999999999999999.9999999999',
    uuid: '123e4567-e89b-12d3-a456-426614174000',
    uuidf: 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
    date: -719162,
    tm: 86399999,
    tu: 86399999999,
    tsm: 1_700_000_000_123,
    tsu: 1_700_000_000_123_456,
    tsn: 1_700_000_000_123_456_789n,
    ltsu: -1,
    dur: { months: 13, days: 400, millis: 4294967295 },
  };

  it('decodes to what was encoded', () => {
    const back = codec.decode(codec.encode(value)) as Record<string, unknown>;
    assert.deepEqual(back, value);
    assert.ok(Buffer.isBuffer(back.by));
    assert.ok(Object.is((back.inners as { x: number }[])[0].x, -0));
  });

  it('floats are single precision; NaN and infinities pass', () => {
    const f = codecOf('float');
    assert.equal(f.decode(f.encode(0.1)), Math.fround(0.1));
    for (const v of [NaN, Infinity, -Infinity, -0, 3.4028234663852886e38]) assert.ok(Object.is(f.decode(f.encode(v)), v));
    const d = codecOf('double');
    for (const v of [NaN, -0, Number.MIN_VALUE, Number.MAX_VALUE, 0.1]) assert.ok(Object.is(d.decode(d.encode(v)), v));
  });

  it('strings of every length and script', () => {
    const s = codecOf('string');
    for (const v of ['', 'a', 'é', 'x'.repeat(63), 'x'.repeat(64), 'é'.repeat(63), '日本語'.repeat(100), '\u0000\n"', '😀'.repeat(40)]) {
      const bytes = s.encode(v);
      assert.equal(s.decode(bytes), v);
      assert.equal(bytes.length - (Buffer.byteLength(v) < 64 ? 1 : 2), Buffer.byteLength(v), 'the length prefix is the UTF-8 byte length');
    }
  });

  it('maps: objects, Map values, `maps: map`, a __proto__ key as data', () => {
    const m = codecOf({ type: 'map', values: 'int' });
    const asMap = new Map([['a', 1], ['__proto__', 2]]);
    const decoded = m.decode(m.encode(asMap)) as Record<string, number>;
    assert.deepEqual(Object.keys(decoded), ['a', '__proto__']);
    assert.equal(decoded.__proto__, 2);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.deepEqual(codecOf({ type: 'map', values: 'int' }, { maps: 'map' }).decode(m.encode({ x: 1, y: 2 })), new Map([['x', 1], ['y', 2]]));
    assert.deepEqual(m.decode(m.encode({})), {});
  });

  it('arrays and maps in blocks with negative counts (and their byte sizes) decode', () => {
    // [1, 2, 3] as a block of -3 items of 3 bytes, then [4] as a block of 1, then the end.
    const a = codecOf({ type: 'array', items: 'long' });
    assert.deepEqual(a.decode(Buffer.from('0506020406' + '0208' + '00', 'hex')), [1, 2, 3, 4]);
    const m = codecOf({ type: 'map', values: 'long' });
    // {"a": 1} in a block of -1 entry of 3 bytes.
    assert.deepEqual(m.decode(Buffer.from('0106026102' + '00', 'hex')), { a: 1 });
    throwsCode(() => a.decode(Buffer.from('05ff01020406', 'hex')), 'AVRO_DATA_INVALID', /byte size/);
  });

  it('a recursive record (linked list)', () => {
    const list = codecOf({ type: 'record', name: 'LongList', fields: [{ name: 'value', type: 'long' }, { name: 'next', type: ['null', 'LongList'] }] });
    const v = { value: 1, next: { value: 2n ** 62n, next: { value: -3, next: null } } };
    assert.deepEqual(list.decode(list.encode(v)), v);
  });

  it('decimals take strings, numbers and bigints, never rounding', () => {
    const dec = codecOf({ type: 'bytes', logicalType: 'decimal', precision: 6, scale: 2 });
    for (const [input, out] of [['12.5', '12.50'], ['-0.01', '-0.01'], [7, '7.00'], [-3n, '-3.00'], [0.25, '0.25'], ['1.2e2', '120.00'], ['9999.99', '9999.99'], ['1.230', '1.23'], ['+.5', '0.50'], [0, '0.00']] as const) {
      assert.equal(dec.decode(dec.encode(input)), out, String(input));
    }
    // Two's complement, fewest bytes: 1.28 is 128 → 00 80 (a leading zero keeps it positive).
    assert.equal(hex(dec.encode('1.28')), '040080');
    assert.equal(hex(dec.encode('-1.28')), '0280');
    throwsCode(() => dec.encode('1.234'), 'AVRO_VALUE_INVALID', /at most 2 fraction digits/);
    throwsCode(() => dec.encode('10000.00'), 'AVRO_VALUE_INVALID', /at most 6 digits/);
    throwsCode(() => dec.encode('abc'), 'AVRO_VALUE_INVALID', /expected a decimal/);
    throwsCode(() => dec.encode(NaN), 'AVRO_VALUE_INVALID', /expected a decimal/);
    // A fixed is sign-extended to its size.
    const fixed = codecOf({ type: 'fixed', name: 'D', size: 4, logicalType: 'decimal', precision: 9, scale: 0 });
    assert.equal(hex(fixed.encode(-2)), 'fffffffe');
    assert.equal(hex(fixed.encode('999999999')), '3b9ac9ff');
  });

  it('dates and timestamps take Date values', () => {
    const date = codecOf({ type: 'int', logicalType: 'date' });
    assert.equal(date.decode(date.encode(new Date('2024-03-01T23:59:59Z'))), 19783);
    assert.equal(date.decode(date.encode(new Date('1969-12-31T12:00:00Z'))), -1);
    const ms = codecOf({ type: 'long', logicalType: 'timestamp-millis' });
    const us = codecOf({ type: 'long', logicalType: 'timestamp-micros' });
    const ns = codecOf({ type: 'long', logicalType: 'timestamp-nanos' });
    const t = new Date('2024-03-01T12:34:56.789Z');
    assert.equal(ms.decode(ms.encode(t)), t.getTime());
    assert.equal(us.decode(us.encode(t)), t.getTime() * 1000);
    assert.equal(ns.decode(ns.encode(t)), BigInt(t.getTime()) * 1_000_000n);
    throwsCode(() => ms.encode(new Date('nope')), 'AVRO_VALUE_INVALID', /valid Date/);
  });

  it('uuids must be UUIDs', () => {
    throwsCode(() => codecOf({ type: 'string', logicalType: 'uuid' }).encode('not-a-uuid'), 'AVRO_VALUE_INVALID', /UUID/);
    const f = codecOf({ type: 'fixed', name: 'u', size: 16, logicalType: 'uuid' });
    assert.equal(hex(f.encode('00112233-4455-6677-8899-AABBCCDDEEFF')), '00112233445566778899aabbccddeeff');
  });
});

describe('Avro binary encoding: unions pick their branch', () => {
  const u = codecOf(['null', 'int', 'long', 'string', { type: 'record', name: 'A', fields: [{ name: 'a', type: 'int' }] }, { type: 'record', name: 'B', fields: [{ name: 'b', type: 'string' }] }]);
  const branch = (v: unknown): number => new AvroReader(u.encode(v)).readInt();

  it('null for null and undefined, else the first branch the value matches', () => {
    assert.equal(branch(null), 0);
    assert.equal(branch(undefined), 0);
    assert.equal(branch(5), 1);
    assert.equal(branch(2 ** 40), 2);
    assert.equal(branch(5n), 2);
    assert.equal(branch('x'), 3);
    assert.equal(branch({ a: 1 }), 4);
    assert.equal(branch({ b: 'y' }), 5);
    assert.deepEqual(u.decode(u.encode({ b: 'y' })), { b: 'y' });
  });

  it('a value no branch takes names the union', () => {
    throwsCode(() => u.encode(true), 'AVRO_VALUE_INVALID', /expected a value of the union \[null, int, long, string, A, B\], got true/);
    throwsCode(() => codecOf(['int', 'string']).encode(null), 'AVRO_VALUE_INVALID', /it has no null/);
    // Both records take objects; neither takes this one: the first's reason is given.
    throwsCode(() => u.encode({ c: 1 }), 'AVRO_VALUE_INVALID', /^a: expected an int \(an integer from -2\^31 to 2\^31-1\), got undefined \(missing\)/);
  });

  it('an index out of range does not decode', () => {
    throwsCode(() => u.decode(Buffer.from('0c', 'hex')), 'AVRO_DATA_INVALID', /union branch 6 is out of range/);
    throwsCode(() => codecOf(['null', 'string']).decode(Buffer.from('04', 'hex')), 'AVRO_DATA_INVALID', /union branch 2 is out of range \(the union has 2\)/);
    throwsCode(() => codecOf(['string', 'null']).decode(Buffer.from('01', 'hex')), 'AVRO_DATA_INVALID', /union branch -1 is out of range/);
    assert.equal(codecOf(['string', 'null']).decode(Buffer.from('02', 'hex')), null);
  });
});

describe('Avro binary encoding: errors', () => {
  const entry = codecOf({
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int' },
      {
        name: 'data_file',
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'file_path', type: 'string' },
            { name: 'column_sizes', type: ['null', { type: 'array', items: { type: 'record', name: 'k117_v118', fields: [{ name: 'key', type: 'int' }, { name: 'value', type: 'long' }] } }] },
            { name: 'props', type: { type: 'map', values: 'string' } },
            { name: 'record_count', type: 'long', default: 0 },
          ],
        },
      },
    ],
  });
  const good = { status: 1, data_file: { file_path: 'a.parquet', column_sizes: [{ key: 1, value: 10 }], props: {} } };

  it('a value that does not match names its field path', () => {
    throwsCode(() => entry.encode({ ...good, status: 'x' }), 'AVRO_VALUE_INVALID', /^status: expected an int \(an integer from -2\^31 to 2\^31-1\), got "x" \(a string\) \(schema manifest_entry\)$/);
    throwsCode(
      () => entry.encode({ ...good, data_file: { ...good.data_file, column_sizes: [{ key: 1, value: 1 }, { key: 2, value: 1.5 }] } }),
      'AVRO_VALUE_INVALID',
      /^data_file\.column_sizes\[1\]\.value: expected a long/,
    );
    throwsCode(() => entry.encode({ ...good, data_file: { ...good.data_file, props: { 'a b': 3 } } }), 'AVRO_VALUE_INVALID', /^data_file\.props\["a b"\]: expected a string, got 3/);
    throwsCode(() => entry.encode({ status: 1 }), 'AVRO_VALUE_INVALID', /^data_file: expected a record r2 \(an object\), got undefined \(missing\)/);
    throwsCode(() => entry.encode({ ...good, data_file: { column_sizes: null, props: {} } }), 'AVRO_VALUE_INVALID', /^data_file\.file_path: expected a string, got undefined \(missing\)/);
    throwsCode(() => codecOf({ type: 'enum', name: 'E', symbols: ['A'] }).encode('B'), 'AVRO_VALUE_INVALID', /a symbol of the enum E \(A\), got "B"/);
    throwsCode(() => codecOf({ type: 'fixed', name: 'F', size: 2 }).encode(Buffer.alloc(3)), 'AVRO_VALUE_INVALID', /2 bytes \(the fixed F\), got 3 bytes/);
  });

  it('a missing field with a default is written as its default', () => {
    assert.deepEqual((entry.decode(entry.encode(good)) as typeof good & { data_file: { record_count: number } }).data_file.record_count, 0);
  });

  it('a failed write leaves the writer as it was', () => {
    const w = new AvroWriter(16);
    entry.write(w, good);
    const before = hex(w.view());
    throwsCode(() => entry.write(w, { ...good, data_file: { ...good.data_file, props: { a: 1 } } }), 'AVRO_VALUE_INVALID');
    assert.equal(hex(w.view()), before);
    entry.write(w, good);
    const r = new AvroReader(w.view());
    assert.deepEqual(entry.read(r), entry.read(r));
    assert.ok(entry.isValid(good));
    assert.ok(!entry.isValid({ ...good, status: 2 ** 31 }));
  });

  it('bytes that do not decode say why and where', () => {
    const bytes = entry.encode(good);
    throwsCode(() => entry.decode(bytes.subarray(0, bytes.length - 3)), 'AVRO_DATA_INVALID', /(ends|goes past the end)/, /at byte \d+/);
    throwsCode(() => entry.decode(Buffer.concat([bytes, Buffer.from([0])])), 'AVRO_DATA_INVALID', /1 bytes are left over/);
    throwsCode(() => codecOf('string').decode(Buffer.from('03', 'hex')), 'AVRO_DATA_INVALID', /length is negative/);
    throwsCode(() => codecOf('string').decode(Buffer.from('0a61', 'hex')), 'AVRO_DATA_INVALID', /5 bytes goes past the end of the data \(1 bytes left\)/);
    throwsCode(() => codecOf('boolean').decode(Buffer.from('02', 'hex')), 'AVRO_DATA_INVALID', /boolean byte is 2/);
    throwsCode(() => codecOf({ type: 'enum', name: 'E', symbols: ['A'] }).decode(Buffer.from('02', 'hex')), 'AVRO_DATA_INVALID', /enum index 1 is out of range/);
    throwsCode(() => codecOf({ type: 'array', items: 'long' }).decode(Buffer.from('feffffff0f', 'hex')), 'AVRO_DATA_INVALID', /cannot fit/);
    throwsCode(() => codecOf({ type: 'array', items: 'null' }).decode(Buffer.from('feffffff0f', 'hex')), 'AVRO_DATA_INVALID', /cannot fit/);
    throwsCode(() => codecOf('double').decode(Buffer.from('0000', 'hex')), 'AVRO_DATA_INVALID', /ends inside a double/);
  });
});

describe('Avro schemas', () => {
  it('resolves fullnames as the specification example says', () => {
    const s = parseSchema({
      type: 'record',
      name: 'Example',
      fields: [
        { name: 'inheritNull', type: { type: 'enum', name: 'Simple', symbols: ['a', 'b'] } },
        { name: 'explicitNamespace', type: { type: 'fixed', name: 'Simple', namespace: 'explicit', size: 12 } },
        {
          name: 'fullName',
          type: { type: 'record', name: 'a.full.Name', namespace: 'ignored', fields: [{ name: 'inheritNamespace', type: { type: 'enum', name: 'Understanding', symbols: ['d', 'e'] } }] },
        },
        { name: 'ref', type: 'explicit.Simple' },
        { name: 'ref2', type: 'Simple' },
      ],
    }) as RecordSchema;
    const names = s.fields.map((f) => (f.type as { name: string }).name);
    assert.deepEqual(names, ['Simple', 'explicit.Simple', 'a.full.Name', 'explicit.Simple', 'Simple']);
    assert.equal(((s.fields[2].type as RecordSchema).fields[0].type as { name: string }).name, 'a.full.Understanding');
    assert.equal(s.fields[3].type, s.fields[1].type, 'a reference is the node it names');
  });

  it('a simple name not found in the enclosing namespace is looked up in the null namespace', () => {
    const s = parseSchema({ type: 'record', name: 'Top', fields: [{ name: 'x', type: { type: 'fixed', name: 'F', size: 1 } }, { name: 'inner', type: { type: 'record', name: 'In', namespace: 'ns', fields: [{ name: 'y', type: 'F' }] } }] }) as RecordSchema;
    assert.equal(((s.fields[1].type as RecordSchema).fields[0].type as { name: string }).name, 'F');
  });

  it('keeps Iceberg attributes and writes the schema back as it was given', () => {
    const iceberg = {
      type: 'record',
      name: 'manifest_file',
      fields: [
        { name: 'manifest_path', type: 'string', doc: 'Location URI with FS scheme', 'field-id': 500 },
        { name: 'partitions', type: ['null', { type: 'array', items: { type: 'record', name: 'r508', fields: [{ name: 'contains_null', type: 'boolean', 'field-id': 509 }] }, 'element-id': 508 }], default: null, 'field-id': 507 },
        { name: 'kv', type: { type: 'array', logicalType: 'map', items: { type: 'record', name: 'k1_v2', fields: [{ name: 'key', type: 'int', 'field-id': 1 }, { name: 'value', type: 'long', 'field-id': 2 }] } } },
        { name: 'm', type: { type: 'map', values: 'long', 'key-id': 3, 'value-id': 4 } },
        { name: 'ts', type: { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false } },
        { name: 'big', type: 'long', default: 9007199254740993n },
      ],
    };
    const s = parseSchema(iceberg) as RecordSchema;
    assert.equal(s.fields[0].attrs['field-id'], 500);
    assert.equal(s.fields[0].doc, 'Location URI with FS scheme');
    assert.equal((s.fields[2].type as { attrs: Record<string, unknown> }).attrs.logicalType, 'map', 'an unknown logical type is kept as an attribute');
    assert.deepEqual(schemaToJson(s), iceberg);
    assert.deepEqual(schemaToJson(parseSchemaText(stringifySchema(s))), iceberg);
    assert.match(stringifySchema(s), /"default":9007199254740993\}/, 'a long default is written with every digit');
    assert.equal(s.fields[5].defaultValue, 9007199254740993n);
  });

  it('writes named types once, then by name (a recursive type too)', () => {
    const json = { type: 'record', name: 'n.Node', fields: [{ name: 'kids', type: { type: 'array', items: 'Node' } }, { name: 'other', type: { type: 'record', name: 'o.Other', fields: [{ name: 'back', type: 'n.Node' }] } }] };
    const written = schemaToJson(parseSchema(json));
    assert.deepEqual(written, {
      type: 'record',
      name: 'Node',
      namespace: 'n',
      fields: [{ name: 'kids', type: { type: 'array', items: 'Node' } }, { name: 'other', type: { type: 'record', name: 'Other', namespace: 'o', fields: [{ name: 'back', type: 'n.Node' }] } }],
    });
    assert.equal(canonicalForm(parseSchema(written)), canonicalForm(parseSchema(json)));
  });

  it('Parsing Canonical Form and CRC-64-AVRO fingerprints match the specification vectors', () => {
    const vectors: [unknown, string, bigint][] = [
      ['null', '"null"', 7195948357588979594n],
      ['int', '"int"', 8247732601305521295n],
      [{ type: 'long' }, '"long"', -3434872931120570953n],
      ['string', '"string"', -8142146995180207161n],
      [[], '[]', -1241056759729112623n],
      [['int', { type: 'boolean' }], '["int","boolean"]', 5392556393470105090n],
      [{ fields: [], type: 'record', name: 'foo', namespace: 'x.y' }, '{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771n],
      [{ fields: [], type: 'record', name: 'a.b.foo', namespace: 'x.y' }, '{"name":"a.b.foo","type":"record","fields":[]}', -4616218487480524110n],
      [{ fields: [], type: 'record', name: 'foo', doc: 'foo', aliases: ['foo', 'bar'] }, '{"name":"foo","type":"record","fields":[]}', -4824392279771201922n],
      [{ fields: [{ type: 'boolean', aliases: [], name: 'f1', default: true }, { order: 'descending', name: 'f2', doc: 'Hello', type: 'int' }], type: 'record', name: 'foo' }, '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}', -4860222112080293046n],
      [{ namespace: 'x.y.z', type: 'enum', name: 'foo', doc: 'foo bar', symbols: ['A1', 'A2'] }, '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245n],
      [{ namespace: 'x.y.z', type: 'fixed', name: 'foo', doc: 'foo bar', size: 32 }, '{"name":"x.y.z.foo","type":"fixed","size":32}', -3064184465700546786n],
      [{ items: { type: 'null' }, type: 'array' }, '{"type":"array","items":"null"}', -589620603366471059n],
      [{ values: 'string', type: 'map' }, '{"type":"map","values":"string"}', -8732877298790414990n],
      [{ name: 'PigValue', type: 'record', fields: [{ name: 'value', type: ['null', 'int', 'long', 'PigValue'] }] }, '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}', -1759257747318642341n],
    ];
    for (const [json, form, fp] of vectors) {
      const s = parseSchema(json);
      assert.equal(canonicalForm(s), form);
      assert.equal(BigInt.asIntN(64, fingerprint64(s)), fp, form);
    }
  });

  it('logical types: resolved when valid; invalid ones are errors, or ignored in lenient mode; unknown ones are ignored', () => {
    assert.deepEqual((parseSchema({ type: 'bytes', logicalType: 'decimal', precision: 4 }) as { logical?: unknown }).logical, { name: 'decimal', precision: 4, scale: 0 });
    const bad = { type: 'bytes', logicalType: 'decimal', precision: 4, scale: 5 };
    throwsCode(() => parseSchema(bad), 'AVRO_SCHEMA_INVALID', /at \$\.logicalType/, /scale/);
    assert.equal((parseSchema(bad, { mode: 'lenient' }) as { logical?: unknown }).logical, undefined);
    throwsCode(() => parseSchema({ type: 'string', logicalType: 'date' }), 'AVRO_SCHEMA_INVALID', /date annotates int, not string/);
    throwsCode(() => parseSchema({ type: 'fixed', name: 'f', size: 8, logicalType: 'decimal', precision: 19 }), 'AVRO_SCHEMA_INVALID', /fixed of 8 bytes holds at most 18 digits/);
    assert.equal((parseSchema({ type: 'fixed', name: 'f', size: 16, logicalType: 'decimal', precision: 38 }) as { logical?: { precision: number } }).logical?.precision, 38);
    assert.equal((parseSchema({ type: 'int', logicalType: 'made-up' }) as { logical?: unknown }).logical, undefined);
    throwsCode(() => parseSchema({ type: 'fixed', name: 'u', size: 15, logicalType: 'uuid' }), 'AVRO_SCHEMA_INVALID', /uuid annotates string or a fixed of size 16/);
  });

  it('malformed schemas: a coded error with what is wrong and where', () => {
    const cases: [unknown, RegExp][] = [
      [42, /at \$: a schema is a type name .* found 42/],
      [{ name: 'x' }, /at \$: the schema object has no "type"/],
      [{ type: 7 }, /at \$\.type: "type" must be a string/],
      ['Nope', /at \$: unknown type "Nope".*no named types are defined/],
      ['record', /"record" needs the object form/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: 'Missing' }] }, /at \$\.fields\[0\]\.type \(field r\.a\): unknown type "Missing".*defined before it: r/],
      [{ type: 'record', name: 'r' }, /at \$ \(r\): a record needs "fields"/],
      [{ type: 'record', fields: [] }, /at \$: a record needs a "name"/],
      [{ type: 'record', name: '1bad', fields: [] }, /at \$\.name: "1bad" is not a valid fullname/],
      [{ type: 'record', name: 'int', fields: [] }, /may not be named after a primitive type/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: 'int' }, { name: 'a', type: 'long' }] }, /at \$\.fields\[1\]\.name \(field r\.a\): the record has two fields named "a"/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a-b', type: 'int' }] }, /"a-b" is not a valid field name/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a' }] }, /at \$\.fields\[0\] \(field r\.a\): the field has no "type"/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: { type: 'record', name: 'r', fields: [] } }] }, /at \$\.fields\[0\]\.type \(field r\.a\): the name "r" is defined twice \(first at \$\)/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: 'int', default: 'x' }] }, /at \$\.fields\[0\]\.default \(field r\.a\): the default "x" does not match the field's type: an int takes/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: ['int', 'null'], default: 'x' }] }, /matches no branch of the union \[int, null\]/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: 'int', order: 'up' }] }, /"order" must be/],
      [['int', ['null']], /at \$\[1\]: a union may not contain a union directly/],
      [['int', 'string', { type: 'int', logicalType: 'date' }], /at \$\[2\]: the union has two branches of type int \(0 and 2\)/],
      [[{ type: 'array', items: 'int' }, { type: 'array', items: 'long' }], /two branches of type array/],
      [{ type: 'enum', name: 'e', symbols: ['A', 'A'] }, /at \$\.symbols\[1\] \(e\): the symbol "A" appears twice/],
      [{ type: 'enum', name: 'e', symbols: ['A', '1'] }, /the symbol "1" must match/],
      [{ type: 'enum', name: 'e', symbols: ['A'], default: 'B' }, /the enum's default must be one of its symbols/],
      [{ type: 'enum', name: 'e' }, /an enum needs "symbols"/],
      [{ type: 'fixed', name: 'f', size: -1 }, /at \$\.size \(f\): a fixed needs "size", a non-negative integer/],
      [{ type: 'array' }, /an array needs "items"/],
      [{ type: 'map', values: { type: 'array' } }, /at \$\.values: an array needs "items"/],
      [{ type: 'union' }, /a union is written as a JSON array/],
      [{ type: 'record', name: 'r', fields: [{ name: 'a', type: { type: 'bytes', logicalType: 'decimal' } }] }, /at \$\.fields\[0\]\.type\.logicalType \(field r\.a\): a decimal needs "precision"/],
    ];
    for (const [json, re] of cases) throwsCode(() => parseSchema(json), 'AVRO_SCHEMA_INVALID', re);
    throwsCode(() => parseSchemaText('{"type": "record",'), 'AVRO_SCHEMA_INVALID', /not valid JSON/);
  });

  it('lenient mode accepts names and defaults Java accepts in the files it reads', () => {
    const s = parseSchema({ type: 'record', name: 'my-record', fields: [{ name: 'a b', type: 'int', default: 'x' }] }, { mode: 'lenient' }) as RecordSchema;
    assert.equal(s.name, 'my-record');
    assert.equal(s.fields[0].hasDefault, false);
    assert.equal(s.fields[0].default, 'x', 'the default as written is kept');
  });

  it('named types can be shared between schemas', () => {
    const names = new Map();
    parseSchema({ type: 'fixed', name: 'ns.Md5', size: 16 }, { names });
    const s = parseSchema({ type: 'record', name: 'ns.File', fields: [{ name: 'md5', type: 'Md5' }] }, { names }) as RecordSchema;
    assert.equal((s.fields[0].type as { size: number }).size, 16);
  });
});

describe('Avro object container files', () => {
  const schema = parseSchema({
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      { name: 'snapshot_id', type: ['null', 'long'], default: null, 'field-id': 1 },
      { name: 'path', type: 'string', 'field-id': 100 },
      { name: 'blob', type: 'bytes' },
      { name: 'partition', type: { type: 'record', name: 'r102', fields: [{ name: 'day', type: ['null', { type: 'int', logicalType: 'date' }], default: null, 'field-id': 1000 }] } },
      { name: 'props', type: { type: 'map', values: 'string' } },
    ],
  });
  const rows = Array.from({ length: 1000 }, (_, i) => ({
    status: i % 3,
    snapshot_id: i % 5 === 0 ? null : 6_000_000_000_000_000_000n + BigInt(i),
    path: `s3://bucket/data/${i}-${'x'.repeat(i % 50)}.parquet`,
    blob: Buffer.from([i & 255, (i >> 8) & 255]),
    partition: { day: i % 7 === 0 ? null : 19_000 + i },
    props: i % 2 ? { writer: 'sluice' } : {},
  }));
  const sync = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const meta = { schema: '{"type":"struct"}', 'partition-spec': '[]', 'format-version': '2', content: 'data', raw: Buffer.from([0, 1, 254]) };

  for (const codec of ['null', 'deflate'] as const) {
    it(`round trips with the ${codec} codec, in several blocks`, () => {
      const file = encodeContainer(schema, rows, { codec, blockRecords: 128, metadata: meta, syncMarker: sync });
      assert.equal(hex(file.subarray(0, 4)), '4f626a01');
      const { header, records } = readContainer(file);
      assert.deepEqual(records, rows);
      assert.equal(header.codec, codec);
      assert.equal(header.text('format-version'), '2');
      assert.equal(header.text('avro.codec'), codec);
      assert.equal(hex(header.metadata.get('raw')!), '0001fe');
      assert.deepEqual(header.sync, sync);
      assert.deepEqual(JSON.parse(header.schemaText), schemaToJson(schema));
      assert.equal(hex(file.subarray(header.size - 16, header.size)), hex(sync));
      const blocks = [...new ContainerReader(file).blocks()];
      assert.equal(blocks.length, 8);
      assert.deepEqual(blocks.map((b) => b.records.length), [128, 128, 128, 128, 128, 128, 128, 104]);
      assert.equal(blocks[0].offset, header.size);
    });
  }

  it('blocks also end by size; an empty file has a header and no blocks', () => {
    const w = new ContainerWriter(schema, { codec: 'null', blockBytes: 1000 });
    for (const r of rows) w.append(r);
    const file = Buffer.concat(w.finish());
    const blocks = [...new ContainerReader(file).blocks()];
    assert.ok(blocks.length > 20, `${blocks.length} blocks`);
    assert.equal(blocks.reduce((n, b) => n + b.records.length, 0), rows.length);
    assert.deepEqual(readContainer(encodeContainer(schema, [])).records, []);
  });

  it('a record that does not match is refused and loses nothing already appended', () => {
    const w = new ContainerWriter(schema, { blockRecords: 10 });
    for (const r of rows.slice(0, 15)) w.append(r);
    throwsCode(() => w.append({ ...rows[0], partition: { day: 'monday' } }), 'AVRO_VALUE_INVALID', /^partition\.day: expected a date \(days since 1970-01-01 as an int, or a Date\), got "monday"/);
    for (const r of rows.slice(15, 30)) w.append(r);
    assert.deepEqual(readContainer(Buffer.concat(w.finish())).records, rows.slice(0, 30));
  });

  it('reserved metadata keys and unknown codecs are refused', () => {
    throwsCode(() => new ContainerWriter(schema, { metadata: { 'avro.codec': 'x' } }), 'AVRO_VALUE_INVALID', /reserved/);
    throwsCode(() => new ContainerWriter(schema, { codec: 'snappy' as 'null' }), 'AVRO_CODEC_UNSUPPORTED', /snappy/);
  });

  it('streams: chunks of any size give the same records, one block at a time', async () => {
    const file = encodeContainer(schema, rows, { codec: 'null', blockRecords: 100, metadata: meta });
    for (const size of [1, 7, 1000, file.length]) {
      const chunks = async function* (): AsyncGenerator<Buffer> {
        for (let i = 0; i < file.length; i += size) yield file.subarray(i, i + size);
      };
      const r = await ContainerStreamReader.open(chunks());
      assert.equal(r.header.text('partition-spec'), '[]');
      const got: unknown[] = [];
      for await (const b of r.blocks()) got.push(...b.records);
      assert.deepEqual(got, rows, `chunks of ${size}`);
    }
  });

  it('files on disk: written in chunks, read streaming', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-avro-'));
    try {
      const path = join(dir, 'm.avro');
      async function* gen(): AsyncGenerator<unknown> {
        for (let k = 0; k < 30; k++) yield* rows;
      }
      const res = await writeContainerFile(path, schema, gen(), { metadata: meta });
      assert.equal(res.records, 30_000);
      const { header, records } = await readContainerFile(path);
      assert.equal(records.length, 30_000);
      assert.deepEqual(records.slice(29_000), rows);
      assert.equal(header.text('content'), 'data');
      const r = await openContainerFile(path);
      let n = 0;
      for await (const x of r.records()) if (n++ === 0) assert.deepEqual(x, rows[0]);
      assert.equal(n, 30_000);
      // A record that does not match: the error, and no partial file left behind.
      const bad = join(dir, 'bad.avro');
      await rejectsCode(writeContainerFile(bad, schema, [rows[0], { ...rows[1], status: 'x' }]), 'AVRO_VALUE_INVALID', /^status: expected an int/);
      assert.equal(existsSync(bad), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('damaged files: AVRO_FILE_CORRUPT naming the block', () => {
    const file = encodeContainer(schema, rows, { codec: 'deflate', blockRecords: 100, syncMarker: sync });
    const plain = encodeContainer(schema, rows, { codec: 'null', blockRecords: 100, syncMarker: sync });
    const offsets = (f: Buffer): number[] => [...new ContainerReader(f).blocks()].map((b) => b.offset);
    const damage = (f: Buffer, at: number, fn: (b: number) => number = (b) => b ^ 0xff): Buffer => {
      const c = Buffer.from(f);
      c[at] = fn(c[at]);
      return c;
    };
    /** Reads whole and streaming; both must fail alike. */
    async function bothFail(f: Buffer, code: string, ...patterns: RegExp[]): Promise<void> {
      throwsCode(() => readContainer(f), code, ...patterns);
      const chunks = async function* (): AsyncGenerator<Buffer> {
        for (let i = 0; i < f.length; i += 4096) yield f.subarray(i, i + 4096);
      };
      await rejectsCode(
        (async () => {
          const r = await ContainerStreamReader.open(chunks());
          for await (const b of r.blocks()) void b;
        })(),
        code,
        ...patterns,
      );
    }

    it('not an Avro file', async () => {
      await bothFail(Buffer.from('PAR1 this is parquet'), 'AVRO_FILE_CORRUPT', /not an Avro object container file: it starts with 50 41 52 31/);
      await bothFail(Buffer.alloc(0), 'AVRO_FILE_CORRUPT', /ends inside its header/);
    });

    it('cut inside the header, or inside a block', async () => {
      const h = new ContainerReader(file).header.size;
      await bothFail(file.subarray(0, h - 5), 'AVRO_FILE_CORRUPT', /ends inside its header/);
      const o = offsets(file);
      await bothFail(file.subarray(0, o[4] + 30), 'AVRO_FILE_CORRUPT', new RegExp(`block 4 \\(at byte ${o[4]}\\): the file ends inside the block`));
    });

    it('a sync marker that differs', async () => {
      const o = offsets(file);
      await bothFail(damage(file, o[3] - 1), 'AVRO_FILE_CORRUPT', new RegExp(`block 2 \\(at byte ${o[2]}\\): the sync marker after its \\d+ bytes of data is not the header's`));
    });

    it('deflate data that does not inflate', async () => {
      const o = offsets(file);
      await bothFail(damage(file, o[5] + 6), 'AVRO_FILE_CORRUPT', new RegExp(`block 5 \\(at byte ${o[5]}\\)`), /(does not inflate|record \d+ of 100|left over)/);
    });

    it('a record count that does not match the data', async () => {
      const o = offsets(plain);
      // Block 1's count (100, the varint c8 01) made 99: one record's bytes are left over.
      assert.equal(hex(plain.subarray(o[1], o[1] + 2)), 'c801');
      await bothFail(damage(plain, o[1], () => 0xc6), 'AVRO_FILE_CORRUPT', new RegExp(`block 1 \\(at byte ${o[1]}\\): \\d+ bytes are left over after its 99 records`));
      // …and made 101: the data ends inside record 100.
      await bothFail(damage(plain, o[1], () => 0xca), 'AVRO_FILE_CORRUPT', /block 1 .*record 100 of 101: .*in the block's data/);
      // …and made 2^41: refused before any record is decoded.
      const huge = Buffer.concat([plain.subarray(0, o[1]), Buffer.from(referenceLong(2n ** 41n), 'hex'), plain.subarray(o[1] + 2)]);
      await bothFail(huge, 'AVRO_FILE_CORRUPT', new RegExp(`block 1 \\(at byte ${o[1]}\\): it declares 2199023255552 records, more than its \\d+ bytes of data can hold`));
    });

    it('a block size past the end, a negative count', async () => {
      const o = offsets(plain);
      await bothFail(damage(plain, o[9] + 2, () => 0xff), 'AVRO_FILE_CORRUPT', /block 9 /);
      await bothFail(damage(plain, o[2], () => 0x01), 'AVRO_FILE_CORRUPT', /block 2 .*record count -1 is negative/);
    });

    it('an unsupported codec, a header without a schema', async () => {
      const snappy = Buffer.from(file.toString('latin1').replace('\u000edeflate', '\u000csnappy'), 'latin1');
      await bothFail(snappy, 'AVRO_CODEC_UNSUPPORTED', /codec "snappy"; Sluice reads null and deflate/);
      const w = new AvroWriter();
      w.writeFixed(Buffer.from('Obj\u0001', 'latin1'));
      w.writeLong(1);
      w.writeString('other');
      w.writeBytes(Buffer.from('x'));
      w.writeByte(0);
      w.writeFixed(sync);
      await bothFail(w.toBuffer(), 'AVRO_FILE_CORRUPT', /no avro.schema \(its metadata keys: other\)/);
    });
  });
});

describe('Avro schemas written into files are what other readers parse', () => {
  it('a schema text with a doc, defaults and nested names round trips through a file', () => {
    const json = {
      type: 'record',
      name: 'Outer',
      namespace: 'com.example',
      doc: 'outer "quoted" doc',
      fields: [
        { name: 'a', type: { type: 'enum', name: 'E', symbols: ['X', 'Y'], default: 'X' }, default: 'Y' },
        { name: 'b', type: { type: 'record', name: 'other.Inner', fields: [{ name: 'c', type: 'com.example.E' }] } },
        { name: 'd', type: { type: 'fixed', name: 'F', size: 2 }, default: '\u00ff\u0000' },
        { name: 'e', type: { type: 'array', items: 'other.Inner' }, default: [{ c: 'X' }] },
      ],
    };
    const s = parseSchema(json);
    const file = encodeContainer(s, [{ a: 'X', b: { c: 'Y' }, d: Buffer.from([1, 2]), e: [] }, { b: { c: 'X' } }]);
    const { header, records } = readContainer(file);
    // Written with each name simple and its namespace beside it; the same schema.
    const written = JSON.parse(header.schemaText);
    assert.equal(written.fields[1].type.name, 'Inner');
    assert.equal(written.fields[1].type.namespace, 'other');
    assert.equal(written.doc, json.doc);
    assert.deepEqual(written.fields.map((f: { default?: unknown }) => f.default), json.fields.map((f) => f.default));
    assert.equal(canonicalForm(header.schema), canonicalForm(s));
    assert.deepEqual(records[1], { a: 'Y', b: { c: 'X' }, d: Buffer.from([255, 0]), e: [{ c: 'X' }] }, 'missing fields were written as their defaults');
    const f = (header.schema as RecordSchema).fields;
    assert.deepEqual(f.map((x) => x.defaultValue), ['Y', undefined, Buffer.from([255, 0]), [{ c: 'X' }]]);
  });

  it('schemaToJson of a parsed schema is stable', () => {
    const s: AvroSchema = parseSchema(['null', { type: 'map', values: { type: 'array', items: 'bytes' } }]);
    assert.equal(stringifySchema(parseSchemaText(stringifySchema(s))), stringifySchema(s));
  });
});
