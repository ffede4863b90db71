/**
 * The `expect` processor: data-quality expectations on any topic or processor output (seed 002
 * §5: non-null keys, numeric ranges, referential consistency). Records that meet every
 * expectation (and those that fail only `warn` ones) pass unchanged to its output, exactly once;
 * a failure of a `dlq` expectation sets the record aside in `<pipeline>.dlq` with the reason; a
 * failure of a `stop` expectation stops the processor at that record. Pass/fail counts go to
 * /metrics and `sluice status`. The checks themselves are in src/quality/expectations/.
 */
import { duration, list, object, oneOf, raw, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields, stateFields, statefulOptions } from '../common.ts';
import { checkExpectations, kindOf, referentialTables, stateKinds } from '../../quality/expectations/config.ts';

export const EXPECT_ERRORS = defineErrors('Expect processor (data-quality expectations)', {
  EXPECTATION_FAILED: { retriable: false, meaning: 'a record failed an expectation with `action: dlq`; it is in the dead-letter topic with this code and a message naming each expectation it failed and why (e.g. `expectation positive_amount (range): after.amount = -5 is below min 0`), and did not reach the output' },
  EXPECTATION_STOP: { retriable: false, meaning: 'a record (or, for `volume`, a window) failed an expectation with `action: stop`: the processor stopped there, before writing the record; the message names the expectation, the value and the record. Fix the data at its source or the expectation, or set the action to `dlq`/`warn`, then restart: the processor resumes at that record' },
});
export const expectError = EXPECT_ERRORS.error;

const field = (what: string) => string({ minLength: 1, description: `${what}: a field path of the record value (\`after.amount\` in a change event, \`amount\` in a flat row) or any [expression](processing.md#expressions) over the record.` });

/** One expectation; also the grammar of a scheduled validation's (src/quality/validate/spec.ts). */
export const expectation = object({
  name: string({ pattern: '^[A-Za-z0-9_.-]+$', description: 'Unique in the processor; names the expectation in metrics, status and dead letters.', hint: 'letters, digits, _ . -' }),
  action: oneOf(['warn', 'dlq', 'stop'] as const, {
    description: 'What a failure does: `warn` passes the record on, counts the failure and logs it (at most once per `warnInterval`); `dlq` writes the record to `<pipeline>.dlq` with the reason instead of the output; `stop` stops the processor at the record (EXPECTATION_STOP). `volume` takes `warn` or `stop`.',
  }).optional('`dlq` (`warn` for `volume`)'),
  when: string({ minLength: 1, description: "An [expression](processing.md#expressions): the expectation applies only to records for which it is true (e.g. `op != 'r'` to leave snapshot rows out)." }).optional('every record'),
  notNull: list(string({ minLength: 1 }), { minItems: 1, description: 'Fields (paths or expressions) that must not be null or missing.', type: 'list of fields' }).optional(),
  unique: object(
    {
      fields: list(string({ minLength: 1 }), { minItems: 1, description: 'The fields whose values together must be unique.', type: 'list of fields' }),
      window: duration({ description: 'How long a value is remembered (in the records\' timestamps): another row with the same value within this window fails.' }),
    },
    { description: 'No two rows with the same values within `window`. A change event of the same row (same record key) is no duplicate; a record with a null among the values is not checked. Keyed state: the values of one window.' },
  ).optional(),
  range: object(
    {
      field: field('The value'),
      min: raw<number>({ jsonType: 'number', type: 'number', description: 'The smallest value allowed.' }).optional('no lower bound'),
      max: raw<number>({ jsonType: 'number', type: 'number', description: 'The largest value allowed.' }).optional('no upper bound'),
    },
    { description: 'A numeric value within [min, max] (numbers, int64, decimals as text). Null passes; a value that is no number fails.' },
  ).optional(),
  regex: object(
    {
      field: field('The value'),
      pattern: string({ minLength: 1, description: 'A JavaScript regular expression that must match somewhere in the value (anchor it with `^…$` for a whole match).' }),
      flags: string({ pattern: '^[imsu]*$', description: 'Regular expression flags (`i`: ignore case).' }).optional('none'),
    },
    { description: 'A text value that matches `pattern` (numbers are matched as their text). Null passes.' },
  ).optional(),
  allowed: object(
    {
      field: field('The value'),
      values: list(raw({ type: 'value' }), { minItems: 1, description: 'The values allowed (numbers compare by value: `10` allows `"10.00"`).', type: 'list of values' }),
    },
    { description: 'A value among `values`. Null passes (name the field in a `notNull` expectation to forbid it).' },
  ).optional(),
  expr: string({ minLength: 1, description: "A row-level condition, an [expression](processing.md#expressions) that must not be false: `after.shipped_at == null || after.shipped_at >= after.created_at`. Null passes (as in a SQL CHECK)." }).optional(),
  referential: object(
    {
      field: field('The referencing value'),
      table: string({ minLength: 1, description: 'The referenced table: its change topic (`shop.public.customers`), a processor, a `*` pattern or `topic:<name>`, read beside the inputs (its records feed the table only; they are not checked or passed on).' }),
      key: string({ minLength: 1, description: 'The referenced column of the table\'s rows (`id`).' }).optional("the record key's only column"),
    },
    { description: 'The value must exist as `key` in the current state of another CDC table (inserts and updates add a row, deletes remove it), as the processor has read it so far. Null passes. Keyed state: the table\'s keys.' },
  ).optional(),
  freshness: object(
    {
      field: string({ minLength: 1, description: 'The event time: an expression giving ms since the epoch or ISO-8601 text (`source.ts_ms`, `after.created_at`; `after.updated_at / 1000` for a microsecond timestamp).' }).optional("the log record's timestamp"),
      maxAge: duration({ description: 'The oldest an event may be when the processor checks it (e.g. `5m`).' }),
    },
    { description: 'The event time is not older than `maxAge` at the time of the check. A null time passes.' },
  ).optional(),
  volume: object(
    {
      window: duration({ description: 'The window length (wall clock, aligned to the epoch: `1m` windows start at whole minutes). Required in the expect processor; a scheduled validation counts the whole table and takes none.' }).optional('none (required in the expect processor)'),
      min: raw<number>({ jsonType: 'integer', type: 'integer', description: 'The fewest records a window must have.' }).optional('no lower bound'),
      max: raw<number>({ jsonType: 'integer', type: 'integer', description: 'The most records a window may have.' }).optional('no upper bound'),
    },
    { description: 'Records per window (processing time) within bounds: a window of fewer than `min` fails when it ends, one of more than `max` fails at the record that passes `max`. One check per window; the first, partial window after a start is not judged. Action `warn` or `stop`.' },
  ).optional(),
  schema: object(
    {
      required: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of column → type', description: 'Columns the row must have, each with its type: the source type (`integer`, `numeric`, `text`; `numeric` matches `numeric(10,2)`) or Kafka Connect type (`int32`, `string`) of a change event\'s schema; for records without a schema, a JSON type (`string`, `number`, `integer`, `boolean`, `object`, `array`) of the value, or `any`.' }),
    },
    { description: 'The row (`after` of a change event, else the value) has the required columns of the required types.' },
  ).optional(),
});

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  expectations: list(expectation, { minItems: 1, description: 'The expectations, each with a `name`, an `action` and exactly one check: `notNull`, `unique`, `range`, `regex`, `allowed`, `expr`, `referential`, `freshness`, `volume` or `schema`. Deletes (op `d`), truncates and tombstones pass unchecked (only `volume` counts them, tombstones aside).', type: 'list of expectations' }),
  warnInterval: duration({ description: 'A `warn` expectation logs its failures at most once per this interval (with the count since its last line).' }).default(10_000),
  state: stateFields({ what: 'values remembered (unique) and referenced keys (referential)' }),
});

export type ExpectProcessorConfig = Infer<typeof config>;
export type ExpectationConfig = ExpectProcessorConfig['expectations'][number];

export const expectProcessor = defineProcessor({
  kind: 'processor',
  type: 'expect',
  title: 'Expect processor (data-quality expectations)',
  docs: 'quality.md',
  config,
  errors: [EXPECT_ERRORS],
  input: 'any',
  output: 'same',
  schemas: true,
  check(raw, path, ctx) {
    checkExpectations(raw.expectations, [...path, 'expectations'], ctx);
    // `window` is optional in the shared grammar (a scheduled validation counts a whole table); a stream needs one.
    (Array.isArray(raw.expectations) ? raw.expectations : []).forEach((e: any, i: number) => {
      if (e?.volume && typeof e.volume === 'object' && e.volume.window === undefined) ctx.fail([...path, 'expectations', String(i), 'volume'], `expectation ${e.name ?? i + 1}: a volume check of a stream needs \`window\` (e.g. 1m): the records are counted per window`);
    });
  },
  stateful: (c) => (c.expectations.some((e) => stateKinds.has(kindOf(e))) ? statefulOptions(c.state) : null),
  sideInputs: (c) => referentialTables(c.expectations),
  describe: (c) => `processor ${c.name}: expect ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} ${c.expectations.map((e) => `${e.name} (${kindOf(e)}, ${e.action ?? (kindOf(e) === 'volume' ? 'warn' : 'dlq')})`).join(', ')} → ${c.output}`,
  async create(c, ctx) {
    const { expectTransform } = await import('./expect.ts');
    return expectTransform(c, ctx);
  },
});
