/** Config keys every source has (after its `connection`), in the order docs and messages list them. */
import { boolean, duration, integer, list, oneOf, string } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';

export function sourceCommonFields(o: { tables: string; snapshotFetchSize: string; topics: string }) {
  return {
    tables: list(string({ minLength: 1 }), { description: o.tables, type: 'list of names' }).default([]),
    snapshot: oneOf(['initial', 'never', 'initial_only'] as const, { description: '`initial`: copy existing rows (op `r`), then stream. `never`: stream only. `initial_only`: copy and stop.' }).default('initial'),
    snapshotFetchSize: integer({ min: 1, description: o.snapshotFetchSize }).default(10_000),
    heartbeatIntervalMs: duration({ description: 'Heartbeat period (0 disables); see the connector page for what it does for this source.' }).default(10_000),
    topicPrefix: string({ pattern: '^[A-Za-z0-9_.-]+$', description: o.topics }).default(pipelineName, '`name`'),
    transactionMetadata: boolean({ description: "Add Debezium's `transaction` block to events and write BEGIN/END records to `<topicPrefix>.transaction`." }).default(false),
  };
}
