/**
 * The document sinks' value conversion (every Connect logical type, including MySQL's), the JSONB
 * text codec, and the template compiler, on values made here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FieldSchema } from '../../src/core/event.ts';
import { fromJsonText, toJsonText } from '../../src/sinks/document/json.ts';
import { converterOf, scaledText, TableShape } from '../../src/sinks/document/reshape.ts';
import { compileTemplate, render } from '../../src/sinks/document/template.ts';
import { Decimal } from '../../src/sinks/document/types.ts';

const S = (type: FieldSchema['type'], name?: string, parameters?: Record<string, string>): FieldSchema => ({ type, optional: true, name, parameters });

describe('document values', () => {
  it('converts each Connect type as documented', () => {
    assert.deepEqual(converterOf(S('int32', 'io.debezium.time.Date'))(5644), new Date('1985-06-15T00:00:00Z'));
    assert.deepEqual(converterOf(S('int32', 'io.debezium.time.Date'))(-1), new Date('1969-12-31T00:00:00Z'));
    assert.deepEqual(converterOf(S('int64', 'io.debezium.time.Timestamp'))(1705314600123), new Date('2024-01-15T10:30:00.123Z'));
    assert.deepEqual(converterOf(S('int64', 'io.debezium.time.MicroTimestamp'))(1705314600123456), new Date('2024-01-15T10:30:00.123Z'));
    assert.deepEqual(converterOf(S('int64', 'io.debezium.time.MicroTimestamp'))(-1), new Date('1969-12-31T23:59:59.999Z'));
    assert.deepEqual(converterOf(S('int64', 'io.debezium.time.NanoTimestamp'))(1705314600123456789n), new Date('2024-01-15T10:30:00.123Z'));
    assert.deepEqual(converterOf(S('string', 'io.debezium.time.ZonedTimestamp'))('2024-01-15T10:30:00.5Z'), new Date('2024-01-15T10:30:00.500Z'));
    assert.equal(converterOf(S('int64', 'io.debezium.time.MicroTime'))(86_399_999_999), '23:59:59.999999');
    // MySQL TIME: negative and past 24 h.
    assert.equal(converterOf(S('int64', 'io.debezium.time.MicroTime'))(-1_500_000), '-00:00:01.5');
    assert.equal(converterOf(S('int64', 'io.debezium.time.MicroTime'))(-3_020_399_000_000), '-838:59:59');
    assert.equal(converterOf(S('int32', 'io.debezium.time.Time'))(3_600_500), '01:00:00.5');
    assert.deepEqual(converterOf(S('string'), 'numeric(15,2)')('2500.75'), new Decimal('2500.75'));
    assert.deepEqual(converterOf(S('string'), 'DECIMAL(5,4) UNSIGNED')('0.0125'), new Decimal('0.0125'));
    assert.equal(converterOf(S('string'), 'numeric')('NaN'), 'NaN');
    // Connect Decimal as bytes (unscaled big-endian two's complement) and Debezium's VariableScaleDecimal.
    assert.deepEqual(converterOf(S('bytes', 'org.apache.kafka.connect.data.Decimal', { scale: '2' }))(Buffer.from([0xff, 0x9c]).toString('base64')), new Decimal('-1.00'));
    assert.deepEqual(converterOf(S('struct', 'io.debezium.data.VariableScaleDecimal'))({ scale: 3, value: Buffer.from([0x30, 0x39]).toString('base64') }), new Decimal('12.345'));
    assert.equal(scaledText(5n, 3), '0.005');
    assert.equal(scaledText(-12345n, 0), '-12345');
    assert.equal(converterOf(S('int64'))(42), 42);
    assert.equal(converterOf(S('int64'))(9007199254740993n), 9007199254740993n);
    assert.equal(converterOf(S('int64'))(12n), 12);
    assert.ok(Number.isNaN(converterOf(S('float64'))('NaN') as number));
    assert.deepEqual(converterOf(S('string', 'io.debezium.data.Json'))('{"a":[1,{"b":12345678901234567890}]}'), { a: [1, { b: 12345678901234567890n }] });
    assert.deepEqual(converterOf(S('bytes'))('AP8='), Buffer.from([0, 255]));
    assert.equal(converterOf(S('string', 'io.debezium.data.Enum'))('ACTIVE'), 'ACTIVE');
    assert.deepEqual(converterOf({ type: 'array', optional: true, items: S('int32', 'io.debezium.time.Date') })([0, null]), [new Date(0), null]);
    assert.equal(converterOf(S('string'))(null), null);
  });

  it('writes JSONB text exactly and reads it back', () => {
    const doc = { _id: 1, d: new Date('2024-01-01T00:00:00Z'), m: new Decimal('2500.70'), b: 9007199254740993n, x: Buffer.from([1]), n: NaN, s: 'é"\n', a: [new Decimal('1E+3'), null], o: { z: false } };
    const text = toJsonText(doc);
    assert.equal(text, '{"_id":1,"d":"2024-01-01T00:00:00.000Z","m":2500.70,"b":9007199254740993,"x":"AQ==","n":null,"s":"é\\"\\n","a":[1E+3,null],"o":{"z":false}}');
    assert.deepEqual(fromJsonText(text), { ...doc, x: 'AQ==', n: null });
    // As PostgreSQL prints jsonb: spaces after separators.
    assert.deepEqual(fromJsonText('{"a": [1, 2.50], "b": {"c": "x"}}'), { a: [1, new Decimal('2.50')], b: { c: 'x' } });
    assert.equal(toJsonText(new Decimal('NaN')), '"NaN"');
  });

  it('compiles templates and renders documents', () => {
    const problems: string[] = [];
    const t = compileTemplate({ id: '$id', nested: { when: '$$source_ts', op: '$$op', t: '$$table', lit: 'x', dollar: { $literal: '$x' }, list: ['$id', 3] } }, (p, m) => problems.push(`${p.join('.')}: ${m}`));
    assert.deepEqual(problems, []);
    const when = new Date(1);
    const doc = render(t, { row: { id: 7 }, sourceTs: when, syncTs: new Date(2), op: 'c', table: 's.t' });
    assert.deepEqual(doc, { id: 7, nested: { when, op: 'c', t: 's.t', lit: 'x', dollar: '$x', list: [7, 3] } });
    const bad: string[] = [];
    compileTemplate({ a: '$$nope', 'b.c': 1, $d: 2, _id: '$id', e: '$', f: { $literal: 1, g: 2 } }, (p, m) => bad.push(`${p.join('.')}: ${m.split(':')[0]}`));
    assert.deepEqual(bad, ['a: unknown "$$nope"', 'b.c: field names may not contain "." (MongoDB reads it as a path)', '$d: field names may not start with "$" (only { $literal', '_id: _id is set by the sink from the source row\'s primary key; name this field otherwise', 'e: "$" names no column', 'f: a { $literal']);
  });
  it('composite keys give distinct _ids even when a value holds the separator', () => {
    const col = (name: string) => ({ name, sourceType: 'text', optional: false, key: true, connect: S('string') });
    const shape = new TableShape({ id: 'x', connector: 'mysql', topic: 't', schema: 'd', table: 't', keyColumns: ['a', 'b'], columns: [col('a'), col('b')] }, null);
    const one = shape.idOf({ a: 'x|y', b: 'z' });
    const two = shape.idOf({ a: 'x', b: 'y|z' });
    assert.notEqual(one, two);
    assert.equal(shape.idOf({ a: '1', b: '2' }), '1|2');
  });
});
