import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { compileExpr, ExprError, FUNCTIONS, type ExprType, type Meta } from '../../src/processors/expr/index.ts';

const META: Meta = { topic: 'shop.public.orders', key: { id: 7 }, timestamp: 1700000000123, headers: { trace: 'abc', 'x-b': '1' }, partition: 2, offset: 41 };

const REC = {
  op: 'u',
  before: null,
  after: {
    id: 9223372036854775807n,
    small: 12n,
    amount: '1500.00',
    qty: 3,
    price: 2.5,
    name: '  Widget ',
    tags: ['a', 'b'],
    active: true,
    created: '2024-03-01T10:20:30.456Z',
    extra: { 'odd name': 1, nested: { deep: 'yes' }, list: [{ sku: 'x1' }, { sku: 'x2' }] },
  },
  source: { table: 'orders', schema: 'public', ts_ms: 1700000000000 },
};

/** Evaluates `src` against REC (or `value`) and META (or `meta`). */
const ev = (src: string, value: unknown = REC, meta: Meta = META): unknown => compileExpr(src).eval(value, meta);

/** Asserts that compiling `src` fails with exactly `reason` at `column`. */
function compileFails(src: string, reason: string, column: number, expect?: ExprType): void {
  assert.throws(
    () => compileExpr(src, { expect }),
    (e: unknown) => {
      assert.ok(e instanceof ExprError, `not an ExprError: ${String(e)}`);
      assert.equal(e.reason, reason);
      assert.equal(e.column, column);
      assert.equal(e.source, src);
      return true;
    },
  );
}

/** Asserts that evaluating `src` fails with exactly `reason` at `column`. */
function evalFails(src: string, reason: string, column: number, value: unknown = REC): void {
  const c = compileExpr(src);
  assert.throws(
    () => c.eval(value, META),
    (e: unknown) => {
      assert.ok(e instanceof ExprError, `not an ExprError: ${String(e)}`);
      assert.equal(e.reason, reason);
      assert.equal(e.column, column);
      return true;
    },
  );
}

describe('expr: literals', () => {
  it('reads numbers, strings with escapes, booleans, null and lists', () => {
    assert.equal(ev('12'), 12);
    assert.equal(ev('3.5'), 3.5);
    assert.equal(ev('1e3'), 1000);
    assert.equal(ev('2.5E-1'), 0.25);
    assert.equal(ev('-2'), -2);
    assert.equal(ev('- 2.5'), -2.5);
    assert.equal(ev('9223372036854775807'), 9223372036854775807n, 'integers beyond 2^53 are bigints');
    assert.equal(ev('-9223372036854775808'), -9223372036854775808n);
    assert.equal(ev(`'it\\'s'`), "it's");
    assert.equal(ev(`"say \\"hi\\""`), 'say "hi"');
    assert.equal(ev(`'a\\nb\\tc\\\\d'`), 'a\nb\tc\\d');
    assert.equal(ev(`'\\u00e9\\u20AC'`), 'é€');
    assert.equal(ev(`'\\d+'`), '\\d+', 'other escapes keep their backslash (for regexes)');
    assert.equal(ev(`"it's"`), "it's");
    assert.equal(ev('true'), true);
    assert.equal(ev('false'), false);
    assert.equal(ev('null'), null);
    assert.deepEqual(ev("[1, 'a', null, [true]]"), [1, 'a', null, [true]]);
    assert.deepEqual(ev('[]'), []);
    assert.deepEqual(ev('[op, after.qty + 1]'), ['u', 4]);
  });

  it('gives a fresh list each time, so that callers may keep or change it', () => {
    const c = compileExpr('[1, 2]');
    const a = c.eval(REC, META) as number[];
    a.push(3);
    assert.deepEqual(c.eval(REC, META), [1, 2]);
  });
});

describe('expr: fields and metadata', () => {
  it('reads fields along paths; missing fields and nulls on the way give null', () => {
    assert.equal(ev('op'), 'u');
    assert.equal(ev('source.table'), 'orders');
    assert.equal(ev('after.qty'), 3);
    assert.equal(ev('after.extra.nested.deep'), 'yes');
    assert.equal(ev("after.extra['odd name']"), 1);
    assert.equal(ev("after['extra'][\"nested\"].deep"), 'yes');
    assert.equal(ev('after.tags[1]'), 'b');
    assert.equal(ev('after.extra.list[1].sku'), 'x2');
    assert.equal(ev('after.tags[after.qty - 2]'), 'b', 'computed index');
    assert.equal(ev('after.tags[5]'), null, 'out of range');
    assert.equal(ev('after.tags[-1]'), null);
    assert.equal(ev('after.tags[0.5]'), null);
    assert.equal(ev("after.tags['0']"), null, 'a list has no named fields');
    assert.equal(ev('after.missing'), null);
    assert.equal(ev('after.missing.deeper.still'), null);
    assert.equal(ev('before.id'), null, 'null on the path');
    assert.equal(ev('after.qty.x'), null, 'a number on the path');
    assert.equal(ev('after.name.length'), null, 'strings have no fields');
    assert.equal(ev('after.tags.length'), null, 'lists have no fields: use length()');
    assert.equal(ev('op', null), null, 'a tombstone (null value)');
    assert.equal(ev('after.id', { after: { id: undefined } }), null, 'undefined reads as null');
    assert.equal(ev('x[0]', { x: Buffer.from('ab') }), null, 'bytes are not indexable');
    assert.equal(ev('after.in', { after: { in: 1 } }), 1, 'keywords are field names after a dot');
  });

  it('reads the whole value with $value, for top-level names that are not identifiers', () => {
    assert.equal(ev("$value['odd key']", { 'odd key': 5 }), 5);
    assert.equal(ev('$value.op'), 'u');
    assert.equal(ev('$value', 'plain'), 'plain');
  });

  it('reads $topic, $key, $timestamp, $headers, $partition and $offset from the metadata', () => {
    assert.equal(ev('$topic'), 'shop.public.orders');
    assert.deepEqual(ev('$key'), { id: 7 });
    assert.equal(ev('$key.id'), 7);
    assert.equal(ev('$key.missing'), null);
    assert.equal(ev('$key.id', REC, { ...META, key: 'k1' }), null, 'a string key has no fields');
    assert.equal(ev('$key', REC, { ...META, key: 'k1' }), 'k1');
    assert.equal(ev('$timestamp'), 1700000000123);
    assert.equal(ev('$headers.trace'), 'abc');
    assert.equal(ev("$headers['x-b']"), '1');
    assert.equal(ev('$headers.nope'), null);
    assert.equal(ev('$headers.trace', REC, { ...META, headers: undefined }), null);
    assert.equal(ev('$headers', REC, { ...META, headers: undefined }), null);
    assert.equal(ev('$partition'), 2);
    assert.equal(ev('$offset'), 41);
    assert.equal(ev('$partition', REC, { topic: 't', key: null, timestamp: 0, headers: undefined }), null);
    assert.equal(ev('$offset ?? -1', REC, { topic: 't', key: null, timestamp: 0, headers: undefined }), -1);
  });

  it('refuses an unknown $name, listing the valid ones', () => {
    compileFails('$topik == 1', "unknown '$topik': the valid names are $topic, $key, $timestamp, $headers, $partition, $offset, $value", 1);
    compileFails('$constructor', "unknown '$constructor': the valid names are $topic, $key, $timestamp, $headers, $partition, $offset, $value", 1);
  });

  it('reads own properties only: constructor, __proto__, prototype, toString give null', () => {
    for (const name of ['constructor', '__proto__', 'prototype', 'toString', 'hasOwnProperty']) {
      assert.equal(ev(name), null, name);
      assert.equal(ev(`after.${name}`), null, `after.${name}`);
      assert.equal(ev(`after['${name}']`), null);
      assert.equal(ev(`$key.${name}`), null);
      assert.equal(ev(`$headers.${name}`), null);
      assert.equal(ev(`'${name}' in after`), false);
    }
    assert.equal(ev('after.constructor.name'), null);
    assert.equal(ev("after.tags['constructor']"), null);
    assert.equal(ev('constructor', { constructor: 'own' }), 'own', 'an own key of that name is read');
    const parsed = JSON.parse('{"__proto__": {"x": 1}}');
    assert.deepEqual(ev('__proto__', parsed), { x: 1 }, 'an own __proto__ key (from JSON.parse) is read');
    compileFails('constructor(1)', "unknown function 'constructor'", 1);
    assert.equal(ev('secret', Object.create({ secret: 1 })), null, 'inherited from another prototype');
    assert.equal(ev('a.secret', { a: Object.create({ secret: 1 }) }), null);
    const bare = Object.assign(Object.create(null), { k: 'v' });
    assert.equal(ev('k', bare), 'v', 'null-prototype objects are read');
    assert.equal(ev('x.k', { x: bare }), 'v');
    assert.equal(ev('x.length', { x: Buffer.from('ab') }), null, 'bytes have no fields');
  });
});

describe('expr: equality', () => {
  it('compares null, numbers, numeric strings, bigints, strings, lists and objects', () => {
    assert.equal(ev('null == null'), true);
    assert.equal(ev('before == null'), true);
    assert.equal(ev('after.missing == null'), true);
    assert.equal(ev('null == 0'), false);
    assert.equal(ev("null == ''"), false);
    assert.equal(ev('after.amount == 1500'), true, 'numeric string vs number');
    assert.equal(ev('1500 == after.amount'), true);
    assert.equal(ev("after.amount == '1500'"), false, 'two strings compare exactly');
    assert.equal(ev("after.amount == '1500.00'"), true);
    assert.equal(ev('after.small == 12'), true, 'bigint vs number by value');
    assert.equal(ev("after.small == '12.0'"), true, 'bigint vs numeric string');
    assert.equal(ev('after.id == 9223372036854775807'), true);
    assert.equal(ev('after.id == 9223372036854775806'), false, 'no rounding through doubles');
    assert.equal(ev("after.id == '9223372036854775807'"), true);
    assert.equal(ev("after.id == '9223372036854775806'"), false);
    assert.equal(ev("1 == 'abc'"), false);
    assert.equal(ev("true == 'true'"), false);
    assert.equal(ev('true == 1'), false);
    assert.equal(ev("'a' == 'a'"), true);
    assert.equal(ev("after.tags == ['a', 'b']"), true);
    assert.equal(ev("after.tags == ['b', 'a']"), false);
    assert.equal(ev("after.tags == ['a']"), false);
    assert.equal(ev('[1, [2]] == [1.0, [2]]'), true);
    assert.equal(ev("after.extra.nested == $value.after.extra.nested"), true);
    assert.equal(ev('x == y', { x: { a: 1, b: [2] }, y: { b: [2], a: 1 } }), true, 'objects: same keys in any order');
    assert.equal(ev('x == y', { x: { a: 1 }, y: { a: 1, b: 2 } }), false);
    assert.equal(ev('x == y', { x: { a: 1 }, y: [1] }), false);
    assert.equal(ev('x == y', { x: Buffer.from('ab'), y: Buffer.from('ab') }), true);
    assert.equal(ev('x == y', { x: Buffer.from('ab'), y: Buffer.from('ac') }), false);
  });

  it('reads numeric strings strictly: decimal syntax only', () => {
    const yes: [string, number][] = [['.5', 0.5], ['1.', 1], ['+5', 5], ['-0.25', -0.25], ['1e3', 1000], ['2.5E-2', 0.025], ['007', 7], ['1234567890.123456789', Number('1234567890.123456789')]];
    for (const [s, n] of yes) assert.equal(ev('x == n', { x: s, n }), true, s);
    for (const s of ['', ' 1', '1 ', '0x10', 'NaN', 'Infinity', '1e', '.', '-', '1,5', '1_000', '١']) assert.equal(ev('x == 1 || x == 16 || x == 0 || x == 1000', { x: s }), false, JSON.stringify(s));
  });

  it('converts numeric strings exactly as Number() does', () => {
    let seed = 42;
    const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % k);
    const c = compileExpr('number(x)');
    for (let i = 0; i < 20000; i++) {
      const digits = (k: number) => Array.from({ length: k }, () => rnd(10)).join('');
      const s = (rnd(3) === 0 ? '-' : '') + digits(1 + rnd(9)) + (rnd(4) ? '.' + digits(rnd(9)) : '') + (rnd(10) === 0 ? 'e' + (rnd(40) - 20) : '');
      assert.equal(c.eval({ x: s }, META), Number(s), s);
    }
  });

  it('!= is the negation of ==', () => {
    assert.equal(ev('null != null'), false);
    assert.equal(ev('op != null'), true);
    assert.equal(ev('after.amount != 1500'), false);
    assert.equal(ev("op != 'c'"), true);
  });
});

describe('expr: ordering', () => {
  it('orders numbers, numeric strings and bigints numerically', () => {
    assert.equal(ev('after.qty < 4'), true);
    assert.equal(ev('after.qty <= 3'), true);
    assert.equal(ev('after.qty > 3'), false);
    assert.equal(ev('after.qty >= 3'), true);
    assert.equal(ev('after.amount > 999.5'), true);
    assert.equal(ev("after.amount > '999'"), true, 'two numeric strings: numerically');
    assert.equal(ev("'10' < '9'"), false);
    assert.equal(ev('after.id > 9223372036854775806'), true);
    assert.equal(ev('after.id > 1e18'), true, 'bigint vs number');
    assert.equal(ev('after.small < 12.5'), true);
    assert.equal(ev("after.id >= '9223372036854775807'"), true);
  });

  it('orders other strings by code units', () => {
    assert.equal(ev("'apple' < 'banana'"), true);
    assert.equal(ev("'b' <= 'a'"), false);
    assert.equal(ev("'10' < 'abc'"), true, 'only one numeric: as strings');
    assert.equal(ev("after.created >= '2024-03-01'"), true);
    assert.equal(ev("'Z' < 'a'"), true);
  });

  it('gives null when an operand is null', () => {
    assert.equal(ev('after.missing > 1'), null);
    assert.equal(ev('1 <= before'), null);
    assert.equal(ev('null < null'), null);
  });

  it('refuses other mixes at run time', () => {
    evalFails("x < 5", "cannot compare 'abc' with 5 (in x < 5)", 3, { x: 'abc' });
    evalFails('x >= y', 'cannot compare true with 1 (in x >= y)', 3, { x: true, y: 1 });
    evalFails('x > y', 'cannot compare ["a"] with 1 (in x > y)', 3, { x: ['a'], y: 1 });
  });
});

describe('expr: arithmetic', () => {
  it('computes on numbers, numeric strings and bigints', () => {
    assert.equal(ev('1 + 2 * 3'), 7);
    assert.equal(ev('(1 + 2) * 3'), 9);
    assert.equal(ev('1 - 2 - 3'), -4, 'left-associative');
    assert.equal(ev('7 / 2'), 3.5);
    assert.equal(ev('7 % 4'), 3);
    assert.equal(ev('2 * 3 % 4'), 2);
    assert.equal(ev('-after.qty * 2'), -6);
    assert.equal(ev('- -3'), 3);
    assert.equal(ev('after.amount * 2'), 3000);
    assert.equal(ev("after.amount + '0.5'"), 1500.5);
    assert.equal(ev('-after.amount'), -1500);
    assert.equal(ev('after.price * after.qty'), 7.5);
  });

  it('keeps bigints exact: + - * % stay bigint, also with integer numbers; / gives a number', () => {
    assert.equal(ev('after.small + after.small'), 24n);
    assert.equal(ev('after.id - 1'), 9223372036854775806n);
    assert.equal(ev('after.id % 16'), 15n, 'exact where a double would give 0');
    assert.equal(ev('after.small * 2'), 24n);
    assert.equal(ev("'9223372036854775807' % 10"), 7n, 'integer strings beyond 2^53 too');
    assert.equal(ev('after.small / 8'), 1.5);
    assert.equal(ev('after.small / after.small'), 1);
    assert.equal(ev('after.small + 0.5'), 12.5, 'with a fraction: a number');
    assert.equal(ev('-after.small'), -12n);
  });

  it('gives null when an operand is null', () => {
    assert.equal(ev('after.missing + 1'), null);
    assert.equal(ev('1 * before'), null);
    assert.equal(ev('-after.missing'), null);
    assert.equal(ev('null / 0'), null);
  });

  it('refuses non-numbers and division by zero at run time, saying what was wrong', () => {
    evalFails('after.amount * 2', "'abc' is not a number (in after.amount * 2)", 14, { after: { amount: 'abc' } });
    evalFails('1 + x', 'true is not a number (in 1 + x)', 3, { x: true });
    evalFails('x - 1', '["a"] is not a number (in x - 1)', 3, { x: ['a'] });
    evalFails('-x', "'1,5' is not a number (in -x)", 1, { x: '1,5' });
    evalFails('after.qty / (after.qty - 3)', 'division by zero (in after.qty / (after.qty - 3))', 11);
    evalFails('after.qty % 0', 'division by zero (in after.qty % 0)', 11);
    evalFails('after.small % 0', 'division by zero (in after.small % 0)', 13);
    evalFails('x + 1', `'${'y'.repeat(40)}…' is not a number (in x + 1)`, 3, { x: 'y'.repeat(100) });
  });
});

describe('expr: logic', () => {
  const V = { t: true, f: false, n: null, s: 'yes' };
  it('is three-valued over booleans and null', () => {
    const and: [string, unknown][] = [
      ['t && t', true], ['t && f', false], ['f && t', false], ['f && f', false],
      ['n && f', false], ['f && n', false], ['n && t', null], ['t && n', null], ['n && n', null],
    ];
    for (const [src, want] of and) {
      assert.equal(ev(src, V), want, src);
      assert.equal(ev(src.replace('&&', 'and'), V), want, src);
    }
    const or: [string, unknown][] = [
      ['t || f', true], ['f || t', true], ['f || f', false], ['t || t', true],
      ['n || t', true], ['t || n', true], ['n || f', null], ['f || n', null], ['n || n', null],
    ];
    for (const [src, want] of or) {
      assert.equal(ev(src, V), want, src);
      assert.equal(ev(src.replace('||', 'or'), V), want, src);
    }
    assert.equal(ev('!t', V), false);
    assert.equal(ev('!f', V), true);
    assert.equal(ev('!n', V), null);
    assert.equal(ev('not t', V), false);
    assert.equal(ev('not not t', V), true);
    assert.equal(ev('t || f && f', V), true, '&& binds tighter than ||');
    assert.equal(ev('(t || f) && f', V), false);
  });

  it('short-circuits', () => {
    assert.equal(ev("false && number(after.name) > 1"), false);
    assert.equal(ev("true || number(after.name) > 1"), true);
    assert.equal(ev("op == 'c' && number(after.name) > 1"), false);
    assert.equal(ev('f && s', V), false, 'the right side is not even type-checked at run time');
  });

  it('refuses non-boolean operands at run time', () => {
    evalFails('s && t', "'yes' is not a boolean (in s && t)", 3, V);
    evalFails('t and s', "'yes' is not a boolean (in t and s)", 3, V);
    evalFails('f || x', '1 is not a boolean (in f || x)', 3, { ...V, x: 1 });
    evalFails('!s', "'yes' is not a boolean (in !s)", 1, V);
    evalFails('not x', '[] is not a boolean (in not x)', 1, { x: [] });
  });
});

describe('expr: ? : and ??', () => {
  it('picks a branch: true the first, false or null the second', () => {
    assert.equal(ev("after.qty > 2 ? 'many' : 'few'"), 'many');
    assert.equal(ev("after.qty > 5 ? 'many' : 'few'"), 'few');
    assert.equal(ev("after.missing > 5 ? 'many' : 'few'"), 'few');
    assert.equal(ev("after.qty > 5 ? 'a' : after.qty > 2 ? 'b' : 'c'"), 'b', 'right-associative');
    assert.equal(ev('true ? 1 : number(after.name)'), 1, 'only the chosen branch runs');
    evalFails("x ? 1 : 2", "'yes' is not a boolean (in x)", 1, { x: 'yes' });
  });

  it('?? gives the left side unless it is null', () => {
    assert.equal(ev("after.missing ?? 'dflt'"), 'dflt');
    assert.equal(ev("op ?? 'dflt'"), 'u');
    assert.equal(ev('x ?? 1', { x: false }), false);
    assert.equal(ev('x ?? 1', { x: 0 }), 0);
    assert.equal(ev('a ?? b ?? 3', {}), 3);
    assert.equal(ev("after.missing ?? false ? 'y' : 'n'"), 'n', '?? binds tighter than ? :');
    assert.equal(ev('after.missing ?? 1 + 2'), 3, '+ binds tighter than ??');
  });
});

describe('expr: in / not in', () => {
  it('looks in lists, strings and objects', () => {
    assert.equal(ev("op in ['c', 'u']"), true);
    assert.equal(ev("op in ['c', 'd']"), false);
    assert.equal(ev("op not in ['c', 'd']"), true);
    assert.equal(ev("op not in ['u']"), false);
    assert.equal(ev('after.qty in [1, 2, 3]'), true);
    assert.equal(ev('after.amount in [1500, 2000]'), true, 'with == semantics: numeric string vs number');
    assert.equal(ev("after.amount in ['1500']"), false);
    assert.equal(ev('after.small in [12]'), true);
    assert.equal(ev("'b' in after.tags"), true, 'a list field');
    assert.equal(ev("'z' in after.tags"), false);
    assert.equal(ev("'z' not in after.tags"), true);
    assert.equal(ev('x in [after.qty, 4]', { x: 4 }), true, 'computed items');
    assert.equal(ev("'ab' in 'xabz'"), true, 'substring');
    assert.equal(ev("'ba' in 'xabz'"), false);
    assert.equal(ev("'idg' in after.name"), true);
    assert.equal(ev("'Wid' not in after.name"), false);
    assert.equal(ev("'nested' in after.extra"), true, 'an own key of an object');
    assert.equal(ev("'nope' in after.extra"), false);
  });

  it('gives null when an operand is null', () => {
    assert.equal(ev('after.missing in [1, 2]'), null);
    assert.equal(ev('after.missing not in [1, 2]'), null);
    assert.equal(ev("'a' in after.missing"), null);
  });

  it('refuses what cannot contain at run time', () => {
    evalFails("'a' in x", "5 is a number: 'in' needs a list, a string or an object on its right (in 'a' in x)", 5, { x: 5 });
    evalFails("x in 'abc'", "1 is a number: 'in' with a string on its right looks for a string (in x in 'abc')", 3, { x: 1 });
    evalFails('x not in y', "true is a boolean: 'not in' with an object on its right looks for a key (a string) (in x not in y)", 3, { x: true, y: {} });
  });
});

describe('expr: functions', () => {
  const cases: [string, unknown, string?][] = [
    ["lower('AbC')", 'abc'],
    ["upper('AbC')", 'ABC'],
    ['trim(after.name)', 'Widget'],
    ["length('héllo')", 5],
    ["length('a😀b')", 3],
    ['length(after.tags)', 2],
    ["concat('a', 1, null, true, after.small, '-', after.tags)", 'a1true12-["a","b"]'],
    ['concat(null)', ''],
    ["substr('abcdef', 2)", 'cdef'],
    ["substr('abcdef', 2, 3)", 'cde'],
    ["substr('abcdef', 10)", ''],
    ["substr('abcdef', -3, 2)", 'ab'],
    ["substr('a😀bc', 1, 2)", '😀b'],
    ["substr('abc', 1, 0)", ''],
    ["starts_with('abc', 'ab')", true],
    ["starts_with('abc', 'b')", false],
    ["ends_with('abc', 'bc')", true],
    ["ends_with('abc', 'b')", false],
    ["contains('abc', 'b')", true],
    ["contains('abc', 'x')", false],
    ["matches('order-123', '^order-\\d+$')", true],
    ["matches('order-x', '^order-\\d+$')", false],
    ["matches('abc', x)", true],
    ["replace('a.b.c', '.', '$&')", 'a$&b$&c'],
    ["replace('aaa', 'a', 'bb')", 'bbbbbb'],
    ["replace('abc', '', 'x')", 'abc'],
    ["split('a,b,,c', ',')", ['a', 'b', '', 'c']],
    ["split('ab', '')", ['a', 'b']],
    ["coalesce(after.missing, null, 'x', 'y')", 'x'],
    ['coalesce(null, before)', null],
    ["number('1500.00')", 1500],
    ['number(after.small)', 12],
    ['number(true)', 1],
    ['number(2.5)', 2.5],
    ['int(2.9)', 2],
    ['int(-2.9)', -2],
    ["int('42.99')", 42],
    ["int('-0.5')", 0],
    ["int('1e3')", 1000],
    ["int('9223372036854775807.5')", 9223372036854775807n],
    ['int(1e20)', 100000000000000000000n],
    ['int(after.id)', 9223372036854775807n],
    ['int(false)', 0],
    ['string(12)', '12'],
    ['string(after.id)', '9223372036854775807'],
    ['string(true)', 'true'],
    ["string('s')", 's'],
    ['string(after.extra.list)', '[{"sku":"x1"},{"sku":"x2"}]'],
    ['boolean(true)', true],
    ["boolean('false')", false],
    ["boolean('TRUE')", true],
    ['boolean(1)', true],
    ['boolean(0)', false],
    ['abs(-3)', 3],
    ["abs('-2.5')", 2.5],
    ['abs(-after.small)', 12n],
    ['round(2.5)', 3],
    ['round(-2.5)', -3],
    ['round(1.005, 2)', 1.01],
    ['round(1234.5678, 1)', 1234.6],
    ['round(1250, -2)', 1300],
    ["round('1500.456', 2)", 1500.46],
    ['round(after.id, -1)', 9223372036854775810n],
    ['round(after.small)', 12n],
    ['floor(2.7)', 2],
    ['floor(-2.1)', -3],
    ["floor('3.9')", 3],
    ['ceil(2.1)', 3],
    ['ceil(-2.9)', -2],
    ['ceil(after.small)', 12n],
    ['min(3, 1, 2)', 1],
    ['max(3, 1, 2)', 3],
    ["max(after.amount, 20)", '1500.00'],
    ['min(after.missing, 5, null)', 5],
    ['max(after.tags)', 'b'],
    ['min(null, null)', null],
    ["min('b', 'a')", 'a'],
    ['max(after.small, after.id)', 9223372036854775807n],
    ['is_null(after.missing)', true],
    ['is_null(null)', true],
    ['is_null(0)', false],
    ["sha256('abc')", 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ["md5('abc')", '900150983cd24fb0d6963f7d28e17f72'],
    ['sha256(12)', createHash('sha256').update('12').digest('hex')],
    ["timestamp_ms('2024-03-01T10:20:30.456Z')", Date.UTC(2024, 2, 1, 10, 20, 30, 456)],
    ["timestamp_ms('2024-03-01T10:20:30')", Date.UTC(2024, 2, 1, 10, 20, 30), 'no zone: UTC'],
    ["timestamp_ms('2024-03-01 10:20:30.123456+02:00')", Date.UTC(2024, 2, 1, 8, 20, 30, 123)],
    ["timestamp_ms('2024-03-01T10:20-0130')", Date.UTC(2024, 2, 1, 11, 50)],
    ["timestamp_ms('2024-03-01')", Date.UTC(2024, 2, 1)],
    ["timestamp_ms('0099-01-01')", -59042995200000],
    ['timestamp_ms(1700000000123)', 1700000000123],
    ["timestamp_ms('1700000000123')", 1700000000123],
    ['timestamp_ms(1700000000123000)', 1700000000123000, 'microseconds are not guessed'],
    ["date_part('year', after.created)", 2024],
    ["date_part('month', after.created)", 3],
    ["date_part('day', after.created)", 1],
    ["date_part('hour', after.created)", 10],
    ["date_part('minute', after.created)", 20],
    ["date_part('second', after.created)", 30],
    ["date_part('dow', after.created)", 5],
    ["date_part('dow', 0)", 4],
    ["date_trunc('year', after.created)", Date.UTC(2024, 0, 1)],
    ["date_trunc('month', after.created)", Date.UTC(2024, 2, 1)],
    ["date_trunc('day', after.created)", Date.UTC(2024, 2, 1)],
    ["date_trunc('hour', after.created)", Date.UTC(2024, 2, 1, 10)],
    ["date_trunc('minute', after.created)", Date.UTC(2024, 2, 1, 10, 20)],
    ["date_trunc('second', after.created)", Date.UTC(2024, 2, 1, 10, 20, 30)],
    ["date_trunc('day', -1)", -86400000],
  ];

  it('computes each function', () => {
    for (const [src, want, why] of cases) assert.deepEqual(ev(src, { ...REC, x: 'b+' }), want, why ? `${src}: ${why}` : src);
  });

  it('hashes bytes themselves, and lists as their JSON', () => {
    assert.equal(ev('md5(x)', { x: Buffer.from([0, 255]) }), createHash('md5').update(Buffer.from([0, 255])).digest('hex'));
    assert.equal(ev('sha256(x)', { x: [1, 'a'] }), createHash('sha256').update('[1,"a"]').digest('hex'));
  });

  it('gives null for a null argument, except coalesce, concat, is_null, min and max', () => {
    const nulls = [
      'lower(x)', 'upper(x)', 'trim(x)', 'length(x)', 'substr(x, 1)', "substr('abc', x)", "substr('abc', 1, x)",
      "starts_with(x, 'a')", "ends_with('a', x)", "contains(x, 'a')", "matches(x, 'a')", "matches('a', x)",
      "replace(x, 'a', 'b')", "replace('a', 'a', x)", "split(x, ',')", 'number(x)', 'int(x)', 'string(x)',
      'boolean(x)', 'abs(x)', 'round(x)', 'round(1.5, x)', 'floor(x)', 'ceil(x)', 'sha256(x)', 'md5(x)',
      'timestamp_ms(x)', "date_part('year', x)", 'date_part(x, 0)', "date_trunc('day', x)", 'date_trunc(x, 0)',
    ];
    for (const src of nulls) assert.equal(ev(src, { x: null }), null, src);
    assert.equal(ev('coalesce(x, 1)', { x: null }), 1);
    assert.equal(ev("concat(x, 'a')", { x: null }), 'a');
    assert.equal(ev('is_null(x)', { x: null }), true);
    assert.equal(ev('min(x, 2)', { x: null }), 2);
    assert.equal(ev('max(x)', { x: null }), null);
  });

  it('now() is evaluated for each record', () => {
    const c = compileExpr('now()');
    const before = Date.now();
    const t = c.eval(REC, META) as number;
    assert.ok(t >= before && t <= Date.now(), String(t));
    assert.equal(c.type, 'number');
  });

  it('refuses arguments of the wrong kind at run time', () => {
    evalFails('lower(x)', '5 is not a string (in lower(x))', 1, { x: 5 });
    evalFails('length(x)', '5 is not a string or a list (in length(x))', 1, { x: 5 });
    evalFails('number(x)', "'12 apples' is not a number (in number(x))", 1, { x: '12 apples' });
    evalFails('int(x)', "'abc' is not a number (in int(x))", 1, { x: 'abc' });
    evalFails('boolean(x)', "'yes' is not a boolean (in boolean(x))", 1, { x: 'yes' });
    evalFails('boolean(x)', '2 is not a boolean (in boolean(x))', 1, { x: 2 });
    evalFails('substr(x, 1.5)', '1.5 is not an integer (in substr(x, 1.5))', 1, { x: 'abc' });
    evalFails('matches(x, y)', "'(' is not a valid regular expression: Unterminated group (in matches(x, y))", 1, { x: 'a', y: '(' });
    evalFails('max(x, 1)', "cannot compare 1 with 'a' (in max(x, 1))", 1, { x: 'a' });
    evalFails('max(x, 1)', 'true is not a number or a string (in max(x, 1))', 1, { x: true });
    evalFails('timestamp_ms(x)', "'yesterday' is not an ISO-8601 timestamp (in timestamp_ms(x))", 1, { x: 'yesterday' });
    evalFails('timestamp_ms(x)', "'2023-02-30' is not an ISO-8601 timestamp (in timestamp_ms(x))", 1, { x: '2023-02-30' });
    evalFails('timestamp_ms(x)', 'true is not a timestamp (in timestamp_ms(x))', 1, { x: true });
    evalFails('date_part(u, 0)', "unknown unit 'week': date_part() takes 'year', 'month', 'day', 'hour', 'minute', 'second', 'dow' (in date_part(u, 0))", 1, { u: 'week' });
    evalFails("date_part('year', x)", '1e+300 is outside the date range (in date_part(\'year\', x))', 1, { x: 1e300 });
    evalFails('1 + lower(x)', '1 is not a string (in lower(x))', 5, { x: 1 });
  });

  it('lists every function for the docs, with its signature, return type and doc', () => {
    const names = FUNCTIONS.map((f) => f.name);
    assert.deepEqual(names, [
      'lower', 'upper', 'trim', 'length', 'concat', 'substr', 'starts_with', 'ends_with', 'contains', 'matches', 'replace',
      'split', 'coalesce', 'number', 'int', 'string', 'boolean', 'abs', 'round', 'floor', 'ceil', 'min', 'max', 'is_null',
      'sha256', 'md5', 'now', 'timestamp_ms', 'date_part', 'date_trunc',
    ]);
    assert.deepEqual(FUNCTIONS.find((f) => f.name === 'substr'), { name: 'substr', args: 's, start[, len]', returns: 'string', doc: FUNCTIONS.find((f) => f.name === 'substr')!.doc });
    for (const f of FUNCTIONS) assert.ok(f.doc.length > 10, f.name);
  });
});

describe('expr: compile errors', () => {
  it('formats the message with the column and a caret under it', () => {
    assert.throws(() => compileExpr('lower(op, (1 + 2'), {
      message: "expected ')' at column 17:\n  lower(op, (1 + 2\n                  ^",
    });
    assert.throws(() => compileExpr("op == 'u' && 'abc' * 2"), {
      message: "'abc' is not a number at column 14:\n  op == 'u' && 'abc' * 2\n               ^",
    });
  });

  it('formats runtime errors the same way', () => {
    assert.throws(() => compileExpr('after.amount * 2').eval({ after: { amount: 'abc' } }, META), {
      name: 'ExprError',
      message: "'abc' is not a number (in after.amount * 2) at column 14:\n  after.amount * 2\n               ^",
    });
  });

  it('shows a multi-line source on one line, so that the caret lines up', () => {
    assert.throws(() => compileExpr("a +\n  'x' * 2"), { message: "'x' is not a number at column 7:\n  a +   'x' * 2\n        ^" });
  });

  it('reports syntax errors where they are', () => {
    compileFails('', 'empty expression', 1);
    compileFails('   ', 'empty expression', 4);
    compileFails('(a + b', "expected ')'", 7);
    compileFails('a +', 'unexpected end of expression', 4);
    compileFails('a b', "unexpected 'b'", 3);
    compileFails('a ? b', "expected ':'", 6);
    compileFails('[1, 2', "expected ',' or ']'", 6);
    compileFails('f(1 2)', "expected ',' or ')'", 5);
    compileFails("'abc", 'unterminated string', 1);
    compileFails("x == 'a\\u12g4'", 'invalid \\u escape: 4 hex digits are needed', 8);
    compileFails('12abc', "invalid number '12a'", 1);
    compileFails('1e+', "invalid number '1e+'", 1);
    compileFails('a = 1', "unexpected character '=' (use '==' to compare)", 3);
    compileFails('a & b', "unexpected character '&' (use '&&' or 'and')", 3);
    compileFails('a # b', "unexpected character '#'", 3);
    compileFails('a.', "expected a field name after '.'", 3);
    compileFails('a.1', "expected a field name after '.'", 3);
    compileFails('$', "expected a name after '$'", 1);
    compileFails('a and or b', "unexpected 'or'", 7);
    compileFails('a.lower(b)', 'only functions can be called, by name (like lower(x)): values have no methods', 8);
    compileFails(')', "unexpected ')'", 1);
    compileFails('x in', 'unexpected end of expression', 5);
    compileFails('not in x', "unexpected 'in'", 5);
  });

  it('bounds nesting', () => {
    const deep = '('.repeat(250) + '1' + ')'.repeat(250);
    compileFails(deep, 'expression is nested too deeply (more than 200 levels)', 201);
    assert.equal(ev('('.repeat(150) + '1' + ')'.repeat(150)), 1);
    compileFails('!'.repeat(300) + 'true', 'expression is nested too deeply (more than 200 levels)', 201);
    compileFails('x ? '.repeat(250) + '1' + ' : 2'.repeat(250), 'expression is nested too deeply (more than 200 levels)', 803);
    assert.equal(ev('x ? '.repeat(199) + '1' + ' : 2'.repeat(199), { x: true }), 1);
    assert.equal(ev('lower('.repeat(199) + "'A'" + ')'.repeat(199)), 'a');
    compileFails(Array(1200).fill('1').join(' + '), 'expression is too long or nested too deeply (more than 1000 levels)', 3999);
    assert.equal(ev(Array(500).fill('1').join(' + ')), 500);
  });

  it('reports unknown functions, with a suggestion when one is close', () => {
    compileFails('lenght(x)', "unknown function 'lenght' (did you mean 'length'?)", 1);
    compileFails("startswith(x, 'a')", "unknown function 'startswith' (did you mean 'starts_with'?)", 1);
    compileFails('op == UPPER(x)', "unknown function 'UPPER' (did you mean 'upper'?)", 7);
    compileFails('frobnicate(x)', "unknown function 'frobnicate'", 1);
  });

  it('reports wrong arity at the function name', () => {
    compileFails("substr('a')", 'substr() takes 2 or 3 arguments, but 1 was given', 1);
    compileFails('x + lower()', 'lower() takes 1 argument, but none was given', 5);
    compileFails('lower(a, b)', 'lower() takes 1 argument, but 2 were given', 1);
    compileFails('coalesce()', 'coalesce() takes at least 1 argument, but none was given', 1);
    compileFails('now(1)', 'now() takes 0 arguments, but 1 was given', 1);
  });

  it('reports operands of a type that can never work, at the operand', () => {
    compileFails("'abc' * 2", "'abc' is not a number", 1);
    compileFails('2 - "x"', '"x" is not a number', 5);
    compileFails('true + 1', 'true is a boolean, not a number', 1);
    compileFails('[1] + 1', '[1] is a list, not a number', 1);
    compileFails('-true', 'true is a boolean, not a number', 2);
    compileFails('!5', '5 is a number, not a boolean', 2);
    compileFails("not 'x'", "'x' is a string, not a boolean", 5);
    compileFails("a && 'x'", "'x' is a string, not a boolean", 6);
    compileFails('length(x) or b', 'length(x) is a number, not a boolean', 1);
    compileFails("1 ? 'a' : 'b'", '1 is a number, not a boolean', 1);
    compileFails('true < 1', "true is a boolean: '<' compares numbers or strings", 1);
    compileFails("x >= [1]", "[1] is a list: '>=' compares numbers or strings", 6);
    compileFails("1 < 'abc'", "'abc' is not a number: '<' cannot compare it with a number", 5);
    compileFails("x in 5", "5 is a number: 'in' needs a list, a string or an object on its right", 6);
    compileFails("1 not in 'abc'", "1 is a number: 'not in' with a string on its right looks for a string", 1);
    compileFails("'abc'.x", "'abc' is a string: it has no fields", 6);
    compileFails('$topic.x', '$topic is a string: it has no fields', 7);
    compileFails('1[0]', '1 is a number: it has no fields or elements', 2);
    compileFails('x[true]', 'true is a boolean: an index is a number or a string', 3);
    compileFails('length(5)', '5 is a number, but length() needs a string or a list', 8);
    compileFails('lower(true)', 'true is a boolean, but lower() needs a string', 7);
    compileFails("round('abc')", "'abc' is not a number, but round() needs a number", 7);
    compileFails("number('x1')", "'x1' is not a number, but number() needs a number, a numeric string or a boolean", 8);
    compileFails('upper(length(x))', 'length(x) is a number, but upper() needs a string', 7);
    compileFails("matches(x, '(')", "'(' is not a valid regular expression: Unterminated group", 12);
    compileFails("date_part('week', x)", "unknown unit 'week': date_part() takes 'year', 'month', 'day', 'hour', 'minute', 'second', 'dow'", 11);
    compileFails("date_trunc('dow', x)", "unknown unit 'dow': date_trunc() takes 'year', 'month', 'day', 'hour', 'minute', 'second'", 12);
    compileFails('round(x, 1.5)', '1.5 is not a number of digits', 10);
  });

  it('accepts what may work depending on the data', () => {
    for (const src of ["'12' * 2", 'x * 2', 'lower(x) * 2', "x < 'abc'", 'x && y', "x in 'abc'", "length('ab') in x", 'number(x)', "round('1.5')", 'null + 1', '!null', 'x.y.z[0]', 'concat(1, true, [1])', 'matches(x, y)']) {
      assert.doesNotThrow(() => compileExpr(src), src);
    }
    assert.equal(ev("'12' * 2"), 24);
  });
});

describe('expr: static types and expect', () => {
  it('infers the result type', () => {
    const types: [string, ExprType][] = [
      ['1 + x', 'number'], ["'a'", 'string'], ['x == 1', 'boolean'], ['x', 'any'], ['$key', 'any'], ['$headers.x', 'any'],
      ['$topic', 'string'], ['$timestamp', 'number'], ['$headers', 'object'], ['[1]', 'list'], ['null', 'null'],
      ["x ? 'a' : 'b'", 'string'], ["x ? 'a' : 1", 'any'], ["x ? 'a' : null", 'string'], ["x ?? 'a'", 'any'], ["null ?? 'a'", 'string'],
      ['lower(x)', 'string'], ['split(x, y)', 'list'], ["coalesce(x, 'a')", 'any'], ["coalesce('a', 'b')", 'string'],
      ['max(1, 2)', 'number'], ['max(x)', 'any'], ['x in y', 'boolean'], ['!x', 'boolean'], ['lower(null)', 'null'],
    ];
    for (const [src, want] of types) assert.equal(compileExpr(src).type, want, src);
  });

  it('refuses a known type that is not the one expected', () => {
    compileFails('after.amount + 1', 'this expression gives a number, but a boolean is needed here', 14, 'boolean');
    compileFails("concat('a', x)", 'this expression gives a string, but a number is needed here', 1, 'number');
    compileFails('x == 1', 'this expression gives a boolean, but a string is needed here', 3, 'string');
    compileFails("'a'", "this expression gives a string, but an object is needed here", 1, 'object');
    assert.equal(compileExpr('x', { expect: 'boolean' }).type, 'any', 'unknown types are checked at run time by the caller');
    assert.equal(compileExpr('x > 1', { expect: 'boolean' }).type, 'boolean');
    assert.equal(compileExpr('null', { expect: 'boolean' }).type, 'null', 'null fits any type');
    assert.equal(compileExpr('1', { expect: 'any' }).type, 'number');
  });
});

describe('expr: fields read', () => {
  it('lists the record paths an expression reads', () => {
    assert.deepEqual(compileExpr("op == 'u' && number(after.amount) > 1000").fields, [['op'], ['after', 'amount']]);
    assert.deepEqual(compileExpr("after.extra['odd name'] + after.extra['odd name']").fields, [['after', 'extra', 'odd name']]);
    assert.deepEqual(compileExpr('after.items[0].sku').fields, [['after', 'items']]);
    assert.deepEqual(compileExpr('a[b.c]').fields, [['a'], ['b', 'c']]);
    assert.deepEqual(compileExpr('$value.x + $key.id + $headers.h').fields, [['x']]);
    assert.deepEqual(compileExpr('lower(source.table) in [x, y] ? 1 : z').fields, [['source', 'table'], ['x'], ['y'], ['z']]);
    assert.deepEqual(compileExpr("'a' == 1").fields, []);
  });
});

describe('expr: speed', () => {
  it('evaluates a typical filter quickly (prints ns/op, asserts only the result)', () => {
    const c = compileExpr("op == 'u' && number(after.amount) > 1000", { expect: 'boolean' });
    const recs = [REC, { ...REC, op: 'c' }, { ...REC, after: { ...REC.after, amount: '999.99' } }];
    let trues = 0;
    const n = 1_000_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (c.eval(recs[i % 3], META) === true) trues++;
    const ns = Number(process.hrtime.bigint() - t0) / n;
    console.log(`expr: ${c.source} — ${ns.toFixed(1)} ns/op`);
    assert.equal(trues, Math.ceil(n / 3));
  });
});
