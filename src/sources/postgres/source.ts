/**
 * The PostgreSQL source: publication and slot set-up, the initial snapshot, then the pgoutput
 * stream, producing Debezium-shaped ChangeEvents into the engine's EventSink.
 *
 * Exactly-once into the log: the checkpoint (position.ts) travels with every log commit; on start
 * we resume from it, skip what the server sends again, and confirm to the server only positions
 * whose events are durable.
 */
import { join } from 'node:path';
import type pg from 'pg';
import { SluiceError } from '../../core/errors.ts';
import { formatLsn } from '../../core/lsn.ts';
import type { EventSink, Source } from '../../core/source.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';
import type { SourceContext } from '../../registry/spec.ts';
import type { PostgresSourceConfig } from './spec.ts';
import { Heartbeat } from './heartbeat.ts';
import { decodeCheckpoint, encodeCheckpoint, type SourceCheckpoint } from './position.ts';
import { closeClient, connect, ReplicationStream, translateTimeout, withDeadline, type XLogData } from './replication.ts';
import { SlotRetention } from './retention.ts';
import { checkServer, createSlot, dropSlot, ensurePublication, keylessTables, publishedTables, quoteIdent, signalTableOf, slotInfo } from './slot.ts';
import { timeoutsOf } from '../../config/fields.ts';
import { runSnapshot } from './snapshot.ts';
import type { SnapshotTable } from '../common/snapshot.ts';
import { tableKey } from '../common/names.ts';
import { StreamDecoder } from './stream.ts';
import { coreError } from '../../core/errors.ts';
import { pgError } from './errors.ts';
import { emptyIncremental, incrementalRowsCounter, IncrementalSnapshots } from '../common/incremental.ts';
import { PgChunkReader } from './incremental.ts';

/** Approximate heap cost of one queued message beyond its payload (objects, Buffer header). */
const MESSAGE_OVERHEAD = 160;

export class PostgresSource implements Source {
  private admin: pg.Client | null = null;
  private replication: pg.Client | null = null;
  private stream: ReplicationStream | null = null;
  private heartbeat: Heartbeat | null = null;
  private decoder: StreamDecoder | null = null;
  private ckpt: SourceCheckpoint | null = null;
  private committable = true;
  private stopped = false;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private ended = false;
  private queue: XLogData[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  private received = 0n;
  private durableAck = 0n;
  /** The ack position of the last checkpoint handed to a commit (durable or still in flight). */
  private handedAck = 0n;
  private snapshotProgress: Record<string, unknown> | null = null;
  /** The table the snapshot is reading (its range must be current in every checkpoint). */
  private snapshotTable: SnapshotTable<unknown> | null = null;
  private lastStatusSent = 0;
  private serverVersion = 0;
  /** Incremental snapshots (sources/common/incremental.ts), once streaming. */
  private incremental: IncrementalSnapshots | null = null;
  private chunkReader: PgChunkReader | null = null;
  /** source.signalTable as `schema.table` (tableKey), or null. */
  private readonly signal: { schema: string; table: string; key: string } | null;

  private readonly log: SourceContext['logger'];
  private readonly metrics: ComponentMetrics;

  constructor(
    private readonly cfg: PostgresSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.log = ctx.logger;
    this.metrics = ctx.metrics;
    this.retention = new SlotRetention(cfg, ctx);
    this.signal = signalTableOf(cfg);
  }

  /** The WAL the slot holds back, measured now and then (retention.ts). */
  private readonly retention: SlotRetention;

  canCommit(): boolean {
    return this.committable;
  }

  checkpoint(): string {
    this.snapshotTable?.sync();
    if (this.decoder) this.decoder.fillCheckpoint(this.ckpt!);
    if (this.ckpt!.ack > this.handedAck) this.handedAck = this.ckpt!.ack;
    return encodeCheckpoint(this.ckpt!);
  }

  durable(checkpoint: string): void {
    const c = decodeCheckpoint(checkpoint);
    if (c.phase === 'stream' && c.ack > this.durableAck) {
      this.durableAck = c.ack;
      this.sendStatus(false);
    }
  }

  status(): Record<string, unknown> {
    return {
      type: 'postgres',
      slot: this.cfg.slot,
      publication: this.cfg.publication,
      phase: this.ckpt?.phase ?? 'starting',
      receivedLsn: formatLsn(this.received),
      confirmedLsn: formatLsn(this.durableAck),
      queueBytes: this.queueBytes,
      snapshot: this.snapshotProgress,
      incrementalSnapshot: this.incremental?.progress() ?? null,
      openStreamedTransactions: this.decoder?.openStreamedTransactions ?? 0,
      retainedWalBytes: this.retention.status.retainedWalBytes,
      retentionCheckedAt: this.retention.status.at,
      retentionError: this.retention.status.error,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.heartbeat?.stop();
    void this.retention.stop();
  }

  private sendStatus(reply: boolean): void {
    if (!this.stream) return;
    const write = this.received > this.durableAck ? this.received : this.durableAck;
    this.stream.sendStatus(write, this.durableAck, this.durableAck, reply);
    this.lastStatusSent = Date.now();
  }

  async run(sink: EventSink, checkpointText: string | null): Promise<void> {
    const src = this.cfg;
    this.retention.start();
    try {
      this.admin = await connect(src.connection, false);
      this.serverVersion = (await checkServer(this.admin)).version;
      if (src.protocol === 2 && this.serverVersion < 140000) throw coreError('CONFIG_INVALID', `source.protocol: 2 needs PostgreSQL 14 or newer (server is ${this.serverVersion}); use protocol: 1`);
      if (src.binary && this.serverVersion < 140000) throw coreError('CONFIG_INVALID', `source.binary needs PostgreSQL 14 or newer; set binary: false`);
      if (this.signal) await this.createSignalTable();
      await ensurePublication(this.admin, src.publication, src.tables.length && this.signal ? [...src.tables, this.signal.key] : src.tables, src.createPublication);
      await this.warnKeyless();
      let ckpt = checkpointText ? decodeCheckpoint(checkpointText) : null;
      const slot = await slotInfo(this.admin, src.slot);
      if (slot.exists && slot.database !== src.connection.database) {
        throw pgError('PG_SLOT_CONFLICT', `replication slot "${src.slot}" belongs to database ${slot.database}, not ${src.connection.database}. Give this pipeline another source.slot.`);
      }
      if (slot.exists && slot.active) {
        throw pgError('PG_SLOT_IN_USE', `replication slot "${src.slot}" is in use by another process (another sluice run of this pipeline, or pg_recvlogical). Stop it, or give this pipeline its own source.slot.`);
      }
      if (ckpt && !slot.exists) {
        throw pgError('PG_SLOT_MISSING', `replication slot "${src.slot}" is gone but the log holds a checkpoint at ${formatLsn(ckpt.ack)}: changes made since then may be lost. To start over with a new snapshot, ${this.ctx.resetHint} and run again.`);
      }
      if (ckpt && slot.confirmedFlushLsn !== null && slot.confirmedFlushLsn > ckpt.ack) {
        // The slot was confirmed past the log's checkpoint: this log is an older copy than the
        // one the slot was advanced from (a restored backup). The server no longer has the
        // changes in between for this slot; streaming would silently skip them.
        throw pgError(
          'PG_LOG_BEHIND_SLOT',
          `the log's checkpoint is at ${formatLsn(ckpt.ack)} but replication slot "${src.slot}" was already confirmed up to ${formatLsn(slot.confirmedFlushLsn)}: this log directory is older than the one the pipeline last ran with (restored from a backup?), and the changes committed between those positions are in neither. Put back the newest copy of the log directory if you have it; otherwise start over with a new snapshot: ${this.ctx.resetHint}, and run again (the slot is dropped and re-created; sinks refuse with SINK_OFFSETS_AHEAD until their targets are emptied).`,
        );
      }
      this.replication = await connect(src.connection, true);
      if (!ckpt) {
        if (slot.exists) {
          this.log.warn('replication slot exists but the log has no checkpoint: dropping the slot and starting over', { slot: src.slot });
          await dropSlot(this.admin, src.slot);
        }
        const snap = src.snapshot !== 'never';
        const created = await withDeadline(this.replication, src.connection, `creating replication slot "${src.slot}" (it waits for transactions open on the server to end)`, createSlot(this.replication, src.slot, { exportSnapshot: snap, serverVersion: this.serverVersion }));
        this.log.info('created replication slot', { slot: src.slot, consistentPoint: formatLsn(created.consistentPoint) });
        ckpt = { phase: snap ? 'snapshot' : 'stream', consistentPoint: created.consistentPoint, lsn: created.consistentPoint, seq: 0, done: true, ack: created.consistentPoint, tables: {} };
        this.ckpt = ckpt;
        if (snap) await this.snapshot(sink, created.snapshotName!, created.consistentPoint);
        // Record the new slot's position right away: a restart must find a checkpoint, or it
        // would treat the slot as stale, recreate it and miss what changed in between.
        else await sink.commit();
      } else {
        this.ckpt = ckpt;
        if (ckpt.phase === 'snapshot') {
          // Crashed mid-snapshot: tables and chunks already in the log stay; the rest is read from
          // a new snapshot taken through a temporary slot at N, and its changes committed before N
          // (already in that snapshot) are skipped when streaming from the main slot.
          const tmpConn = await connect(src.connection, true);
          try {
            const tmp = await withDeadline(tmpConn, src.connection, 'creating a temporary slot to resume the snapshot (it waits for transactions open on the server to end)', createSlot(tmpConn, `${src.slot}_snap_${process.pid}`.slice(0, 63), { exportSnapshot: true, temporary: true, serverVersion: this.serverVersion }));
            this.log.info('resuming snapshot', { done: Object.values(ckpt.tables).filter((t) => t.status === 'done').length, snapshotAt: formatLsn(tmp.consistentPoint) });
            await this.snapshot(sink, tmp.snapshotName!, tmp.consistentPoint);
          } finally {
            await closeClient(tmpConn);
          }
        }
      }
      if (this.stopped) return;
      if (src.snapshot === 'initial_only') {
        this.log.info('snapshot complete; snapshot: initial_only, so stopping');
        return;
      }
      await this.startIncremental(sink);
      await this.streamChanges(sink);
    } catch (e) {
      throw translateTimeout(e, src.connection);
    } finally {
      this.heartbeat?.stop();
      await this.retention.stop();
      await this.chunkReader?.close();
      await this.stream?.stop().catch(() => {});
      this.decoder?.close();
      if (!this.stream) await closeClient(this.replication);
      await closeClient(this.admin);
    }
  }

  /**
   * Warns about captured tables without a primary key: their events carry no key (sinks cannot
   * apply their updates and deletes), and unless the table has a replica identity PostgreSQL
   * refuses UPDATE and DELETE on it once it is in the publication.
   */
  private async warnKeyless(): Promise<void> {
    for (const t of await keylessTables(this.admin!, this.cfg.publication)) {
      const name = `${t.schema}.${t.table}`;
      if (t.replicaIdentity === 'f' || t.replicaIdentity === 'i') {
        this.log.warn(`captured table ${name} has no primary key: its change events carry no key, so table sinks can insert its rows but not apply updates or deletes (SINK_NO_KEY). Add a primary key to capture it fully`, { table: name, replicaIdentity: t.replicaIdentity === 'f' ? 'full' : 'index' });
      } else {
        this.log.warn(`captured table ${name} has no primary key and no replica identity: PostgreSQL refuses UPDATE and DELETE on it while it is in publication "${this.cfg.publication}" (applications fail with "cannot update table … because it does not have a replica identity"). Add a primary key, or run ALTER TABLE ${name} REPLICA IDENTITY FULL`, { table: name });
      }
    }
  }

  /**
   * Reads what of the published tables is not yet in the log through `snapshotName` (exported by
   * a slot whose replication connection stays open and idle meanwhile); their changes committed
   * before `snapshotLsn` are then skipped while streaming.
   */
  private async snapshot(sink: EventSink, snapshotName: string, snapshotLsn: bigint): Promise<void> {
    const ckpt = this.ckpt!;
    const tables = (await publishedTables(this.admin!, this.cfg.publication)).filter((t) => ckpt.tables[tableKey(t.schema, t.table)]?.status !== 'done' && tableKey(t.schema, t.table) !== this.signal?.key);
    const reader = await connect(this.cfg.connection, false);
    try {
      await runSnapshot({
        client: reader,
        snapshotName,
        at: snapshotLsn,
        tables,
        state: ckpt.tables,
        cfg: this.cfg,
        log: this.log,
        sink,
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
        metrics: this.metrics,
      });
    } finally {
      await closeClient(reader);
    }
    if (this.stopped) return;
    ckpt.phase = 'stream';
    ckpt.lsn = ckpt.consistentPoint;
    ckpt.seq = 0;
    ckpt.done = true;
    ckpt.ack = ckpt.consistentPoint;
    await sink.commit();
  }

  /** Creates source.signalTable when missing (Debezium's columns). */
  private async createSignalTable(): Promise<void> {
    const sig = this.signal!;
    // Looked up first: a user without CREATE rights can use a table made for it.
    if ((await this.admin!.query(`SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, [sig.schema, sig.table])).rowCount) return;
    try {
      await this.admin!.query(`CREATE TABLE IF NOT EXISTS ${quoteIdent(sig.schema)}.${quoteIdent(sig.table)} (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text)`);
    } catch (e) {
      throw pgError('PG_SIGNAL_TABLE', `cannot create the signal table ${sig.key} (source.signalTable): ${(e as Error).message}. Create it as its owner: CREATE TABLE ${quoteIdent(sig.schema)}.${quoteIdent(sig.table)} (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text), or leave signalTable empty`, { cause: e });
    }
  }

  /**
   * Sets up incremental snapshots: the checkpoint's queue, and a back-fill of published tables the
   * log has nothing of (added to source.tables since the last run).
   */
  private async startIncremental(sink: EventSink): Promise<void> {
    const ckpt = this.ckpt!;
    const state = (ckpt.incremental ??= emptyIncremental());
    const rows = incrementalRowsCounter(this.metrics.registry, this.ctx.pipeline);
    this.chunkReader = new PgChunkReader(this.cfg, this.serverVersion, this.log, () => this.decoder?.ackLsn ?? ckpt.ack);
    this.incremental = new IncrementalSnapshots(state, {
      reader: this.chunkReader,
      chunkSize: this.cfg.incrementalChunkSize,
      sink,
      log: this.log,
      wake: () => this.wake?.(),
      onRows: (n) => rows.inc(n),
    });
    if (this.cfg.snapshot === 'never') return;
    const added = (await publishedTables(this.admin!, this.cfg.publication)).map((t) => tableKey(t.schema, t.table)).filter((k) => !ckpt.tables[k] && k !== this.signal?.key);
    if (added.length) {
      for (const k of added) ckpt.tables[k] = { status: 'done', rows: 0, ranges: [] };
      this.incremental.request(added, 'captured now, nothing of it in the log yet (added to source.tables?)');
    }
  }

  private async streamChanges(sink: EventSink): Promise<void> {
    const src = this.cfg;
    const ckpt = this.ckpt!;
    this.durableAck = ckpt.ack;
    this.decoder = new StreamDecoder({
      cfg: this.cfg,
      admin: this.admin!,
      checkpoint: ckpt,
      sink,
      log: this.log,
      metrics: this.metrics,
      spillDir: join(this.ctx.stateDir, 'spill'),
      resetHint: this.ctx.resetHint,
      incremental: this.incremental ?? undefined,
      signalTable: this.signal?.key ?? null,
      onSchemaChange: (t) => this.chunkReader?.forget(t),
    });
    this.stream = new ReplicationStream(this.replication!);
    const options: Record<string, string> = {
      proto_version: String(src.protocol),
      publication_names: src.publication,
      messages: 'true',
    };
    if (src.protocol >= 2 && src.streaming) options.streaming = 'on';
    if (src.binary) options.binary = 'true';
    const maxQueue = this.ctx.maxQueueBytes;
    await this.stream.start(src.slot, ckpt.ack, options, {
      onData: (m) => {
        this.queue.push(m);
        this.queueBytes += m.payload.length + MESSAGE_OVERHEAD;
        if (m.walEnd > this.received) this.received = m.walEnd;
        this.metrics.queueBytes.value = this.queueBytes;
        if (this.queueBytes >= maxQueue) this.stream!.pause();
        if (this.wake) this.wake();
      },
      onKeepalive: (walEnd, reply) => {
        const idle = this.queueBytes === 0 && !this.decoder!.inTransaction;
        if (walEnd > this.received && idle) this.received = walEnd;
        // With an action query the heartbeats' WAL may not reach this slot (a table outside the
        // publication: pgoutput sends no empty transactions), so a keepalive's position, with
        // nothing received and not yet handled, is what can be confirmed.
        if (idle && src.heartbeatActionQuery && this.decoder!.openStreamedTransactions === 0) this.decoder!.advanceIdle(walEnd);
        if (reply) this.sendStatus(false);
      },
      onError: (err) => {
        this.failure = err;
        this.wake?.();
      },
      onEnd: () => {
        this.ended = true;
        this.wake?.();
      },
    }, { ms: timeoutsOf(src.connection).statementMs, where: `${src.connection.host}:${src.connection.port}` });
    this.log.info('streaming changes', { slot: src.slot, from: formatLsn(ckpt.ack), protocol: src.protocol, streaming: options.streaming === 'on' });
    this.heartbeat = new Heartbeat(this.admin!, src.heartbeatIntervalMs, this.log, src.heartbeatActionQuery);
    this.heartbeat.start();
    const idleWait = Math.max(5, Math.min(this.ctx.batch.maxDelayMs, 100));
    while (!this.stopped) {
      if (this.failure) throw translateStreamError(this.failure);
      if (this.incremental) {
        this.incremental.tick();
        if (this.incremental.watermarked) this.decoder.flushIncremental();
      }
      if (this.ended) throw pgError('PG_STREAM_ENDED', 'PostgreSQL ended the replication stream (server shutdown or slot dropped). Restart the pipeline when the server is back.');
      if (this.queueHead >= this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
        const c = sink.maybeCommit(false, true);
        if (c) await c;
        else if (this.decoder.ackLsn > this.handedAck && !sink.hasPending) {
          // Only heartbeats/messages since the last commit: record the new position (a journal
          // entry, no records) so the slot can be confirmed past them. A position that a commit
          // already carries (one started just now, still in flight) needs no commit of its own:
          // comparing with the durable position here made every commit of changes a pair, the
          // second empty, waited for before the next change was read.
          await sink.commit();
        }
        if (Date.now() - this.lastStatusSent >= src.statusIntervalMs) this.sendStatus(false);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, idleWait);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = null;
        continue;
      }
      const m = this.queue[this.queueHead];
      (this.queue as (XLogData | undefined)[])[this.queueHead++] = undefined;
      this.queueBytes -= m.payload.length + MESSAGE_OVERHEAD;
      this.metrics.queueBytes.value = this.queueBytes;
      if (this.stream.isPaused && this.queueBytes < maxQueue / 2) this.stream.resume();
      const p = this.decoder.handle(m);
      if (p) await p;
      const c = sink.maybeCommit();
      if (c) await c;
    }
  }
}

function translateStreamError(err: Error): Error {
  if (err instanceof SluiceError) return err;
  return pgError('PG_STREAM', `replication stream failed: ${err.message}`, { cause: err });
}

