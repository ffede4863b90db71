/**
 * The `derive` processor: change events in, change events out, with columns computed from each row
 * image (`full_name: concat(row.first_name, ' ', row.last_name)`) added to `before` and `after`,
 * and columns named in `drop` left out. The output's schema is the input's with those changes, so
 * table sinks (the lake sinks, SQL sinks) create and evolve their tables from it as from a source's.
 */
import { list, object, raw, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';
import { checkExpr } from '../exprs.ts';

/** The types a derived column may have. */
export const DERIVED_TYPES = ['text', 'bigint', 'double', 'boolean', 'timestamptz', 'date'] as const;
export type DerivedType = (typeof DERIVED_TYPES)[number];

export const DERIVE_ERRORS = defineErrors('Derive processor', {
  DERIVE_NOT_CHANGE_EVENT: { retriable: false, meaning: 'a record the derive processor read is not a change event with its schema header (a flat row, an event, or a change event from a log without schemas); the record is dead-lettered. Point the processor\'s inputs at change topics' },
  DERIVE_VALUE: { retriable: false, meaning: 'a derived column\'s expression gave a value its declared type cannot hold (text for a bigint, an unparseable time for a timestamptz); the record is dead-lettered with the column and value' },
  DERIVE_DROP_KEY: { retriable: false, meaning: '`drop` names a key column of a table: its events would lose their key; the record is dead-lettered. Drop non-key columns only' },
});
export const deriveError = DERIVE_ERRORS.error;

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  columns: raw<Record<string, string>>({
    jsonType: 'object',
    type: 'mapping of column → expression',
    description: 'Columns added to each row image, each an [expression](processing.md#expressions) over the change event with `row` the image being computed (`before` or `after`): `full_name: "concat(row.first_name, \' \', row.last_name)"`, `_cdc_operation: "op == \'d\' ? \'DELETE\' : op == \'u\' ? \'UPDATE\' : \'INSERT\'"`. A column of the input of the same name is replaced.',
  }).default({}),
  types: raw<Record<string, DerivedType>>({ jsonType: 'object', type: `mapping of column → ${DERIVED_TYPES.map((t) => '`' + t + '`').join(' \\| ')}`, description: 'The type of a derived column (default `text`). `timestamptz` takes milliseconds since the epoch or ISO-8601 text; `date` takes `YYYY-MM-DD` text or days since the epoch.' }).default({}),
  drop: list(string({ minLength: 1 }), { description: 'Columns of the input left out of the output (not key columns).', type: 'list of column names' }).default([]),
});

export type DeriveProcessorConfig = Infer<typeof config>;

export const deriveProcessor = defineProcessor({
  kind: 'processor',
  type: 'derive',
  title: 'Derive processor',
  docs: 'processing.md',
  config,
  errors: [DERIVE_ERRORS],
  input: 'envelope',
  output: 'envelope',
  schemas: true,
  check(raw, path, ctx) {
    const columns = (raw.columns ?? {}) as Record<string, unknown>;
    for (const [name, src] of Object.entries(columns)) {
      if (typeof src !== 'string' || src.trim() === '') ctx.fail([...path, 'columns', name], `the column ${JSON.stringify(name)} needs an expression as text (quote it: "${String(src)}")`);
      else checkExpr(src, [...path, 'columns', name], ctx);
    }
    for (const [name, t] of Object.entries((raw.types ?? {}) as Record<string, unknown>)) {
      if (!(name in columns)) ctx.fail([...path, 'types', name], `${JSON.stringify(name)} is not one of the derived columns (${Object.keys(columns).join(', ') || 'none'}): types name columns of \`columns\``);
      else if (!DERIVED_TYPES.includes(t as DerivedType)) ctx.fail([...path, 'types', name], `the type of ${name} must be one of ${DERIVED_TYPES.join(', ')} (got ${JSON.stringify(t)})`);
    }
    if (!Object.keys(columns).length && !((raw.drop as unknown[]) ?? []).length) ctx.fail(path, 'a derive processor needs `columns` (expressions) or `drop` (columns to leave out), or both');
  },
  describe: (c) => `processor ${c.name}: derive ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output} {+${Object.keys(c.columns).join(', +')}${c.drop.length ? `, -${c.drop.join(', -')}` : ''}}`,
  async create(c, ctx) {
    const { deriveTransform } = await import('./derive.ts');
    return deriveTransform(c, ctx);
  },
});
