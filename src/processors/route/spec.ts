/**
 * The `route` processor: sends each record, unchanged, to the topic of the first route whose
 * condition it meets (or of every such route), by table or by field; records no route takes go to
 * `output`, or are dropped. `by` computes a value that `{value}` in the topic templates is replaced by.
 */
import { list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const route = object({
  when: string({ minLength: 1, description: 'The condition, an [expression](processing.md#expressions); true sends the record to `to`.' }),
  to: string({ minLength: 1, description: 'The topic: `{topic}`, `{schema}`, `{table}` and `{value}` (the value of `by`) are replaced per record.' }),
});

const config = object({
  ...processorFields({ output: '{name}.{topic}', outputDoc: 'Where records that no route takes go (with `unmatched: output`); `{topic}`, `{schema}`, `{table}`, `{value}` are replaced per record.' }),
  routes: list(route, { description: 'The routes, tried in order.', type: 'list of `{when, to}`' }).default([]),
  by: string({ minLength: 1, description: 'An expression whose value (as text, escaped for topic names) replaces `{value}` in `to` and `output`, e.g. `lower(after.region)` with `output: orders.{value}`. A null value sends the record to `unmatched`.' }).optional('none'),
  match: oneOf(['first', 'all'] as const, { description: '`first`: the first route whose condition holds; `all`: every route whose condition holds (a record may go to several topics).' }).default('first'),
  unmatched: oneOf(['output', 'drop'] as const, { description: 'What happens to a record no route takes: it goes to `output`, or is dropped.' }).default('output'),
});

export type RouteProcessorConfig = Infer<typeof config>;

export const routeProcessor = defineProcessor({
  kind: 'processor',
  type: 'route',
  title: 'Route processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'same',
  outputs: (c) => [...c.routes.map((r) => r.to), ...(c.unmatched === 'output' ? [c.output] : [])],
  check(raw, path, ctx) {
    (Array.isArray(raw.routes) ? raw.routes : []).forEach((r: { when?: unknown }, i: number) => checkExpr(r?.when, [...path, 'routes', String(i), 'when'], ctx, 'boolean'));
    checkExpr(raw.by, [...path, 'by'], ctx);
    if (!raw.by && (!Array.isArray(raw.routes) || raw.routes.length === 0)) ctx.fail(path, 'a route processor needs `routes` (conditions and topics) or `by` (an expression whose value names the topic), or both');
    const templates = [...(Array.isArray(raw.routes) ? raw.routes.map((r: { to?: unknown }) => r?.to) : []), raw.output].filter((t): t is string => typeof t === 'string');
    if (!raw.by && templates.some((t) => t.includes('{value}'))) ctx.fail(path, '`{value}` in a topic needs `by`: the expression whose value it is');
  },
  describe: (c) => `processor ${c.name}: route ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${[...c.routes.map((r) => `${r.to} when ${r.when}`), c.unmatched === 'output' ? `${c.output} otherwise` : 'others dropped'].join('; ')}`,
  async create(c) {
    const { compileExpr } = await import('../expr/index.ts');
    const { evaluate, scopeOf } = await import('../exprs.ts');
    const { outputTopic } = await import('../common.ts');
    const { topicPart } = await import('../../sources/common/names.ts');
    const routes = c.routes.map((r, i) => ({ when: compileExpr(r.when, { expect: 'boolean' }), to: r.to, what: `processor ${c.name} (routes[${i}].when)` }));
    const by = c.by ? compileExpr(c.by) : null;
    const byWhat = `processor ${c.name} (by)`;
    return {
      apply(rec) {
        const s = scopeOf(rec);
        let value: string | null = null;
        if (by) {
          const v = evaluate(by, s, byWhat);
          value = v === null || v === undefined ? null : topicPart(typeof v === 'object' ? JSON.stringify(v) : String(v));
        }
        const topicOf = (template: string) => outputTopic(template, rec.topic).replace(/\{value\}/g, () => value ?? '');
        const out: string[] = [];
        for (const r of routes) {
          if (r.to.includes('{value}') && value === null) continue;
          if (evaluate(r.when, s, r.what) === true) {
            out.push(topicOf(r.to));
            if (c.match === 'first') break;
          }
        }
        if (out.length === 0 && c.unmatched === 'output' && !(c.output.includes('{value}') && value === null)) out.push(topicOf(c.output));
        return [...new Set(out)].map((topic) => ({ topic, key: rec.key, value: rec.value, headers: rec.headers }));
      },
    };
  },
});
