/**
 * The change event: the unit of data flowing through Sluice. Internally a plain object; its wire
 * form (see serde/) is Debezium's envelope so that Debezium consumers read Sluice topics.
 */
export type Op = 'c' | 'u' | 'd' | 'r' | 't';

/** A row value. int8/bigint columns are `bigint` (exact); numeric is a decimal `string`; bytea is a Buffer. */
export type Value = null | boolean | number | bigint | string | Buffer | Value[] | { [k: string]: Value };
export type Row = Record<string, Value>;

/** Placeholder for a column PostgreSQL did not send (unchanged TOASTed value). Same text as Debezium's default. */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';

/** A Kafka Connect schema describing one field, as used in Debezium's JSON "schema" part. */
export interface FieldSchema {
  /** Kafka Connect's type names (`float`, `double`: what JsonConverter reads). `float32`/`float64` only in schemas written before 0.2 (sinks still read them). */
  type: 'int8' | 'int16' | 'int32' | 'int64' | 'float' | 'double' | 'float32' | 'float64' | 'boolean' | 'string' | 'bytes' | 'array' | 'map' | 'struct';
  optional: boolean;
  name?: string;
  version?: number;
  parameters?: Record<string, string>;
  default?: unknown;
  items?: FieldSchema;
  field?: string;
  fields?: FieldSchema[];
}

export interface ColumnInfo {
  name: string;
  /** PostgreSQL type OID (or source-specific type id). */
  typeOid: number;
  /** Human type name, e.g. `numeric(10,2)`, `text[]`. */
  typeName: string;
  typeModifier: number;
  /** Part of the primary key / replica identity key. */
  key: boolean;
  optional: boolean;
  schema: FieldSchema;
}

export interface TableSchema {
  /** e.g. `public` */
  schema: string;
  table: string;
  columns: ColumnInfo[];
  keyColumns: string[];
  /**
   * A collection of documents (the MongoDB source): its events carry `doc`, the documents as
   * Extended JSON text, and the only column is the key `id`, as Debezium's MongoDB connector has it.
   */
  document?: true;
}

/** Debezium-compatible `source` block. Source connectors add their own fields (Postgres: sequence, txId, lsn, xmin). */
export interface SourceInfo {
  version: string;
  connector: string;
  name: string;
  ts_ms: number;
  snapshot: 'true' | 'false' | 'first' | 'last' | 'incremental' | 'last_in_data_collection' | 'first_in_data_collection';
  db: string;
  sequence?: string | null;
  ts_us?: number;
  ts_ns?: number;
  schema: string;
  table: string;
  txId?: number | null;
  lsn?: number | null;
  xmin?: number | null;
  [k: string]: unknown;
}

export interface TransactionInfo {
  id: string;
  total_order: number;
  data_collection_order: number;
}

export interface ChangeEvent {
  /** Destination topic, `<prefix>.<schema>.<table>`. */
  topic: string;
  /** Primary-key columns of the row (null for truncate). */
  key: Row | null;
  before: Row | null;
  after: Row | null;
  source: SourceInfo;
  op: Op;
  /** When Sluice processed the event (ms since epoch). */
  ts_ms: number;
  transaction?: TransactionInfo | null;
  /** Table schema at the time of the change, used for `schema` parts and sinks. */
  table: TableSchema;
  /**
   * For a document collection (`table.document`): the documents before and after as Extended JSON
   * text (written as Debezium's MongoDB connector writes `before`/`after`: strings), and the
   * `updateDescription` block as JSON text or null. `before`/`after` rows are then null.
   */
  doc?: { before: string | null; after: string | null; updateDescription: string | null };
}
