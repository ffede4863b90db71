/** Config keys every source has (after its `connection`), in the order docs and messages list them. */
import { boolean, duration, integer, list, oneOf, string } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';

export function sourceCommonFields(o: { tables: string; tablesType: string; snapshot: string; snapshotFetchSize: string; heartbeat: string; topics: string; retention: string }) {
  return {
    tables: list(string({ minLength: 1 }), { description: o.tables, type: o.tablesType }).default([]),
    snapshot: oneOf(['initial', 'never', 'initial_only'] as const, { description: `\`initial\`: copy existing rows (op \`r\`), then stream. \`never\`: stream only${o.snapshot}. \`initial_only\`: copy and stop. A snapshot commits to the log in chunks, and a restart continues a table after its last committed key.` }).default('initial'),
    snapshotFetchSize: integer({ min: 1, description: o.snapshotFetchSize }).default(10_000),
    heartbeatIntervalMs: duration({ description: `${o.heartbeat} \`0\` disables.` }).default(10_000),
    retentionCheckIntervalMs: duration({ description: `${o.retention} \`0\` disables.` }).default(10_000, '`10s`'),
    topicPrefix: string({ pattern: '^[A-Za-z0-9_.-]+$', description: o.topics }).default(pipelineName, '`name`'),
    transactionMetadata: boolean({ description: "Add Debezium's `transaction` block to events and write BEGIN/END records to `<topicPrefix>.transaction`." }).default(false),
  };
}
