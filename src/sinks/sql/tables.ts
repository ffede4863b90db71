/**
 * The target tables a SQL sink writes, kept in step with the source schemas: read back from the
 * target once, then created or evolved as `planTable` says, with the dialect's DDL. DDL runs on the
 * sink's session, inside whatever transaction the sink has open (PostgreSQL and DuckDB: the batch's;
 * MySQL commits DDL implicitly, so its sink ensures tables before it starts the transaction).
 */
import type { SinkCommonConfig } from '../config.ts';
import type { Logger } from '../../core/logger.ts';
import type { TableBatch } from '../types.ts';
import type { SqlDialect, SqlSession, TableRef } from './dialect.ts';
import { planTable } from './evolve.ts';

export interface TargetTable {
  /** As SQL names it (quoted, qualified where the target has schemas). */
  name: string;
  /** Column name → its type text as the target's catalog prints it. */
  columns: Map<string, string>;
}

export interface TableShape {
  /** Column definitions before the source's (DuckDB's change table: `__change_id`, …). */
  lead?: string[];
  /** Whether the metadata columns belong in the table (default true). */
  meta?: boolean;
  /** Whether the source key is the table's primary key (default true). */
  primaryKey?: boolean;
}

export class TargetTables {
  private readonly known = new Map<string, TargetTable>();

  constructor(
    private readonly d: SqlDialect,
    private readonly cfg: SinkCommonConfig,
    private readonly logger: Logger,
  ) {}

  /** The table `ref`, created or evolved to take every schema of the batch `t`. */
  async ensure(session: SqlSession, ref: TableRef, t: TableBatch, shape: TableShape = {}): Promise<TargetTable> {
    const d = this.d;
    const read = async (): Promise<TargetTable> => {
      const q = d.readColumns(ref);
      const rows = await session.rows(q.sql, q.params);
      return { name: ref.sql, columns: new Map(rows.map(([n, type]) => [String(n), String(type)])) };
    };
    let st = this.known.get(ref.sql) ?? (await read());
    const planOf = (cur: TargetTable) => planTable(d, this.cfg, { table: ref.sql, current: cur.columns, schema: t.schema, schemas: t.schemas, meta: shape.meta });
    let plan = planOf(st);
    if ((plan.create || plan.add.length) && d.lockTableDdl) {
      // DDL to do: under the table's lock, read it again (another worker may have just done it).
      const l = d.lockTableDdl(ref);
      await session.rows(l.sql, l.params);
      st = await read();
      plan = planOf(st);
    }
    if (plan.create) {
      const defs = [...(shape.lead ?? []), ...plan.create.map(({ col, type }) => d.columnDef(col, type))];
      const columns = defs.length;
      if ((shape.primaryKey ?? true) && t.schema.keyColumns.length) defs.push(`PRIMARY KEY (${t.schema.keyColumns.map((k) => d.qi(k)).join(', ')})`);
      await session.run(`CREATE TABLE IF NOT EXISTS ${ref.sql} (${defs.join(', ')})${d.tableOptions}`);
      this.logger.info('created target table', { sink: this.cfg.name, table: ref.sql, columns });
      for (const { col, type } of plan.create) st.columns.set(col.name, type);
    }
    for (const { col, type } of plan.add) {
      await session.run(d.addColumn(ref.sql, col.name, type));
      this.logger.info('added target column', { sink: this.cfg.name, table: ref.sql, column: col.name, type });
      st.columns.set(col.name, type);
    }
    this.known.set(ref.sql, st);
    return st;
  }

  /** Forgets every table (after a rollback, which undid the transaction's DDL too). */
  clear(): void {
    this.known.clear();
  }
}
