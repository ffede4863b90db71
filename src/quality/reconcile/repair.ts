/**
 * `--repair`: the differing keys re-emitted from the source through the pipeline. Each key's row
 * is read from the source now and appended to its table's change topic as a Debezium read event
 * (`op: r`, `source.snapshot: incremental`, as an incremental snapshot emits it), built and
 * serialized exactly as the source's snapshot builds its events (the source's type decoder, the
 * pipeline's Debezium serializer, the schema record on the schema topic); a key the source no
 * longer has gets a delete and its tombstone. The sinks apply them like any change, exactly once.
 *
 * The embedded log takes one writer: with the pipeline stopped the CLI opens the log and appends;
 * while it runs, the running pipeline does (`POST /api/actions/repair`, registered by the runner).
 */
import { reconcileError } from './errors.ts';
import type { MysqlSourceConfig, PipelineConfig, PostgresSourceConfig } from '../../config/types.ts';
import type { ChangeEvent, Row, TableSchema, Value } from '../../core/event.ts';
import { schemaRecordOf, schemaTopicOf, SCHEMA_HEADER } from '../../core/schemas.ts';
import { DebeziumJsonSerializer } from '../../core/serde/debezium.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { SchemaLedger } from '../../engine/schema-topic.ts';
import { planTopology } from '../../engine/topology.ts';
import type { Log } from '../../log/types.ts';
import { logSpec, sourceSpec } from '../../registry/index.ts';
import { keyOf } from '../../sources/common/keys.ts';
import { tableTopic } from '../../sources/common/names.ts';
import { connectorName } from '../../sources/mysql/debezium.ts';
import { checkServer, closeConn, connectAdmin, currentPosition, primaryKey, quoteIdent as mysqlIdent, tableColumns } from '../../sources/mysql/server.ts';
import { rawTypeCast, readEvent, snapshotSelect, snapshotSource } from '../../sources/mysql/snapshot.ts';
import { TableSchemas } from '../../sources/mysql/tables.ts';
import { textValue } from '../../sources/mysql/types.ts';
import { copyRows } from '../../sources/postgres/copy-out.ts';
import { TypeCatalog } from '../../sources/postgres/pgoutput/index.ts';
import { closeClient, connect } from '../../sources/postgres/replication.ts';
import { quoteIdent } from '../../sources/postgres/slot.ts';

/** What to repair: per source table (`schema.table`), its keys as column → value (canonical text, as a report lists them). */
export interface RepairRequest {
  tables: { table: string; keys: Record<string, string>[] }[];
}

export interface RepairResult {
  /** Read events appended (rows the source has). */
  reads: number;
  /** Deletes appended (keys the source no longer has). */
  deletes: number;
  topics: string[];
}

/** The repair request for a reconcile report's differing keys (each key once, whatever sinks it differed in). */
export function repairRequestOf(results: { table: string; keys: { key: Record<string, string>; notASourceKey?: true }[] }[]): RepairRequest {
  const by = new Map<string, Map<string, Record<string, string>>>();
  for (const r of results) {
    // A key no source row can have is not re-emitted (no event could carry it): the report lists it to delete by hand.
    const keys = r.keys.filter((k) => !k.notASourceKey);
    if (!keys.length) continue;
    let m = by.get(r.table);
    if (!m) by.set(r.table, (m = new Map()));
    for (const k of keys) m.set(JSON.stringify(k.key), k.key);
  }
  return { tables: [...by].map(([table, m]) => ({ table, keys: [...m.values()] })) };
}

function splitTable(name: string): { schema: string; table: string } {
  const dot = name.indexOf('.');
  if (dot < 0) throw reconcileError('RECONCILE_REPAIR_REQUEST', `repair: name tables as schema.table, not ${name}`);
  return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

/**
 * The source side of a repair: per table, its schema and an event per key (a read event of the
 * row the source has now, or a delete when it has none), built as the source's snapshot builds its
 * events.
 */
interface RepairReader {
  events(schema: string, table: string, topic: string, keys: Record<string, string>[]): Promise<{ table: TableSchema; events: ChangeEvent[] }>;
  close(): Promise<void>;
}

function checkKeys(name: string, keyCols: string[], keys: Record<string, string>[]): void {
  if (!keyCols.length) throw reconcileError('RECONCILE_REPAIR_REQUEST', `repair: ${name} has no primary key in the source`);
  for (const k of keys) for (const c of keyCols) if (!(c in k)) throw reconcileError('RECONCILE_REPAIR_REQUEST', `repair: key of ${name} lacks column ${c}`);
}

async function postgresReader(src: PostgresSourceConfig, connector: string): Promise<RepairReader> {
  const client = await connect(src.connection, false);
  try {
    const catalog = new TypeCatalog(client, false, src.intervalHandling);
    const lsn = String((await client.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l);
    const [hi, lo] = lsn.split('/').map((x) => parseInt(x, 16));
    const lsnNum = hi * 2 ** 32 + lo;
    return {
      async events(schema, table, topic, keys) {
        const rel = await catalog.tableSchemaByName(schema, table);
        const cols = rel.table.columns;
        const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
        const keyCols = rel.table.keyColumns;
        checkKeys(`${schema}.${table}`, keyCols, keys);
        const events: ChangeEvent[] = [];
        for (const k of keys) {
          const where = keyCols.map((c) => `${quoteIdent(c)}::text = ${client.escapeLiteral(k[c])}`).join(' AND ');
          let after: Row | null = null;
          for await (const rows of copyRows(client, `(SELECT ${cols.map((c) => quoteIdent(c.name)).join(', ')} FROM ${qualified} WHERE ${where})`, cols.length)) {
            for (const values of rows) after = rel.decodeTextRow(values);
          }
          const now = Date.now();
          const before = after ? null : rel.decodeTextRow(cols.map((c) => (c.name in k ? k[c.name] : null)));
          events.push({
            topic,
            key: keyOf(rel.table, (after ?? before)!),
            before,
            after,
            source: { version: SLUICE_VERSION, connector, name: src.topicPrefix, ts_ms: now, snapshot: after ? 'incremental' : 'false', db: src.connection.database, sequence: `[null,"${lsn}"]`, ts_us: now * 1000, schema, table, txId: null, lsn: lsnNum, xmin: null },
            op: after ? 'r' : 'd',
            ts_ms: now,
            table: rel.table,
          });
        }
        return { table: rel.table, events };
      },
      close: () => closeClient(client),
    };
  } catch (e) {
    await closeClient(client);
    throw e;
  }
}

/** MySQL/MariaDB: each row read as the snapshot reads it (its query, raw values, event builder). */
async function mysqlReader(src: MysqlSourceConfig): Promise<RepairReader> {
  const conn = await connectAdmin(src.connection);
  try {
    const info = await checkServer(conn);
    const connector = connectorName(src, info.mariadb);
    const at = await currentPosition(conn, info);
    const schemas = new TableSchemas();
    return {
      async events(database, table, topic, keys) {
        const columns = await tableColumns(conn, database, table);
        const schema = schemas.intern(database, table, columns, await primaryKey(conn, database, table));
        checkKeys(`${database}.${table}`, schema.keyColumns, keys);
        const keyIdx = schema.keyColumns.map((k) => columns.findIndex((c) => c.name === k));
        const where = schema.keyColumns.map((c) => `${mysqlIdent(c)} = ?`).join(' AND ');
        const events: ChangeEvent[] = [];
        for (const k of keys) {
          const [rows] = await conn.query({ sql: `${snapshotSelect(database, table, columns)} WHERE ${where}`, values: schema.keyColumns.map((c) => k[c]), rowsAsArray: true, typeCast: rawTypeCast } as never);
          const raw = (rows as (string | Buffer | null)[][])[0];
          const now = Date.now();
          if (raw) {
            events.push(readEvent(topic, schema, columns, keyIdx, raw, snapshotSource(connector, src.topicPrefix, database, table, at, 'incremental', now)));
            continue;
          }
          const before: Record<string, Value> = {};
          for (const c of columns) before[c.name] = c.name in k ? textValue(c, k[c.name]) : null;
          events.push({ topic, key: keyOf(schema, before), before, after: null, source: snapshotSource(connector, src.topicPrefix, database, table, at, 'false', now), op: 'd', ts_ms: now, table: schema });
        }
        return { table: schema, events };
      },
      close: () => closeConn(conn),
    };
  } catch (e) {
    await closeConn(conn);
    throw e;
  }
}

/**
 * Re-emits the keys of `request`. `inject`: the running source's own commit path (inside
 * `sluice run`); without it, a producer of its own on `log` (the pipeline stopped).
 */
export async function repair(log: Log, cfg: PipelineConfig, request: RepairRequest, inject?: (events: ChangeEvent[]) => Promise<void>): Promise<RepairResult> {
  if (!cfg.source) throw reconcileError('RECONCILE_SOURCE', `pipeline ${cfg.name} has no source to repair from`);
  const src = cfg.source;
  if (src.type !== 'postgres' && src.type !== 'mysql') throw reconcileError('RECONCILE_SOURCE', `repair re-reads rows from PostgreSQL and MySQL/MariaDB sources; this pipeline's source is ${(src as { type: string }).type}`);
  const spec = sourceSpec(src.type);
  const topology = planTopology(cfg);
  const serializer = new DebeziumJsonSerializer({ schemas: cfg.serialization.schemas, source: spec.debezium, serverName: topology.prefix });
  const schemaTopic = schemaTopicOf(topology.prefix);
  const topicDefaults = logSpec(cfg.log.backend).topicDefaults(cfg.log as never);
  const ledger = await SchemaLedger.load(log, schemaTopic);
  const prefix = spec.topicPrefix(src);
  const reader = src.type === 'postgres' ? await postgresReader(src as PostgresSourceConfig, spec.debezium.connector) : await mysqlReader(src as MysqlSourceConfig);
  const { producer } = inject ? { producer: null } : await log.openProducer(`reconcile-repair:${cfg.name}`);
  const events: ChangeEvent[] = [];
  const out: RepairResult = { reads: 0, deletes: 0, topics: [] };
  try {
    for (const item of request.tables) {
      const { schema, table } = splitTable(item.table);
      const topic = tableTopic(prefix, schema, table);
      await log.ensureTopic(topic, topicDefaults);
      out.topics.push(topic);
      const got = await reader.events(schema, table, topic, item.keys);
      const schemaRec = schemaRecordOf(spec.debezium.connector, topic, got.table);
      const headers = { [SCHEMA_HEADER]: schemaRec.id };
      if (producer && !ledger.has(schemaRec.id)) {
        producer.append(schemaTopic, { key: schemaRec.id, value: JSON.stringify(schemaRec), timestamp: Date.now() });
        ledger.pending.add(schemaRec.id);
      }
      for (const ev of got.events) {
        if (producer) {
          const key = serializer.keyString(ev);
          producer.append(topic, { key, value: serializer.valueString(ev), timestamp: ev.ts_ms, headers });
          if (ev.op === 'd') producer.append(topic, { key, value: null, timestamp: ev.ts_ms, headers });
        } else events.push(ev);
        if (ev.op === 'd') out.deletes++;
        else out.reads++;
      }
    }
    if (producer) await producer.commit(JSON.stringify({ repairedAt: new Date().toISOString() }));
    else await inject!(events);
  } catch (e) {
    await producer?.abort().catch(() => {});
    throw e;
  } finally {
    await producer?.close().catch(() => {});
    await reader.close();
  }
  return out;
}
