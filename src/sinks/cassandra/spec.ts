/** The Cassandra sink's spec: `type: cassandra` (docs/connectors/cassandra.md). */
import { boolean, DEFAULT_CONNECT_TIMEOUT_MS, duration, Field, integer, list, object, oneOf, string, type Infer, type JsonSchema } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch, tableSinkFields } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';
import { CASSANDRA_ERRORS } from './errors.ts';

/** A Cassandra table or keyspace name: CQL allows letters, digits and `_`, at most 48. */
export const CQL_NAME = '^[A-Za-z0-9_]{1,48}$';

/** `tableMap`: source `schema.table` (or a topic) → target table name. */
function tableMap(): Field<Record<string, string>, 'default'> {
  const schema: JsonSchema = {
    type: 'object',
    additionalProperties: { type: 'string', pattern: CQL_NAME },
    'x-hint': 'a mapping of source `schema.table` (or topic) to a table name (letters, digits, _; at most 48)',
    description: 'Target table per source table: `schema.table` (or the topic) → table name in `keyspace`. Tables not named here take `tableName`.',
  };
  return new Field<Record<string, string>, 'required'>('required', schema, { description: schema.description, type: 'mapping' }, (v) => ({ ...(v ?? {}) })).default({});
}

const connection = object(
  {
    hosts: list(string({ minLength: 1, pattern: '^[^\\s,]+$' }), { minItems: 1, description: 'Contact points, `host` or `host:port` (`port` when it is left out). The driver discovers the rest of the cluster from them.', type: 'list of `host[:port]`' }).default(['127.0.0.1']),
    port: integer({ min: 1, max: 65535, description: 'Native protocol (CQL) port of hosts written without one.' }).default(9042),
    localDataCenter: string({ minLength: 1, description: 'The data center the sink writes to (LOCAL_* consistency levels and load balancing are about this one). A single node with SimpleSnitch is in `datacenter1`.' }).default('datacenter1'),
    user: string({ minLength: 1, description: 'For PasswordAuthenticator; absent: no authentication.' }).optional(),
    password: string({ description: 'Use ${VAR} rather than writing it into the file.' }).optional(),
    connectTimeout: duration({ description: 'How long connecting to a node may take.' }).default(DEFAULT_CONNECT_TIMEOUT_MS),
    statementTimeout: duration({ description: 'How long one statement may go unanswered before it fails (and the batch is retried).' }).default(60_000),
  },
  { description: 'The Cassandra cluster.' },
);

const config = object({
  // Statements go out concurrently (one per row), so a batch of a few thousand keeps the node busy
  // without holding many rows in memory.
  ...sinkBaseFields(sinkBatch(5_000, 8 << 20)),
  ...tableSinkFields(),
  connection: connection.default({}, 'the defaults below'),
  keyspace: string({ pattern: CQL_NAME, hint: 'letters, digits and _, at most 48 characters', description: 'Keyspace of the target tables and the offsets table.' }).default('sluice'),
  createKeyspace: boolean({ description: 'Create the keyspace if it is missing, with `replication`.' }).default(true),
  replication: string({ minLength: 1, description: "CQL replication map of a keyspace the sink creates, e.g. `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`." }).default("{'class': 'SimpleStrategy', 'replication_factor': 1}"),
  tableMap: tableMap(),
  createTables: boolean({ description: 'Create missing target tables from the source schema (columns typed as docs/connectors/cassandra.md maps them; the source key is the partition key). `false`: a missing table stops the sink.' }).default(true),
  consistency: oneOf(['one', 'local_one', 'quorum', 'local_quorum', 'each_quorum', 'all'] as const, { description: 'Consistency level of the sink\'s writes and of reading its offsets.' }).default('local_quorum'),
  concurrency: integer({ min: 1, max: 2048, description: 'Statements of a batch in flight at once.' }).default(64),
});

export type CassandraSinkConfig = { type: 'cassandra' } & Infer<typeof config>;

export const cassandraSink = defineSink({
  kind: 'sink',
  type: 'cassandra',
  title: 'Cassandra sink',
  docs: 'connectors/cassandra.md',
  config,
  errors: [SINK_ERRORS, CASSANDRA_ERRORS],
  check(raw, path, ctx) {
    if (typeof raw.tableName === 'string' && !/^[A-Za-z0-9_{}]+$/.test(raw.tableName.replace(/\{(schema|table)\}/g, ''))) {
      ctx.fail([...path, 'tableName'], `a Cassandra table name holds letters, digits and _ only (with {schema} and {table}); got ${JSON.stringify(raw.tableName)}`);
    }
    if (raw.connection?.password !== undefined && raw.connection?.user === undefined) ctx.fail([...path, 'connection', 'password'], 'a password needs a user: add connection.user');
  },
  describe: (c) => `cassandra ${c.connection.hosts.join(',')} keyspace ${c.keyspace} (${c.consistency})`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    // The driver loads first, so that a missing one is named, not a stack trace.
    await loadDriver('cassandra-driver', 'the cassandra sink', () => import('cassandra-driver'));
    const { CassandraSink } = await import('./sink.ts');
    return new CassandraSink({ type: 'cassandra', ...c }, ctx.logger, ctx.id);
  },
});
