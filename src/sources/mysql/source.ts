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
import { binlogFiles, capturedTables, checkServer, connectAdmin, currentPosition, tableFilter, type Conn, type ServerInfo } from './server.ts';
import { beginSnapshot, runSnapshot } from './snapshot.ts';
import type { SnapshotTable } from '../common/snapshot.ts';
import { BinlogStreamer } from './stream.ts';
import { TableSchemas } from './tables.ts';
import { mysqlError } from './errors.ts';

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

  private readonly log: SourceContext['logger'];
  private readonly metrics: ComponentMetrics;

  constructor(
    private readonly cfg: MysqlSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.log = ctx.logger;
    this.metrics = ctx.metrics;
  }

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
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.close().catch(() => {});
  }

  async run(sink: EventSink, checkpointText: string | null): Promise<void> {
    const src = this.cfg;
    try {
      this.admin = await connectAdmin(src.connection);
      const info = await checkServer(this.admin);
      const tables = await capturedTables(this.admin, src);
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
      await this.admin.end().catch(() => {});
      this.admin = null;
      await this.stream(sink, info, ckpt);
    } finally {
      await this.close();
    }
  }

  private async snapshot(sink: EventSink, info: ServerInfo, tables: Awaited<ReturnType<typeof capturedTables>>, ckpt: MysqlCheckpoint): Promise<void> {
    const remaining = tables.filter((t) => ckpt.tables[`${t.database}.${t.table}`]?.status !== 'done');
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
    await this.snapConn.end().catch(() => {});
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
        await admin.end().catch(() => {});
      }
    }
    const start: StartPosition = useGtid ? { gtidSet: ckpt.gtid } : { file: ckpt.file, pos: ckpt.pos };
    this.streamer = new BinlogStreamer({ cfg: this.cfg, sink, schemas: this.schemas, log: this.log, metrics: this.metrics, captured: tableFilter(src), checkpoint: ckpt, resetHint: this.ctx.resetHint });
    this.client = await BinlogClient.connect({
      host: src.connection.host,
      port: src.connection.port,
      user: src.connection.user,
      password: src.connection.password,
      serverId: src.serverId,
      start,
      heartbeatMs: src.heartbeatIntervalMs,
      maxQueueBytes: this.ctx.maxQueueBytes,
      // Rows of other tables are skipped undecoded (faster, and their types cannot stop us).
      tables: tableFilter(src),
    });
    this.log.info('streaming the binlog', { from: useGtid ? `gtid ${ckpt.gtid}` : formatPos(ckpt), skip: ckpt.skip, flavor: info.mariadb ? 'mariadb' : 'mysql' });
    const maxDelay = Math.max(5, this.ctx.batch.maxDelayMs);
    let lastPositionCommit = Date.now();
    let next: Promise<BinlogEvent | null> | null = null;
    while (!this.stopped) {
      next ??= this.client.next();
      let ev: BinlogEvent | null | undefined;
      if (sink.hasPending) {
        // Pending events must reach the log even when the binlog goes quiet.
        let timeUp: () => void = () => {};
        const timer = setTimeout(() => timeUp(), maxDelay);
        ev = await Promise.race([next, new Promise<undefined>((r) => (timeUp = () => r(undefined)))]);
        clearTimeout(timer);
      } else ev = await next;
      if (ev === undefined) {
        const p = sink.maybeCommit();
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
      this.metrics.queueBytes.value = this.client.bufferedBytes;
      const p = sink.maybeCommit();
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
    await this.client?.close().catch(() => {});
    await this.snapConn?.end().catch(() => {});
    await this.admin?.end().catch(() => {});
    this.snapConn = null;
    this.admin = null;
  }
}
