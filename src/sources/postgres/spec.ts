/** The PostgreSQL source's spec: its config keys, factory, status and Debezium `source` block. */
import { boolean, connection, duration, list, object, oneOf, string, type Infer, type ResolveContext } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';
import { defineSource } from '../../registry/spec.ts';
import { incrementalFields, sourceCommonFields } from '../common/config.ts';
import { postgresDebezium } from './debezium.ts';
import { PG_ERRORS } from './errors.ts';

const defaultSlot = (ctx: ResolveContext): string => `sluice_${pipelineName(ctx).toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);

const config = object({
  connection: connection({
    schemes: ['postgres', 'postgresql'],
    defaultPort: 5432,
    defaultUser: 'postgres',
    database: true,
    example: 'postgres://user:password@host:port/database',
    description: '`postgres://user:password@host:port/database` (percent-encode `@ : /` in the password; write `${PGPASSWORD}` rather than the password itself), or a mapping of host (`127.0.0.1`), port (`5432`), user (`postgres`), password, database (required: the database to capture). The user needs the REPLICATION attribute ([connectors/postgres.md](connectors/postgres.md)).',
  }),
  slot: string({ pattern: '^[a-z0-9_]{1,63}$', description: 'Logical replication slot; created when missing. Name characters outside `[a-z0-9_]` become `_`.', hint: 'lower-case letters, digits and _; at most 63' }).default(defaultSlot, '`sluice_<name>`'),
  publication: string({ minLength: 1, description: 'Publication the slot reads.' }).default((ctx) => String(ctx.root?.source?.slot ?? defaultSlot(ctx)), 'the slot name'),
  createPublication: boolean({ description: 'Create the publication when missing and keep its table list in step with `tables`. `false`: the publication must exist.' }).default(true),
  ...sourceCommonFields({
    tables: '`schema.table` names to capture (a name with a dot or quote in double quotes: `public."dot.ted"`, [topics.md](topics.md)); empty means every table in the database.',
    tablesType: 'list of `schema.table`',
    snapshot: '',
    snapshotFetchSize: 'Rows read ahead of the log during the snapshot: the COPY stream from the server pauses past them.',
    heartbeat: 'Heartbeat messages written to the WAL (`pg_logical_emit_message`) so that an idle database does not retain WAL for the slot.',
    topics: 'Topics are `<topicPrefix>.<schema>.<table>`, names escaped as [topics.md](topics.md) says.',
    retention: "How often the WAL the slot holds back is measured, on a short connection of its own (`pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)`): metric `sluice_source_retained_wal_bytes`, the source's status, the `retainedWal` alert rule ([alerts.md](alerts.md)).",
  }),
  ...incrementalFields({ signalTable: '`schema.table` (`public.` when no schema); with a table list in `tables` it is added to the publication.' }),
  protocol: oneOf([1, 2] as const, { description: 'pgoutput protocol version; 2 needs PostgreSQL 14+.' }).default(1),
  streaming: boolean({ description: 'With protocol 2: receive large transactions while in progress (spilled to disk until commit).' }).default(false),
  binary: boolean({ description: 'Ask pgoutput for binary column values (PostgreSQL 14+).' }).default(false),
  intervalHandling: oneOf(['string', 'numeric'] as const, {
    description: "How `interval` values are written, as Debezium's `interval.handling.mode`: `string`, ISO 8601 (`P1Y2M3DT4H5M6.5S`, `io.debezium.time.Interval`), exact; `numeric`, microseconds (`io.debezium.time.MicroDuration`), a month counted as 30.4375 days and a day as 24 hours, so a sink gets `730:30:00` for `1 mon`. Debezium's default is `numeric`; Sluice's is the exact one.",
  }).default('string'),
  statusIntervalMs: duration({ description: 'Standby status updates sent to the server.' }).default(10_000),
  heartbeatActionQuery: string({
    description:
      "SQL run at each heartbeat instead of writing the logical message (Debezium's `heartbeat.action.query`), e.g. an upsert into a heartbeat table: `INSERT INTO sluice_heartbeat (id, ts) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = now()`. The logical messages reach every logical slot of the database, a Debezium connector's too (as message events); the query's writes reach only slots that capture its table. Empty: the logical message.",
  }).default(''),
  skippedOperations: list(oneOf(['c', 'u', 'd', 't'] as const), {
    uniqueItems: true,
    description: "Operations not written to the log, as Debezium's `skipped.operations`: `c` inserts, `u` updates, `d` deletes, `t` truncates. Debezium skips truncates by default, so does Sluice; `[]` writes every operation.",
  }).default(['t'], '`[t]`'),
});

export type PostgresSourceConfig = { type: 'postgres' } & Infer<typeof config>;

export const postgresSource = defineSource({
  kind: 'source',
  type: 'postgres',
  title: 'PostgreSQL source',
  docs: 'connectors/postgres.md',
  config,
  errors: [PG_ERRORS],
  debezium: postgresDebezium,
  topicPrefix: (c) => c.topicPrefix,
  describe: (c) =>
    `source postgres ${c.connection.user}@${c.connection.host}:${c.connection.port}/${c.connection.database}, ${c.tables.length ? `${c.tables.length} table${c.tables.length > 1 ? 's' : ''}` : 'all tables'}, slot ${c.slot}, snapshot ${c.snapshot}`,
  async create(c, ctx) {
    const { PostgresSource } = await import('./source.ts');
    return new PostgresSource({ type: 'postgres', ...c }, ctx);
  },
  statusLine: (s) =>
    `phase ${s.phase}, received ${s.receivedLsn}, confirmed ${s.confirmedLsn}${typeof s.retainedWalBytes === 'number' ? `, slot retains ${(s.retainedWalBytes / 1048576).toFixed(1)} MiB of WAL` : ''}${s.snapshot ? `, snapshot ${JSON.stringify(s.snapshot)}` : ''}${s.incrementalSnapshot?.table ? `, incremental snapshot of ${s.incrementalSnapshot.table}: ${s.incrementalSnapshot.rows} of ~${s.incrementalSnapshot.estimatedRows} rows` : ''}`,
  async signal(c, row) {
    const { writeSignal } = await import('./slot.ts');
    return writeSignal(c, row);
  },
  async serverStatus(c) {
    const { slotStatus } = await import('./slot.ts');
    const slot = await slotStatus(c.connection, c.slot);
    const line = slot.error
      ? `slot ${slot.name}: unknown (${slot.error})`
      : slot.exists === false
        ? `slot ${slot.name}: does not exist`
        : `slot ${slot.name}: ${slot.active ? 'active' : 'inactive'}, confirmed ${slot.confirmedFlushLsn}, retains ${((slot.retainedWalBytes as number) / 1048576).toFixed(1)} MiB of WAL`;
    return { key: 'slot', value: slot, line };
  },
});
