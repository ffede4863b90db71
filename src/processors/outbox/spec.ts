/**
 * The `outbox` processor: Debezium's Outbox Event Router as a pipeline step. It reads the change
 * topic of an outbox table (rows an application inserts in the same transaction as its business
 * change) and writes each inserted row as an event: routed to a topic per aggregate type, keyed by
 * the aggregate id, its payload as the value and its event id and type as headers.
 */
import { boolean, list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';

export const OUTBOX_ERRORS = defineErrors('Outbox processor', {
  OUTBOX_ROW_INVALID: { retriable: false, meaning: "an outbox row lacks a column the processor reads (the event id, aggregate id, type, payload or aggregate type, as `fields` names them, or an `additional` column), or the event id, aggregate type or timestamp is null or unreadable; the record is dead-lettered" },
  OUTBOX_UPDATE: { retriable: false, meaning: 'a row of the outbox table was updated while `onUpdate: fail`: the outbox table must be insert-only (rows may be deleted, never changed); the record is dead-lettered' },
});
export const outboxError = OUTBOX_ERRORS.error;

/** The placeholders an `output` template may hold. */
export const OUTBOX_PLACEHOLDERS = ['aggregatetype', 'topic', 'schema', 'table'] as const;

const column = (what: string, def: string) => string({ minLength: 1, description: what }).default(def);

const config = object({
  ...processorFields({
    output: 'outbox.event.{aggregatetype}',
    outputDoc: "Output topic; `{aggregatetype}` is replaced by the row's aggregate type (escaped as a topic part), `{topic}`, `{schema}`, `{table}` by the outbox table's input topic and names.",
  }),
  fields: object({
    id: column('Column of the event id (a header `id` of the event; consumers deduplicate by it).', 'id'),
    key: column('Column of the aggregate id: the event key, written as a JSON value (`"order-17"`, `17`).', 'aggregateid'),
    eventType: column('Column of the event type (a header `type`).', 'type'),
    payload: column('Column of the event payload: the event value (null: a tombstone for the aggregate).', 'payload'),
    aggregateType: column('Column of the aggregate type, which `{aggregatetype}` in `output` is replaced by.', 'aggregatetype'),
    timestamp: string({
      minLength: 1,
      description: 'Column of the event time: epoch milliseconds, epoch micro- or nanoseconds (Debezium MicroTimestamp/NanoTimestamp: told apart by size, beyond year 5138 in ms), or an ISO-8601 text (a text without an offset is UTC). Null in a row: the commit time.',
    }).optional('the commit time (`source.ts_ms`)'),
  }, { description: 'The outbox table\'s columns.' }).default({}, 'the defaults below'),
  additional: list(
    object({
      column: string({ minLength: 1, description: 'The column.' }),
      placement: oneOf(['header', 'envelope'] as const, { description: '`header`: a record header holding the value as text (no header when null); `envelope`: the value becomes `{"payload": <payload>, <name>: <value>}`.' }),
      as: string({ minLength: 1, description: 'The header or field name.' }).optional('the column name'),
    }),
    { description: 'Further columns carried with each event.', type: 'list of `{column, placement, as}`' },
  ).default([]),
  expandJsonPayload: boolean({ description: 'A payload column holding JSON text (json/jsonb columns arrive as text) becomes that JSON as the value; false, or text that is no JSON: the value is a JSON string.' }).default(true),
  onUpdate: oneOf(['warn', 'skip', 'fail'] as const, {
    description: 'An update of an outbox row (the table should be insert-only; Debezium\'s `table.op.invalid.behavior`): `warn` skips it and logs a warning (once per processor run), `skip` skips it silently, `fail` makes it an error (dead-lettered, or the processor stops with `onError: stop`).',
  }).default('warn'),
});

export type OutboxProcessorConfig = Infer<typeof config>;

export const outboxProcessor = defineProcessor({
  kind: 'processor',
  type: 'outbox',
  title: 'Outbox processor',
  docs: 'processing.md',
  config,
  errors: [OUTBOX_ERRORS],
  input: 'envelope',
  output: 'event',
  check(raw, path, ctx) {
    // Every other table's inserts would be dead-lettered as rows without outbox columns.
    if (!Array.isArray(raw.inputs) || raw.inputs.length === 0) ctx.fail([...path], `an outbox processor reads the outbox table only: name its topic in \`inputs\` (e.g. inputs: [shop.public.outbox])`);
    const output = typeof raw.output === 'string' ? raw.output : '';
    for (const m of output.matchAll(/\{([^}]*)\}/g)) {
      if (!(OUTBOX_PLACEHOLDERS as readonly string[]).includes(m[1])) ctx.fail([...path, 'output'], `unknown placeholder {${m[1]}}; an outbox output may hold ${OUTBOX_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
    }
    const headers = new Set(['id', 'type']);
    const fields = new Set(['payload']);
    (Array.isArray(raw.additional) ? raw.additional : []).forEach((a: any, i: number) => {
      const name = String(a?.as ?? a?.column);
      const taken = a?.placement === 'envelope' ? fields : headers;
      if (taken.has(name)) ctx.fail([...path, 'additional', String(i)], `${a?.placement === 'envelope' ? 'the value already has a field' : 'the event already has a header'} named ${JSON.stringify(name)}; give this column another name with \`as\``);
      taken.add(name);
    });
  },
  describe: (c) =>
    `processor ${c.name}: outbox ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output} (key ${c.fields.key}, payload ${c.fields.payload}${c.additional.length ? `, + ${c.additional.map((a) => `${a.column}→${a.placement}`).join(', ')}` : ''}; updates: ${c.onUpdate})`,
  async create(c, ctx) {
    const { outboxTransform } = await import('./outbox.ts');
    return outboxTransform(c, ctx);
  },
});
