/** The MySQL/MariaDB source's spec: its config keys, factory, status and Debezium `source` block. */
import { connection, integer, list, object, oneOf, type Infer, type ResolveContext } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';
import { defineSource } from '../../registry/spec.ts';
import { incrementalFields, sourceCommonFields } from '../common/config.ts';
import { mysqlDebezium } from './debezium.ts';
import { MYSQL_ERRORS } from './errors.ts';

/** A stable replica id per pipeline name, away from the usual small ids of real replicas. */
function defaultServerId(ctx: ResolveContext): number {
  let h = 0;
  for (const ch of pipelineName(ctx)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return 5400 + (h % 1000);
}

const config = object({
  connection: connection({
    schemes: ['mysql', 'mariadb'],
    defaultPort: 3306,
    defaultUser: 'root',
    database: false,
    example: 'mysql://user:password@host:port[/database]',
    description: '`mysql://user:password@host:port[/database]` (`mariadb://` too), or a mapping of host (`127.0.0.1`), port (`3306`), user (`root`), password, database. The database is optional: tables named without one are looked up there, and with `tables` empty every table of it is captured (without it: every table of every user database).',
  }),
  ...sourceCommonFields({
    tables: '`database.table` names to capture (a name with a dot or quote in backticks: ``shop.`dot.ted` ``, [topics.md](topics.md)); empty: every table of `connection.database`. A listed table the server does not have stops the pipeline with `MYSQL_TABLE_MISSING`.',
    tablesType: 'list of `database.table`',
    snapshot: ' (from the current end of the binlog)',
    snapshotFetchSize: 'Rows buffered from the server at a time during the snapshot.',
    heartbeat: 'Heartbeat period asked of the server, so that a broken connection is noticed while the binlog is idle.',
    topics: 'Topics are `<topicPrefix>.<database>.<table>`, names escaped as [topics.md](topics.md) says.',
    retention: 'How often the binlog files this pipeline still needs are counted, on a short connection of its own (`SHOW BINARY LOGS` from the file of its durable position on): metrics `sluice_source_binlog_files_needed` and `sluice_source_binlog_bytes_needed`, the source\'s status, the `binlogFiles` alert rule ([alerts.md](alerts.md)).',
  }),
  ...incrementalFields({ signalTable: '`database.table` (`connection.database` when no database); it is captured whatever `tables` says.' }),
  serverId: integer({ min: 1, max: 4294967295, description: "The replica server id this pipeline uses; must differ from every other replica of the server." }).default(defaultServerId, 'derived from `name` (5400–6399)'),
  skippedOperations: list(oneOf(['c', 'u', 'd', 't'] as const), {
    uniqueItems: true,
    description: "Operations not written to the log, as Debezium's `skipped.operations`: `c` inserts, `u` updates, `d` deletes, `t` truncates. Debezium skips truncates by default, so does Sluice; `[]` writes every operation.",
  }).default(['t'], '`[t]`'),
  mariadbConnector: oneOf(['mariadb', 'mysql'] as const, {
    description: "`source.connector` (and the `source` block's schema name) of events read from a MariaDB server: `mariadb` as Debezium 3's MariaDB connector writes it (`io.debezium.connector.mariadb.Source`), `mysql` as Debezium's MySQL connector (and Debezium 2) does. Events from a MySQL server always say `mysql`.",
  }).default('mariadb'),
  gtid: oneOf(['auto', 'off'] as const, { description: '`auto`: resume by GTID set when the server has GTIDs (survives a failover to a replica with the same history), else by file and position. `off`: always by file and position.' }).default('auto'),
});

export type MysqlSourceConfig = { type: 'mysql' } & Infer<typeof config>;

export const mysqlSource = defineSource({
  kind: 'source',
  type: 'mysql',
  title: 'MySQL/MariaDB source',
  docs: 'connectors/mysql.md',
  config,
  errors: [MYSQL_ERRORS],
  debezium: mysqlDebezium,
  topicPrefix: (c) => c.topicPrefix,
  describe: (c) =>
    `source mysql ${c.connection.user}@${c.connection.host}:${c.connection.port}/${c.connection.database ?? ''}, ${c.tables.length ? `${c.tables.length} table${c.tables.length > 1 ? 's' : ''}` : 'all tables'}, server id ${c.serverId}, snapshot ${c.snapshot}`,
  async signal(c, row) {
    const { writeSignal } = await import('./server.ts');
    return writeSignal({ type: 'mysql', ...c }, row);
  },
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    const { MysqlSource } = await loadDriver('mysql2', 'the mysql source', () => import('./source.ts'));
    return new MysqlSource({ type: 'mysql', ...c }, ctx);
  },
  statusLine: (s) =>
    `phase ${s.phase}, binlog ${s.position ?? '-'}${s.gtid ? `, gtid ${s.gtid}` : ''}${typeof s.binlogFilesNeeded === 'number' ? `, needs ${s.binlogFilesNeeded} binlog file${s.binlogFilesNeeded === 1 ? '' : 's'} (${(s.binlogBytesNeeded / 1048576).toFixed(1)} MiB)` : ''}${s.snapshot ? `, snapshot ${JSON.stringify(s.snapshot)}` : ''}${s.incrementalSnapshot?.table ? `, incremental snapshot of ${s.incrementalSnapshot.table}: ${s.incrementalSnapshot.rows} of ~${s.incrementalSnapshot.estimatedRows} rows` : ''}`,
  async serverStatus(c, last) {
    const { binlogStatus } = await import('./server.ts');
    const pos = last?.position;
    const b = await binlogStatus(c.connection, typeof pos === 'string' ? pos.split(':')[0] : null);
    const line = b.error
      ? `binlog: unknown (${b.error})`
      : `binlog: server at ${b.current}, oldest kept ${b.oldest}${b.checkpointFilePurged ? ` — the checkpoint's file ${b.checkpointFile} was PURGED: take a new snapshot` : ''}`;
    return { key: 'binlog', value: b, line };
  },
});
