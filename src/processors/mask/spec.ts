/**
 * The `mask` processor: masks personal data before it leaves the pipeline. It reads change topics
 * (or flat rows, or any JSON events) and writes each record with the named fields hashed,
 * redacted, nulled or partly hidden, keeping the record's shape (and, for change events, the
 * column types its schema header records).
 */
import { integer, list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';

export const MASK_ERRORS = defineErrors('Mask processor', {
  MASK_NOT_TEXT: { retriable: false, meaning: 'a masking method that writes text (`hash`, `redact`, `keep_first`, `keep_last`) met a change event column whose value is not text (a number, boolean, array or struct): masking it would break the column type the event\'s schema records; the record is dead-lettered. Mask the column with `with: null`, or mask a text column' },
  MASK_KEY_NULL: { retriable: false, meaning: 'a rule with `with: null` names a column of the record key: every row would get the same key; the record is dead-lettered. Hash key columns instead' },
  MASK_DOCUMENT: { retriable: false, meaning: "a change event of the MongoDB source in Debezium's shape, whose documents are Extended JSON text: mask does not rewrite them, and passing them on would pass their fields unmasked; the record is dead-lettered. Capture the collection with `shape: row`" },
  MASK_CONFIG: { retriable: false, meaning: 'the mask processor\'s config cannot work (a `hash` rule without a `salt`); `sluice validate` reports the same' },
});
export const maskError = MASK_ERRORS.error;

/** The masking methods. */
export const MASK_METHODS = ['hash', 'redact', 'null', 'keep_last', 'keep_first'] as const;
/** The placeholders an `output` template may hold. */
export const MASK_PLACEHOLDERS = ['topic', 'schema', 'table'] as const;

const rule = object({
  fields: list(string({ minLength: 1 }), {
    minItems: 1,
    description: 'Columns (or fields of flat rows and events) to mask; `a.b` is field `b` of the object in field `a` (a field named `a.b` itself is taken first). Key columns are masked in the key too.',
    type: 'list of field names or dotted paths',
  }),
  tables: list(string({ minLength: 1 }), {
    description: "`schema.table` patterns (`public.customers`, `public.*`; MySQL: `database.table`) of the tables the rule applies to; for records that are not change events, matched against the topic's last two parts.",
    type: 'list of `schema.table` patterns',
  }).optional('all tables'),
  with: oneOf(MASK_METHODS, {
    description: '`hash`: the hex HMAC-SHA256 of the value (64 characters; equal values give equal hashes, so joins still work); `redact`: `replacement`; `null`: null; `keep_last`/`keep_first`: all but the last/first `keep` characters become `*`. Null values stay null.',
  }),
  keep: integer({ min: 0, description: 'Characters `keep_last`/`keep_first` leave visible. A value of no more characters is masked whole.' }).default(4),
  replacement: string({ description: 'The text `redact` writes.' }).default('****'),
});

const config = object({
  ...processorFields({ output: '{name}.{topic}', outputDoc: "Output topic; `{topic}` is replaced by the input topic, `{schema}`, `{table}` by the change event's table (for other records: the topic's last two parts)." }),
  rules: list(rule, { minItems: 1, description: 'What to mask. A field two rules name is masked by the first.', type: 'list of rules' }),
  salt: string({ minLength: 1, description: 'The secret key of `hash` (required when a rule hashes). Write `${VAR}` rather than the value; keep it stable, or hashes change and joins break.' }).optional(),
  hashAlgorithm: oneOf(['hmac-sha256', 'sha256'] as const, { description: '`hmac-sha256`: HMAC-SHA256 keyed with `salt`; `sha256`: SHA-256 of `salt` followed by the value.' }).default('hmac-sha256'),
});

export type MaskProcessorConfig = { type: 'mask' } & Infer<typeof config>;
export type MaskRule = MaskProcessorConfig['rules'][number];

/** One rule as a line, e.g. `email, phone → hash (public.customers)`. */
const ruleText = (r: MaskRule): string => `${r.fields.join(', ')} → ${r.with}${r.with === 'keep_last' || r.with === 'keep_first' ? ` ${r.keep}` : ''}${r.tables ? ` (${r.tables.join(', ')})` : ''}`;

export const maskProcessor = defineProcessor({
  kind: 'processor',
  type: 'mask',
  title: 'Mask processor',
  docs: 'processing.md',
  config,
  errors: [MASK_ERRORS],
  input: 'any',
  output: 'same',
  check(raw, path, ctx) {
    const output = typeof raw.output === 'string' ? raw.output : '';
    for (const m of output.matchAll(/\{([^}]*)\}/g)) {
      if (!(MASK_PLACEHOLDERS as readonly string[]).includes(m[1])) ctx.fail([...path, 'output'], `unknown placeholder {${m[1]}}; a mask output may hold ${MASK_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
    }
    (Array.isArray(raw.rules) ? raw.rules : []).forEach((r: any, i: number) => {
      const at = [...path, 'rules', String(i)];
      if (r?.with === 'hash' && raw.salt === undefined) ctx.fail([...at, 'with'], 'hash needs the processor\'s `salt` (a secret key: write salt: ${MASK_SALT} and set the variable)');
      if (r?.keep !== undefined && r?.with !== 'keep_last' && r?.with !== 'keep_first') ctx.fail([...at, 'keep'], `keep applies to keep_last and keep_first only, not ${String(r?.with)}`);
      if (r?.replacement !== undefined && r?.with !== 'redact') ctx.fail([...at, 'replacement'], `replacement applies to redact only, not ${String(r?.with)}`);
      (Array.isArray(r?.tables) ? r.tables : []).forEach((t: unknown, j: number) => {
        if (typeof t === 'string' && t !== '*' && !t.includes('.')) ctx.fail([...at, 'tables', String(j)], `${JSON.stringify(t)} is no \`schema.table\` pattern; write e.g. ${JSON.stringify(`public.${t}`)} or ${JSON.stringify(`*.${t}`)}`);
      });
    });
  },
  // Never the salt.
  describe: (c) => `processor ${c.name}: mask ${c.rules.map(ruleText).join('; ')} in ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output}`,
  async create(c, ctx) {
    const { maskTransform } = await import('./mask.ts');
    return maskTransform({ type: 'mask', ...c }, ctx);
  },
});
