/**
 * The `dedupe` processor: passes each record whose id (an expression, e.g. a change id or an
 * event id) it has not seen yet, and drops repeats, as a sink's primary key on the change id
 * would (seed 001). The ids seen are keyed state, committed with the output, kept for `within`
 * of event time (or processing time).
 */
import { duration, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields, stateFields, statefulOptions } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  id: string({ minLength: 1, description: 'An [expression](processing.md#expressions) giving the id that makes a record a repeat, e.g. `after.change_id` or `$key`.' }),
  within: duration({ description: 'How long an id is remembered: a repeat that comes later than this after the first passes. Bounds the state.' }).default(3_600_000),
  time: oneOf(['event', 'processing'] as const, { description: '`event`: `within` counts in the records\' time (`timestamp`, or the log record\'s); `processing`: in wall-clock time.' }).default('event'),
  timestamp: string({ minLength: 1, description: 'An expression giving the event time: ms or ISO-8601 text.' }).optional("the log record's timestamp"),
  state: stateFields({ what: 'ids remembered' }),
});

export type DedupeProcessorConfig = Infer<typeof config>;

export const dedupeProcessor = defineProcessor({
  kind: 'processor',
  type: 'dedupe',
  title: 'Dedupe processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'same',
  check(raw, path, ctx) {
    checkExpr(raw.id, [...path, 'id'], ctx);
    checkExpr(raw.timestamp, [...path, 'timestamp'], ctx);
    if (raw.time === 'processing' && raw.timestamp !== undefined) ctx.fail([...path, 'timestamp'], 'processing time uses the wall clock: drop `timestamp`, or use time: event');
  },
  stateful: (c) => statefulOptions(c.state),
  describe: (c) => `processor ${c.name}: dedupe ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} on ${c.id} within ${c.within} ms → ${c.output}`,
  async create(c) {
    const { dedupeTransform } = await import('./dedupe.ts');
    return dedupeTransform(c);
  },
});
