/** The PostgreSQL sink's spec. */
import { connection, object, string, type Infer } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch, tableSinkFields } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';

const config = object({
  // Batches of 10k changes apply as fast as 20k here (bench/sink-apply, 800k changes), and their
  // objects die in V8's young generation instead of piling up in the old one: the sink's peak RSS
  // fell from about 210 to 135 MiB (PostgreSQL) and 225 to 195 MiB (MariaDB).
  ...sinkBaseFields(sinkBatch(10_000, 8 << 20)),
  ...tableSinkFields(),
  connection: connection({ schemes: ['postgres', 'postgresql'], defaultPort: 5432, defaultUser: 'postgres', database: true, example: 'postgres://user:password@host:port/database', description: 'The target database, as for the PostgreSQL source.' }),
  schema: string({ minLength: 1, description: 'Target schema (created if missing).' }).default('public'),
});

export type PostgresSinkConfig = { type: 'postgres' } & Infer<typeof config>;

export const postgresSink = defineSink({
  kind: 'sink',
  type: 'postgres',
  title: 'PostgreSQL sink',
  docs: 'connectors/sinks.md',
  config,
  errors: [SINK_ERRORS],
  describe: (c) => `postgres ${c.connection.user}@${c.connection.host}:${c.connection.port}/${c.connection.database}`,
  async create(c, ctx) {
    const { PostgresSink } = await import('./sink.ts');
    return new PostgresSink({ type: 'postgres', ...c }, ctx.logger, ctx.id);
  },
});
