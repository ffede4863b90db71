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

const sinkSchema = {
  type: 'object',
  required: ['type', 'name'],
  properties: { type: { enum: ['postgres', 'mysql', 'duckdb'], description: 'Sink connector.' } },
  allOf: [
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

export const pipelineSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Sluice pipeline',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'source'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Pipeline name: identifies its slot, producer and checkpoints.' },
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'connection'],
      properties: {
        type: { enum: ['postgres'], description: 'Source connector.' },
        connection: pgConnection,
        slot: { type: 'string', pattern: '^[a-z0-9_]{1,63}$', description: 'Replication slot name.' },
        publication: { type: 'string', minLength: 1 },
        tables: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'schema.table names; empty: all tables.' },
        protocol: { enum: [1, 2] },
        streaming: { type: 'boolean' },
        binary: { type: 'boolean' },
        snapshot: { enum: ['initial', 'never', 'initial_only'] },
        snapshotFetchSize: { type: 'integer', minimum: 1 },
        heartbeatIntervalMs: duration,
        statusIntervalMs: duration,
        topicPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
        transactionMetadata: { type: 'boolean' },
        createPublication: { type: 'boolean' },
      },
    },
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
