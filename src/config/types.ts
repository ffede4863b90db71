/**
 * The pipeline configuration, as loaded from YAML after env-var interpolation, validation and
 * defaults. The JSON Schema in schema.ts is the source of truth for what users may write; these
 * types mirror it with defaults applied.
 */
export interface PostgresConnectionConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export interface PostgresSourceConfig {
  type: 'postgres';
  connection: PostgresConnectionConfig;
  /** Replication slot name. Default: `sluice_<pipeline name>` (non [a-z0-9_] chars replaced by _). */
  slot: string;
  /** Publication name. Default: same as slot. */
  publication: string;
  /** `schema.table` names to capture. Empty: every table in the database. */
  tables: string[];
  /** pgoutput protocol version: 1, or 2 (PG14+) which can stream large in-progress transactions. */
  protocol: 1 | 2;
  /** With protocol 2: receive large transactions while in progress (spilled to local disk until commit). */
  streaming: boolean;
  /** Ask pgoutput for binary column values (PG14+). */
  binary: boolean;
  /** `initial`: snapshot existing rows, then stream. `never`: stream only. `initial_only`: snapshot and stop. */
  snapshot: 'initial' | 'never' | 'initial_only';
  /** Rows per snapshot fetch. */
  snapshotFetchSize: number;
  /** Interval of heartbeat messages written to the WAL so idle databases do not retain WAL. 0 disables. */
  heartbeatIntervalMs: number;
  /** Interval of standby status updates sent to the server. */
  statusIntervalMs: number;
  /** Topic prefix; topics are `<topicPrefix>.<schema>.<table>`. Default: pipeline name. */
  topicPrefix: string;
  /** Add Debezium's `transaction` block to events and write BEGIN/END records to `<topicPrefix>.transaction`. */
  transactionMetadata: boolean;
  /** Create the publication if missing (needs owner rights). */
  createPublication: boolean;
}

export interface MysqlConnectionConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Default database: tables named without one are looked up here. Optional. */
  database?: string;
}

export interface MysqlSourceConfig {
  type: 'mysql';
  connection: MysqlConnectionConfig;
  /** Replica server id this pipeline uses: unique among the server's replicas. Default: derived from the pipeline name (5400–6399). */
  serverId: number;
  /** `database.table` names to capture. Empty: every table of `connection.database` (or of every user database when none). */
  tables: string[];
  /** `initial`: snapshot existing rows, then stream. `never`: stream only (from the current binlog end). `initial_only`: snapshot and stop. */
  snapshot: 'initial' | 'never' | 'initial_only';
  /** Rows per snapshot progress report unit (the snapshot streams rows; this bounds rows buffered per read). */
  snapshotFetchSize: number;
  /** Resume by GTID when the server has GTIDs (survives a failover to another server with the same GTID history), else by file/position. */
  gtid: 'auto' | 'off';
  /** Heartbeat period asked of the server: keeps the connection checked while the binlog is idle. 0 disables. */
  heartbeatIntervalMs: number;
  /** Topic prefix; topics are `<topicPrefix>.<database>.<table>`. Default: pipeline name. */
  topicPrefix: string;
  transactionMetadata: boolean;
}

export type SourceConfig = PostgresSourceConfig | MysqlSourceConfig;

export interface EmbeddedLogConfig {
  backend: 'embedded';
  /** Directory holding topics, commit journal and consumer offsets. */
  dir: string;
  /** Partitions of topics the pipeline creates. */
  partitions: number;
  /** Segment file size before rolling. */
  segmentBytes: number;
  retentionMs?: number;
  retentionBytes?: number;
}

export interface BatchConfig {
  /** Commit to the log when this many records are pending… */
  maxRecords: number;
  /** …or this many bytes… */
  maxBytes: number;
  /** …or this long after the first pending record. */
  maxDelayMs: number;
}

export type UnwrapField = 'op' | 'table' | 'source_ts_ms';

/** Settings every sink has. */
export interface SinkCommonConfig {
  /** Sink name, unique in the pipeline: identifies its stored offsets. [A-Za-z0-9_.-]+ */
  name: string;
  /** `schema.table` patterns (`*` matches any run of characters) of source tables to apply. Empty: all. */
  tables: string[];
  /** Target table name; `{schema}` and `{table}` are replaced with the source's. */
  tableName: string;
  /** `hard`: delete the row. `soft`: keep it with `softDeleteColumn` set to true. */
  deletes: 'hard' | 'soft';
  softDeleteColumn: string;
  /** Unwrap metadata columns: `__op`, `__table`, `__source_ts_ms`. */
  addFields: UnwrapField[];
  /** `add_columns`: new source columns are added to the target. `none`: a new column stops the sink. */
  schemaEvolution: 'add_columns' | 'none';
  /** Name of the table holding the consumed log offsets (in the target, written with the data). */
  offsetsTable: string;
  batch: BatchConfig;
}

export interface PostgresSinkConfig extends SinkCommonConfig {
  type: 'postgres';
  connection: PostgresConnectionConfig;
  /** Target schema (created if missing). */
  schema: string;
}

export interface MysqlSinkConfig extends SinkCommonConfig {
  type: 'mysql';
  connection: { host: string; port: number; user: string; password?: string; database: string };
}

export interface DuckdbSinkConfig extends SinkCommonConfig {
  type: 'duckdb';
  /** Database file (created if missing). */
  path: string;
  /** Append-only change table per source table; `{schema}`/`{table}` replaced. Empty string: none. */
  changeTableName: string;
}

/** A document template: nested mappings whose leaves are `$column`, `$$source_ts`, `$$sync_ts`, `$$op`, `$$table` or literals (docs/connectors/documents.md). */
export type DocTemplate = { [field: string]: DocTemplateValue };
export type DocTemplateValue = string | number | boolean | null | DocTemplateValue[] | DocTemplate;

export interface DocumentCollectionConfig {
  /** `schema.table` pattern (`*` wildcard) of the source tables this entry shapes; the first matching entry wins. */
  table: string;
  /** Collection name; `{schema}` and `{table}` are replaced. Default: the sink's `tableName`. */
  collection: string;
  /** Secondary indexes, each a list of (dotted) document fields. */
  indexes: string[][];
  /** The reshape template. Absent: every column as a top-level field. */
  document?: DocTemplate;
  /** `file:line` of the entry in the config, for messages. */
  at: string;
  /** Template field path (`a.b`) → `file:line:col` of its value, for messages. */
  positions: Record<string, string>;
}

export interface DocumentSinkCommon extends SinkCommonConfig {
  collections: DocumentCollectionConfig[];
}

export interface MongoSinkConfig extends DocumentSinkCommon {
  type: 'mongodb';
  /** mongodb:// or mongodb+srv:// URL. */
  connection: string;
  database: string;
  /** Derived collections: kept in `database` of `connection` (default: the sink's), computed by the module's `derivers`. */
  derive?: { connection: string; database: string; module: string };
}

export interface PostgresJsonbSinkConfig extends DocumentSinkCommon {
  type: 'postgres_jsonb';
  connection: PostgresConnectionConfig;
  /** Schema of the collection tables (created if missing). */
  schema: string;
  derive?: { connection: PostgresConnectionConfig; schema: string; module: string };
}

export type DocumentSinkConfig = MongoSinkConfig | PostgresJsonbSinkConfig;

export type SinkConfig = PostgresSinkConfig | MysqlSinkConfig | DuckdbSinkConfig | DocumentSinkConfig;

export interface PipelineConfig<S extends SourceConfig = SourceConfig> {
  /** Pipeline name: identifies its slot, producer and checkpoints. [A-Za-z0-9_.-]+ */
  name: string;
  source: S;
  log: EmbeddedLogConfig;
  /** Targets the log is applied to, each exactly once. */
  sinks: SinkConfig[];
  batch: BatchConfig;
  serialization: {
    /** Include Debezium's `schema` part in keys and values (JsonConverter schemas.enable=true). */
    schemas: boolean;
  };
  /** Bound on bytes of decoded events queued between source and log. */
  maxQueueBytes: number;
  server?: { port: number; host: string };
  logging: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'text' | 'json' };
}

/** A pipeline whose source is PostgreSQL (what the PostgreSQL source's code sees). */
export type PgPipelineConfig = PipelineConfig<PostgresSourceConfig>;
/** A pipeline whose source is MySQL/MariaDB. */
export type MysqlPipelineConfig = PipelineConfig<MysqlSourceConfig>;
