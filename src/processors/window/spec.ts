/**
 * The `window` processor: keyed aggregations over tumbling, hopping or session windows of event
 * time (with a watermark, allowed lateness and a late topic) or processing time. Its windows live
 * in keyed state committed with its output (see window.ts and engine/state-store.ts).
 */
import { duration, integer, object, oneOf, raw, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { nameOf, processorFields, stateFields, statefulOptions } from '../common.ts';
import { checkExpr } from '../exprs.ts';
import { AGGREGATES, parseAggregate } from './aggregates.ts';

const config = object({
  ...processorFields({ output: '{name}', outputDoc: 'The topic of the window results (one record per key and window, keyed by the group-by value).' }),
  groupBy: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of field → expression', description: 'The key: output fields each computed by an [expression](processing.md#expressions), e.g. `customer_id: after.customer_id`. Records with equal values share windows.' }).default({ key: '$key' }, '`{key: $key}` (the record key)'),
  window: object(
    {
      type: oneOf(['tumbling', 'hopping', 'session', 'global'] as const, { description: '`tumbling`: back-to-back windows of `size`; `hopping`: windows of `size` starting every `advance` (a record is in several); `session`: a key\'s records less than `gap` apart, in one window; `global`: one running aggregation per key over all time, reading change events as changes (an update takes its old row out and adds the new one, a delete takes its row out), emitted after each batch that changed it. Over updates and deletes only count, sum and avg can take a row out; with other aggregations the input must be insert-only (an update or delete is dead-lettered).' }),
      size: duration({ description: 'Length of tumbling and hopping windows (`2m`, `10s`), aligned to the epoch.' }).optional('none (tumbling and hopping need it)'),
      advance: duration({ description: 'Hopping windows: how far each starts after the previous one (a divisor of `size`).' }).optional('none (hopping needs it)'),
      gap: duration({ description: 'Session windows: the inactivity that ends a session.' }).optional('none (session needs it)'),
    },
    { description: 'The windows.' },
  ),
  time: oneOf(['event', 'processing'] as const, { description: '`event`: a record\'s time is `timestamp` (or the log record\'s timestamp: for change events, the commit time at the source); `processing`: the wall clock when the processor takes the record.' }).default('event'),
  timestamp: string({ minLength: 1, description: 'An expression giving the event time: ms since the epoch or an ISO-8601 text, e.g. `after.created_at`.' }).optional("the log record's timestamp"),
  watermark: duration({ description: 'Out-of-orderness bound: the watermark trails the largest event time seen by this much, so records up to this late still count.' }).default(0),
  allowedLateness: duration({ description: 'How long after the watermark passes a window\'s end it stays open for late records (its result is emitted only then).' }).default(0),
  late: string({ minLength: 1, description: 'The topic of late records (their windows had closed), unchanged, with headers `sluice.late.window` and `sluice.late.watermark`.' }).default((ctx) => `${nameOf(ctx, 'window')}.late`, '`<name>.late`'),
  emit: oneOf(['close', 'update'] as const, { description: '`close`: one result per window when it closes; `update`: also the current result after each batch that changed it, with `final: false` (`final: true` on close).' }).default('close'),
  aggregates: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of field → aggregation', description: `The results: \`field: function(expression)\` with ${Object.keys(AGGREGATES).map((k) => `\`${k}\``).join(', ')}, e.g. \`total: sum(after.amount)\`, \`p95: percentile(after.amount, 0.95)\`.` }),
  format: oneOf(['rows', 'changes'] as const, { description: '`rows`: each result a flat row (JSON), keyed by the group-by value. `changes`: each result a change event of the table `<name>` with its schema, keyed by the group-by fields and `window_start`, so table sinks (PostgreSQL, MariaDB, DuckDB, Redis, documents) apply the results: a create per window, an update for each later result of it (`emit: update`).' }).default('rows'),
  deletes: oneOf(['skip', 'include'] as const, { description: 'Change events with `op: d`: `skip` leaves them out of the windows, `include` counts them like any record (their `after` is null: use `before`).' }).default('skip'),
  state: stateFields({ what: 'windows (key × window, about 200 bytes each plus the values `count_distinct` and `percentile` keep)' }),
  parallelism: integer({
    min: 1,
    max: 64,
    description:
      'Worker threads the windows are spread over by group-by key: each thread keeps the windows of its share of the keys, with its part of the state in its own changelog partition, so the window work uses more than one core. Output, state and input offsets still commit together in one log commit. Windows closing together come thread by thread rather than sorted by key. Tumbling, hopping and session windows with `state.store: memory`; `state.maxKeys` is shared evenly. Changing it needs new state (see [processing](processing.md#parallelism)).',
  }).default(1),
});

export type WindowProcessorConfig = Infer<typeof config>;

const ms = (v: unknown): number | undefined => {
  const n = duration().normalize!(v);
  return typeof n.value === 'number' ? n.value : undefined;
};

export const windowProcessor = defineProcessor({
  kind: 'processor',
  type: 'window',
  title: 'Window processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: (c) => (c.format === 'changes' ? 'envelope' : 'flat'),
  check(raw, path, ctx) {
    const groupBy = raw.groupBy ?? {};
    for (const [f, src] of Object.entries(groupBy)) {
      if (typeof src !== 'string' || !src.trim()) ctx.fail([...path, 'groupBy', f], `the field ${JSON.stringify(f)} needs an expression as text`);
      else checkExpr(src, [...path, 'groupBy', f], ctx);
    }
    checkExpr(raw.timestamp, [...path, 'timestamp'], ctx);
    const aggs = raw.aggregates;
    if (aggs && typeof aggs === 'object') {
      if (Object.keys(aggs).length === 0) ctx.fail([...path, 'aggregates'], 'name at least one aggregation, e.g. `count: count()`');
      for (const [name, text] of Object.entries(aggs)) {
        if (typeof text !== 'string') {
          ctx.fail([...path, 'aggregates', name], 'write the aggregation as text, e.g. "sum(after.amount)"');
          continue;
        }
        if (name in groupBy || name === 'window_start' || name === 'window_end' || name === 'final') ctx.fail([...path, 'aggregates', name], `${name} is already an output field (group-by fields, window_start, window_end, final): rename the aggregation`);
        try {
          const d = parseAggregate(name, text);
          if (d.arg !== null) checkExpr(d.arg, [...path, 'aggregates', name], ctx);
        } catch (e) {
          ctx.fail([...path, 'aggregates', name], (e as Error).message);
        }
      }
    }
    const w = raw.window ?? {};
    const [size, advance, gap] = [ms(w.size), ms(w.advance), ms(w.gap)];
    const wp = [...path, 'window'];
    if (w.type === 'global') {
      if (w.size !== undefined || w.advance !== undefined || w.gap !== undefined) ctx.fail(wp, 'global windows take no size, advance or gap: they hold each key over all time');
    } else if (w.type === 'session') {
      if (!gap) ctx.fail(wp, 'session windows need `gap` (e.g. 30m), the inactivity that ends a session');
      if (w.size !== undefined || w.advance !== undefined) ctx.fail(wp, 'session windows take only `gap`: their length follows the records');
    } else if (w.type === 'tumbling' || w.type === 'hopping') {
      if (!size) ctx.fail(wp, `${w.type} windows need \`size\` (e.g. 2m)`);
      if (w.gap !== undefined) ctx.fail(wp, '`gap` is for session windows');
      if (w.type === 'tumbling' && w.advance !== undefined) ctx.fail(wp, 'tumbling windows take no `advance`: use type: hopping for overlapping windows');
      if (w.type === 'hopping') {
        if (!advance) ctx.fail(wp, 'hopping windows need `advance` (e.g. 1m), how far each starts after the previous one');
        else if (size && (advance > size || size % advance !== 0)) ctx.fail(wp, `advance (${advance} ms) must divide size (${size} ms): windows start every advance and last size`);
      }
    }
    if (typeof raw.parallelism === 'number' && raw.parallelism > 1) {
      if (w.type === 'global') ctx.fail([...path, 'parallelism'], 'global windows run in one thread: drop parallelism (or set it to 1)');
      if (raw.state?.store === 'disk') ctx.fail([...path, 'parallelism'], 'parallel windows keep their state in memory: use state.store: memory with parallelism, or parallelism: 1 with the state on disk');
    }
    if (raw.time === 'processing' && raw.timestamp !== undefined) ctx.fail([...path, 'timestamp'], 'processing-time windows use the wall clock: drop `timestamp`, or use time: event');
  },
  stateful: (c) => statefulOptions(c.state, c.parallelism),
  describe: (c) =>
    `processor ${c.name}: window ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} by ${Object.keys(c.groupBy).join(', ')} over ${c.window.type} ${c.window.type === 'global' ? 'all time' : c.window.type === 'session' ? `gap ${c.window.gap} ms` : `${c.window.size} ms${c.window.type === 'hopping' ? ` every ${c.window.advance} ms` : ''}`} (${c.time} time) {${Object.keys(c.aggregates).join(', ')}} → ${c.output}, late → ${c.late}`,
  async create(c, ctx) {
    const o = { ...c, window: c.window as never, pipeline: ctx.pipeline };
    if (c.window.type === 'global') return (await import('./global.ts')).globalTransform(o);
    return (await import('./window.ts')).windowTransform(o);
  },
});
