/**
 * The `filter` processor: keeps the records for which an expression is true (`where`), unchanged,
 * on its output topic. Works on any records: change events (`op == 'u' && number(after.amount) >
 * 1000`), rows, events.
 */
import { boolean, object, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  where: string({ minLength: 1, description: "The condition a record must meet to be kept, an [expression](processing.md#expressions) over its value (`op`, `after.amount`, …) and `$topic`, `$key`, `$headers`, `$timestamp`. False or null drops it." }),
  tombstones: boolean({ description: 'Keep tombstones (null values) without testing them: they delete their key downstream, and the condition cannot read a null value.' }).default(true),
});

export type FilterProcessorConfig = Infer<typeof config>;

export const filterProcessor = defineProcessor({
  kind: 'processor',
  type: 'filter',
  title: 'Filter processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'same',
  check(raw, path, ctx) {
    checkExpr(raw.where, [...path, 'where'], ctx, 'boolean');
  },
  describe: (c) => `processor ${c.name}: filter ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} where ${c.where} → ${c.output}`,
  async create(c) {
    const { compileExpr } = await import('../expr/index.ts');
    const { evaluate, scopeOf } = await import('../exprs.ts');
    const { outputTopic } = await import('../common.ts');
    const where = compileExpr(c.where, { expect: 'boolean' });
    const what = `processor ${c.name} (where)`;
    return {
      apply(rec) {
        if (rec.value === null && c.tombstones) return [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: null, headers: rec.headers }];
        const keep = evaluate(where, scopeOf(rec), what);
        if (keep !== true && keep !== false && keep !== null) throw new TypeError(`${what}: the condition gave ${JSON.stringify(keep)?.slice(0, 40)}, not true or false (in ${c.where}); compare it, e.g. ${c.where} == 'yes'`);
        if (keep !== true) return [];
        return [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: rec.value, headers: rec.headers }];
      },
    };
  },
});
