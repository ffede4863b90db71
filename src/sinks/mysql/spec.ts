/** The MySQL/MariaDB sink's spec. */
import { connection, object, type Infer } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch, tableSinkFields } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';

const config = object({
  // Batches of 10k changes apply as fast as 20k here (bench/sink-apply, 800k changes), and their
  // objects die in V8's young generation instead of piling up in the old one: the sink's peak RSS
  // fell from about 210 to 135 MiB (PostgreSQL) and 225 to 195 MiB (MariaDB).
  ...sinkBaseFields(sinkBatch(10_000, 8 << 20)),
  ...tableSinkFields(),
  connection: connection({ schemes: ['mysql', 'mariadb'], defaultPort: 3306, defaultUser: 'root', database: true, example: 'mysql://user:password@host:port/database', description: '`mysql://user:password@host:3306/database` or host/port (`3306`)/user (`root`)/password/database. The database is created if missing.' }),
});

export type MysqlSinkConfig = { type: 'mysql' } & Infer<typeof config>;

export const mysqlSink = defineSink({
  kind: 'sink',
  type: 'mysql',
  title: 'MySQL/MariaDB sink',
  docs: 'connectors/sinks.md',
  config,
  errors: [SINK_ERRORS],
  describe: (c) => `mysql ${c.connection.user}@${c.connection.host}:${c.connection.port}/${c.connection.database}`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    // The driver loads first, so that a missing one is named, not a stack trace.
    await loadDriver('mysql2', 'the mysql sink', () => import('mysql2/promise'));
    const { MysqlSink } = await import('./sink.ts');
    return new MysqlSink({ type: 'mysql', ...c }, ctx.logger, ctx.id);
  },
});
