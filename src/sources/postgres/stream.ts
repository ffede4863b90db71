/**
 * Turns pgoutput messages into ChangeEvents: tracks relations and transactions, skips what the log
 * already holds (checkpoint), applies snapshot filters, spills streamed in-progress transactions
 * (protocol v2) until they commit, and keeps the checkpoint that describes everything appended.
 */
import type pg from 'pg';
import type { PostgresSourceConfig } from './spec.ts';
import type { ChangeEvent, Op, Row, SourceInfo, TableSchema } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { EventSink } from '../../core/source.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';
import { decodeMessage, TypeCatalog, type PgOutputMessage, type RelationMessage, type RelationSchema } from './pgoutput/index.ts';
import { durablePrefix, type SourceCheckpoint } from './position.ts';
import { changeParts, TransactionMeta } from '../common/events.ts';
import { keyComparator } from '../common/keys.ts';
import { tableKey, tableTopic } from '../common/names.ts';
import { SnapshotFilter } from '../common/ranges.ts';
import { postgresDebezium } from './debezium.ts';
import { pgError } from './errors.ts';
import { pgKeyColumns } from './keys.ts';
import type { XLogData } from './replication.ts';
import { SpillStore } from './spill.ts';
import { parseSignal, type IncrementalSnapshots } from '../common/incremental.ts';
import { WATERMARK_PREFIX } from './incremental.ts';

const PG_EPOCH_MS = 946_684_800_000;

interface RelationState {
  rel: RelationMessage;
  schema: RelationSchema;
  topic: string;
  name: string;
  /** Which of the table's changes its snapshot already holds (null: no snapshot of it). */
  filter: SnapshotFilter<bigint> | null;
  /** The signal table (source.signalTable): its inserts are requests, not events. */
  signal: boolean;
}

interface TxnState {
  xid: number;
  finalLsn: bigint;
  commitTimeMs: number;
  /** The commit time in microseconds since the epoch (source.ts_us). */
  commitTimeUs: number;
  /** Events of this transaction seen so far (including skipped ones). */
  seq: number;
  /** Leading events already durable in the log from an earlier run. */
  skip: number;
  meta: TransactionMeta;
}

export interface StreamDecoderOptions {
  cfg: PostgresSourceConfig;
  admin: pg.Client;
  checkpoint: SourceCheckpoint;
  sink: EventSink;
  log: Logger;
  metrics: ComponentMetrics;
  spillDir: string;
  /** How to start over (for messages). */
  resetHint: string;
  /** Incremental snapshots (sources/common/incremental.ts): told of every change, watermark and transaction. */
  incremental?: IncrementalSnapshots;
  /** `schema.table` of source.signalTable, if any. */
  signalTable?: string | null;
  /** A captured table's columns changed (a new Relation message). */
  onSchemaChange?(table: string): void;
}

export class StreamDecoder {
  private readonly relations = new Map<number, RelationState>();
  private readonly catalog: TypeCatalog;
  private txn: TxnState | null = null;
  private readonly resumeFrom: SourceCheckpoint;
  private readonly spill: SpillStore;
  private lastCommitLsn: bigint;
  /**
   * `["<end LSN of the last commit>","` — the constant start of Debezium's sequence field within a
   * transaction; `[null,"` until the stream has seen a commit (right after the snapshot), as Debezium.
   */
  private sequencePrefix: string;
  private ack: bigint;
  private inStream = false;
  private txBlock: ChangeEvent['transaction'] = null;
  private streamXid = 0;
  /** Checkpoint fields for what has been appended. */
  private posLsn: bigint;
  private posSeq: number;
  private posDone: boolean;
  private readonly prefix: string;
  private readonly db: string;
  private readonly txMeta: boolean;
  /** Operations not written (Debezium's skipped.operations): not counted either. */
  private readonly skipped: Set<Op>;

  constructor(private readonly o: StreamDecoderOptions) {
    this.catalog = new TypeCatalog(o.admin, o.cfg.binary, o.cfg.intervalHandling);
    this.resumeFrom = { ...o.checkpoint };
    this.spill = new SpillStore(o.spillDir);
    this.lastCommitLsn = o.checkpoint.lsn;
    // Fresh from the snapshot (no commit streamed yet) Debezium has no last commit; after a
    // restart its offset's last commit is what the checkpoint confirms.
    this.sequencePrefix = o.checkpoint.lsn === o.checkpoint.consistentPoint ? '[null,"' : `["${o.checkpoint.ack}","`;
    this.ack = o.checkpoint.ack;
    this.posLsn = o.checkpoint.lsn;
    this.posSeq = o.checkpoint.seq;
    this.posDone = o.checkpoint.done;
    this.prefix = o.cfg.topicPrefix;
    this.db = o.cfg.connection.database;
    this.txMeta = o.cfg.transactionMetadata;
    this.skipped = new Set(o.cfg.skippedOperations);
  }

  get inTransaction(): boolean {
    return this.txn !== null;
  }

  /** The position that may be confirmed once everything appended so far is durable. */
  get ackLsn(): bigint {
    return this.ack;
  }

  get openStreamedTransactions(): number {
    return this.spill.open;
  }

  fillCheckpoint(c: SourceCheckpoint): void {
    c.phase = 'stream';
    c.lsn = this.posLsn;
    c.seq = this.posSeq;
    c.done = this.posDone;
    c.ack = this.ack;
  }

  close(): void {
    this.spill.close();
  }

  /** Handles one XLogData message. Returns a promise only when it must wait (catalog look-ups). */
  handle(m: XLogData): Promise<void> | undefined {
    const payload = m.payload;
    const tag = payload[0];
    if (this.inStream && tag !== 0x45 /* E */ && tag !== 0x53 /* S */) {
      // Inside a streamed chunk: keep relation/type messages live, spill the rest.
      const msg = decodeMessage(payload, true);
      if (msg.type === 'relation') return this.onRelation(msg);
      if (msg.type === 'type') return undefined;
      this.spill.add(this.streamXid, (msg as { xid?: number }).xid ?? this.streamXid, payload);
      return undefined;
    }
    const msg = decodeMessage(payload, false);
    return this.onMessage(msg, m.walStart);
  }

  private onMessage(msg: PgOutputMessage, lsn: bigint): Promise<void> | undefined {
    switch (msg.type) {
      case 'begin':
        this.beginTxn(msg.xid, msg.finalLsn, msg.commitTime);
        return undefined;
      case 'commit':
        this.commitTxn(msg.endLsn);
        return undefined;
      case 'relation':
        return this.onRelation(msg);
      case 'insert':
      case 'update':
      case 'delete':
        return this.onRowChange(msg, lsn);
      case 'truncate':
        return this.onTruncate(msg, lsn);
      case 'message':
        // The watermark of an incremental snapshot's chunk: appended at its transaction's commit.
        if (msg.prefix === WATERMARK_PREFIX && this.o.incremental?.watermark(msg.content.toString('utf8'))) this.flushIncremental();
        if (!msg.transactional && !this.txn) {
          // Heartbeat (heartbeat.ts) or any other non-transactional message: a safe position to
        // confirm once what came before it is durable.
          this.advanceOutsideTxn(msg.lsn);
        }
        return undefined;
      case 'stream_start':
        this.inStream = true;
        this.streamXid = msg.xid;
        return undefined;
      case 'stream_stop':
        this.inStream = false;
        return undefined;
      case 'stream_abort':
        this.spill.abort(msg.xid, msg.subxid);
        return undefined;
      case 'stream_commit':
        return this.replayStreamed(msg.xid, msg.commitLsn, msg.endLsn, msg.commitTime);
      default:
        return undefined;
    }
  }

  private beginTxn(xid: number, finalLsn: bigint, commitTime: bigint): void {
    const commitTimeUs = Number(commitTime) + PG_EPOCH_MS * 1000;
    this.txn = {
      xid,
      finalLsn,
      commitTimeMs: Math.floor(commitTimeUs / 1000),
      commitTimeUs,
      seq: 0,
      skip: durablePrefix(this.resumeFrom, finalLsn),
      meta: new TransactionMeta(`${xid}:${finalLsn}`),
    };
    // A transaction partly or wholly in the log from an earlier run leaves the position alone:
    // it already describes this transaction.
    if (this.txn.skip === 0) {
      this.posLsn = finalLsn;
      this.posSeq = 0;
      this.posDone = false;
    }
    if (this.txMeta && this.countBoundary()) this.o.sink.appendTransaction(this.txn.meta.begin(this.txn.commitTimeMs));
  }

  /** Counts a BEGIN/END record like an event (it has a place in the transaction); true if it is new. */
  private countBoundary(): boolean {
    const t = this.txn!;
    t.seq++;
    if (t.seq <= t.skip) return false;
    this.posLsn = t.finalLsn;
    this.posSeq = t.seq;
    this.posDone = false;
    return true;
  }

  private commitTxn(endLsn: bigint): void {
    const t = this.txn;
    if (!t) return;
    if (this.txMeta && this.countBoundary()) this.o.sink.appendTransaction(t.meta.end(t.commitTimeMs));
    this.txn = null;
    if (t.finalLsn >= this.posLsn) {
      this.posLsn = t.finalLsn;
      this.posSeq = t.seq;
      this.posDone = true;
    }
    this.lastCommitLsn = t.finalLsn;
    this.sequencePrefix = `["${endLsn}","`;
    if (endLsn > this.ack) this.ack = endLsn;
    this.o.metrics.lagMs.set(Date.now() - t.commitTimeMs);
    const inc = this.o.incremental;
    if (inc) {
      inc.committed(t.xid);
      if (inc.watermarked) this.flushIncremental();
    }
  }

  /** Appends an incremental snapshot's chunk whose watermark the stream has passed (between transactions only). */
  flushIncremental(): void {
    const inc = this.o.incremental;
    if (!inc || this.txn || this.inStream) return;
    inc.flush(() => inc.watermarked);
  }

  /** A keepalive's position while nothing is received and not yet handled: confirmable once what came before is durable. */
  advanceIdle(lsn: bigint): void {
    if (!this.txn && !this.inStream) this.advanceOutsideTxn(lsn);
  }

  private advanceOutsideTxn(lsn: bigint): void {
    if (lsn > this.ack) this.ack = lsn;
  }

  private async replayStreamed(xid: number, commitLsn: bigint, endLsn: bigint, commitTime: bigint): Promise<void> {
    const spilled = this.spill.take(xid);
    this.beginTxn(xid, commitLsn, commitTime);
    if (spilled) {
      try {
        for (const payload of spilled.replay()) {
          const msg = decodeMessage(payload, true);
          const p = this.onMessage(msg, commitLsn);
          if (p) await p;
          const c = this.o.sink.maybeCommit();
          if (c) await c;
        }
      } finally {
        spilled.discard();
      }
    }
    this.commitTxn(endLsn);
  }

  private async onRelation(rel: RelationMessage): Promise<void> {
    const schema = await this.catalog.relationSchema(rel);
    const name = tableKey(rel.namespace, rel.name);
    const topic = tableTopic(this.prefix, rel.namespace, rel.name);
    if (name !== this.o.signalTable) await this.o.sink.declareTopic(topic);
    const snap = this.o.checkpoint.tables[name];
    const prev = this.relations.get(rel.relationId);
    const signal = name === this.o.signalTable;
    if (!signal) {
      // A table the log knows from the stream (created, or added to the publication, while
      // streaming): not one to back-fill at the next start (source.ts).
      if (!snap) this.o.checkpoint.tables[name] = { status: 'done', rows: 0, ranges: [] };
      if (prev) {
        this.o.incremental?.invalidate(name, 'its columns changed');
        this.o.onSchemaChange?.(name);
      }
    }
    // Changes that committed below the point each key range of the table's snapshot was read at
    // are in the snapshot already (sources/common/ranges.ts).
    let filter = prev?.filter ?? null;
    if (!filter && snap?.ranges.length) {
      const keys = pgKeyColumns(schema.table);
      filter = new SnapshotFilter(snap.ranges, (a, b) => (a < b ? -1 : a > b ? 1 : 0), keys ? keyComparator(keys) : null);
    }
    this.relations.set(rel.relationId, { rel, schema, topic, name, filter, signal });
  }

  private relation(id: number): RelationState {
    const r = this.relations.get(id);
    if (!r) throw new Error(`pgoutput protocol error: change for unknown relation ${id} (no Relation message received)`);
    return r;
  }

  /**
   * Counts the event and says whether it must be appended (not already durable, not in the table's
   * snapshot). `key`: the row's key; a truncate (`'truncate'`) of a table whose snapshot was read in
   * several parts before and after it cannot be placed and stops the stream.
   */
  private admit(rel: RelationState, key: Row | null | 'truncate'): boolean {
    const t = this.txn!;
    t.seq++;
    const f = rel.filter;
    if (f && t.finalLsn < f.until) {
      const cov = key === 'truncate' ? f.truncate(t.finalLsn) : f.covers(t.finalLsn, key) ? 'covered' : 'streamed';
      if (cov === 'split') {
        throw pgError('PG_SNAPSHOT_TRUNCATED', `${rel.name} was truncated (transaction ${t.xid}) after part of its snapshot was read and before the rest was: the log holds rows the truncate removed. Start over with a new snapshot (${this.o.resetHint} and run again)`);
      }
      if (cov === 'covered') {
        // Already in the table's snapshot: not an event of this stream, not counted.
        this.advance(t);
        return false;
      }
    }
    // Transaction metadata counts every event the log holds for the transaction, including the
    // ones written before a restart and skipped now.
    // One id for the whole transaction, `<xid>:<commit LSN>` (Debezium names each event, BEGIN and
    // END by its own LSN, so they cannot be grouped by it: docs/events.md).
    if (this.txMeta) this.txBlock = t.meta.next(rel.name);
    if (t.seq <= t.skip) return false;
    this.advance(t);
    return true;
  }

  private advance(t: TxnState): void {
    if (t.seq > t.skip && t.finalLsn >= this.posLsn) {
      this.posLsn = t.finalLsn;
      this.posSeq = t.seq;
      this.posDone = false;
    }
  }

  private source(rel: RelationState, lsn: bigint): SourceInfo {
    const t = this.txn!;
    return {
      version: SLUICE_VERSION,
      connector: postgresDebezium.connector,
      name: this.prefix,
      ts_ms: t.commitTimeMs,
      ts_us: t.commitTimeUs,
      snapshot: 'false',
      db: this.db,
      sequence: `${this.sequencePrefix}${lsn}"]`,
      schema: rel.rel.namespace,
      table: rel.rel.name,
      txId: t.xid,
      lsn: Number(lsn),
      xmin: null,
    };
  }

  /** The transaction block of the event admit() just counted. */
  private txInfo(): ChangeEvent['transaction'] {
    return this.txMeta ? this.txBlock : undefined;
  }


  private onRowChange(msg: Extract<PgOutputMessage, { type: 'insert' | 'update' | 'delete' }>, lsn: bigint): Promise<void> | undefined {
    const rel = this.relation(msg.relationId);
    if (!this.txn) throw new Error('pgoutput protocol error: row change outside a transaction');
    const sch = rel.schema;
    if (rel.signal) {
      if (msg.type === 'insert') this.onSignal(sch.decodeTuple(msg.newTuple));
      return undefined;
    }
    let before: Row | null = null;
    let after: Row | null = null;
    let op: Op;
    if (msg.type === 'insert') {
      op = 'c';
      after = sch.decodeTuple(msg.newTuple);
    } else if (msg.type === 'update') {
      op = 'u';
      after = sch.decodeTuple(msg.newTuple);
      if (msg.oldTuple) before = sch.decodeTuple(msg.oldTuple, msg.oldKind === 'K');
      if (before && msg.oldKind === 'O') sch.fillUnchanged(after, before);
    } else {
      op = 'd';
      before = msg.oldTuple ? sch.decodeTuple(msg.oldTuple, msg.oldKind === 'K') : null;
    }
    const table: TableSchema = sch.table;
    let source: SourceInfo | null = null;
    // A key change is a delete of the old key and a create of the new one, each counted (and
    // filtered by the snapshot's key ranges) on its own.
    for (const p of changeParts(table, op, before, after)) {
      if (this.skipped.has(p.op)) continue;
      if (!this.admit(rel, p.key)) continue;
      source ??= this.source(rel, lsn);
      this.o.sink.append({ topic: rel.topic, key: p.key, before: p.before, after: p.after, source, op: p.op, ts_ms: Date.now(), transaction: this.txInfo(), table });
      this.o.incremental?.observe(rel.name, p.key);
    }
    return undefined;
  }

  /** A row inserted into the signal table: Debezium's execute-snapshot / stop-snapshot. */
  private onSignal(row: Row): void {
    const inc = this.o.incremental;
    const s = parseSignal(row.type, row.data, 'public');
    if ('error' in s || !inc) {
      this.o.log.warn(`signal ${String(row.id)} ignored: ${'error' in s ? s.error : 'incremental snapshots are off'}`, { signal: String(row.id) });
      return;
    }
    if (s.kind === 'execute') inc.request(s.tables, `signal ${String(row.id)}`);
    else inc.cancel(s.tables);
  }

  private onTruncate(msg: Extract<PgOutputMessage, { type: 'truncate' }>, lsn: bigint): undefined {
    if (!this.txn) throw new Error('pgoutput protocol error: truncate outside a transaction');
    for (const id of msg.relationIds) this.o.incremental?.invalidate(this.relation(id).name, 'it was truncated');
    if (this.skipped.has('t')) return undefined;
    for (const id of msg.relationIds) {
      const rel = this.relation(id);
      if (rel.signal) continue;
      if (!this.admit(rel, 'truncate')) continue;
      this.o.sink.append({
        topic: rel.topic,
        key: null,
        before: null,
        after: null,
        source: this.source(rel, lsn),
        op: 't',
        ts_ms: Date.now(),
        transaction: this.txInfo(),
        table: rel.schema.table,
      });
    }
    return undefined;
  }
}
