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

/** Config keys of the sources that take incremental snapshots (sources/common/incremental.ts). */
export function incrementalFields(o: { signalTable: string }) {
  return {
    signalTable: string({
      description: `Signal table (Debezium's format: \`id\` text key, \`type\` text, \`data\` JSON text) whose inserts the source reads from its own stream: \`execute-snapshot\` with \`{"data-collections": ["…"]}\` starts an incremental snapshot of those tables, \`stop-snapshot\` stops it. \`sluice snapshot\` writes these rows. ${o.signalTable} The table is created when missing and never written to the log. Empty: no signals (tables added to \`tables\` are still back-filled at start).`,
    }).default(''),
    incrementalChunkSize: integer({ min: 1, max: 1_000_000, description: 'Rows per chunk of an incremental snapshot: each chunk is one short read at a new snapshot of the database, held in memory until the stream passes that snapshot ([connectors/incremental-snapshots.md](connectors/incremental-snapshots.md)).' }).default(4096),
  };
}
