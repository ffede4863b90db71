import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { UNAVAILABLE_VALUE, type Row } from '../../src/core/event.ts';
import { createLogger } from '../../src/core/logger.ts';
import { writeRow } from '../../src/core/serde/json.ts';
import { parseKey, parseValue } from '../../src/core/serde/parse.ts';
import { keepChars, maskTransform } from '../../src/processors/mask/mask.ts';
import { maskProcessor, type MaskProcessorConfig } from '../../src/processors/mask/spec.ts';
import type { ProcessorContext, TransformInput } from '../../src/registry/spec.ts';

const SALT = 's3cr3t-salt';
const hmac = (s: string) => createHmac('sha256', SALT).update(s, 'utf8').digest('hex');
const ctx: ProcessorContext = { pipeline: 't', logger: createLogger({ stream: { write: () => true } as unknown as NodeJS.WritableStream }), tableOf: (s) => ({ schema: String(s.schema ?? s.db), table: String(s.table) }) };

const SOURCE = { version: '0.1.0', connector: 'postgresql', name: 'shop', ts_ms: 1700000000123, snapshot: 'false', db: 'shop', sequence: null, schema: 'public', table: 'customers', txId: 7, lsn: 99, xmin: null };

/** A change record as the source writes it: Debezium envelope value, `{"id":…}` key, schema header. */
const change = (op: string, before: Row | null, after: Row | null, table = 'customers', key: Row = { id: (after ?? before)?.id ?? null }): TransformInput => ({
  topic: `shop.public.${table}`,
  key: Buffer.from(writeRow(key)),
  value: Buffer.from(`{"before":${writeRow(before)},"after":${writeRow(after)},"source":${JSON.stringify({ ...SOURCE, table })},"op":"${op}","ts_ms":1700000000200,"transaction":null}`),
  timestamp: 1700000000300,
  headers: { s: `schema-of-${table}` },
});

/** The config as the loader resolves it (defaults applied). */
const config = (raw: Record<string, unknown>): MaskProcessorConfig => {
  const written = { type: 'mask', name: 'pii', salt: SALT, ...raw };
  return { type: 'mask', ...maskProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) } as MaskProcessorConfig;
};
const transform = (raw: Record<string, unknown>) => maskTransform(config(raw), ctx);
const text = (v: Buffer | string | null) => (v === null ? null : v.toString());

const RULES = [
  { fields: ['email'], with: 'hash' },
  { fields: ['card'], with: 'keep_last' },
  { fields: ['name', 'email'], with: 'redact' },
  { fields: ['phone'], tables: ['public.customers'], with: 'keep_first', keep: 3 },
  { fields: ['birthday', 'score'], with: 'null' },
];

describe('mask', () => {
  it('has its defaults and never shows the salt', () => {
    const c = config({ rules: [{ fields: ['email'], with: 'hash' }, { fields: ['card'], tables: ['public.*'], with: 'keep_last' }] });
    assert.equal(c.output, 'pii.{topic}');
    assert.equal(c.hashAlgorithm, 'hmac-sha256');
    assert.deepEqual(c.inputs, []);
    assert.deepEqual(c.rules[1], { fields: ['card'], tables: ['public.*'], with: 'keep_last', keep: 4, replacement: '****' });
    const line = maskProcessor.describe(c);
    assert.equal(line, 'processor pii: mask email → hash; card → keep_last 4 (public.*) in (source topics) → pii.{topic}');
    assert.ok(!line.includes(SALT));
  });

  it('masks change events in before and after, keeping key, headers and column types', async () => {
    const t = await maskProcessor.create(config({ rules: RULES }), ctx);
    const before = { id: 1, name: 'Ada Lovelace', email: 'ada@example.com', card: '4111111111111111', phone: '+44 20 7946 0000', birthday: '1815-12-10', score: 12.5, note: null };
    const after = { ...before, email: 'ada@lovelace.org', card: null };
    const rec = change('u', before, after);
    const [out] = await t.apply(rec);
    assert.equal(out.topic, 'pii.shop.public.customers');
    assert.equal(out.key, rec.key, 'no key column masked: the same key bytes');
    assert.deepEqual(out.headers, { s: 'schema-of-customers' });
    assert.equal(out.timestamp, undefined);
    const masked = (r: { email: string; card: string | null }) => ({ id: 1, name: '****', email: hmac(r.email), card: r.card === null ? null : '************1111', phone: '+44*************', birthday: null, score: null, note: null });
    assert.equal(text(out.value), `{"before":${JSON.stringify(masked(before))},"after":${JSON.stringify(masked(after))},"source":${JSON.stringify(SOURCE)},"op":"u","ts_ms":1700000000200,"transaction":null}`);
    assert.equal(hmac('ada@example.com'), createHmac('sha256', SALT).update('ada@example.com').digest('hex'));
    assert.equal(parseValue(out.value)!.after!.email, hmac('ada@lovelace.org'));
  });

  it('masks key columns in the key, and a tombstone\'s key alike', () => {
    const t = transform({ rules: [{ fields: ['email'], with: 'hash' }] });
    const key = { email: 'ada@example.com' };
    const [out] = t.apply(change('c', null, { email: 'ada@example.com', n: 1 }, 'subscribers', key));
    assert.equal(text(out.key), `{"email":"${hmac('ada@example.com')}"}`);
    assert.equal(text(out.value), `{"before":null,"after":{"email":"${hmac('ada@example.com')}","n":1},"source":${JSON.stringify({ ...SOURCE, table: 'subscribers' })},"op":"c","ts_ms":1700000000200,"transaction":null}`);
    const [tomb] = t.apply({ ...change('d', key, null, 'subscribers', key), value: null });
    assert.deepEqual({ ...tomb, key: text(tomb.key) }, { topic: 'pii.shop.public.subscribers', key: `{"email":"${hmac('ada@example.com')}"}`, value: null, headers: { s: 'schema-of-subscribers' } });
  });

  it('applies rules to the tables they name only, passing other records through unchanged', () => {
    const t = transform({ rules: [{ fields: ['email'], tables: ['public.customers', 'crm.*'], with: 'redact', replacement: '[removed]' }] });
    const other = change('c', null, { id: 2, email: 'x@example.com' }, 'orders');
    const [o] = t.apply(other);
    assert.equal(o.value, other.value);
    assert.equal(o.topic, 'pii.shop.public.orders');
    const [c] = t.apply(change('c', null, { id: 2, email: 'x@example.com' }));
    assert.deepEqual(parseValue(c.value)!.after, { id: 2, email: '[removed]' });
  });

  it('refuses to write text into a non-text column of a change event, and nulls any type', () => {
    const t = transform({ rules: [{ fields: ['ssn'], with: 'hash' }, { fields: ['age', 'tags'], with: 'null' }] });
    assert.throws(
      () => t.apply(change('c', null, { id: 1, ssn: 123456789 })),
      (e: any) => e.code === 'MASK_NOT_TEXT' && e.message.includes('"ssn"') && e.message.includes('public.customers') && e.message.includes('an integer') && e.message.includes('with: null') && !e.message.includes('123456789'),
    );
    assert.throws(() => t.apply(change('c', null, { id: 1, ssn: 9223372036854775807n })), (e: any) => e.code === 'MASK_NOT_TEXT' && e.message.includes('an integer'));
    assert.throws(() => t.apply(change('c', null, { id: 1, ssn: ['a'] })), (e: any) => e.code === 'MASK_NOT_TEXT' && e.message.includes('an array'));
    assert.throws(() => t.apply(change('c', null, { id: 1, ssn: true })), (e: any) => e.code === 'MASK_NOT_TEXT' && e.message.includes('a boolean'));
    const [out] = t.apply(change('c', null, { id: 1, ssn: null, age: 42, tags: ['a', 'b'] }));
    assert.deepEqual(parseValue(out.value)!.after, { id: 1, ssn: null, age: null, tags: null });
  });

  it('keeps int64 values exact, and the unchanged-TOAST placeholder as it is', () => {
    const t = transform({ rules: [{ fields: ['bio'], with: 'redact' }] });
    const [out] = t.apply(change('u', null, { id: 9223372036854775807n, bio: UNAVAILABLE_VALUE, other: 9223372036854775806n }));
    assert.match(text(out.value)!, /"after":\{"id":9223372036854775807,"bio":"__debezium_unavailable_value","other":9223372036854775806\}/);
    assert.deepEqual(parseKey(out.key), { id: 9223372036854775807n });
  });

  it('masks change events that carry their schema part, keeping it', () => {
    const schema = { type: 'struct', optional: false, name: 'shop.public.customers.Envelope', fields: [] };
    const payload = change('c', null, { id: 1, email: 'a@b.c' }).value!.toString();
    const [out] = transform({ rules: [{ fields: ['email'], with: 'keep_first', keep: 1 }] }).apply({ ...change('c', null, null), value: Buffer.from(`{"schema":${JSON.stringify(schema)},"payload":${payload}}`) });
    assert.equal(text(out.value), `{"schema":${JSON.stringify(schema)},"payload":${payload.replace('"a@b.c"', '"a****"')}}`);
  });

  it('fails a null mask of a key column (every row would share one key)', () => {
    const t = transform({ rules: [{ fields: ['id'], with: 'null' }] });
    assert.throws(() => t.apply(change('c', null, { id: 1 })), (e: any) => e.code === 'MASK_KEY_NULL' && e.message.includes('"id"') && /with: hash/.test(e.message));
  });

  it('masks flat rows and events: top-level fields, dotted paths, non-text values as text; tables from the topic', () => {
    const t = transform({
      output: 'masked.{schema}.{table}',
      rules: [
        { fields: ['email', 'customer.ssn', 'customer.address.zip', 'account'], tables: ['public.customers'], with: 'hash' },
        { fields: ['card'], with: 'keep_last', keep: 2 },
      ],
    });
    const value = { id: 7, email: 'ada@example.com', account: 1234, customer: { ssn: '078-05-1120', address: { zip: 12345, city: 'London' } }, card: 4111111111111111, 'a.b': 1, __deleted: 'false' };
    const rec: TransformInput = { topic: 'flat.public.customers', key: Buffer.from('{"id":7}'), value: Buffer.from(JSON.stringify(value)), timestamp: 1, headers: { s: 'x' } };
    const [out] = t.apply(rec);
    assert.equal(out.topic, 'masked.public.customers');
    assert.equal(out.key, rec.key);
    assert.deepEqual(out.headers, { s: 'x' });
    assert.equal(text(out.value), JSON.stringify({ ...value, email: hmac('ada@example.com'), account: hmac('1234'), customer: { ssn: hmac('078-05-1120'), address: { zip: hmac('12345'), city: 'London' } }, card: '**************11' }));
    // Another table's row: only the rule without tables applies; a non-object event passes through.
    const [o] = t.apply({ ...rec, topic: 'flat.public.orders' });
    assert.equal(JSON.parse(text(o.value)!).email, 'ada@example.com');
    assert.equal(o.topic, 'masked.public.orders');
    const event: TransformInput = { topic: 'events', key: null, value: Buffer.from('"just text"'), timestamp: 1 };
    assert.deepEqual(t.apply(event), [{ topic: 'masked..events', key: null, value: event.value, headers: undefined }]);
  });

  it('matches escaped topic parts against table names', () => {
    const t = transform({ rules: [{ fields: ['email'], tables: ['public.Order Items'], with: 'redact' }] });
    const [out] = t.apply({ topic: 'flat.public.Order-20Items', key: null, value: Buffer.from('{"email":"x"}'), timestamp: 1 });
    assert.equal(text(out.value), '{"email":"****"}');
    assert.equal(out.topic, 'pii.flat.public.Order-20Items');
  });

  it('lets the first rule naming a field mask it', () => {
    const [out] = transform({ rules: [{ fields: ['email'], with: 'redact' }, { fields: ['email'], with: 'null' }] }).apply(change('c', null, { id: 1, email: 'x' }));
    assert.equal(parseValue(out.value)!.after!.email, '****');
  });

  it('hashes with SHA-256 of salt and value when asked', () => {
    const [out] = transform({ hashAlgorithm: 'sha256', rules: [{ fields: ['email'], with: 'hash' }] }).apply(change('c', null, { id: 1, email: 'ada@example.com' }));
    assert.equal(parseValue(out.value)!.after!.email, createHash('sha256').update(SALT + 'ada@example.com').digest('hex'));
  });

  it('keeps the first/last characters, masking values no longer than `keep` whole, by code point', () => {
    assert.equal(keepChars('4111111111111111', 4, true), '************1111');
    assert.equal(keepChars('4111111111111111', 4, false), '4111************');
    assert.equal(keepChars('123', 4, true), '***');
    assert.equal(keepChars('', 4, true), '');
    assert.equal(keepChars('ab😀cd😀', 2, true), '****d😀');
    assert.equal(keepChars('secret', 0, false), '******');
  });

  it('needs a salt to hash: the config check and create both say so, without the salt', () => {
    const failures: string[] = [];
    const check = { fileName: 't.yaml', pos: () => ({ line: 1, col: 1 }), fail: (p: string[], m: string) => failures.push(`${p.join('.')}: ${m}`) };
    maskProcessor.check!(
      { name: 'pii', output: 'x.{tabel}', rules: [{ fields: ['email'], with: 'hash', keep: 2 }, { fields: ['a'], with: 'null', replacement: 'x' }, { fields: ['b'], tables: ['customers'], with: 'redact' }] },
      ['processors', '0'],
      check,
    );
    assert.deepEqual(failures.map((f) => f.split(':')[0]), ['processors.0.output', 'processors.0.rules.0.with', 'processors.0.rules.0.keep', 'processors.0.rules.1.replacement', 'processors.0.rules.2.tables.0']);
    assert.match(failures[1], /needs the processor's `salt`/);
    assert.match(failures[4], /public\.customers/);
    failures.length = 0;
    maskProcessor.check!({ name: 'pii', salt: SALT, rules: [{ fields: ['email'], with: 'hash' }, { fields: ['x'], tables: ['*', 'public.*'], with: 'keep_last', keep: 2 }] }, ['processors', '0'], check);
    assert.deepEqual(failures, []);
    const { salt: _s, ...noSalt } = config({ rules: [{ fields: ['email'], with: 'hash' }] });
    assert.throws(() => maskTransform(noSalt as MaskProcessorConfig, ctx), (e: any) => e.code === 'MASK_CONFIG' && /salt/.test(e.message));
  });
});
