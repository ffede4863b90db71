/**
 * Sluice's Avro container files against Apache Avro's own Java library (org.apache.avro:avro 1.12, through
 * scripts/avro-reader.sh), both ways, over a schema holding every type and logical type, Iceberg's
 * attributes (`field-id`, `element-id`), a recursive record, unions of many branches, and several blocks:
 *
 * - files Sluice writes (codecs null and deflate, Iceberg's metadata entries) are read by Java's
 *   DataFileReader: the records it prints are the values Sluice was given, its metadata is ours, and it
 *   computes the same Parsing Canonical Form and fingerprint for the schema;
 * - files Java's DataFileWriter writes (values generated from the schema: the edge values of every type)
 *   are read by Sluice: the records equal what Java printed it wrote.
 *
 * Both sides compare in the JSON form AvroRead.java prints (longs as strings, bytes and fixed as hex,
 * decimals as plain strings, NaN/Infinity as strings); toJavaJson below writes our values in that form
 * from the schema, independently of the codec under test. Needs Java 17 and Maven (the jars come from
 * Maven Central into ~/.cache/sluice/avro): without them it fails, saying which is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AvroCodec, canonicalForm, encodeContainer, fingerprint64, parseSchema, readContainerFile, schemaToJson, type AvroSchema } from '../../src/core/avro/index.ts';

const SCRIPT = new URL('../../scripts/avro-reader.sh', import.meta.url).pathname;

/** Runs scripts/avro-reader.sh; its JSON output, or a failure carrying its stderr (a missing Java or Maven says so). */
function avroJava(...args: string[]): any {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`scripts/avro-reader.sh ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
  return args[0] === '--fetch' ? r.stderr : JSON.parse(r.stdout);
}

const SCHEMA = {
  type: 'record',
  name: 'Everything',
  namespace: 'sluice.interop',
  doc: 'every Avro type',
  fields: [
    { name: 'b', type: 'boolean', 'field-id': 1 },
    { name: 'i', type: 'int', 'field-id': 2 },
    { name: 'l', type: 'long', 'field-id': 3 },
    { name: 'f', type: 'float', 'field-id': 4 },
    { name: 'd', type: 'double', 'field-id': 5 },
    { name: 'by', type: 'bytes', 'field-id': 6 },
    { name: 's', type: 'string', 'field-id': 7 },
    { name: 'n', type: 'null' },
    { name: 'fx', type: { type: 'fixed', name: 'Hash', size: 5 } },
    { name: 'color', type: { type: 'enum', name: 'Color', symbols: ['RED', 'GREEN', 'BLUE'] } },
    { name: 'longs', type: { type: 'array', items: 'long', 'element-id': 11 }, 'field-id': 10 },
    { name: 'tags', type: { type: 'map', values: ['null', 'string'] } },
    { name: 'choice', type: ['null', 'int', 'long', 'string', 'Hash', 'Color', { type: 'array', items: 'double' }, { type: 'map', values: 'float' }] },
    {
      name: 'partition',
      type: {
        type: 'record',
        name: 'r102',
        fields: [
          { name: 'day', type: ['null', { type: 'int', logicalType: 'date' }], default: null, 'field-id': 1000 },
          { name: 'bucket', type: ['null', 'int'], default: null, 'field-id': 1001 },
        ],
      },
    },
    { name: 'node', type: { type: 'record', name: 'Node', fields: [{ name: 'label', type: 'string' }, { name: 'next', type: ['null', 'Node'] }, { name: 'kids', type: { type: 'array', items: 'Node' } }] } },
    { name: 'kv', type: { type: 'array', logicalType: 'map', items: { type: 'record', name: 'k117_v118', fields: [{ name: 'key', type: 'int', 'field-id': 117 }, { name: 'value', type: 'long', 'field-id': 118 }] } } },
    { name: 'dec', type: { type: 'bytes', logicalType: 'decimal', precision: 9, scale: 2 } },
    { name: 'dec0', type: ['null', { type: 'bytes', logicalType: 'decimal', precision: 4 }] },
    { name: 'decf', type: { type: 'fixed', name: 'Dec16', size: 16, logicalType: 'decimal', precision: 38, scale: 10 } },
    { name: 'uuid', type: { type: 'string', logicalType: 'uuid' } },
    { name: 'uuidf', type: { type: 'fixed', name: 'Uuid16', size: 16, logicalType: 'uuid' } },
    { name: 'date', type: { type: 'int', logicalType: 'date' } },
    { name: 'tmillis', type: { type: 'int', logicalType: 'time-millis' } },
    { name: 'tmicros', type: { type: 'long', logicalType: 'time-micros' } },
    { name: 'tsmillis', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'tsmicros', type: { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true } },
    { name: 'tsnanos', type: { type: 'long', logicalType: 'timestamp-nanos' } },
    { name: 'ltsmillis', type: { type: 'long', logicalType: 'local-timestamp-millis' } },
    { name: 'ltsmicros', type: { type: 'long', logicalType: 'local-timestamp-micros' } },
    { name: 'ltsnanos', type: { type: 'long', logicalType: 'local-timestamp-nanos' } },
    { name: 'dur', type: { type: 'fixed', name: 'Dur', size: 12, logicalType: 'duration' } },
  ],
};
const schema = parseSchema(SCHEMA);

// ---------- our values as AvroRead.java prints values ----------

const branchCodecs = new WeakMap<AvroSchema, AvroCodec>();
/** The union branch our encoder writes a value as: null for null, else the first branch the value fits. */
function branchOf(branches: AvroSchema[], v: unknown): AvroSchema {
  for (const b of branches) {
    let c = branchCodecs.get(b);
    if (!c) branchCodecs.set(b, (c = new AvroCodec(b)));
    if (c.isValid(v)) return b;
  }
  throw new Error(`no branch takes ${String(v)}`);
}

function javaFloat(v: number): unknown {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v;
}

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function toJavaJson(s: AvroSchema, v: any): unknown {
  switch (s.type) {
    case 'null':
      return null;
    case 'boolean':
    case 'int':
    case 'string':
    case 'enum':
      return v;
    case 'long':
      return String(v);
    case 'float':
    case 'double':
      return javaFloat(v);
    case 'bytes':
      return s.logical?.name === 'decimal' ? v : Buffer.from(v).toString('hex');
    case 'fixed':
      return s.logical ? v : Buffer.from(v).toString('hex');
    case 'array':
      return (v as unknown[]).map((x) => toJavaJson(s.items, x));
    case 'map': {
      const out: Record<string, unknown> = {};
      const entries = v instanceof Map ? [...v] : Object.entries(v);
      for (const [k, x] of entries) setOwn(out, k, toJavaJson(s.values, x));
      return out;
    }
    case 'record': {
      const out: Record<string, unknown> = {};
      for (const f of s.fields) out[f.name] = toJavaJson(f.type, v[f.name]);
      return out;
    }
    case 'union':
      return v === null || v === undefined ? null : toJavaJson(branchOf(s.branches, v), v);
  }
}

// ---------- our values: edge values of every type, generated from the schema ----------

const LONGS = [0n, -1n, 1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 53n - 1n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 62n, 1_700_000_000_123_456n, 6_123_456_789_012_345_678n, 64n, -65n];
const INTS = [0, -1, 1, -(2 ** 31), 2 ** 31 - 1, 63, -64, 64, 8191, 19_783, -719_162];
const FLOATS = [0, -0, 1.5, Math.fround(0.1), NaN, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38, Math.fround(-3.4e-12)];
const DOUBLES = [0, -0, 1.5, 0.1, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, -1e300, 123456789.12345679];
const STRINGS = ['', 'a', 'héllo wörld', '日本語のテキスト', 'emoji 😀 and é', 'nul \u0000 and \n newline', 'x'.repeat(300), 'quote " back \\ slash'];

/** A decimal's plain text, `unscaled` × 10^-scale. */
function decimalText(unscaled: bigint, scale: number): string {
  const digits = (unscaled < 0n ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return unscaled < 0n ? '-' + text : text;
}

class Gen {
  private k = 0;

  value(s: AvroSchema, depth: number): unknown {
    const i = this.k++;
    const lt = 'logical' in s ? s.logical : undefined;
    switch (s.type) {
      case 'null':
        return null;
      case 'boolean':
        return i % 2 === 0;
      case 'int':
        return lt?.name === 'time-millis' ? (i * 7_919_000) % 86_400_000 : INTS[i % INTS.length];
      case 'long': {
        if (lt?.name === 'time-micros') return (i * 7_919_000_123) % 86_400_000_000;
        const v = LONGS[i % LONGS.length];
        // Numbers where they are safe, every other time: the encoder takes both.
        return i % 2 === 0 && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 'float':
        return FLOATS[i % FLOATS.length];
      case 'double':
        return DOUBLES[i % DOUBLES.length];
      case 'string':
        return lt?.name === 'uuid' ? this.uuid(i) : STRINGS[i % STRINGS.length];
      case 'bytes':
        return lt?.name === 'decimal' ? this.decimal(lt.precision, lt.scale, i) : Buffer.from(Array.from({ length: i % 40 }, (_, j) => (i * 31 + j * 17) & 255));
      case 'fixed':
        if (lt?.name === 'decimal') return this.decimal(lt.precision, lt.scale, i);
        if (lt?.name === 'uuid') return this.uuid(i);
        if (lt?.name === 'duration') return { months: i % 13, days: (i * 31) % 400, millis: i % 3 === 0 ? 4294967295 : i * 1000 };
        return Buffer.from(Array.from({ length: s.size }, (_, j) => (i * 7 + j) & 255));
      case 'enum':
        return s.symbols[i % s.symbols.length];
      case 'array': {
        const n = depth >= 4 ? 0 : i % 4;
        return Array.from({ length: n }, () => this.value(s.items, depth + 1));
      }
      case 'map': {
        const n = depth >= 4 ? 0 : i % 4;
        const entries: [string, unknown][] = Array.from({ length: n }, (_, j) => [j === 2 ? '__proto__' : `k${j}é`, this.value(s.values, depth + 1)]);
        if (i % 3 === 0) return new Map(entries);
        const o: Record<string, unknown> = {};
        for (const [k, x] of entries) setOwn(o, k, x);
        return o;
      }
      case 'record': {
        const o: Record<string, unknown> = {};
        for (const f of s.fields) o[f.name] = this.value(f.type, depth + 1);
        return o;
      }
      case 'union': {
        const nullAt = s.branches.findIndex((b) => b.type === 'null');
        const b = depth >= 4 && nullAt >= 0 ? nullAt : i % s.branches.length;
        return this.value(s.branches[b], depth + 1);
      }
    }
  }

  uuid(i: number): string {
    const h = (BigInt(i) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  decimal(precision: number, scale: number, i: number): string {
    const max = 10n ** BigInt(precision) - 1n;
    const u = [0n, 1n, -1n, max, -max, (BigInt(i) * 7919n) % max, -((BigInt(i) * 104729n) % max)][i % 7];
    return decimalText(u, scale);
  }
}

// ---------- the tests ----------

describe('Avro interop with Apache Avro for Java', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-avro-java-'));
    avroJava('--fetch');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const gen = new Gen();
  const values = Array.from({ length: 300 }, () => gen.value(schema, 0));
  const iceberg = {
    schema: JSON.stringify({ type: 'struct', 'schema-id': 0, fields: [{ id: 1, name: 'b', required: true, type: 'boolean' }] }),
    'schema-id': '0',
    'partition-spec': '[{"name":"day","transform":"day","source-id":3,"field-id":1000}]',
    'partition-spec-id': '0',
    'format-version': '2',
    content: 'data',
  };

  for (const codec of ['deflate', 'null'] as const) {
    it(`Java reads the ${codec} file Sluice writes: the same records, metadata and schema`, () => {
      const path = join(dir, `ours-${codec}.avro`);
      writeFileSync(path, encodeContainer(schema, values, { codec, blockRecords: 37, blockBytes: 1 << 30, metadata: iceberg }));
      const java = avroJava('read', path);
      assert.match(java.avroVersion, /^1\.12\./);
      assert.equal(java.codec, codec);
      assert.equal(java.blocks, Math.ceil(values.length / 37), 'Java read every block');
      assert.deepEqual(java.records, values.map((v) => toJavaJson(schema, v)));
      const { 'avro.schema': schemaText, 'avro.codec': codecText, ...rest } = java.metadata;
      assert.deepEqual(rest, iceberg);
      assert.equal(codecText, codec);
      assert.deepEqual(JSON.parse(schemaText), schemaToJson(schema));
      // Java's parse of our schema: attributes kept, the same canonical form and fingerprint.
      assert.deepEqual(java.schema, schemaToJson(schema));
      assert.equal(java.canonical, canonicalForm(schema));
      assert.equal(java.fingerprint, fingerprint64(schema).toString());
    });
  }

  for (const codec of ['deflate', 'null'] as const) {
    it(`Sluice reads the ${codec} file Java writes: the records Java wrote`, async () => {
      const schemaPath = join(dir, 'schema.avsc');
      writeFileSync(schemaPath, JSON.stringify(SCHEMA));
      const path = join(dir, `java-${codec}.avro`);
      const java = avroJava('write', schemaPath, path, '--codec', codec, '--records', '400', '--sync-interval', '2048', '--meta', 'format-version=2', '--meta', 'content=deletes');
      const { header, records } = await readContainerFile(path, { longs: 'bigint' });
      assert.equal(header.codec, codec);
      assert.equal(header.text('format-version'), '2');
      assert.equal(header.text('content'), 'deletes');
      assert.equal(canonicalForm(header.schema), canonicalForm(schema));
      assert.equal(records.length, 400);
      assert.deepEqual(records.map((r) => toJavaJson(header.schema, r)), java.records);
      // Several blocks, each checked (sync marker, count, size) on the way.
      assert.ok(java.records.length > 0);
      const again = avroJava('read', path);
      assert.ok(again.blocks > 5, `Java wrote ${again.blocks} blocks`);
    });
  }
});
