/**
 * The MySQL/MariaDB source: server checks, the initial snapshot tied to a binlog position, then
 * the binlog stream, producing Debezium-shaped MySQL change events into the engine's EventSink.
 *
 * Exactly-once into the log: the checkpoint (position.ts) travels with every log commit; on start
 * we resume from it — by GTID when the server has GTIDs, else by file and position — and skip the
 * changes of a partly written transaction that are already durable. MySQL keeps no replication
 * state for us (no slot), so nothing is acknowledged upstream; the binlog must simply still hold
 * the checkpoint's file (checked at start, with what to do when it does not).
 */
import type { EventSink, Source } from '../../core/source.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';
import type { SourceContext } from '../../registry/spec.ts';
import type { MysqlSourceConfig } from './spec.ts';
import { BinlogClient } from './binlog/client.ts';
import type { BinlogEvent, StartPosition } from './binlog/types.ts';
import { decodeCheckpoint, encodeCheckpoint, formatPos, type MysqlCheckpoint } from './position.ts';
import { BinlogRetention } from './retention.ts';
import { binlogFiles, capturedTables, checkDatabase, checkServer, closeConn, connectAdmin, currentPosition, tableFilter, translateTimeout, type Conn, type ServerInfo } from './server.ts';
import { timeoutsOf } from '../../config/fields.ts';
import { beginSnapshot, runSnapshot } from './snapshot.ts';
import type { SnapshotTable } from '../common/snapshot.ts';
import { BinlogStreamer } from './stream.ts';
import { connectorName } from './debezium.ts';
import { TableSchemas } from './tables.ts';
import { mysqlError } from './errors.ts';
import { tableKey } from '../common/names.ts';
import { emptyIncremental, incrementalRowsCounter, IncrementalSnapshots } from '../common/incremental.ts';
import { MysqlChunkReader } from './incremental.ts';
import { comparePos as comparePosition, type BinlogPos } from './position.ts';
import { quoteIdent, signalTableOf } from './server.ts';

/** How often an idle stream commits its advancing binlog position. */
const IDLE_POSITION_COMMIT_MS = 10_000;

export class MysqlSource implements Source {
  private admin: Conn | null = null;
  private snapConn: Conn | null = null;
  private client: BinlogClient | null = null;
  private streamer: BinlogStreamer | null = null;
  private ckpt: MysqlCheckpoint | null = null;
  private durableText: string | null = null;
  private committable = true;
  private stopped = false;
  private snapshotProgress: Record<string, unknown> | null = null;
  /** The table the snapshot is reading (its range must be current in every checkpoint). */
  private snapshotTable: SnapshotTable<unknown> | null = null;
  private readonly schemas = new TableSchemas();
  /** `source.connector` of the events: `mysql`, or `mariadb` for a MariaDB server (mariadbConnector). */
  private connector = 'mysql';
  /** Incremental snapshots (sources/common/incremental.ts), once streaming. */
  private incremental: IncrementalSnapshots | null = null;
  private chunkReader: MysqlChunkReader | null = null;
  /** source.signalTable as database and table, or null. */
  private signal: { database: string; table: string } | null = null;

  private readonly log: SourceContext['logger'];
  private readonly metrics: ComponentMetrics;

  constructor(
    private readonly cfg: MysqlSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.log = ctx.logger;
    this.metrics = ctx.metrics;
    this.retention = new BinlogRetention(cfg, ctx, () => (this.durableText ? decodeCheckpoint(this.durableText).file : (this.ckpt?.file ?? null)));
  }

  /** The binlog files the pipeline still needs, counted now and then (retention.ts). */
  private readonly retention: BinlogRetention;

  canCommit(): boolean {
    return this.committable;
  }

  checkpoint(): string {
    this.snapshotTable?.sync();
    if (this.streamer) this.streamer.fillCheckpoint(this.ckpt!);
    return encodeCheckpoint(this.ckpt!);
  }

  durable(checkpoint: string): void {
    this.durableText = checkpoint;
  }

  status(): Record<string, unknown> {
    const durable = this.durableText ? decodeCheckpoint(this.durableText) : null;
    return {
      type: 'mysql',
      serverId: this.cfg.serverId,
      phase: this.ckpt?.phase ?? 'starting',
      position: this.streamer ? formatPos(this.streamer.position) : this.ckpt ? formatPos(this.ckpt) : null,
      gtid: this.streamer?.gtid ?? this.ckpt?.gtid ?? null,
      durablePosition: durable ? formatPos(durable) : null,
      lastEventTsMs: this.streamer?.lastEventTs || null,
      queueBytes: this.client?.bufferedBytes ?? 0,
      snapshot: this.snapshotProgress,
      incrementalSnapshot: this.incremental?.progress() ?? null,
      binlogFilesNeeded: this.retention.status.filesNeeded,
      binlogBytesNeeded: this.retention.status.bytesNeeded,
      retentionCheckedAt: this.retention.status.at,
      retentionError: this.retention.status.error,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    void this.retention.stop();
    await this.client?.close().catch(() => {});
  }

  async run(sink: EventSink, checkpointText: string | null): Promise<void> {
    const src = this.cfg;
    this.retention.start();
    try {
      this.admin = await connectAdmin(src.connection);
      const info = await checkServer(this.admin);
      this.connector = connectorName(this.cfg, info.mariadb);
      await checkDatabase(this.admin, src.connection.database);
      const [sums] = await this.admin.query('SELECT @@global.binlog_checksum AS c');
      if (String((sums as { c: string }[])[0]?.c ?? 'NONE').toUpperCase() !== 'CRC32') {
        this.log.warn('the server writes binlog events without checksums (binlog_checksum is not CRC32): a damaged event cannot be told from a good one. Set binlog_checksum = CRC32 in the server configuration');
      }
      if (src.signalTable) await this.createSignalTable();
      const tables = (await capturedTables(this.admin, src)).filter((t) => !this.isSignal(t.database, t.table));
      for (const t of tables) {
        if (t.keyColumns.length === 0) this.log.warn(`captured table ${t.database}.${t.table} has no primary key: its change events carry no key, so table sinks can insert its rows but not apply updates or deletes (SINK_NO_KEY). Add a primary key to capture it fully`, { table: `${t.database}.${t.table}` });
      }
      // Known shapes for statements that carry no table map (a TRUNCATE before any row change).
      for (const t of tables) this.schemas.intern(t.database, t.table, t.columns, t.keyColumns);
      if (tables.length === 0) this.log.warn('no table matches source.tables yet: streaming, tables created later are captured', { database: src.connection.database ?? '(all)' });
      let ckpt = checkpointText ? decodeCheckpoint(checkpointText) : null;
      if (!ckpt) {
        const now = await currentPosition(this.admin, info);
        ckpt = { phase: src.snapshot === 'never' ? 'stream' : 'snapshot', file: now.file, pos: now.pos, gtid: now.gtid, skip: 0, tables: {} };
        if (src.snapshot === 'never') {
          this.ckpt = ckpt;
          // Record the starting point at once, so a restart continues from here, not from a later end.
          await sink.commit();
          this.log.info('streaming from the current end of the binlog (snapshot: never)', { position: formatPos(ckpt), gtid: ckpt.gtid });
        }
      }
      this.ckpt = ckpt;
      if (ckpt.phase === 'snapshot') {
        await this.snapshot(sink, info, tables, ckpt);
        if (this.stopped) return;
        ckpt.phase = 'stream';
        await sink.commit();
        if (src.snapshot === 'initial_only') {
          this.log.info('snapshot finished (snapshot: initial_only): stopping');
          return;
        }
      }
      await this.startIncremental(sink, info, tables);
      await closeConn(this.admin);
      this.admin = null;
      await this.stream(sink, info, ckpt);
    } catch (e) {
      throw translateTimeout(e, src.connection);
    } finally {
      await this.retention.stop();
      await this.close();
    }
  }

  private isSignal(database: string, table: string): boolean {
    const s = this.signal;
    return s !== null && s.database.toLowerCase() === database.toLowerCase() && s.table.toLowerCase() === table.toLowerCase();
  }

  /** Creates source.signalTable when missing (Debezium's columns). */
  private async createSignalTable(): Promise<void> {
    const sig = (this.signal = signalTableOf(this.cfg)!);
    const q = `${quoteIdent(sig.database)}.${quoteIdent(sig.table)}`;
    // Looked up first: a user without CREATE rights can use a table made for it.
    const [have] = await this.admin!.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sig.database, sig.table]);
    if ((have as unknown[]).length) return;
    try {
      await this.admin!.query(`CREATE TABLE IF NOT EXISTS ${q} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT)`);
    } catch (e) {
      throw mysqlError('MYSQL_SIGNAL_TABLE', `cannot create the signal table ${sig.database}.${sig.table} (source.signalTable): ${(e as Error).message}. Create it: CREATE TABLE ${q} (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data TEXT), or leave signalTable empty`, { cause: e });
    }
  }

  /**
   * Sets up incremental snapshots: the checkpoint's queue, and a back-fill of captured tables the
   * log has nothing of (added to source.tables since the last run).
   */
  private async startIncremental(sink: EventSink, info: ServerInfo, tables: Awaited<ReturnType<typeof capturedTables>>): Promise<void> {
    const ckpt = this.ckpt!;
    const state = (ckpt.incremental ??= emptyIncremental());
    const captured = tableFilter(this.cfg);
    const rows = incrementalRowsCounter(this.metrics.registry, this.ctx.pipeline);
    this.chunkReader = new MysqlChunkReader(this.cfg, info, this.connector, this.schemas, (d, t) => captured(d, t) && !this.isSignal(d, t), this.log);
    this.incremental = new IncrementalSnapshots(state, { reader: this.chunkReader, chunkSize: this.cfg.incrementalChunkSize, sink, log: this.log, wake: () => {}, onRows: (n) => rows.inc(n), onInvalidate: (t) => this.chunkReader?.forget(t) });
    if (this.cfg.snapshot === 'never') return;
    const added = tables.map((t) => tableKey(t.database, t.table)).filter((k) => !ckpt.tables[k]);
    if (added.length) {
      for (const k of added) ckpt.tables[k] = { status: 'done', rows: 0, ranges: [] };
      this.incremental.request(added, 'captured now, nothing of it in the log yet (added to source.tables?)');
    }
  }

  /** Appends an incremental snapshot's chunk once the stream has passed the binlog position it was read at (between transactions only). */
  private flushIncremental(): void {
    const s = this.streamer;
    if (!this.incremental || !s || s.inTransaction) return;
    this.incremental.flush((c) => comparePosition(s.position, c.at as BinlogPos) >= 0);
  }

  private async snapshot(sink: EventSink, info: ServerInfo, tables: Awaited<ReturnType<typeof capturedTables>>, ckpt: MysqlCheckpoint): Promise<void> {
    const remaining = tables.filter((t) => ckpt.tables[tableKey(t.database, t.table)]?.status !== 'done');
    if (remaining.length === 0) return;
    this.snapConn = await connectAdmin(this.cfg.connection);
    const point = await beginSnapshot(this.snapConn, info);
    const resumed = Object.keys(ckpt.tables).length > 0;
    if (!resumed) {
      // First snapshot: streaming starts where the snapshot stands.
      ckpt.file = point.file;
      ckpt.pos = point.pos;
      ckpt.gtid = point.gtid;
    }
    this.log.info(resumed ? 'snapshot: resuming with the tables not yet in the log' : 'snapshot: starting', { tables: remaining.length, position: formatPos(point), gtid: point.gtid });
    await runSnapshot({
      connector: this.connector,
      conn: this.snapConn,
      point,
      tables: remaining,
      state: ckpt.tables,
      cfg: this.cfg,
      schemas: this.schemas,
      log: this.log,
      sink,
      metrics: this.metrics,
      isStopped: () => this.stopped,
      setCommittable: (v) => {
        this.committable = v;
      },
      onProgress: (p) => {
        this.snapshotProgress = p;
      },
      setTable: (t) => {
        this.snapshotTable = t;
      },
    });
    await closeConn(this.snapConn);
    this.snapConn = null;
  }

  private async stream(sink: EventSink, info: ServerInfo, ckpt: MysqlCheckpoint): Promise<void> {
    const src = this.cfg;
    const useGtid = src.gtid === 'auto' && ckpt.gtid !== '';
    if (!useGtid) {
      const admin = await connectAdmin(src.connection);
      try {
        const files = await binlogFiles(admin);
        if (files.length && !files.includes(ckpt.file)) {
          throw mysqlError(
            'MYSQL_BINLOG_GONE',
            `the binlog file ${ckpt.file} this pipeline resumes from is no longer on the server (oldest kept: ${files[0]}): changes made since then are lost to it. Raise the server's binlog retention (expire_logs_days / binlog_expire_logs_seconds), then ${this.ctx.resetHint} and run again to take a new snapshot.`,
          );
        }
      } finally {
        await closeConn(admin);
      }
    }
    const start: StartPosition = useGtid ? { gtidSet: ckpt.gtid } : { file: ckpt.file, pos: ckpt.pos };
    const base = tableFilter(src);
    this.streamer = new BinlogStreamer({
      connector: this.connector,
      cfg: this.cfg,
      sink,
      schemas: this.schemas,
      log: this.log,
      metrics: this.metrics,
      captured: (d, t) => base(d, t) && !this.isSignal(d, t),
      checkpoint: ckpt,
      resetHint: this.ctx.resetHint,
      incremental: this.incremental ?? undefined,
      isSignal: (d, t) => this.isSignal(d, t),
    });
    this.client = await BinlogClient.connect({
      host: src.connection.host,
      port: src.connection.port,
      user: src.connection.user,
      password: src.connection.password,
      connectTimeoutMs: timeoutsOf(src.connection).connectMs,
      statementTimeoutMs: timeoutsOf(src.connection).statementMs,
      serverId: src.serverId,
      start,
      heartbeatMs: src.heartbeatIntervalMs,
      maxQueueBytes: this.ctx.maxQueueBytes,
      // Rows of other tables are skipped undecoded (faster, and their types cannot stop us).
      tables: (d, t) => base(d, t) || this.isSignal(d, t),
    });
    this.log.info('streaming the binlog', { from: useGtid ? `gtid ${ckpt.gtid}` : formatPos(ckpt), skip: ckpt.skip, flavor: info.mariadb ? 'mariadb' : 'mysql' });
    const maxDelay = Math.max(5, this.ctx.batch.maxDelayMs);
    let lastPositionCommit = Date.now();
    let next: Promise<BinlogEvent | null> | null = null;
    const inc = this.incremental;
    while (!this.stopped) {
      next ??= this.client.next();
      let ev: BinlogEvent | null | undefined;
      inc?.tick();
      // A chunk whose position the stream has already passed goes to the log now.
      if (inc?.waiting) this.flushIncremental();
      // A chunk read under way: its arrival may find the stream already past its position.
      const reading = inc !== null && inc.reading;
      if (sink.hasPending || reading) {
        // Pending events must reach the log even when the binlog goes quiet.
        let timeUp: () => void = () => {};
        const timer = sink.hasPending ? setTimeout(() => timeUp(), maxDelay) : null;
        ev = await Promise.race([next, new Promise<undefined>((r) => (timeUp = () => r(undefined))), ...(reading ? [inc.arrival().then(() => undefined)] : [])]);
        if (timer) clearTimeout(timer);
      } else ev = await next;
      if (inc?.waiting) this.flushIncremental();
      if (ev === undefined) {
        const p = sink.maybeCommit(false, true);
        if (p) await p;
        continue;
      }
      next = null;
      if (ev === null) break;
      const topic = this.streamer.needsTopic(ev);
      if (topic) {
        await sink.declareTopic(topic);
        this.streamer.topicDeclared(topic);
      }
      this.streamer.handle(ev);
      if (inc?.waiting) this.flushIncremental();
      this.metrics.queueBytes.value = this.client.bufferedBytes;
      // Nothing more buffered from the server: the source is idle (an adaptive commit, see maybeCommit).
      const p = sink.maybeCommit(false, this.client.bufferedBytes === 0);
      if (p) await p;
      // While the captured tables are quiet the binlog still moves on (heartbeats, other tables):
      // commit the position now and then, so a restart does not reach back to a purged file.
      const now = Date.now();
      if (!sink.hasPending && now - lastPositionCommit >= IDLE_POSITION_COMMIT_MS) {
        lastPositionCommit = now;
        if (this.checkpoint() !== this.durableText) await sink.commit();
      }
    }
  }

  private async close(): Promise<void> {
    await this.chunkReader?.close();
    await this.client?.close().catch(() => {});
    await closeConn(this.snapConn);
    await closeConn(this.admin);
    this.snapConn = null;
    this.admin = null;
  }
}
