/**
 * The `join` processor, stream–table: each record of its inputs (the stream) is enriched with the
 * current row of a table whose changes it also reads (`table`), kept as keyed state. The table's
 * rows live in the processor's keyed state, committed with its output (engine/state-store.ts), so
 * a restart has the table as of its last commit without re-reading it.
 */
import { list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields, stateFields, statefulOptions } from '../common.ts';
import { checkExpr } from '../exprs.ts';

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  table: list(string({ minLength: 1 }), {
    minItems: 1,
    description: 'The table side: entries like `inputs` (a topic such as `shop.public.customers`, a processor, a pattern) whose records are the table\'s changes (change events, or flat rows keyed by the table key, a null value deleting).',
    type: 'list of processor names or topic patterns',
  }),
  on: string({ minLength: 1, description: 'An [expression](processing.md#expressions) over a stream record giving the table key to look up, e.g. `after.customer_id`.' }),
  tableKey: string({ minLength: 1, description: 'An expression over a table record giving its key, e.g. `after.id` (for change events) or `id` (flat rows). Compared with `on` by value.' }).optional('the record key (its only field when the key is an object of one field, as the key of a change event is)'),
  as: string({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'The field of the output row that holds the table row (null when there is none, with `kind: left`).' }),
  kind: oneOf(['left', 'inner'] as const, { description: '`left`: every stream record is written, with null when the table has no row for its key; `inner`: only those with a row.' }).default('left'),
  fields: list(string({ minLength: 1 }), { description: 'The table columns kept (in state and output); empty keeps all. Fewer columns, less state.', type: 'list of column names' }).default([]),
  state: stateFields({ what: 'table rows' }),
});

export type JoinProcessorConfig = Infer<typeof config>;

export const joinProcessor = defineProcessor({
  kind: 'processor',
  type: 'join',
  title: 'Join processor (stream–table)',
  docs: 'processing.md',
  config,
  input: 'any',
  output: 'flat',
  check(raw, path, ctx) {
    checkExpr(raw.on, [...path, 'on'], ctx);
    checkExpr(raw.tableKey, [...path, 'tableKey'], ctx);
  },
  stateful: (c) => statefulOptions(c.state),
  sideInputs: (c) => c.table,
  describe: (c) => `processor ${c.name}: ${c.kind} join ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} with table ${c.table.join(', ')} on ${c.on} as ${c.as} → ${c.output}`,
  async create(c, ctx) {
    const { joinTransform } = await import('./join.ts');
    return joinTransform(c, ctx);
  },
});
