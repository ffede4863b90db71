/**
 * Documents in MongoDB (or a server speaking its wire protocol), with the official driver.
 * Values: Decimal → Decimal128, Date → BSON date, bigint → Long (int64), Buffer → binary; read
 * back the other way round, with int64 values that fit in 2^53 as numbers. Upserts are
 * `replaceOne` with `upsert: true` by `_id`, sent as unordered bulk writes.
 *
 * No multi-document transactions here (they need a replica set, and mongo-java-server has none):
 * each write stands when made, so the sink orders a batch's writes data → derived → offsets and
 * relies on every write being idempotent (see sink.ts).
 */
import { Binary, Decimal128, Long, MongoClient, ObjectId, type AnyBulkWriteOperation, type Db, type Document } from 'mongodb';
import type { DocumentStores } from './stores.ts';
import { Decimal, type Doc, type DocValue, type DocumentStore, type Filter } from './types.ts';
import { sinkError } from '../errors.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS } from '../../config/fields.ts';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** A document value as the driver writes it. */
export function toBson(v: DocValue): unknown {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'bigint') return v >= INT64_MIN && v <= INT64_MAX ? Long.fromBigInt(v) : decimal128(v.toString());
    return v;
  }
  if (v instanceof Date || Buffer.isBuffer(v)) return v;
  if (v instanceof Decimal) return decimal128(v.text);
  if (Array.isArray(v)) return v.map(toBson);
  const o: Document = {};
  for (const k of Object.keys(v)) if (v[k] !== undefined) o[k] = toBson(v[k]);
  return o;
}

function decimal128(text: string): Decimal128 {
  try {
    return Decimal128.fromString(text);
  } catch (e) {
    throw sinkError('SINK_REJECTED', `the decimal ${text} does not fit MongoDB's Decimal128 (34 significant digits, exponent ±6143): ${(e as Error).message}. Narrow the source column's precision, or leave it out of the template`, { cause: e });
  }
}

/** A value as the driver read it, back into a document value. */
export function fromBson(v: unknown): DocValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'number':
      return v;
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v instanceof Date || Buffer.isBuffer(v)) return v as Date | Buffer;
  if (v instanceof Decimal128) return new Decimal(v.toString());
  if (v instanceof Long) return fromBson(v.toBigInt());
  if (v instanceof Binary) return Buffer.from(v.buffer);
  if (v instanceof ObjectId) return v.toHexString();
  if (Array.isArray(v)) return v.map(fromBson);
  if (typeof v === 'object' && (v as { _bsontype?: string })._bsontype) return String(v);
  const o: Doc = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = fromBson(x);
  return o;
}

const WRITE_CHUNK = 5000;

export class MongoStore implements DocumentStore {
  private readonly ensured = new Set<string>();

  constructor(readonly db: Db) {}

  async ensureCollection(name: string, indexes: string[][] = []): Promise<void> {
    const key = name + '\u0000' + JSON.stringify(indexes);
    if (this.ensured.has(key)) return;
    const have = await this.db.listCollections({ name }, { nameOnly: true }).toArray();
    if (have.length === 0) {
      await this.db.createCollection(name).catch((e: { code?: number }) => {
        if (e.code !== 48) throw e; // NamespaceExists: created meanwhile
      });
    }
    for (const fields of indexes) {
      await this.db.collection(name).createIndex(Object.fromEntries(fields.map((f) => [f, 1])), { name: fields.join('_') });
    }
    this.ensured.add(key);
  }

  async upsert(collection: string, docs: Doc[]): Promise<void> {
    const byId = new Map<string | number, Doc>();
    for (const d of docs) byId.set(d._id as string | number, d);
    const ops: AnyBulkWriteOperation<Document>[] = [];
    for (const [id, d] of byId) ops.push({ replaceOne: { filter: { _id: id } as Document, replacement: toBson(d) as Document, upsert: true } });
    for (let i = 0; i < ops.length; i += WRITE_CHUNK) await this.db.collection(collection).bulkWrite(ops.slice(i, i + WRITE_CHUNK), { ordered: false });
  }

  async deleteIds(collection: string, ids: (string | number)[]): Promise<void> {
    for (let i = 0; i < ids.length; i += WRITE_CHUNK) await this.db.collection(collection).deleteMany({ _id: { $in: ids.slice(i, i + WRITE_CHUNK) } as never });
  }

  async deleteAll(collection: string): Promise<void> {
    await this.db.collection(collection).deleteMany({});
  }

  async find(collection: string, filter: Filter): Promise<Doc[]> {
    const docs = await this.db.collection(collection).find(filter as Document).sort({ _id: 1 }).toArray();
    return docs.map((d) => fromBson(d) as Doc);
  }

  async findOne(collection: string, filter: Filter): Promise<Doc | null> {
    const d = await this.db.collection(collection).findOne(filter as Document);
    return d ? (fromBson(d) as Doc) : null;
  }

  async count(collection: string): Promise<number> {
    return this.db.collection(collection).countDocuments({});
  }

  async close(): Promise<void> {
    // The client belongs to the store set.
  }
}

/**
 * Deadlines unless the URL sets its own: finding and connecting to the server (a server that
 * accepts TCP but never answers fails the open), and each operation's socket inactivity.
 */
function client(url: string): MongoClient {
  const given = new Set([...url.matchAll(/[?&]([A-Za-z]+)=/g)].map((m) => m[1].toLowerCase()));
  const deadlines: Record<string, number> = {};
  if (!given.has('serverselectiontimeoutms')) deadlines.serverSelectionTimeoutMS = DEFAULT_CONNECT_TIMEOUT_MS;
  if (!given.has('connecttimeoutms')) deadlines.connectTimeoutMS = DEFAULT_CONNECT_TIMEOUT_MS;
  if (!given.has('sockettimeoutms')) deadlines.socketTimeoutMS = DEFAULT_STATEMENT_TIMEOUT_MS;
  return new MongoClient(url, { useBigInt64: true, ignoreUndefined: true, appName: 'sluice', ...deadlines });
}

export interface MongoStoresOptions {
  url: string;
  database: string;
  derive?: { url: string; database: string };
}

/** The data store and the derived one (sharing the client when the URL is the same). */
export async function openMongoStores(o: MongoStoresOptions): Promise<DocumentStores> {
  const main = client(o.url);
  // A client that failed to connect keeps monitoring its servers (and the process alive): close it.
  await main.connect().catch(async (e) => {
    await main.close().catch(() => {});
    throw e;
  });
  let other: MongoClient | null = null;
  let derived: MongoStore | null = null;
  try {
    if (o.derive) {
      if (o.derive.url !== o.url) {
        other = client(o.derive.url);
        await other.connect().catch(async (e) => {
          await other?.close().catch(() => {});
          throw e;
        });
      }
      derived = new MongoStore((other ?? main).db(o.derive.database));
    }
  } catch (e) {
    await main.close().catch(() => {});
    throw e;
  }
  return {
    data: new MongoStore(main.db(o.database)),
    derived,
    transactional: false,
    parallelism: 8,
    atomically: (fn) => fn(),
    async close() {
      await main.close().catch(() => {});
      await other?.close().catch(() => {});
    },
  };
}

/** Whether a driver error is about the connection (worth reconnecting), not the data. */
export function isMongoConnectionError(e: unknown): boolean {
  const err = e as { name?: string; errorLabelSet?: Set<string>; hasErrorLabel?: (l: string) => boolean };
  if (/^Mongo(Network|NetworkTimeout|ServerSelection|TopologyClosed|PoolCleared|NotConnected)Error$/.test(err?.name ?? '')) return true;
  return typeof err?.hasErrorLabel === 'function' && (err.hasErrorLabel('RetryableWriteError') || err.hasErrorLabel('ResetPool'));
}
