/**
 * JSON Schema of the pipeline YAML: the source of truth for what a user may write. `sluice schema`
 * prints it (editors use it for completion). Sizes accept numbers or "64MiB"-style strings,
 * durations numbers (ms) or "10s"-style strings; both are normalized before validation.
 */
const size = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*(B|KB|KiB|MB|MiB|GB|GiB)?$' }] };
const duration = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$' }] };

export const SIZE_KEYS = new Set(['maxBytes', 'segmentBytes', 'retentionBytes', 'maxQueueBytes']);
export const DURATION_KEYS = new Set(['maxDelayMs', 'heartbeatIntervalMs', 'statusIntervalMs', 'retentionMs']);

const batchSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { maxRecords: { type: 'integer', minimum: 1 }, maxBytes: size, maxDelayMs: duration },
} as const;

/** A connection: a URL matching `pattern`, or a mapping of its parts. */
const connection = (pattern: string, description: string) =>
  ({
    anyOf: [
      { type: 'string', pattern, description },
      {
        type: 'object',
        additionalProperties: false,
        required: ['database'],
        properties: {
          host: { type: 'string' },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          user: { type: 'string' },
          password: { type: 'string' },
          database: { type: 'string' },
        },
      },
    ],
  }) as const;

const pgConnection = connection('^postgres(ql)?://', 'postgres://user:password@host:port/database');

/** A MySQL source connection: the database is optional (tables name theirs). */
const mysqlSourceConnection = {
  anyOf: [
    { type: 'string', pattern: '^(mysql|mariadb)://', description: 'mysql://user:password@host:port[/database]' },
    {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string' },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        user: { type: 'string' },
        password: { type: 'string' },
        database: { type: 'string' },
      },
    },
  ],
} as const;

const sinkCommon = {
  name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Sink name, unique in the pipeline; identifies its stored offsets.' },
  tables: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'schema.table patterns (* wildcard) to apply; empty: all.' },
  tableName: { type: 'string', minLength: 1, description: 'Target table name; {schema} and {table} are replaced.' },
  deletes: { enum: ['hard', 'soft'] },
  softDeleteColumn: { type: 'string', minLength: 1 },
  addFields: { type: 'array', items: { enum: ['op', 'table', 'source_ts_ms'] }, uniqueItems: true },
  schemaEvolution: { enum: ['add_columns', 'none'] },
  offsetsTable: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  batch: batchSchema,
} as const;

/** Document sinks (docs/connectors/documents.md): templates are checked by src/sinks/document/config.ts. */
const mongoUrl = { type: 'string', pattern: '^mongodb(\\+srv)?://', description: 'mongodb://user:password@host:port/database' } as const;
const docSinkCommon = {
  name: sinkCommon.name,
  tables: sinkCommon.tables,
  tableName: { type: 'string', minLength: 1, description: 'Default collection name; {schema} and {table} are replaced.' },
  offsetsTable: sinkCommon.offsetsTable,
  batch: batchSchema,
  collections: {
    type: 'array',
    description: 'Per source table: its collection, indexes and document template.',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['table'],
      properties: {
        table: { type: 'string', minLength: 1 },
        collection: { type: 'string', minLength: 1 },
        indexes: { type: 'array', items: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } },
        document: { type: 'object', description: 'Nested mapping; leaves are $column, $$source_ts, $$sync_ts, $$op, $$table or literals.' },
      },
    },
  },
} as const;
const derive = (conn: object, where: 'database' | 'schema') =>
  ({
    type: 'object',
    additionalProperties: false,
    required: ['module'],
    properties: { connection: conn, [where]: { type: 'string', minLength: 1 }, module: { type: 'string', minLength: 1, description: 'Module exporting `derivers`, relative to this file.' } },
  }) as const;

const sinkSchema = {
  type: 'object',
  required: ['type', 'name'],
  properties: { type: { enum: ['postgres', 'mysql', 'duckdb', 'mongodb', 'postgres_jsonb'], description: 'Sink connector.' } },
  allOf: [
    {
      if: { properties: { type: { const: 'mongodb' } } },
      then: {
        additionalProperties: false,
        required: ['connection'],
        properties: { type: {}, ...docSinkCommon, connection: mongoUrl, database: { type: 'string', minLength: 1 }, derive: derive(mongoUrl, 'database') },
      },
    },
    {
      if: { properties: { type: { const: 'postgres_jsonb' } } },
      then: {
        additionalProperties: false,
        required: ['connection'],
        properties: { type: {}, ...docSinkCommon, connection: pgConnection, schema: { type: 'string', minLength: 1 }, derive: derive(pgConnection, 'schema') },
      },
    },
    {
      if: { properties: { type: { const: 'postgres' } } },
      then: {
        additionalProperties: false,
        required: ['connection'],
        properties: { type: {}, ...sinkCommon, connection: pgConnection, schema: { type: 'string', minLength: 1 } },
      },
    },
    {
      if: { properties: { type: { const: 'mysql' } } },
      then: {
        additionalProperties: false,
        required: ['connection'],
        properties: {
          type: {},
          ...sinkCommon,
          connection: connection('^(mysql|mariadb)://', 'mysql://user:password@host:port/database'),
        },
      },
    },
    {
      if: { properties: { type: { const: 'duckdb' } } },
      then: {
        additionalProperties: false,
        required: ['path'],
        properties: { type: {}, ...sinkCommon, path: { type: 'string', minLength: 1 }, changeTableName: { type: 'string' } },
      },
    },
  ],
} as const;

const sourceCommon = {
  tables: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'schema.table (MySQL: database.table) names; empty: all tables.' },
  snapshot: { enum: ['initial', 'never', 'initial_only'] },
  snapshotFetchSize: { type: 'integer', minimum: 1 },
  heartbeatIntervalMs: duration,
  topicPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
  transactionMetadata: { type: 'boolean' },
} as const;

const sourceSchema = {
  type: 'object',
  required: ['type', 'connection'],
  properties: { type: { enum: ['postgres', 'mysql'], description: 'Source connector.' } },
  allOf: [
    {
      if: { properties: { type: { const: 'postgres' } } },
      then: {
        additionalProperties: false,
        properties: {
          type: {},
          connection: pgConnection,
          slot: { type: 'string', pattern: '^[a-z0-9_]{1,63}$', description: 'Replication slot name.' },
          publication: { type: 'string', minLength: 1 },
          tables: sourceCommon.tables,
          protocol: { enum: [1, 2] },
          streaming: { type: 'boolean' },
          binary: { type: 'boolean' },
          snapshot: sourceCommon.snapshot,
          snapshotFetchSize: sourceCommon.snapshotFetchSize,
          heartbeatIntervalMs: sourceCommon.heartbeatIntervalMs,
          statusIntervalMs: duration,
          topicPrefix: sourceCommon.topicPrefix,
          transactionMetadata: sourceCommon.transactionMetadata,
          createPublication: { type: 'boolean' },
        },
      },
    },
    {
      if: { properties: { type: { const: 'mysql' } } },
      then: {
        additionalProperties: false,
        properties: {
          type: {},
          connection: mysqlSourceConnection,
          ...sourceCommon,
          serverId: { type: 'integer', minimum: 1, maximum: 4294967295, description: 'Replica server id, unique among the server\'s replicas.' },
          gtid: { enum: ['auto', 'off'] },
        },
      },
    },
  ],
} as const;

export const pipelineSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Sluice pipeline',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'source'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Pipeline name: identifies its slot, producer and checkpoints.' },
    source: sourceSchema,
    log: {
      type: 'object',
      additionalProperties: false,
      properties: {
        backend: { enum: ['embedded'] },
        dir: { type: 'string' },
        partitions: { type: 'integer', minimum: 1, maximum: 1024 },
        segmentBytes: size,
        retentionMs: duration,
        retentionBytes: size,
      },
    },
    batch: batchSchema,
    sinks: { type: 'array', items: sinkSchema, description: 'Targets the log is applied to, each exactly once.' },
    serialization: { type: 'object', additionalProperties: false, properties: { schemas: { type: 'boolean' } } },
    maxQueueBytes: size,
    server: {
      type: 'object',
      additionalProperties: false,
      properties: { host: { type: 'string' }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: ['debug', 'info', 'warn', 'error'] }, format: { enum: ['text', 'json'] } },
    },
  },
} as const;
