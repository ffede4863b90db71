import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSchema } from '../../src/core/avro/index.ts';
import { checkCompatibility, readerIncompatibilities, type CompatibilityLevel } from '../../src/schema-registry/compat.ts';

const s = (json: unknown) => parseSchema(json);
const rec = (fields: unknown[], name = 'R', extra: Record<string, unknown> = {}) => ({ type: 'record', name, namespace: 'ns', fields, ...extra });

/** reader reads writer: ok (no messages) or the messages must match `expect`. */
function reads(reader: unknown, writer: unknown, expect?: RegExp): void {
  const m = readerIncompatibilities(s(reader), s(writer));
  if (!expect) assert.deepEqual(m, [], `expected compatible, got ${m.join(' | ')}`);
  else {
    assert.ok(m.length > 0, `expected incompatible (${expect})`);
    assert.match(m.join(' | '), expect);
  }
}

test('primitives: same type, and the promotions of schema resolution', () => {
  for (const t of ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']) reads(t, t);
  reads('long', 'int');
  reads('float', 'int');
  reads('double', 'int');
  reads('float', 'long');
  reads('double', 'long');
  reads('double', 'float');
  reads('string', 'bytes');
  reads('bytes', 'string');
  reads('int', 'long', /reader's type int cannot read the writer's long/);
  reads('long', 'double', /no promotion from double to long/);
  reads('float', 'double', /no promotion from double to float/);
  reads('boolean', 'int', /cannot read/);
  reads('string', 'int', /cannot read/);
});

test('records: added field with and without default, removed field, nested paths', () => {
  const v1 = rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }]);
  reads(rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }]), v1);
  reads(rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: 'string' }]), v1, /at R\.email: the reader's field "email" has no default/);
  // a removed field: the reader skips what the writer wrote
  reads(rec([{ name: 'id', type: 'long' }]), v1);
  // a type change inside a nested record names the path
  const nested = (t: string) => rec([{ name: 'addr', type: rec([{ name: 'zip', type: t }], 'Addr') }]);
  reads(nested('long'), nested('int'));
  reads(nested('int'), nested('string'), /at R\.addr\.zip: the reader's type int cannot read the writer's string/);
  // different names
  reads(rec([{ name: 'id', type: 'long' }], 'A'), rec([{ name: 'id', type: 'long' }], 'B'), /different names/);
  // the namespace alone may differ (unqualified names match)
  reads({ ...rec([{ name: 'id', type: 'long' }]), namespace: 'other' }, rec([{ name: 'id', type: 'long' }]));
});

test('aliases: a reader record alias and a reader field alias', () => {
  reads(rec([{ name: 'id', type: 'long' }], 'New', { aliases: ['Old'] }), rec([{ name: 'id', type: 'long' }], 'Old'));
  reads(rec([{ name: 'key', type: 'long', aliases: ['id'] }]), rec([{ name: 'id', type: 'int' }]));
});

test('enums: symbols added, removed, reader default', () => {
  const e = (symbols: string[], extra: Record<string, unknown> = {}) => ({ type: 'enum', name: 'Color', symbols, ...extra });
  reads(e(['RED', 'GREEN', 'BLUE']), e(['RED', 'GREEN']));
  reads(e(['RED']), e(['RED', 'GREEN']), /symbol GREEN that the reader's lacks/);
  reads(e(['RED', 'UNKNOWN'], { default: 'UNKNOWN' }), e(['RED', 'GREEN']));
  reads(e(['RED']), { type: 'enum', name: 'Other', symbols: ['RED'] }, /different names/);
});

test('fixed: name and size', () => {
  reads({ type: 'fixed', name: 'F', size: 4 }, { type: 'fixed', name: 'F', size: 4 });
  reads({ type: 'fixed', name: 'F', size: 4 }, { type: 'fixed', name: 'F', size: 8 }, /size 4 in the reader and 8 in the writer/);
});

test('arrays and maps: their items and values', () => {
  reads({ type: 'array', items: 'long' }, { type: 'array', items: 'int' });
  reads({ type: 'array', items: 'int' }, { type: 'array', items: 'long' }, /at \[\]: /);
  reads({ type: 'map', values: 'double' }, { type: 'map', values: 'float' });
  reads({ type: 'map', values: 'string' }, { type: 'map', values: 'boolean' }, /cannot read/);
  reads({ type: 'array', items: 'int' }, { type: 'map', values: 'int' }, /cannot read/);
});

test('unions: writer union, reader union, single type against a union', () => {
  reads(['null', 'string'], 'string');
  reads(['null', 'long'], 'int'); // by promotion
  reads(['null', 'string', 'long'], ['null', 'long']);
  reads('string', ['null', 'string'], /cannot read the writer's null/);
  reads(['null', 'string'], ['null', 'string', 'long'], /the writer's long matches no branch/);
  reads(['null', 'double'], ['int', 'long', 'null']);
  // a record inside a union branch
  const v1 = rec([{ name: 'a', type: 'int' }]);
  reads(['null', rec([{ name: 'a', type: 'int' }, { name: 'b', type: 'int', default: 0 }])], ['null', v1]);
  // the branch meant to read a record gives its own reason
  reads(['null', rec([{ name: 'a', type: 'int' }, { name: 'b', type: 'int' }])], ['null', v1], /at b: the reader's field "b" has no default/);
  reads(['null', rec([{ name: 'a', type: 'int' }, { name: 'b', type: 'int' }])], v1, /at b: the reader's field "b" has no default/);
});

test('recursive named types terminate', () => {
  const list = (extra: unknown[] = []) => ({ type: 'record', name: 'Node', fields: [{ name: 'v', type: 'int' }, { name: 'next', type: ['null', 'Node'], default: null }, ...extra] });
  reads(list(), list());
  reads(list([{ name: 'w', type: 'int', default: 1 }]), list());
  reads(list([{ name: 'w', type: 'int' }]), list(), /"w" has no default/);
});

test('logical types are not compared (as Java does not)', () => {
  reads({ type: 'bytes', logicalType: 'decimal', precision: 10, scale: 3 }, { type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 });
  reads({ type: 'long', logicalType: 'timestamp-micros' }, { type: 'long', logicalType: 'timestamp-millis' });
});

const V1 = rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }]);
const V2_ADD_DEFAULT = rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }]);
const V2_ADD_NO_DEFAULT = rec([{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, { name: 'email', type: 'string' }]);
const V2_DROP_NAME = rec([{ name: 'id', type: 'long' }]);

function level(l: CompatibilityLevel, candidate: unknown, ...existing: unknown[]): string[] {
  return checkCompatibility(l, s(candidate), existing.map((x, i) => ({ version: i + 1, schema: s(x) })));
}

test('modes: BACKWARD, FORWARD, FULL and NONE on one step', () => {
  assert.deepEqual(level('BACKWARD', V2_ADD_DEFAULT, V1), []);
  assert.match(level('BACKWARD', V2_ADD_NO_DEFAULT, V1).join(), /BACKWARD: the new schema cannot read data written with version 1: at R\.email: the reader's field "email" has no default/);
  assert.deepEqual(level('BACKWARD', V2_DROP_NAME, V1), []);
  // FORWARD: the old schema reads new data; a dropped field without a default in the old schema breaks it
  assert.deepEqual(level('FORWARD', V2_ADD_NO_DEFAULT, V1), []);
  assert.match(level('FORWARD', V2_DROP_NAME, V1).join(), /FORWARD: version 1 cannot read data written with the new schema: at R\.name: the reader's field "name" has no default/);
  assert.deepEqual(level('FULL', V2_ADD_DEFAULT, V1), []);
  assert.equal(level('FULL', V2_ADD_NO_DEFAULT, V1).length, 1);
  assert.equal(level('FULL', V2_DROP_NAME, V1).length, 1);
  assert.deepEqual(level('NONE', 'string', V1), []);
  assert.deepEqual(level('BACKWARD', 'string'), [], 'the first version is always compatible');
});

test('transitive modes check every version, the others only the latest', () => {
  // v1 {id}, v2 {id, x default}, v3 {id, x without default}: v3 reads v2 data, not v1 data
  const a = rec([{ name: 'id', type: 'long' }]);
  const b = rec([{ name: 'id', type: 'long' }, { name: 'x', type: 'int', default: 0 }]);
  const c = rec([{ name: 'id', type: 'long' }, { name: 'x', type: 'int' }]);
  assert.deepEqual(level('BACKWARD', c, a, b), []);
  const m = level('BACKWARD_TRANSITIVE', c, a, b);
  assert.equal(m.length, 1);
  assert.match(m[0], /version 1: at R\.x/);
  // FORWARD_TRANSITIVE: v1 {id, y}, v2 {id, y default}, v3 {id}: v2 reads v3 data, v1 does not
  const f1 = rec([{ name: 'id', type: 'long' }, { name: 'y', type: 'int' }]);
  const f2 = rec([{ name: 'id', type: 'long' }, { name: 'y', type: 'int', default: 0 }]);
  const f3 = rec([{ name: 'id', type: 'long' }]);
  assert.deepEqual(level('FORWARD', f3, f1, f2), []);
  assert.match(level('FORWARD_TRANSITIVE', f3, f1, f2).join(), /version 1 cannot read data written with the new schema: at R\.y/);
  assert.deepEqual(level('FULL', f3, f1, f2), []);
  assert.equal(level('FULL_TRANSITIVE', f3, f1, f2).length, 1);
});

test('a type change is reported in both directions under FULL', () => {
  const a = rec([{ name: 'n', type: 'int' }]);
  const b = rec([{ name: 'n', type: 'long' }]);
  assert.deepEqual(level('BACKWARD', b, a), []); // long reads int
  const m = level('FULL', b, a);
  assert.equal(m.length, 1);
  assert.match(m[0], /FULL: version 1 cannot read data written with the new schema: at R\.n: the reader's type int cannot read the writer's long/);
});
