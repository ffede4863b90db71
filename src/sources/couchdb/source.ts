/**
 * The CouchDB source: per database a loop of longpoll `_changes` requests (`style=all_docs`,
 * `include_docs=true`, `conflicts=true`), from the update sequence of the checkpoint on.
 *
 * Exactly once into the log: each change is appended and its `seq` recorded in the same
 * synchronous step, so the checkpoint a commit carries names exactly the changes it holds; a
 * restart (after kill -9 too) asks for the changes after that `seq`. CouchDB keeps no replication
 * state for us: nothing is acknowledged upstream.
 *
 * The initial pass is the feed itself: from `0` CouchDB lists every document once, at its latest
 * change (tombstones of deleted documents too, which the initial pass leaves out), so changes up to
 * the database's `update_seq` at the first start are read as `r` events and the rest are streamed.
 */
import type { EventSink, Source } from '../../core/source.ts';
import { Counter } from '../../core/metrics.ts';
import type { SourceContext } from '../../registry/spec.ts';
import type { TableSchema } from '../../core/event.ts';
import { capturedDatabases, type CouchdbSourceConfig } from './spec.ts';
import { CouchClient, type ChangesPage } from './client.ts';
import { decodeCheckpoint, encodeCheckpoint, type CouchdbCheckpoint, type DatabaseState } from './checkpoint.ts';
import { changeEvent, conflictsOf, databaseSchema, databaseTopic, seqNumber, seqText } from './events.ts';

interface DbRun {
  db: string;
  topic: string;
  table: TableSchema;
  state: DatabaseState;
  conflicts: Counter;
  /** Conflicted documents seen in this run. */
  conflicted: number;
  events: number;
}

export class CouchdbSource implements Source {
  private readonly client: CouchClient;
  private ckpt: CouchdbCheckpoint = { databases: {} };
  private durableText: string | null = null;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly runs = new Map<string, DbRun>();
  private started = false;

  constructor(
    private readonly cfg: CouchdbSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.client = new CouchClient(cfg.connection);
  }

  canCommit(): boolean {
    return true;
  }

  checkpoint(): string {
    return encodeCheckpoint(this.ckpt);
  }

  durable(checkpoint: string): void {
    this.durableText = checkpoint;
  }

  status(): Record<string, unknown> {
    const durable = this.durableText ? decodeCheckpoint(this.durableText, this.ctx.resetHint) : null;
    const databases: Record<string, unknown> = {};
    for (const [db, r] of this.runs) {
      databases[db] = { seq: r.state.seq, durableSeq: durable?.databases[db]?.seq ?? null, snapshot: r.state.until !== null && !r.state.snapshotDone, events: r.events, conflicts: r.conflicted };
    }
    const snapshotting = [...this.runs.values()].some((r) => r.state.until !== null && !r.state.snapshotDone);
    return { type: 'couchdb', server: this.client.display, phase: !this.started ? 'starting' : snapshotting ? 'snapshot' : 'stream', databases };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
  }

  async run(sink: EventSink, checkpointText: string | null): Promise<void> {
    const cfg = this.cfg;
    const ckpt = checkpointText ? decodeCheckpoint(checkpointText, this.ctx.resetHint) : { databases: {} };
    this.ckpt = ckpt;
    let fresh = false;
    const registry = this.ctx.metrics.registry;
    for (const db of capturedDatabases(cfg)) {
      // Checks that the database is there and readable, and where it stands now.
      const info = await this.client.databaseInfo(db, this.abort.signal);
      if (this.stopped) return;
      if (!ckpt.databases[db]) {
        ckpt.databases[db] = cfg.snapshot === 'never' ? { seq: seqText(info.update_seq), until: null, snapshotDone: true } : { seq: '0', until: seqNumber(info.update_seq), snapshotDone: seqNumber(info.update_seq) === 0 };
        fresh = true;
        this.ctx.logger.info(cfg.snapshot === 'never' ? `database ${db}: streaming from its current update sequence (snapshot: never)` : `database ${db}: reading every document (up to update sequence ${seqText(info.update_seq)}), then streaming`, { database: db, seq: seqText(info.update_seq) });
      }
      const labels = { pipeline: this.ctx.pipeline, database: db };
      const conflicts = registry.find<Counter>('sluice_source_couchdb_conflicts_total', labels) ?? registry.register(new Counter('sluice_source_couchdb_conflicts_total', 'Change events of CouchDB documents with conflicting revisions (the losing revisions are in the event\'s `_conflicts`), by database', labels));
      const run: DbRun = { db, topic: databaseTopic(cfg.topicPrefix, db), table: databaseSchema(db), state: ckpt.databases[db], conflicts, conflicted: 0, events: 0 };
      this.runs.set(db, run);
      await sink.declareTopic(run.topic);
    }
    this.started = true;
    // The starting points are recorded at once: a restart continues from here, not from a later update_seq.
    if (fresh) await sink.commit();
    const loops = [...this.runs.values()].map((r) =>
      this.follow(sink, r).catch((e) => {
        // One database failing ends them all (the supervisor restarts the source from its checkpoint).
        this.abort.abort();
        throw e;
      }),
    );
    const results = await Promise.allSettled(loops);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && !this.stopped) throw (failed as PromiseRejectedResult).reason;
  }

  /** Reads one database's feed until the source stops (or its initial pass ends, with `snapshot: initial_only`). */
  private async follow(sink: EventSink, r: DbRun): Promise<void> {
    const cfg = this.cfg;
    const st = r.state;
    const heartbeatMs = cfg.heartbeatIntervalMs;
    while (!this.stopped) {
      if (cfg.snapshot === 'initial_only' && (st.snapshotDone || st.until === null)) {
        this.ctx.logger.info(`database ${r.db}: initial pass done (snapshot: initial_only)`, { database: r.db });
        return;
      }
      let page: ChangesPage;
      try {
        page = await this.client.changes(r.db, st.seq, { limit: cfg.limit, heartbeatMs, idleMs: heartbeatMs > 0 ? heartbeatMs * 3 + 5000 : 0, maxBytes: this.ctx.maxQueueBytes, signal: this.abort.signal });
      } catch (e) {
        if (this.stopped) return;
        throw e;
      }
      if (this.stopped) return;
      const now = Date.now();
      for (const row of page.results) {
        const inSnapshot = st.until !== null && !st.snapshotDone && seqNumber(row.seq) <= st.until;
        const deleted = row.deleted === true || row.doc?._deleted === true;
        const skip = (!cfg.designDocs && row.id.startsWith('_design/')) || (inSnapshot && deleted);
        if (!skip) {
          const ev = changeEvent(row, { db: r.db, topic: r.topic, table: r.table, prefix: cfg.topicPrefix, snapshot: inSnapshot ? 'true' : null, now });
          if (!deleted && conflictsOf(row)) {
            r.conflicts.inc();
            r.conflicted++;
          }
          sink.append(ev);
          r.events++;
        }
        // In the same synchronous step as the append: the checkpoint names exactly what the log holds.
        st.seq = seqText(row.seq);
        if (st.until !== null && !st.snapshotDone && seqNumber(row.seq) > st.until) this.snapshotEnded(r);
        const p = sink.maybeCommit(inSnapshot, false);
        if (p) await p;
      }
      // Fewer changes than asked for: the feed has caught up, so the initial pass is complete.
      if (st.until !== null && !st.snapshotDone && (seqNumber(st.seq) >= st.until || page.results.length < cfg.limit)) this.snapshotEnded(r);
      // Nothing more to read right now: what is pending commits at once.
      const p = sink.maybeCommit(false, true);
      if (p) await p;
    }
  }

  private snapshotEnded(r: DbRun): void {
    r.state.snapshotDone = true;
    this.ctx.logger.info(`database ${r.db}: initial pass done, streaming`, { database: r.db, seq: r.state.seq });
  }
}
