/**
 * Initial snapshot (events op 'r', source.snapshot marking first / first_in_data_collection /
 * true / last_in_data_collection / last as Debezium does): reads every published table inside a transaction that imported the slot's
 * exported snapshot, so the rows are exactly the state at the slot's consistent point and the
 * stream continues from there with no gap and no overlap.
 *
 * Each table is one atomic log commit (the producer spills big tables to disk, memory stays
 * bounded); the checkpoint records finished tables, so after a crash only unfinished tables are
 * read again. Progress (rows, rate, ETA) is logged every few seconds.
 */
import type pg from 'pg';
import type { PostgresSourceConfig } from './spec.ts';
import type { ChangeEvent } from '../../core/event.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { SnapshotTable, type SnapshotHooks } from '../common/snapshot.ts';
import { TypeCatalog } from './pgoutput/index.ts';
import { quoteIdent } from './slot.ts';
import { keyOf } from './stream.ts';

export interface SnapshotOptions extends SnapshotHooks {
  client: pg.Client;
  snapshotName: string;
  tables: { schema: string; table: string }[];
  cfg: PostgresSourceConfig;
}

export async function runSnapshot(o: SnapshotOptions): Promise<void> {
  const { client, cfg } = o;
  const catalog = new TypeCatalog(client);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  let current: SnapshotTable | null = null;
  try {
    await client.query(`SET TRANSACTION SNAPSHOT '${o.snapshotName.replace(/'/g, "''")}'`);
    const started = Date.now();
    let totalRows = 0;
    for (let ti = 0; ti < o.tables.length && !o.isStopped(); ti++) {
      const { schema, table } = o.tables[ti];
      const name = `${schema}.${table}`;
      const topic = `${cfg.topicPrefix}.${schema}.${table}`;
      await o.sink.declareTopic(topic);
      const rel = await catalog.tableSchemaByName(schema, table);
      const est = Number((await client.query(`SELECT GREATEST(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = $1::regclass`, [`${quoteIdent(schema)}.${quoteIdent(table)}`])).rows[0]?.n ?? 0);
      const cols = rel.table.columns.map((c) => quoteIdent(c.name)).join(', ');
      const t = (current = new SnapshotTable(o, name, est, ti, o.tables.length));
      await client.query(`DECLARE sluice_snap NO SCROLL CURSOR FOR SELECT ${cols} FROM ${quoteIdent(schema)}.${quoteIdent(table)}`);
      for (;;) {
        if (o.isStopped()) break;
        const r = await client.query({ text: `FETCH ${cfg.snapshotFetchSize} FROM sluice_snap`, rowMode: 'array' });
        if (r.rows.length === 0) break;
        const now = Date.now();
        for (const values of r.rows as (string | null)[][]) {
          const after = rel.decodeTextRow(values);
          const ev: ChangeEvent = {
            topic,
            key: keyOf(rel.table, after),
            before: null,
            after,
            source: {
              version: SLUICE_VERSION,
              connector: 'postgresql',
              name: cfg.topicPrefix,
              ts_ms: now,
              snapshot: t.nextMarker(),
              db: cfg.connection.database,
              sequence: null,
              schema,
              table,
              txId: null,
              lsn: null,
              xmin: null,
            },
            op: 'r',
            ts_ms: now,
            table: rel.table,
          };
          t.add(ev, now);
        }
      }
      await client.query('CLOSE sluice_snap');
      if (o.isStopped()) break;
      await t.finish();
      totalRows += t.rows;
    }
    o.log.info('snapshot complete', { tables: o.tables.length, rows: totalRows, seconds: (Date.now() - started) / 1000 });
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    // A table left half-read (a stop or an error mid-table) must not reach the log: its rows
    // stay uncommitted and the next run reads it again whole.
    o.setCommittable(!current || current.finished);
  }
}
