/**
 * The `unwrap` processor: Debezium's ExtractNewRecordState as a pipeline step. It reads change
 * topics and writes the flat row of each change to its output topic, exactly once (its input
 * offsets commit with its output).
 */
import { list, object, oneOf, type Infer } from '../../config/fields.ts';
import { processorFields } from '../common.ts';
import { defineProcessor } from '../../registry/spec.ts';

const config = object({
  ...processorFields({ output: '{name}.{schema}.{table}' }),
  addFields: list(oneOf(['op', 'table', 'source_ts_ms'] as const), { uniqueItems: true, description: 'Metadata fields added to each row: `__op`, `__table`, `__source_ts_ms`.', type: 'list of `op`, `table`, `source_ts_ms`' }).default([]),
  delete: oneOf(['tombstone', 'rewrite', 'drop'] as const, { description: '`tombstone`: a delete becomes a null value under its key (what Kafka Connect sinks expect). `rewrite`: the row before the delete with `__deleted: "true"` (others get `"false"`). `drop`: deletes are left out.' }).default('tombstone'),
});

export type UnwrapProcessorConfig = { type: 'unwrap' } & Infer<typeof config>;

export const unwrapProcessor = defineProcessor({
  kind: 'processor',
  type: 'unwrap',
  title: 'Unwrap processor',
  docs: 'processing.md',
  config,
  input: 'envelope',
  output: 'flat',
  describe: (c) => `processor ${c.name}: unwrap ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output}`,
  async create(c, ctx) {
    const { unwrapTransform } = await import('./unwrap.ts');
    return unwrapTransform({ type: 'unwrap', ...c }, ctx);
  },
});
