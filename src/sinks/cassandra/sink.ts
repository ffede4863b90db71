/**
 * The Cassandra sink: each source table becomes a table `<keyspace>.<table>` keyed by the source's
 * primary key; an insert or update is an `INSERT` (an upsert in CQL), a delete a `DELETE` (or, with
 * `deletes: soft`, an `INSERT` of the key with the soft-delete flag).
 *
 * Cassandra has no transaction across partitions, so the sink cannot store its offsets atomically
 * with the rows as the SQL sinks do. It is exactly-once by idempotence and write time instead:
 *
 * - Every write of a record carries `USING TIMESTAMP base + offset`: its log offset in its partition
 *   over a per-partition `base` (microseconds since the epoch when the sink first wrote that
 *   partition, kept in the offsets table). A key lives in one partition, so its changes get
 *   strictly growing write times in log order, and Cassandra keeps the cell with the newest write
 *   time whatever order writes arrive in.
 * - The batch's rows go out concurrently; only after all are acknowledged at the configured
 *   consistency are the offsets written (`UPDATE … USING TIMESTAMP base + next` in one
 *   single-partition batch, which Cassandra applies atomically).
 * - A crash between the two re-reads the batch from the old offsets and writes the same cells with
 *   the same write times again: the result is the same. A replay can never overwrite a newer
 *   value, since the newer one has the higher write time; nor can a stalled worker of a consumer
 *   group that writes an old batch late.
 *
 * docs/connectors/cassandra.md says what this costs (a truncate is not ordered by write time, and
 * another writer's cells compete by their own timestamps).
 */
import cassandra from 'cassandra-driver';
import { SluiceError } from '../../core/errors.ts';
import type { Row, Value } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { sinkError } from '../errors.ts';
import { targetColumns, targetName, type TargetColumn } from '../sql/columns.ts';
import { afterRow, noKey, sourceTs } from '../sql/records.ts';
import { Refused, unrepresentable } from '../sql/values.ts';
import { bySchema, offsetKey, offsetsFromRows, type OffsetPosition, type Sink, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { cassandraError } from './errors.ts';
import { CQL_NAME, type CassandraSinkConfig } from './spec.ts';
import { converterFor, cqlType, qi, type CqlConverter } from './types.ts';

const { Client, types, errors: driverErrors } = cassandra;
const CODES = types.responseErrorCodes;

/** A target table as the cluster has it. */
interface TargetTable {
  name: string;
  /** `"ks"."table"` */
  ref: string;
  /** Column → CQL type as system_schema.columns spells it. */
  columns: Map<string, string>;
  /** Partition key and clustering columns. */
  keys: string[];
}

/** How the records of one schema version are written to one table. */
interface Plan {
  table: TargetTable;
  schema: SchemaRecord;
  cols: { col: TargetColumn; conv: CqlConverter }[];
  keyCols: { col: TargetColumn; conv: CqlConverter }[];
  insert: string;
  remove: string;
  softDelete: string | null;
}

/** One statement of a batch and the record it writes (for messages). */
interface Statement {
  cql: string;
  params: unknown[];
  record: SinkRecord;
  plan: Plan;
}

const where = (r: SinkRecord): string => `${r.topic}/${r.partition}@${r.offset}`;

export class CassandraSink implements Sink {
  private client: InstanceType<typeof Client> | null = null;
  /** offsetKey(topic, partition) → the base of its write times (µs). */
  private readonly bases = new Map<string, bigint>();
  private readonly tables = new Map<string, TargetTable>();
  private readonly plans = new Map<string, Plan>();
  private readonly ks: string;
  private readonly offsetsRef: string;
  private readonly consistency: number;

  constructor(
    private readonly cfg: CassandraSinkConfig,
    private readonly logger: Logger,
    /** `<pipeline>/<sink>`: this sink's rows in the offsets table. */
    private readonly id: string,
  ) {
    this.ks = qi(cfg.keyspace);
    this.offsetsRef = `${this.ks}.${qi(cfg.offsetsTable)}`;
    this.consistency = types.consistencies[({ one: 'one', local_one: 'localOne', quorum: 'quorum', local_quorum: 'localQuorum', each_quorum: 'eachQuorum', all: 'all' } as const)[cfg.consistency]];
  }

  get name(): string {
    return this.cfg.name;
  }

  private get where(): string {
    return `Cassandra at ${this.contactPoints().join(', ')}`;
  }

  /** `host:port` of each contact point (the driver takes `[v6]:port` too). */
  private contactPoints(): string[] {
    const c = this.cfg.connection;
    return c.hosts.map((h) => (/^\[.*\]:\d+$/.test(h) || /^[^:]+:\d+$/.test(h) ? h : `${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${c.port}`));
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg.connection;
    const client = new Client({
      contactPoints: this.contactPoints(),
      localDataCenter: c.localDataCenter,
      credentials: c.user !== undefined ? { username: c.user, password: c.password ?? '' } : undefined,
      socketOptions: { connectTimeout: c.connectTimeout, readTimeout: c.statementTimeout },
      encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
      queryOptions: { consistency: this.consistency, prepare: true },
    });
    try {
      await client.connect();
      this.client = client;
      await this.ensureKeyspace();
      await this.run(`CREATE TABLE IF NOT EXISTS ${this.offsetsRef} (sink text, topic text, partition int, next_offset bigint, base bigint, PRIMARY KEY ((sink), topic, partition))`);
      const offsets = await this.storedOffsets();
      this.logger.info('cassandra sink open', { sink: this.cfg.name, server: this.where, keyspace: this.cfg.keyspace, offsets: `${this.cfg.keyspace}.${this.cfg.offsetsTable}`, consistency: this.cfg.consistency });
      return offsets;
    } catch (e) {
      this.client = null;
      await client.shutdown().catch(() => {});
      throw this.explain(e);
    }
  }

  async storedOffsets(): Promise<Map<string, Map<number, number>>> {
    const rs = await this.run(`SELECT topic, partition, next_offset, base FROM ${this.offsetsRef} WHERE sink = ?`, [this.id]);
    const rows: [string, number, number][] = [];
    for (const r of rs.rows) {
      if (r.base !== null) this.bases.set(offsetKey(r.topic, r.partition), BigInt(r.base));
      // A row with a base and no offset yet: the partition's first batch did not finish.
      if (r.next_offset !== null) rows.push([r.topic, r.partition, Number(r.next_offset)]);
    }
    return offsetsFromRows(rows);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.shutdown().catch(() => {});
  }

  async apply(batch: SinkBatch): Promise<void> {
    try {
      await this.ensureBases(batch.offsets);
      await this.checkFence(batch.offsets);
      const statements: Statement[] = [];
      for (const t of batch.tables) {
        const plans = await this.prepareTable(t);
        if (t.truncate) await this.run(`TRUNCATE ${plans.get(t.schema.id)!.table.ref}`);
        const bad = t.keyless[0];
        if (bad) throw noKey(t.schema, bad);
        for (const [s, recs] of bySchema(t.deletes)) for (const r of recs) statements.push(this.deleteOf(plans.get(s.id)!, r));
        for (const [s, recs] of bySchema(t.upserts)) for (const r of recs) statements.push(this.upsertOf(plans.get(s.id)!, r));
      }
      await this.runAll(statements);
      if (batch.offsets.length) {
        const queries = batch.offsets.map((o) => ({
          query: `UPDATE ${this.offsetsRef} USING TIMESTAMP ? SET next_offset = ? WHERE sink = ? AND topic = ? AND partition = ?`,
          params: [this.base(o.topic, o.partition) + BigInt(o.next), BigInt(o.next), this.id, o.topic, o.partition],
        }));
        // One partition (the sink's): Cassandra applies the batch atomically and in isolation.
        await this.client!.batch(queries, { prepare: true, logged: false, consistency: this.consistency });
      }
    } catch (e) {
      throw this.explain(e);
    }
  }

  /** The base write time of a partition (ensureBases made it). */
  private base(topic: string, partition: number): bigint {
    const b = this.bases.get(offsetKey(topic, partition));
    if (b === undefined) throw new Error(`no write-time base for ${topic}/${partition}`);
    return b;
  }

  /**
   * Gives every partition of the batch a base write time, stored before anything is written with
   * it. The first worker to store it wins (a lightweight transaction), so two workers never use
   * two bases for one partition.
   */
  private async ensureBases(offsets: OffsetPosition[]): Promise<void> {
    for (const o of offsets) {
      const k = offsetKey(o.topic, o.partition);
      if (this.bases.has(k)) continue;
      const base = BigInt(Date.now()) * 1000n;
      const rs = await this.run(`INSERT INTO ${this.offsetsRef} (sink, topic, partition, base) VALUES (?, ?, ?, ?) IF NOT EXISTS`, [this.id, o.topic, o.partition, base]);
      const row = rs.rows[0];
      const applied = row?.['[applied]'] !== false;
      this.bases.set(k, applied ? base : BigInt(row.base));
    }
  }

  /** SINK_FENCED when a partition the batch expects at `from` stands elsewhere in the offsets table. */
  private async checkFence(offsets: OffsetPosition[]): Promise<void> {
    const fenced = offsets.filter((o) => o.from !== undefined);
    if (!fenced.length) return;
    const stored = await this.storedOffsets();
    for (const o of fenced) {
      const at = stored.get(o.topic)?.get(o.partition) ?? 0;
      if (at !== o.from) throw sinkError('SINK_FENCED', `sink ${this.cfg.name}: ${o.topic}/${o.partition} stands at ${at} in Cassandra, not at ${o.from}: another worker applied it; joining the group again`);
    }
  }

  private timestampOf(r: SinkRecord): bigint {
    return this.base(r.topic, r.partition) + BigInt(r.offset);
  }

  private upsertOf(p: Plan, r: SinkRecord): Statement {
    const row = afterRow(r.value) ?? {};
    const params = p.cols.map(({ col, conv }) => {
      switch (col.meta) {
        case 'op':
          return r.op;
        case 'table':
          return `${p.schema.schema}.${p.schema.table}`;
        case 'source_ts_ms': {
          const ts = sourceTs(r.value);
          return ts ? BigInt(ts) : null;
        }
        case 'deleted':
          return false;
      }
      return this.convert(p, col.name, conv, row[col.name]);
    });
    params.push(this.timestampOf(r));
    return { cql: p.insert, params, record: r, plan: p };
  }

  private deleteOf(p: Plan, r: SinkRecord): Statement {
    const k = r.key === null ? null : parseJson(r.key);
    const keyRow = (k !== null && typeof k === 'object' && !Array.isArray(k) && !Buffer.isBuffer(k) ? k : (((parseJson(r.value) as Row).before ?? {}) as Row)) as Row;
    const keys = p.keyCols.map(({ col, conv }) => this.convert(p, col.name, conv, keyRow[col.name]));
    if (p.softDelete) {
      const meta = p.cols.filter(({ col }) => col.meta && col.meta !== 'deleted').map(({ col }) => (col.meta === 'op' ? r.op : col.meta === 'table' ? `${p.schema.schema}.${p.schema.table}` : sourceTs(r.value) ? BigInt(sourceTs(r.value)!) : null));
      return { cql: p.softDelete, params: [...keys, true, ...meta, this.timestampOf(r)], record: r, plan: p };
    }
    return { cql: p.remove, params: [this.timestampOf(r), ...keys], record: r, plan: p };
  }

  private convert(p: Plan, column: string, conv: CqlConverter, v: Value | undefined): unknown {
    try {
      return conv(v === undefined ? null : v);
    } catch (e) {
      if (e instanceof Refused) throw unrepresentable(this.cfg.name, 'Cassandra', p.schema, column, v, e.why);
      throw unrepresentable(this.cfg.name, 'Cassandra', p.schema, column, v, (e as Error).message);
    }
  }

  /** Runs the statements, `concurrency` at a time; the first failure fails the batch (after those in flight end). */
  private async runAll(statements: Statement[]): Promise<void> {
    let next = 0;
    let failure: { e: unknown } | null = null;
    const worker = async () => {
      while (failure === null && next < statements.length) {
        const s = statements[next++];
        try {
          await this.client!.execute(s.cql, s.params, { prepare: true, consistency: this.consistency });
        } catch (e) {
          failure ??= { e: this.explain(e, s) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.cfg.concurrency, statements.length) }, worker));
    if (failure) throw (failure as { e: unknown }).e;
  }

  // ---------- tables ----------

  private targetTableName(s: SchemaRecord, topic: string): string {
    const mapped = this.cfg.tableMap[`${s.schema}.${s.table}`] ?? this.cfg.tableMap[topic];
    const name = mapped ?? targetName(this.cfg.tableName, s);
    if (!new RegExp(CQL_NAME).test(name)) {
      throw cassandraError('CASSANDRA_TABLE', `sink ${this.cfg.name}: table ${s.schema}.${s.table} would go to the table ${JSON.stringify(name)}, which is not a Cassandra table name (letters, digits and _, at most 48 characters); name it in the sink's tableMap (tableMap: {${s.schema}.${s.table}: some_name})`);
    }
    return name;
  }

  /** The plan of each schema of the table batch, by schema id; creates and evolves the target table first. */
  private async prepareTable(t: TableBatch): Promise<Map<string, Plan>> {
    const out = new Map<string, Plan>();
    const schemas = t.schemas.includes(t.schema) ? t.schemas : [...t.schemas, t.schema];
    for (const s of schemas) {
      const planKey = `${s.id}\u0000${t.topic}`;
      let plan = this.plans.get(planKey);
      if (!plan) {
        const name = this.targetTableName(s, t.topic);
        const table = await this.ensureTable(name, s);
        plan = this.planOf(table, s);
        this.plans.set(planKey, plan);
      }
      out.set(s.id, plan);
    }
    return out;
  }

  private async ensureKeyspace(): Promise<void> {
    const rs = await this.run('SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?', [this.cfg.keyspace]);
    if (rs.rows.length) return;
    if (!this.cfg.createKeyspace) {
      throw cassandraError('CASSANDRA_TABLE', `sink ${this.cfg.name}: the keyspace ${this.cfg.keyspace} does not exist at ${this.where}; create it (CREATE KEYSPACE ${this.cfg.keyspace} WITH replication = …) or set createKeyspace: true`);
    }
    await this.run(`CREATE KEYSPACE IF NOT EXISTS ${this.ks} WITH replication = ${this.cfg.replication}`);
    this.logger.info('cassandra sink created its keyspace', { sink: this.cfg.name, keyspace: this.cfg.keyspace, replication: this.cfg.replication });
  }

  private async readTable(name: string): Promise<TargetTable | null> {
    const rs = await this.run('SELECT column_name, type, kind, position FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?', [this.cfg.keyspace, name]);
    if (!rs.rows.length) return null;
    const columns = new Map<string, string>();
    const keyRows: { name: string; kind: string; position: number }[] = [];
    for (const r of rs.rows) {
      columns.set(r.column_name, r.type);
      if (r.kind === 'partition_key' || r.kind === 'clustering') keyRows.push({ name: r.column_name, kind: r.kind, position: r.position });
    }
    keyRows.sort((a, b) => (a.kind === b.kind ? a.position - b.position : a.kind === 'partition_key' ? -1 : 1));
    return { name, ref: `${this.ks}.${qi(name)}`, columns, keys: keyRows.map((k) => k.name) };
  }

  /** The target table for schema `s`: created if missing (createTables), with the columns it lacks added. */
  private async ensureTable(name: string, s: SchemaRecord): Promise<TargetTable> {
    const src = `${s.schema}.${s.table}`;
    if (!s.keyColumns.length) throw noKey(s, { topic: s.topic, partition: 0, offset: 0, op: 'c' } as SinkRecord);
    const cols = targetColumns(s, this.cfg);
    let table = this.tables.get(name) ?? (await this.readTable(name));
    if (!table) {
      if (!this.cfg.createTables) {
        throw cassandraError('CASSANDRA_TABLE', `sink ${this.cfg.name}: the table ${this.cfg.keyspace}.${name} (for ${src}) does not exist and createTables is false; create it with the source key (${s.keyColumns.join(', ')}) as its primary key, or set createTables: true`);
      }
      const defs = cols.map((c) => `${qi(c.name)} ${cqlType(c.kind)}`);
      const ddl = `CREATE TABLE IF NOT EXISTS ${this.ks}.${qi(name)} (${defs.join(', ')}, PRIMARY KEY ((${s.keyColumns.map(qi).join(', ')})))`;
      await this.run(ddl);
      this.logger.info('cassandra sink created a table', { sink: this.cfg.name, table: `${this.cfg.keyspace}.${name}`, source: src });
      table = (await this.readTable(name))!;
    }
    const want = [...s.keyColumns].sort().join(',');
    if ([...table.keys].sort().join(',') !== want) {
      throw cassandraError('CASSANDRA_TABLE', `sink ${this.cfg.name}: the table ${this.cfg.keyspace}.${name} has the primary key (${table.keys.join(', ')}), but ${src} is keyed by (${s.keyColumns.join(', ')}); a row would not be found by its source key. Give the table that key (drop it to let the sink create it), or map ${src} to another table with tableMap`);
    }
    const have = table.columns;
    const missing = cols.filter((c) => !have.has(c.name));
    if (missing.length) {
      if (this.cfg.schemaEvolution === 'none') {
        throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: ${src} has the column${missing.length > 1 ? 's' : ''} ${missing.map((c) => c.name).join(', ')} that ${this.cfg.keyspace}.${name} lacks, and schemaEvolution is none; add ${missing.length > 1 ? 'them' : 'it'} (ALTER TABLE ${this.cfg.keyspace}.${name} ADD ${missing.map((c) => `${qi(c.name)} ${cqlType(c.kind)}`).join(', ')}) or set schemaEvolution: add_columns`);
      }
      // Cassandra 5 takes several columns in one ALTER; IF NOT EXISTS: another worker may add them too.
      await this.run(`ALTER TABLE ${table.ref} ADD IF NOT EXISTS (${missing.map((c) => `${qi(c.name)} ${cqlType(c.kind)}`).join(', ')})`);
      this.logger.info('cassandra sink added columns', { sink: this.cfg.name, table: `${this.cfg.keyspace}.${name}`, columns: missing.map((c) => c.name) });
      table = (await this.readTable(name))!;
    }
    this.tables.set(name, table);
    return table;
  }

  private planOf(table: TargetTable, s: SchemaRecord): Plan {
    const byName = new Map(s.columns.map((c) => [c.name, c]));
    const cols = targetColumns(s, this.cfg).map((col) => {
      const source = byName.get(col.name);
      const cql = table.columns.get(col.name)!;
      const conv: CqlConverter = source && !col.meta ? converterFor(source.connect, source.sourceType, col, cql) : (v) => v;
      return { col, conv };
    });
    const keyCols = s.keyColumns.map((k) => cols.find((c) => c.col.name === k)!);
    const names = cols.map((c) => qi(c.col.name));
    const insert = `INSERT INTO ${table.ref} (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')}) USING TIMESTAMP ?`;
    const keyWhere = s.keyColumns.map((k) => `${qi(k)} = ?`).join(' AND ');
    const remove = `DELETE FROM ${table.ref} USING TIMESTAMP ? WHERE ${keyWhere}`;
    let softDelete: string | null = null;
    if (this.cfg.deletes === 'soft') {
      const meta = cols.filter(({ col }) => col.meta && col.meta !== 'deleted').map(({ col }) => qi(col.name));
      const sd = [...s.keyColumns.map(qi), qi(this.cfg.softDeleteColumn), ...meta];
      softDelete = `INSERT INTO ${table.ref} (${sd.join(', ')}) VALUES (${sd.map(() => '?').join(', ')}) USING TIMESTAMP ?`;
    }
    return { table, schema: s, cols, keyCols, insert, remove, softDelete };
  }

  // ---------- errors ----------

  private run(cql: string, params: unknown[] = []): Promise<cassandra.types.ResultSet> {
    return this.client!.execute(cql, params, { prepare: params.length > 0, consistency: this.consistency });
  }

  private explain(e: unknown, s?: Statement): unknown {
    if (e instanceof SluiceError) return e;
    const name = this.cfg.name;
    const at = s ? ` (table ${this.cfg.keyspace}.${s.plan.table.name}, record ${where(s.record)} of ${s.plan.schema.schema}.${s.plan.schema.table})` : '';
    if (e instanceof driverErrors.NoHostAvailableError) {
      const inner = Object.entries(e.innerErrors ?? {}) as [string, Error & { code?: string }][];
      const auth = inner.find(([, x]) => x instanceof driverErrors.AuthenticationError || (x instanceof driverErrors.ResponseError && x.code === CODES.badCredentials));
      if (auth) return cassandraError('CASSANDRA_AUTH', `sink ${name}: ${this.where} refused the credentials: ${auth[1].message}. Fix connection.user and connection.password`, { cause: e });
      const why = inner.length ? inner.map(([h, x]) => `${h}: ${x.code ?? x.message}`).join('; ') : e.message;
      const refused = inner.some(([, x]) => x.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(x.message));
      return sinkError('SINK_CONNECTION_LOST', `sink ${name}: cannot reach ${this.where} (${why})${refused ? ': start Cassandra there (scripts/cassandra-server.sh start for tests) or fix the sink\'s connection.hosts/port' : ''}; retrying, and resuming from the offsets stored in Cassandra${at}`, { cause: e });
    }
    if (e instanceof driverErrors.OperationTimedOutError) {
      return sinkError('SINK_CONNECTION_LOST', `sink ${name}: ${this.where} did not answer within ${this.cfg.connection.statementTimeout / 1000} s (connection.statementTimeout): ${e.message}; retrying the batch${at}`, { cause: e });
    }
    if (e instanceof driverErrors.AuthenticationError) {
      return cassandraError('CASSANDRA_AUTH', `sink ${name}: ${this.where} refused the credentials: ${e.message}. Fix connection.user and connection.password`, { cause: e });
    }
    if (e instanceof driverErrors.ResponseError) {
      const c = e.code;
      if (c === CODES.badCredentials || c === CODES.unauthorized) return cassandraError('CASSANDRA_AUTH', `sink ${name}: ${this.where} refused: ${e.message}${at}. Grant the sink's user the permission, or fix the credentials`, { cause: e });
      if ([CODES.unavailableException, CODES.overloaded, CODES.isBootstrapping, CODES.truncateError, CODES.writeTimeout, CODES.readTimeout, CODES.writeFailure, CODES.readFailure].includes(c)) {
        return cassandraError('CASSANDRA_UNAVAILABLE', `sink ${name}: ${this.where} could not take the write at consistency ${this.cfg.consistency}: ${e.message}${at}; the batch is applied again (it writes the same cells with the same write times)`, { cause: e });
      }
      return sinkError('SINK_REJECTED', `sink ${name}: ${this.where} refused a statement: ${e.message}${at}. Fix the target table (or the sink's config) and restart`, { cause: e });
    }
    if (e instanceof TypeError && s) {
      // The driver refused to encode a value for the column's type (a table made by hand with other types).
      return sinkError('SINK_REJECTED', `sink ${name}: a value does not fit its column${at}: ${e.message}. Give the column the type docs/connectors/cassandra.md maps the source type to`, { cause: e });
    }
    return e;
  }
}
