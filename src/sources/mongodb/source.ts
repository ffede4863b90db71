/**
 * The MongoDB source: an initial snapshot of each captured collection, then one change stream per
 * collection, producing Debezium MongoDB-shaped events (documents as Extended JSON text) into the
 * engine's EventSink.
 *
 * Consistency with the snapshot: the cluster time the streams start at is taken before the first
 * collection is read, so every change made during the snapshot is streamed afterwards as well.
 * Such a change may already be in the snapshot's copy; applying it again is harmless, because a
 * change carries its document's state by key (an update its looked-up full document).
 *
 * Exactly once into the log: the checkpoint that travels with every log commit holds, per
 * collection, the resume token of the last change appended (or the start time while none has
 * been), so a restart after kill -9 resumes each stream right after what is durable. During the
 * snapshot it holds the collections already copied; an interrupted collection is copied again
 * from its start (its `r` events are keyed by document id, so the second copy supersedes the first).
 * MongoDB keeps no replication state for a client: there is nothing to acknowledge upstream, but
 * the oplog must still hold the stored tokens when the pipeline restarts (MONGODB_RESUME_TOKEN_LOST).
 */
import type { ChangeStream, ChangeStreamDocument, Collection, Document, MongoClient, Timestamp } from 'mongodb';
import type { EventSink, Source } from '../../core/source.ts';
import type { ChangeEvent, Op, SourceInfo, TableSchema } from '../../core/event.ts';
import type { SourceContext } from '../../registry/spec.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { mongoUrlDatabase } from '../../core/net.ts';
import { tableTopic } from '../common/names.ts';
import { documentIdText, toExtendedJson } from './ejson.ts';
import { mongoError } from './errors.ts';
import { SluiceError } from '../../core/errors.ts';
import { idColumnText, RowShapes } from './rows.ts';
import type { MongodbSourceConfig } from './spec.ts';

interface StreamPosition {
  /** The resume token of the last change appended (Extended JSON text). */
  token?: string;
  /** Reopen with `startAfter` (the token is an invalidate's: the collection was dropped or renamed). */
  after?: boolean;
}

interface MongoCheckpoint {
  type: 'mongodb';
  phase: 'snapshot' | 'stream';
  /** The cluster time every stream without a token starts at. */
  start: { t: number; i: number };
  /** Collections (`db.collection`) whose snapshot is complete. */
  done: string[];
  streams: Record<string, StreamPosition>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The key column Debezium's MongoDB connector gives every collection: `id`, the document id as text. */
function collectionSchema(db: string, collection: string): TableSchema {
  return {
    schema: db,
    table: collection,
    keyColumns: ['id'],
    columns: [{ name: 'id', typeOid: 0, typeName: 'objectid|any', typeModifier: -1, key: true, optional: false, schema: { type: 'string', optional: false } }],
    document: true,
  };
}

/** A driver error's code (server errors), or undefined. */
const codeOf = (e: unknown): number | undefined => (e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : undefined);

export class MongodbSource implements Source {
  private client: MongoClient | null = null;
  private ckpt: MongoCheckpoint | null = null;
  private stopped = false;
  private readonly streams = new Set<ChangeStream>();
  private readonly tables = new Map<string, TableSchema>();
  private rs = '';
  private snapshotProgress: { collection: string; documents: number } | null = null;
  private readonly counts: Record<string, { events: number; lastEventMs: number | null }> = {};
  private dropped: string[] = [];
  /** `shape: row`: the collections' column shapes. */
  private readonly shapes = new RowShapes();

  constructor(
    private readonly cfg: MongodbSourceConfig,
    private readonly ctx: SourceContext,
  ) {}

  canCommit(): boolean {
    return true;
  }

  checkpoint(): string {
    return JSON.stringify(this.ckpt);
  }

  durable(): void {}

  status(): Record<string, unknown> {
    return {
      phase: this.ckpt?.phase ?? 'starting',
      collections: Object.keys(this.counts).length,
      streams: this.counts,
      ...(this.snapshotProgress ? { snapshot: this.snapshotProgress } : {}),
      ...(this.dropped.length ? { dropped: this.dropped } : {}),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.streams) await s.close().catch(() => {});
  }

  async run(sink: EventSink, checkpointText: string | null): Promise<void> {
    const { MongoClient } = await import('mongodb');
    const cfg = this.cfg;
    this.client = new MongoClient(cfg.connection, { serverSelectionTimeoutMS: cfg.connectTimeoutMs, connectTimeoutMS: cfg.connectTimeoutMs, socketTimeoutMS: Math.max(cfg.socketTimeoutMs, cfg.maxAwaitMs + 1000) });
    try {
      try {
        await this.client.connect();
      } catch (e) {
        throw mongoError('MONGODB_CONNECT', `cannot connect to the MongoDB server ${hostOf(cfg.connection)}: ${redact((e as Error).message, cfg.connection)}. Check source.connection (host, port, user, password) and that the server runs`, { retriable: true });
      }
      const hello = await this.client.db('admin').command({ isMaster: 1 });
      this.rs = typeof hello.setName === 'string' ? hello.setName : '';
      const collections = await this.collections();
      let ckpt = checkpointText ? decodeCheckpoint(checkpointText) : null;
      if (!ckpt) {
        const t = await this.clusterTime(hello);
        ckpt = { type: 'mongodb', phase: cfg.snapshot === 'never' ? 'stream' : 'snapshot', start: t, done: [], streams: {} };
        this.ckpt = ckpt;
        // The start time is durable before anything is read: a restart streams from here.
        await sink.commit();
        this.ctx.logger.info(`${cfg.snapshot === 'never' ? 'streaming' : 'snapshotting, then streaming'} ${collections.length} collection${collections.length === 1 ? '' : 's'} from cluster time ${t.t}.${t.i}`);
      }
      this.ckpt = ckpt;
      for (const ns of collections) this.counts[ns] ??= { events: 0, lastEventMs: null };
      if (ckpt.phase === 'snapshot') {
        await this.snapshot(sink, collections, ckpt);
        if (this.stopped) return;
        ckpt.phase = 'stream';
        await sink.commit();
        if (cfg.snapshot === 'initial_only') {
          this.ctx.logger.info('snapshot finished (snapshot: initial_only): stopping');
          return;
        }
      }
      await Promise.all(collections.map((ns) => this.stream(sink, ns, ckpt)));
    } catch (e) {
      throw timeoutError(e, cfg) ?? e;
    } finally {
      for (const s of this.streams) await s.close().catch(() => {});
      await this.client.close().catch(() => {});
    }
  }

  /** The configured collections, or every collection of the connection's database. */
  private async collections(): Promise<string[]> {
    const cfg = this.cfg;
    if (cfg.collections.length) {
      for (const ns of cfg.collections) {
        const [db, coll] = splitNs(ns);
        const found = await this.client!.db(db).listCollections({ name: coll }, { nameOnly: true }).toArray();
        if (found.length === 0) this.ctx.logger.warn(`collection ${ns} does not exist yet: it is captured from its first write`, { collection: ns });
      }
      return cfg.collections;
    }
    const db = mongoUrlDatabase(cfg.connection);
    if (!db) throw mongoError('MONGODB_COLLECTION_MISSING', 'source.collections is empty and source.connection names no database: list the collections to capture (`db.collection`), or name the database in the URL to capture all of its collections');
    const all = await this.client!.db(db).listCollections({}, { nameOnly: true }).toArray();
    return all
      .map((c) => c.name)
      .filter((n) => !n.startsWith('system.'))
      .sort()
      .map((n) => `${db}.${n}`);
  }

  /** The server's current cluster time: from a replica set's `operationTime`, else from its newest oplog entry. */
  private async clusterTime(hello: Document): Promise<{ t: number; i: number }> {
    const op = hello.operationTime as Timestamp | undefined;
    // Just after the last operation the server reports: that one is in what the snapshot reads.
    if (op && typeof op.high === 'number') return { t: op.high >>> 0, i: (op.low >>> 0) + 1 };
    try {
      const last = await this.client!.db('local').collection('oplog.rs').find({}, { projection: { ts: 1 } }).sort({ ts: -1 }).limit(1).toArray();
      const ts = last[0]?.ts as Timestamp | undefined;
      if (ts && typeof ts.high === 'number') return { t: ts.high >>> 0, i: (ts.low >>> 0) + 1 };
      return { t: 0, i: 0 };
    } catch (e) {
      throw mongoError('MONGODB_NO_CHANGE_STREAMS', `the server reports no cluster time and its oplog cannot be read (${(e as Error).message}): change streams need a replica set (a single mongod started with --replSet and rs.initiate() is enough) and a user allowed to read it`);
    }
  }

  private table(ns: string): TableSchema {
    let t = this.tables.get(ns);
    if (!t) {
      const [db, coll] = splitNs(ns);
      this.tables.set(ns, (t = collectionSchema(db, coll)));
    }
    return t;
  }

  private sourceInfo(ns: string, snapshot: SourceInfo['snapshot'], tsMs: number, ord: number): SourceInfo {
    const [db, coll] = splitNs(ns);
    return { version: SLUICE_VERSION, connector: 'mongodb', name: this.cfg.topicPrefix, ts_ms: tsMs, snapshot, db, sequence: null, schema: db, table: coll, rs: this.rs, ord, lsid: null, txnNumber: null, wallTime: null };
  }

  private async snapshot(sink: EventSink, collections: string[], ckpt: MongoCheckpoint): Promise<void> {
    const todo = collections.filter((ns) => !ckpt.done.includes(ns));
    const first = ckpt.done.length === 0;
    let total = 0;
    for (let n = 0; n < todo.length; n++) {
      const ns = todo[n];
      if (this.stopped) return;
      const [db, coll] = splitNs(ns);
      const topic = tableTopic(this.cfg.topicPrefix, db, coll);
      await sink.declareTopic(topic);
      this.snapshotProgress = { collection: ns, documents: 0 };
      const started = Date.now();
      const c = this.collection(ns);
      const cursor = c.find({}, { sort: { _id: 1 }, batchSize: this.cfg.snapshotFetchSize });
      let prev: Document | null = null;
      const emit = (doc: Document, last: boolean) => {
        const marker: SourceInfo['snapshot'] = first && total === 0 ? 'first' : last ? (n === todo.length - 1 ? 'last' : 'last_in_data_collection') : 'true';
        const source = this.sourceInfo(ns, marker, Date.now(), 0);
        if (this.cfg.shape === 'row') {
          const { row, table } = this.shapes.row(db, coll, doc);
          sink.append({ topic, key: { _id: row._id }, before: null, after: row, source, op: 'r', ts_ms: Date.now(), table });
        } else {
          sink.append({ topic, key: { id: documentIdText(doc._id) }, before: null, after: null, doc: { before: null, after: toExtendedJson(doc), updateDescription: null }, source, op: 'r', ts_ms: Date.now(), table: this.table(ns) });
        }
        total++;
        this.snapshotProgress!.documents++;
      };
      for await (const doc of cursor) {
        if (this.stopped) {
          await cursor.close();
          return;
        }
        if (prev) {
          emit(prev, false);
          const p = sink.maybeCommit(true);
          if (p) await p;
        }
        prev = doc;
      }
      if (prev) emit(prev, true);
      ckpt.done.push(ns);
      this.ctx.logger.info(`snapshot of ${ns}: ${this.snapshotProgress.documents} documents in ${((Date.now() - started) / 1000).toFixed(1)} s`, { collection: ns, documents: this.snapshotProgress.documents });
    }
    this.snapshotProgress = null;
  }

  private collection(ns: string): Collection {
    const [db, coll] = splitNs(ns);
    // Values undecoded (Int32, Double, Long wrappers) so that their text keeps their BSON type.
    return this.client!.db(db).collection(coll, { promoteValues: false, promoteBuffers: false, promoteLongs: false });
  }

  private open(ns: string, pos: StreamPosition, start: MongoCheckpoint['start']): ChangeStream {
    const opts: Record<string, unknown> = { fullDocument: this.cfg.fullDocument, maxAwaitTimeMS: this.cfg.maxAwaitMs, batchSize: this.cfg.snapshotFetchSize };
    if (this.cfg.preImages !== 'off') opts.fullDocumentBeforeChange = this.cfg.preImages;
    if (pos.token) opts[pos.after ? 'startAfter' : 'resumeAfter'] = parseToken(pos.token);
    else opts.startAtOperationTime = timestamp(start);
    const s = this.collection(ns).watch([], opts);
    this.streams.add(s);
    return s;
  }

  private async stream(sink: EventSink, ns: string, ckpt: MongoCheckpoint): Promise<void> {
    const [db, coll] = splitNs(ns);
    const topic = tableTopic(this.cfg.topicPrefix, db, coll);
    await sink.declareTopic(topic);
    const pos = (ckpt.streams[ns] ??= {});
    let stream = this.open(ns, pos, ckpt.start);
    const counts = this.counts[ns];
    while (!this.stopped) {
      const t0 = Date.now();
      let ch: ChangeStreamDocument | null;
      try {
        ch = await stream.tryNext();
      } catch (e) {
        if (this.stopped) return;
        throw translateStreamError(e, ns);
      }
      if (ch === null) {
        const p = sink.maybeCommit(false, true);
        if (p) await p;
        // A server without awaitData answers an empty batch at once: do not spin.
        if (Date.now() - t0 < 20) await sleep(25);
        continue;
      }
      const token = toExtendedJson(ch._id);
      const type = ch.operationType;
      if (type === 'invalidate') {
        pos.token = token;
        pos.after = true;
        this.ctx.logger.warn(`the change stream of ${ns} was invalidated (the collection was dropped or renamed): it continues with the collection of that name when it is created again`, { collection: ns });
        await stream.close().catch(() => {});
        this.streams.delete(stream);
        stream = this.open(ns, pos, ckpt.start);
        continue;
      }
      if (type === 'drop' || type === 'rename' || type === 'dropDatabase') {
        this.dropped.push(`${ns} (${type})`);
        this.ctx.logger.warn(`collection ${ns}: ${type}; its documents stay in the log as they were`, { collection: ns, operation: type });
        pos.token = token;
        pos.after = false;
        continue;
      }
      const ev = this.event(ns, topic, ch);
      if (ev) {
        sink.append(ev);
        counts.events++;
        counts.lastEventMs = ev.source.ts_ms;
        this.ctx.metrics.lagMs.set(Math.max(0, Date.now() - ev.source.ts_ms));
      }
      pos.token = token;
      pos.after = false;
      const p = sink.maybeCommit();
      if (p) await p;
    }
  }

  /** A change stream document as a change event, or null for an operation that changes no document. */
  private event(ns: string, topic: string, ch: ChangeStreamDocument): ChangeEvent | null {
    const c = ch as ChangeStreamDocument & { documentKey?: Document; fullDocument?: Document | null; fullDocumentBeforeChange?: Document | null; updateDescription?: Document; clusterTime?: Timestamp; wallTime?: Date; lsid?: Document; txnNumber?: unknown };
    let op: Op;
    switch (ch.operationType) {
      case 'insert':
        op = 'c';
        break;
      case 'update':
      case 'replace':
        op = 'u';
        break;
      case 'delete':
        op = 'd';
        break;
      default:
        return null;
    }
    const full = c.fullDocument ?? null;
    // documentKey holds `_id` (and a sharded collection's shard key); where a server leaves it out
    // of an update, the looked-up document has it.
    const id = c.documentKey && '_id' in c.documentKey ? c.documentKey._id : full?._id;
    if (id === undefined) {
      this.ctx.logger.warn(`a ${ch.operationType} of ${ns} without a document id was skipped (the server sent no documentKey._id and no full document)`, { collection: ns });
      return null;
    }
    const ct = c.clusterTime;
    const tsMs = c.wallTime instanceof Date ? c.wallTime.getTime() : ct ? (ct.high >>> 0) * 1000 : Date.now();
    const source = this.sourceInfo(ns, 'false', tsMs, ct ? ct.low >>> 0 : 0);
    if (c.lsid) source.lsid = toExtendedJson(c.lsid.id ?? c.lsid);
    if (c.txnNumber != null) source.txnNumber = Number(String(c.txnNumber));
    if (c.wallTime instanceof Date) source.wallTime = c.wallTime.getTime();
    if (this.cfg.shape === 'row') {
      const [db, coll] = splitNs(ns);
      if (op === 'd') return { topic, key: { _id: idColumnText(id) }, before: null, after: null, source, op, ts_ms: Date.now(), table: this.shapes.keyOnly(db, coll) };
      // The document was deleted before the server looked it up: the delete follows.
      if (!full) return null;
      const { row, table } = this.shapes.row(db, coll, full);
      return { topic, key: { _id: row._id }, before: c.fullDocumentBeforeChange ? this.shapes.row(db, coll, c.fullDocumentBeforeChange).row : null, after: row, source, op, ts_ms: Date.now(), table };
    }
    const ud = c.updateDescription;
    const updateDescription =
      op === 'u' && ud
        ? `{"removedFields":${ud.removedFields ? toExtendedJson(ud.removedFields) : 'null'},"updatedFields":${ud.updatedFields ? JSON.stringify(toExtendedJson(ud.updatedFields)) : 'null'},"truncatedArrays":${ud.truncatedArrays ? toExtendedJson(ud.truncatedArrays) : 'null'}}`
        : null;
    return {
      topic,
      key: { id: documentIdText(id) },
      before: null,
      after: null,
      doc: { before: c.fullDocumentBeforeChange ? toExtendedJson(c.fullDocumentBeforeChange) : null, after: op === 'd' || !full ? null : toExtendedJson(full), updateDescription },
      source,
      op,
      ts_ms: Date.now(),
      table: this.table(ns),
    };
  }
}

/** A driver error that says the server did not answer in time, as MONGODB_TIMEOUT; null for any other. */
function timeoutError(e: unknown, cfg: MongodbSourceConfig): Error | null {
  if (e instanceof SluiceError && e.code !== 'MONGODB_STREAM') return null;
  const err = (e as { cause?: unknown })?.cause ?? e;
  const name = (err as Error)?.name ?? '';
  const msg = (err as Error)?.message ?? '';
  if (!/MongoNetworkTimeoutError|MongoServerSelectionError/.test(name) && !/timed out/i.test(msg)) return null;
  return mongoError('MONGODB_TIMEOUT', `the MongoDB server ${hostOf(cfg.connection)} did not answer within ${name === 'MongoServerSelectionError' ? `connectTimeoutMs (${cfg.connectTimeoutMs} ms)` : `socketTimeoutMs (${cfg.socketTimeoutMs} ms)`}: it is hung, unreachable or overloaded (${redact(msg, cfg.connection)}). The source restarts from its last durable checkpoint`, { cause: e });
}

function translateStreamError(e: unknown, ns: string): Error {
  const code = codeOf(e);
  const msg = (e as Error)?.message ?? String(e);
  if (code === 286 || code === 280 || /resume/i.test(msg) && /not found|no longer|history/i.test(msg)) {
    return mongoError('MONGODB_RESUME_TOKEN_LOST', `the change stream of ${ns} cannot resume: ${msg}. The oplog no longer holds the position this pipeline stopped at; take a new snapshot (start with an empty log) and give the oplog a longer window`);
  }
  if (code === 40573 || code === 59 || /only supported on replica sets|no such command/i.test(msg)) {
    return mongoError('MONGODB_NO_CHANGE_STREAMS', `the server refuses a change stream on ${ns}: ${msg}. Change streams need a replica set (a single mongod started with --replSet and rs.initiate() is enough)`);
  }
  if (code === 13 || /not authorized|unauthorized/i.test(msg)) {
    return mongoError('MONGODB_NO_CHANGE_STREAMS', `the user may not open a change stream on ${ns}: ${msg}. Grant it the changeStream and find actions on the database (the built-in read role has both)`);
  }
  return mongoError('MONGODB_STREAM', `the change stream of ${ns} failed: ${msg}`, { cause: e });
}

function splitNs(ns: string): [string, string] {
  const i = ns.indexOf('.');
  return [ns.slice(0, i), ns.slice(i + 1)];
}

function timestamp(t: { t: number; i: number }): Timestamp {
  // Built lazily from the driver's own class (the module is loaded when the source runs).
  return new TimestampCtor!({ t: t.t, i: t.i });
}

let TimestampCtor: (new (v: { t: number; i: number }) => Timestamp) | null = null;
let EJSONParse: ((text: string) => unknown) | null = null;
export async function loadBson(): Promise<void> {
  const m = await import('mongodb');
  TimestampCtor = m.Timestamp as unknown as typeof TimestampCtor;
  EJSONParse = (text) => m.BSON.EJSON.parse(text, { relaxed: false });
}

function parseToken(text: string): unknown {
  return EJSONParse!(text);
}

function decodeCheckpoint(text: string): MongoCheckpoint {
  let c: MongoCheckpoint;
  try {
    c = JSON.parse(text);
  } catch {
    c = null as unknown as MongoCheckpoint;
  }
  if (!c || c.type !== 'mongodb' || !c.start || !Array.isArray(c.done) || typeof c.streams !== 'object') {
    throw mongoError('MONGODB_CHECKPOINT', `the log holds a checkpoint the MongoDB source cannot read (${text.slice(0, 80)}): it was written by another source type or is damaged. Point log.dir at this pipeline's own log, or start over with an empty one`);
  }
  return c;
}

export function hostOf(url: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?([^/?]+)/.exec(url);
  return m ? m[1] : '(unknown host)';
}

/** A driver message with the URL's password taken out (drivers sometimes echo the URL). */
function redact(msg: string, url: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/([^:@/]*):([^@/]*)@/.exec(url);
  if (!m || !m[2]) return msg;
  return msg.split(m[2]).join('***').split(decodeURIComponent(m[2])).join('***');
}
