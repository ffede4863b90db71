import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Row } from '../../src/core/event.ts';
import { createLogger } from '../../src/core/logger.ts';
import { writeRow } from '../../src/core/serde/json.ts';
import { epochMillis, outboxTransform } from '../../src/processors/outbox/outbox.ts';
import { outboxProcessor, type OutboxProcessorConfig } from '../../src/processors/outbox/spec.ts';
import type { ProcessorContext, TransformInput, TransformOutput } from '../../src/registry/spec.ts';

const SOURCE = { version: '0.1.0', connector: 'postgresql', name: 'shop', ts_ms: 1700000000123, snapshot: 'false', db: 'shop', sequence: null, schema: 'public', table: 'outbox', txId: 7, lsn: 99, xmin: null };

/** A change record of the outbox table as the source writes it (with its schema header). */
const change = (op: string, before: Row | null, after: Row | null, source: Record<string, unknown> = {}): TransformInput => ({
  topic: 'shop.public.outbox',
  key: Buffer.from(writeRow({ id: (after ?? before)?.id ?? null })),
  value: Buffer.from(`{"before":${writeRow(before)},"after":${writeRow(after)},"source":${JSON.stringify({ ...SOURCE, ...source })},"op":"${op}","ts_ms":1700000000200,"transaction":null}`),
  timestamp: 1700000000300,
  headers: { s: 'schema-id-of-outbox' },
});

const row = (o: Row = {}): Row => ({ id: 'e1a4c0de-0000-4000-8000-000000000001', aggregatetype: 'Order', aggregateid: 'order-17', type: 'OrderCreated', payload: '{"orderId": 17, "total": "9.99"}', ...o });

function logs(): { ctx: ProcessorContext; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = { write: (s: string) => (lines.push(JSON.parse(s)), true) } as unknown as NodeJS.WritableStream;
  return { ctx: { pipeline: 't', logger: createLogger({ level: 'warn', format: 'json', stream }), tableOf: (s) => ({ schema: String(s.schema ?? s.db), table: String(s.table) }) }, lines };
}

/** The config as the loader resolves it (defaults applied). */
const config = (raw: Record<string, unknown> = {}): OutboxProcessorConfig => {
  const written = { type: 'outbox', name: 'events', inputs: ['shop.public.outbox'], ...raw };
  return { ...outboxProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) } as OutboxProcessorConfig;
};

const transform = (raw: Record<string, unknown> = {}, ctx = logs().ctx) => outboxTransform(config(raw), ctx);
const text = (v: Buffer | string | null) => (v === null ? null : v.toString());
const plain = (outs: TransformOutput[]) => outs.map((o) => ({ ...o, key: text(o.key), value: text(o.value) }));

describe('outbox (Outbox Event Router)', () => {
  it('has Debezium\'s defaults', () => {
    const c = config();
    assert.equal(c.output, 'outbox.event.{aggregatetype}');
    assert.deepEqual(c.fields, { id: 'id', key: 'aggregateid', eventType: 'type', payload: 'payload', aggregateType: 'aggregatetype' });
    assert.deepEqual(c.additional, []);
    assert.equal(c.expandJsonPayload, true);
    assert.equal(c.onUpdate, 'warn');
    assert.equal(c.onError, 'dlq');
    assert.equal(outboxProcessor.describe(c), 'processor events: outbox shop.public.outbox → outbox.event.{aggregatetype} (key aggregateid, payload payload; updates: warn)');
  });

  it('turns an inserted row into an event: topic per aggregate type, aggregate id key, JSON payload, id and type headers, commit time', async () => {
    const t = await outboxProcessor.create(config(), logs().ctx);
    assert.deepEqual(plain(await t.apply(change('c', null, row()))), [
      { topic: 'outbox.event.Order', key: '"order-17"', value: '{"orderId": 17, "total": "9.99"}', headers: { id: 'e1a4c0de-0000-4000-8000-000000000001', type: 'OrderCreated' }, timestamp: 1700000000123 },
    ]);
  });

  it('emits snapshot reads too, escapes the aggregate type for the topic, and writes numeric and int64 ids exactly', () => {
    const t = transform();
    assert.deepEqual(plain(t.apply(change('r', null, row({ id: 5, aggregatetype: 'Order Line', aggregateid: 17 }), { snapshot: 'true' }))), [
      { topic: 'outbox.event.Order-20Line', key: '17', value: '{"orderId": 17, "total": "9.99"}', headers: { id: '5', type: 'OrderCreated' }, timestamp: 1700000000123 },
    ]);
    const [big] = t.apply(change('c', null, row({ id: 9223372036854775807n, aggregateid: 9223372036854775806n })));
    assert.equal(text(big.key), '9223372036854775806');
    assert.equal(big.headers?.id, '9223372036854775807');
  });

  it('makes a null payload a tombstone, JSON null text too, and text that is no JSON a JSON string', () => {
    const t = transform({ additional: [{ column: 'tenant', placement: 'envelope' }] });
    assert.equal(t.apply(change('c', null, row({ payload: null, tenant: 'acme' })))[0].value, null);
    assert.equal(t.apply(change('c', null, row({ payload: 'null', tenant: 'acme' })))[0].value, null);
    assert.equal(text(transform().apply(change('c', null, row({ payload: 'not json {' })))[0].value), '"not json {"');
    assert.equal(text(transform().apply(change('c', null, row({ payload: '"quoted"' })))[0].value), '"quoted"');
    assert.equal(text(transform().apply(change('c', null, row({ payload: { nested: 1 } })))[0].value), '{"nested":1}');
  });

  it('keeps JSON text a string with expandJsonPayload: false', () => {
    const [e] = transform({ expandJsonPayload: false }).apply(change('c', null, row({ payload: '{"a":1}' })));
    assert.equal(text(e.value), '"{\\"a\\":1}"');
    assert.deepEqual(JSON.parse(text(e.value)!), '{"a":1}');
  });

  it('places additional columns in headers (as text, none when null) and in the value', () => {
    const t = transform({
      additional: [
        { column: 'tenant', placement: 'header' },
        { column: 'version', placement: 'header', as: 'schemaVersion' },
        { column: 'traceid', placement: 'header' },
        { column: 'tenant', placement: 'envelope', as: 'tenantId' },
        { column: 'version', placement: 'envelope' },
      ],
    });
    assert.deepEqual(plain(t.apply(change('c', null, row({ type: null, tenant: 'acme', version: 3, traceid: null })))), [
      { topic: 'outbox.event.Order', key: '"order-17"', value: '{"payload":{"orderId": 17, "total": "9.99"},"tenantId":"acme","version":3}', headers: { id: 'e1a4c0de-0000-4000-8000-000000000001', tenant: 'acme', schemaVersion: '3' }, timestamp: 1700000000123 },
    ]);
  });

  it('takes the event time from a timestamp column: epoch ms, µs, ISO-8601 with or without offset; null: commit time', () => {
    const t = transform({ fields: { timestamp: 'occurred_at' } });
    const at = (v: unknown) => t.apply(change('c', null, row({ occurred_at: v as Row[string] })))[0].timestamp;
    assert.equal(at(1700000001000), 1700000001000);
    assert.equal(at(1700000001000999), 1700000001000);
    assert.equal(at('2024-01-02T03:04:05.123456Z'), Date.UTC(2024, 0, 2, 3, 4, 5, 123));
    assert.equal(at('2024-01-02T05:04:05.123+02:00'), Date.UTC(2024, 0, 2, 3, 4, 5, 123));
    assert.equal(at('2024-01-02T03:04:05'), Date.UTC(2024, 0, 2, 3, 4, 5));
    assert.equal(at(null), 1700000000123);
    assert.throws(() => at('yesterday'), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && /occurred_at/.test(e.message) && /yesterday/.test(e.message));
    assert.equal(epochMillis(1700000001000999999n), 1700000001000);
    assert.equal(epochMillis(1700000001000999n), 1700000001000);
    assert.equal(epochMillis(true), undefined);
  });

  it('reads other column names, and replaces {topic}, {schema}, {table} in the output', () => {
    const t = transform({ output: '{schema}.{table}.{aggregatetype}', fields: { id: 'event_id', key: 'agg_id', eventType: 'event_type', payload: 'body', aggregateType: 'agg_type' } });
    const [e] = t.apply(change('c', null, { event_id: 'x1', agg_id: 'c-1', agg_type: 'customer', event_type: 'Renamed', body: '[1,2]' }));
    assert.deepEqual(plain([e]), [{ topic: 'public.outbox.customer', key: '"c-1"', value: '[1,2]', headers: { id: 'x1', type: 'Renamed' }, timestamp: 1700000000123 }]);
  });

  it('ignores deletes, tombstones and truncates', () => {
    const t = transform();
    assert.deepEqual(t.apply(change('d', row(), null)), []);
    assert.deepEqual(t.apply({ ...change('d', row(), null), value: null }), []);
    assert.deepEqual(t.apply({ ...change('t', null, null), key: null }), []);
  });

  it('skips updates with a warning once (warn), silently (skip), or fails them (fail)', () => {
    const { ctx, lines } = logs();
    const warn = transform({}, ctx);
    assert.deepEqual(warn.apply(change('u', row(), row({ type: 'Changed' }))), []);
    assert.deepEqual(warn.apply(change('u', row(), row({ type: 'Changed again' }))), []);
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 'warn');
    assert.match(String(lines[0].msg), /insert-only/);
    assert.equal(lines[0].table, 'public.outbox');

    const skip = logs();
    assert.deepEqual(transform({ onUpdate: 'skip' }, skip.ctx).apply(change('u', row(), row())), []);
    assert.equal(skip.lines.length, 0);

    assert.throws(
      () => transform({ onUpdate: 'fail' }).apply(change('u', row(), row())),
      (e: any) => e.code === 'OUTBOX_UPDATE' && /insert-only/.test(e.message) && e.message.includes('e1a4c0de-0000-4000-8000-000000000001') && e.message.includes('public.outbox'),
    );
  });

  it('fails a row without a column it reads, or with a null event id or null/empty aggregate type, naming column and config key', () => {
    const t = transform();
    const { aggregatetype: _a, ...noType } = row();
    assert.throws(() => t.apply(change('c', null, noType)), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && e.message.includes('"aggregatetype"') && e.message.includes('fields.aggregateType'));
    const { id: _i, ...noId } = row();
    assert.throws(() => t.apply(change('c', null, noId)), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && e.message.includes('"id"') && e.message.includes('fields.id'));
    const { aggregateid: _k, ...noKey } = row();
    assert.throws(() => t.apply(change('c', null, noKey)), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && e.message.includes('"aggregateid"') && e.message.includes('fields.key'));
    assert.throws(() => t.apply(change('c', null, row({ aggregatetype: null }))), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && /null aggregate type/.test(e.message));
    assert.throws(() => t.apply(change('c', null, row({ aggregatetype: '' }))), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && /empty aggregate type/.test(e.message));
    assert.throws(() => t.apply(change('c', null, row({ id: null }))), (e: any) => e.code === 'OUTBOX_ROW_INVALID' && /null event id/.test(e.message));
    assert.throws(() => transform({ additional: [{ column: 'tenant', placement: 'header' }] }).apply(change('c', null, row())), (e: any) => e.message.includes('"tenant"') && e.message.includes('additional[0].column'));
    // A null aggregate id is a keyless event.
    assert.equal(t.apply(change('c', null, row({ aggregateid: null })))[0].key, null);
  });

  it('reads change events with their schema part (int64 ids stay exact)', () => {
    const schema = { type: 'struct', fields: [{ field: 'after', type: 'struct', optional: true, fields: [{ field: 'aggregateid', type: 'int64', optional: false }] }] };
    const plainValue = change('c', null, row({ aggregateid: 42 })).value!.toString();
    const [e] = transform().apply({ ...change('c', null, null), value: Buffer.from(`{"schema":${JSON.stringify(schema)},"payload":${plainValue}}`) });
    assert.equal(text(e.key), '42');
    assert.equal(e.topic, 'outbox.event.Order');
  });

  it('checks output placeholders and additional names', () => {
    const failures: string[] = [];
    const check = { fileName: 't.yaml', pos: () => ({ line: 1, col: 1 }), fail: (p: string[], m: string) => failures.push(`${p.join('.')}: ${m}`) };
    outboxProcessor.check!({ name: 'e', inputs: ['shop.public.outbox'], output: 'events.{aggregate}', additional: [{ column: 'id', placement: 'header' }, { column: 'payload', placement: 'header' }, { column: 'x', placement: 'envelope', as: 'payload' }] }, ['processors', '0'], check);
    assert.equal(failures.length, 3);
    assert.match(failures[0], /^processors\.0\.output: unknown placeholder \{aggregate\}/);
    assert.match(failures[1], /^processors\.0\.additional\.0: the event already has a header named "id"/);
    assert.match(failures[2], /^processors\.0\.additional\.2: the value already has a field named "payload"/);
    failures.length = 0;
    outboxProcessor.check!({ name: 'e' }, ['processors', '0'], check);
    assert.deepEqual(failures, ['processors.0: an outbox processor reads the outbox table only: name its topic in `inputs` (e.g. inputs: [shop.public.outbox])']);
  });
});
