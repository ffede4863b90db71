/**
 * What the SQL table sinks (PostgreSQL, MySQL/MariaDB, DuckDB) do differently, as text: quoting,
 * column types, reading a table's columns back, DDL and the offsets upsert. One implementation per
 * target lives in that target's folder (`postgres/dialect.ts`, …); the shared layer in this folder
 * (schema evolution, offsets store, error mapping) builds everything else once.
 */
import type { OffsetPosition } from '../types.ts';
import type { TargetColumn } from './columns.ts';

/** What a target column type holds, for `compatible()`: a Kind's name (`int`, `string`, …) or `other`. */
export interface Family {
  family: string;
  bytes?: number;
}

/** A statement and its parameters (in the target driver's placeholder style). */
export interface Statement {
  sql: string;
  params?: unknown[];
}

/** A target table as the sink names it. */
export interface TableRef {
  /** As SQL names it: quoted, and qualified where the target has schemas. */
  sql: string;
  /** The bare table name (for catalog lookups by name, and logs). */
  table: string;
}

/** How a permanent driver error reads: the target refused the batch, or has no key to upsert by. */
export interface Refusal {
  code: 'SINK_REJECTED' | 'SINK_NO_KEY';
  /** The driver's own words (and code), quoted in the message. */
  detail: string;
}

/**
 * The sink's connection, as the shared layer needs it: run a statement, or read its rows as arrays.
 * Data loading does not go through it (each sink loads with its driver's fastest path).
 */
export interface SqlSession {
  run(sql: string, params?: unknown[]): Promise<void>;
  rows(sql: string, params?: unknown[]): Promise<unknown[][]>;
}

export interface SqlDialect {
  /** The target's name in messages: `PostgreSQL`, `MySQL`, `DuckDB`. */
  readonly label: string;
  /** Quotes an identifier. */
  qi(name: string): string;
  /** Quotes a string literal. */
  ql(text: string): string;
  /** The n-th (1-based) statement parameter. */
  param(n: number): string;
  /** The statement that starts a transaction. */
  readonly begin: string;

  /** The target column type for a column (a Kind, or the source's own type where the target can keep it). */
  columnType(col: TargetColumn, connector: string): string;
  /** The family of a target column type as the catalog prints it (see `readColumns`). */
  family(typeText: string): Family;

  /** `CREATE TABLE` column definition of `col` with type `type`. */
  columnDef(col: TargetColumn, type: string): string;
  /**
   * The statement the sink runs to add a nullable column (idempotent where the target can say so).
   * Here and below `table` is the SQL name (quoted), `column` the bare column name.
   */
  addColumn(table: string, column: string, type: string): string;
  /** The `ALTER TABLE` a message tells the user to run to change a column's type. */
  changeTypeHint(table: string, column: string, type: string): string;
  /** Reads a table's columns in order as rows of (name, type text); no rows when it does not exist. */
  readColumns(ref: TableRef): Statement;
  /**
   * Serializes the DDL of one table among writers (workers of a sink group that meet a new table
   * or column at once) until the transaction ends; none: the target's DDL takes care of it.
   */
  lockTableDdl?(ref: TableRef): Statement;

  /** Trailing options of every table the sink creates (MySQL's engine and collation), or ''. */
  readonly tableOptions: string;
  /** The offsets table's `updated_at` column: type, default, and how it is kept current. */
  readonly offsetsUpdatedAt: string;
  /** Appended to the read of the stored offsets that fences a batch (`OffsetPosition.from`): locks the rows until commit; null: the target has one writer and no check is made. */
  readonly offsetsLock: string | null;
  /** Upserts `offsets` of sink `sink` into the offsets table `table`, keeping `updated_at` current. */
  offsetsUpsert(table: string, sink: string, offsets: OffsetPosition[]): Statement;

  /** A driver error that means the target permanently refused the batch, or null (retry, or rethrow as is). */
  refusal(e: unknown): Refusal | null;

  /** Message wording this target has kept from before the shared layer (see `evolve.ts`). */
  readonly wording?: Partial<EvolveWording>;
}

/** The parts of the schema-evolution messages that are words rather than SQL. */
export interface EvolveWording {
  /** What the user should do with a missing column, before the `ALTER TABLE` in parentheses. */
  addColumn: string;
  /** Before the target column's name in an incompatible-type message. */
  targetColumn: string;
  /** After "then restart the pipeline". */
  afterRestart: string;
}

/** Standard SQL identifier quoting (PostgreSQL, DuckDB). */
export const ansiIdent = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
/** Standard SQL string literal (PostgreSQL with standard_conforming_strings, DuckDB). */
export const ansiLiteral = (s: string): string => "'" + s.replace(/'/g, "''") + "'";
