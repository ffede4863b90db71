/**
 * The `map` processor: projects and computes. Each record becomes a row whose fields are computed
 * by expressions (`fields`), optionally on top of an object the record holds (`base: after` keeps
 * every column of a change's row image), less the fields `drop` names; `key` may compute a new key.
 * Its output is rows (`flat`): what a row-shaped consumer wants, not change events a table sink
 * applies (their schema would no longer describe them).
 */
import { list, object, oneOf, raw, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  fields: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of field → expression', description: 'The fields of the output row, each an [expression](processing.md#expressions) over the record: `amount_cents: number(after.amount) * 100`. Evaluated in order; later fields override `base`.' }).default({}),
  base: string({ minLength: 1, description: 'An expression giving the object the row starts from, e.g. `after` (a change\'s row image) or `$value` (a flat row); its fields are kept unless `drop` names them.' }).optional('none: only `fields`'),
  drop: list(string({ minLength: 1 }), { description: 'Fields of `base` left out (PII, internal columns).', type: 'list of field names' }).default([]),
  key: string({ minLength: 1, description: 'An expression giving the output key, e.g. `after.customer_id` (written as JSON).' }).optional('the input key'),
  deletes: oneOf(['tombstone', 'map', 'drop'] as const, { description: "A change event with `op: d`: `tombstone` writes a null value under the (mapped) key, `map` maps it like any record (its `after` is null, use `before`), `drop` leaves it out. The source's own tombstones are always left out." }).default('tombstone'),
});

export type MapProcessorConfig = Infer<typeof config>;

export const mapProcessor = defineProcessor({
  kind: 'processor',
  type: 'map',
  title: 'Map processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'flat',
  check(raw, path, ctx) {
    const fields = raw.fields ?? {};
    for (const [name, src] of Object.entries(fields)) {
      if (typeof src !== 'string' || src.trim() === '') ctx.fail([...path, 'fields', name], `the field ${JSON.stringify(name)} needs an expression as text (quote it: "${String(src)}")`);
      else checkExpr(src, [...path, 'fields', name], ctx);
    }
    checkExpr(raw.base, [...path, 'base'], ctx);
    checkExpr(raw.key, [...path, 'key'], ctx);
    if (!raw.base && Object.keys(fields).length === 0) ctx.fail(path, 'a map processor needs `fields` (expressions) or `base` (an object to start from), or both');
  },
  describe: (c) => `processor ${c.name}: map ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output} {${[c.base ? `...${c.base}` : '', ...Object.keys(c.fields)].filter(Boolean).join(', ')}}`,
  async create(c) {
    const { compileExpr } = await import('../expr/index.ts');
    const { evaluate, scopeOf } = await import('../exprs.ts');
    const { outputTopic } = await import('../common.ts');
    const { writeValue } = await import('../../core/serde/json.ts');
    const fields = Object.entries(c.fields).map(([name, src]) => ({ name, e: compileExpr(src), what: `processor ${c.name} (fields.${name})` }));
    const base = c.base ? compileExpr(c.base) : null;
    const key = c.key ? compileExpr(c.key) : null;
    const drop = new Set(c.drop);
    return {
      apply(rec) {
        if (rec.value === null) return [];
        const s = scopeOf(rec);
        const v = s.value as { op?: unknown; source?: unknown } | null;
        const isDelete = v !== null && typeof v === 'object' && v.op === 'd' && v.source !== undefined;
        if (isDelete && c.deletes === 'drop') return [];
        const outKey = key ? writeValue(evaluate(key, s, `processor ${c.name} (key)`) as never) : rec.key;
        const topic = outputTopic(c.output, rec.topic);
        if (isDelete && c.deletes === 'tombstone') return [{ topic, key: outKey, value: null }];
        const row: Record<string, unknown> = {};
        if (base) {
          const b = evaluate(base, s, `processor ${c.name} (base)`);
          if (b !== null && (typeof b !== 'object' || Array.isArray(b))) throw new TypeError(`processor ${c.name}: base (${c.base}) gave ${Array.isArray(b) ? 'a list' : `a ${typeof b}`}, not an object`);
          if (b) for (const [k, x] of Object.entries(b)) if (!drop.has(k)) row[k] = x;
        }
        for (const f of fields) row[f.name] = evaluate(f.e, s, f.what);
        return [{ topic, key: outKey, value: writeValue(row as never) }];
      },
    };
  },
});
