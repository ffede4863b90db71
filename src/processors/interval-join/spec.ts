/**
 * The `interval-join` processor, stream–stream: pairs each record of its inputs (the left stream)
 * with the records of another stream (`right`) that have the same key and an event time within a
 * bound of its own, as Flink's interval join does. Both sides wait in keyed state until the
 * watermark says no partner can come any more.
 */
import { duration, list, object, signedDuration, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { nameOf, processorFields, stateFields, statefulOptions } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const config = object({
  ...processorFields({ output: '{name}' , outputDoc: 'The topic of the joined rows.' }),
  right: list(string({ minLength: 1 }), {
    minItems: 1,
    description: 'The right stream: entries like `inputs` (a topic, a processor, a pattern).',
    type: 'list of processor names or topic patterns',
  }),
  on: string({ minLength: 1, description: 'An [expression](processing.md#expressions) over a left record giving the join key, e.g. `after.id`.' }),
  rightOn: string({ minLength: 1, description: 'The same for a right record, e.g. `after.order_id`. Keys are compared by value.' }),
  timestamp: string({ minLength: 1, description: 'The event time of a left record: ms or ISO-8601 text, e.g. `after.created_at`.' }).optional("the log record's timestamp"),
  rightTimestamp: string({ minLength: 1, description: 'The event time of a right record.' }).optional("the log record's timestamp"),
  between: object(
    {
      lower: signedDuration({ description: 'The earliest a right record may be, relative to the left one: `-5m` (five minutes before), `0`.' }),
      upper: signedDuration({ description: 'The latest: `10m` (ten minutes after).' }),
    },
    { description: 'A left record at time t pairs with right records of its key whose time lies in [t + lower, t + upper].' },
  ),
  watermark: duration({ description: 'Out-of-orderness bound of both streams: the watermark trails the largest event time seen by this much. Records behind it are late: they go to `late` and are joined with nothing.' }).default(0),
  late: string({ minLength: 1, description: 'The topic of late records, unchanged.' }).default((ctx) => `${nameOf(ctx, 'join')}.late`, '`<name>.late`'),
  as: string({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'The field of the output row that holds the right row.' }),
  state: stateFields({ what: 'buffered records of both sides' }),
});

export type IntervalJoinProcessorConfig = Infer<typeof config>;

/** `-5m`, `10s`, `0` in ms. */
export function signedMs(text: string): number {
  const m = /^(-?)(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return NaN;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[3] ?? 'ms') as 'ms'];
  return (m[1] ? -1 : 1) * Math.round(Number(m[2]) * unit);
}

export const intervalJoinProcessor = defineProcessor({
  kind: 'processor',
  type: 'interval-join',
  title: 'Interval join processor (stream–stream)',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'flat',
  check(raw, path, ctx) {
    for (const k of ['on', 'rightOn', 'timestamp', 'rightTimestamp']) checkExpr(raw[k], [...path, k], ctx);
    const b = raw.between;
    const lo = signedMs(String(b?.lower));
    const hi = signedMs(String(b?.upper));
    if (b && lo > hi) ctx.fail([...path, 'between'], `lower (${lo} ms) is after upper (${hi} ms): no record could pair`);
    if (raw.state?.store === 'disk') ctx.fail([...path, 'state', 'store'], 'the interval join keeps its buffered records in memory (they are bounded by the interval and the watermark): remove state.store, or narrow `between`');
  },
  stateful: (c) => statefulOptions(c.state),
  sideInputs: (c) => c.right,
  describe: (c) => `processor ${c.name}: interval join ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} with ${c.right.join(', ')} on ${c.on} = ${c.rightOn}, right time in [t + ${c.between.lower} ms, t + ${c.between.upper} ms] as ${c.as} → ${c.output}`,
  async create(c, ctx) {
    const { intervalJoinTransform } = await import('./join.ts');
    return intervalJoinTransform(c, ctx);
  },
});
