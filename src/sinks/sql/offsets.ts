/**
 * The offsets table of a SQL sink: per (sink, topic, partition) the next log offset to read. The
 * sink writes a batch's offsets in the batch's transaction, so the target holds exactly the data
 * those offsets say it holds; on open it reads them back and the worker resumes there.
 */
import { sinkError } from '../errors.ts';
import type { OffsetPosition } from '../types.ts';
import { offsetsFromRows } from '../types.ts';
import type { TargetColumn } from './columns.ts';
import type { SqlDialect, SqlSession } from './dialect.ts';

/** `sink`/`topic` are key text columns (MySQL: VARCHAR(255)); the offsets are plain integers. */
const text: TargetColumn = { name: '', kind: { k: 'string' }, key: true, sourceType: '' };
const int4: TargetColumn = { name: '', kind: { k: 'int', bytes: 4 }, key: true, sourceType: '' };
const int8: TargetColumn = { name: '', kind: { k: 'int', bytes: 8 }, key: false, sourceType: '' };

export class OffsetsStore {
  /**
   * @param table the offsets table as SQL names it (quoted, qualified where the target has schemas)
   * @param sink the sink's id, which keys its rows
   */
  constructor(
    private readonly d: SqlDialect,
    private readonly table: string,
    private readonly sink: string,
  ) {}

  /** Creates the table if needed and returns the sink's stored offsets (`topic` → partition → next). */
  async open(session: SqlSession): Promise<Map<string, Map<number, number>>> {
    const d = this.d;
    const p = d.qi('partition');
    const [t, i, b] = [text, int4, int8].map((c) => d.columnType(c, ''));
    const create = `CREATE TABLE IF NOT EXISTS ${this.table} (sink ${t} NOT NULL, topic ${t} NOT NULL, ${p} ${i} NOT NULL, next_offset ${b} NOT NULL, updated_at ${d.offsetsUpdatedAt}, PRIMARY KEY (sink, topic, ${p}))${d.tableOptions}`;
    try {
      await session.run(create);
    } catch {
      // Two sinks opening on one database at once: PostgreSQL's IF NOT EXISTS does not see the
      // other's uncommitted table and fails on its type's name (42710). Once that one committed,
      // the statement finds the table; any other failure repeats and is thrown.
      await session.run(create);
    }
    return offsetsFromRows(await session.rows(`SELECT topic, ${p}, next_offset FROM ${this.table} WHERE sink = ${d.param(1)}`, [this.sink]));
  }

  /** The sink's stored offsets as they are now (the table exists: `open` made it). */
  async read(session: SqlSession): Promise<Map<string, Map<number, number>>> {
    return offsetsFromRows(await session.rows(`SELECT topic, ${this.d.qi('partition')}, next_offset FROM ${this.table} WHERE sink = ${this.d.param(1)}`, [this.sink]));
  }

  /**
   * Stores a batch's offsets; run it inside the batch's transaction. Offsets with `from` are
   * checked first against the stored ones, read with a row lock held to the commit, so that of two
   * workers applying one partition only the one that knows where it stands commits.
   */
  /**
   * The statement that stores `offsets` when it is all `write` would run (no fencing check reads
   * the stored offsets first), for a sink that sends it together with other statements; else null.
   */
  plainWrite(offsets: OffsetPosition[]): { sql: string; params?: unknown[] } | null {
    if (offsets.length === 0) return { sql: '' };
    if (this.d.offsetsLock !== null && offsets.some((o) => o.from !== undefined)) return null;
    return this.d.offsetsUpsert(this.table, this.sink, offsets);
  }

  async write(session: SqlSession, offsets: OffsetPosition[]): Promise<void> {
    if (offsets.length === 0) return;
    if (this.d.offsetsLock !== null && offsets.some((o) => o.from !== undefined)) {
      const p = this.d.qi('partition');
      const stored = offsetsFromRows(await session.rows(`SELECT topic, ${p}, next_offset FROM ${this.table} WHERE sink = ${this.d.param(1)}${this.d.offsetsLock}`, [this.sink]));
      for (const o of offsets) {
        if (o.from === undefined) continue;
        const have = stored.get(o.topic)?.get(o.partition) ?? 0;
        if (have !== o.from) {
          throw sinkError('SINK_FENCED', `${o.topic}/${o.partition}: the target holds it up to offset ${have}, not ${o.from} as this worker knew: another worker of the sink's group applied it meanwhile (this one was stalled or dropped from the group). The batch is not applied; the worker joins its group again`);
        }
      }
    }
    const q = this.d.offsetsUpsert(this.table, this.sink, offsets);
    await session.run(q.sql, q.params);
  }
}
