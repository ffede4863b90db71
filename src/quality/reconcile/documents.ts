/**
 * Document collections as reconcile targets (MongoDB, PostgreSQL JSONB): the collection of a
 * source table whose documents hold the row's columns as top-level fields (a sink without a
 * `document` template), `_id` the key as the document sink makes it. Documents are read by `_id`
 * for each source chunk; their `_id` order is not the source's key order (a numeric key's `_id` is
 * text in JSONB, a compound key's is its values joined by `|`), so ranges cannot be compared.
 *
 * Values come back as the document sink wrote them (Dates, Decimals, Buffers or base64 text, …)
 * and are spelled as the source prints its values before both sides are normalized alike.
 * Documents keep timestamps to the millisecond (BSON dates, and the sink's ISO text): the source's
 * microseconds are cut to milliseconds before comparing, so that loss is not reported as drift.
 */
import type { ConnectionConfig } from '../../config/types.ts';
import { fromBson, openMongoStores } from '../../sinks/document/mongodb.ts';
import { fromJsonText, toJsonText } from '../../sinks/document/json.ts';
import { Decimal, type Doc, type DocValue } from '../../sinks/document/types.ts';
import { canon, type Family } from './canon.ts';
import { keyId } from './compare.ts';
import { postgresEngine } from './engines.ts';
import type { SourceTable } from './source.ts';
import { closing, NotComparable, type TargetReader } from './targets.ts';

/** Key families whose `_id` reconcile can spell from the source's key value. */
const ID_FAMILIES = new Set<Family>(['int', 'text', 'uuid', 'date']);

/** A document value as the source's database would print a column of family `f`. */
export function docText(v: DocValue | undefined, f: Family): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) {
    const iso = v.toISOString();
    return f === 'date' ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 23)}${f === 'timestamptz' ? '+00' : ''}`;
  }
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (typeof v === 'string') return f === 'bytes' ? Buffer.from(v, 'base64').toString('hex') : v;
  if (v instanceof Decimal) return v.text;
  if (typeof v === 'object') return toJsonText(v);
  return String(v);
}

/** A timestamp's canonical text cut to milliseconds. */
const toMillis = (s: string): string => s.replace(/(\d\d:\d\d:\d\d)\.(\d{1,3})\d*/, (_, t, frac) => (/^0*$/.test(frac) ? t : `${t}.${frac.replace(/0+$/, '')}`));

/** What document reading needs of a table: `_id` of a key, the canonical row of a document, the source row cut to what documents keep. */
function shape(st: SourceTable) {
  const bad = st.keys.find((k) => !ID_FAMILIES.has(k.family));
  if (bad) throw new NotComparable(`key column ${bad.col} is ${bad.type}: reconcile finds documents by an _id of numbers, text, uuid or date keys`);
  const nk = st.keys.length;
  const part = (v: string, f: Family): string | number => (f === 'int' && Number.isSafeInteger(Number(v)) ? Number(v) : f === 'date' ? `${v}T00:00:00.000Z` : v);
  const idOf = (key: string[]): string | number =>
    nk === 1 ? part(key[0], st.keys[0].family) : key.map((v, i) => String(part(v, st.keys[i].family)).replace(/\\/g, '\\\\').replace(/\|/g, '\\|')).join('|');
  const ms = st.columns.map((c) => c.family === 'timestamp' || c.family === 'timestamptz');
  const fromSource = (row: string[]) => row.map((v, i) => (ms[i] ? toMillis(v) : v));
  /** The key values an `_id` spells (for a document without its key fields). */
  const keyOfId = (id: DocValue | undefined): (DocValue | undefined)[] => {
    const parts: (DocValue | undefined)[] = nk === 1 ? [id] : String(id ?? '').split(/(?<!\\)\|/).map((p) => p.replace(/\\([\\|])/g, '$1'));
    // A date key's _id is its ISO timestamp at midnight.
    return st.keys.map((k, i) => (k.family === 'date' && typeof parts[i] === 'string' ? (parts[i] as string).slice(0, 10) : parts[i]));
  };
  const rowOf = (d: Doc): string[] => {
    const fromId = st.keys.some((k) => d[k.col] === undefined) ? keyOfId(d._id) : null;
    return fromSource(st.columns.map((c, i) => canon(c.family, docText(fromId && i < nk ? (d[c.col] ?? fromId[i]) : d[c.col], c.family))));
  };
  return { nk, idOf, fromSource, rowOf };
}

/** Keys per read: one `$in` / `= ANY` of this many ids. */
const PAGE = 2000;

export async function mongoReader(url: string, database: string, collection: string, st: SourceTable): Promise<TargetReader> {
  const s = shape(st);
  const stores = await openMongoStores({ url, database });
  try {
    const db = (stores.data as unknown as { db: import('mongodb').Db }).db;
    const exists = (await db.listCollections({ name: collection }, { nameOnly: true }).toArray()).length > 0;
    const coll = db.collection(collection);
    return {
      columns: new Set(exists ? st.columns.map((c) => c.col) : []),
      async byKeys(keys) {
        const out = new Map<string, string[]>();
        for (let i = 0; i < keys.length; i += PAGE) {
          const docs = await coll.find({ _id: { $in: keys.slice(i, i + PAGE).map(s.idOf) } } as never).toArray();
          for (const d of docs) {
            const row = s.rowOf(fromBson(d) as Doc);
            out.set(keyId(row.slice(0, s.nk)), row);
          }
        }
        return out;
      },
      count: () => coll.countDocuments({}),
      async eachKey(page) {
        const projection = Object.fromEntries([['_id', 1], ...st.keys.map((k) => [k.col, 1])]);
        const batch: string[][] = [];
        for await (const d of coll.find({}, { projection, batchSize: PAGE })) {
          batch.push(s.rowOf(fromBson(d) as Doc).slice(0, s.nk));
          if (batch.length >= PAGE) await page(batch.splice(0));
        }
        if (batch.length) await page(batch);
      },
      fromSource: s.fromSource,
      close: () => stores.close(),
    };
  } catch (e) {
    return closing(stores)(e);
  }
}

export async function jsonbReader(conn: ConnectionConfig, schema: string, collection: string, st: SourceTable): Promise<TargetReader> {
  const s = shape(st);
  const e = await postgresEngine(conn as never);
  try {
    const t = `${e.qi(schema)}.${e.qi(collection)}`;
    const exists = (await e.rows(`SELECT to_regclass(${e.lit(t, 'text')}) IS NOT NULL`))[0][0] === 't';
    const arr = (ids: (string | number)[]) => `ARRAY[${ids.map((id) => e.lit(String(id), 'text')).join(', ')}]::text[]`;
    return {
      columns: new Set(exists ? st.columns.map((c) => c.col) : []),
      async byKeys(keys) {
        const out = new Map<string, string[]>();
        if (!exists) return out;
        for (let i = 0; i < keys.length; i += PAGE) {
          for (const [doc] of await e.rows(`SELECT doc::text FROM ${t} WHERE _id = ANY(${arr(keys.slice(i, i + PAGE).map(s.idOf))})`)) {
            const row = s.rowOf(fromJsonText(String(doc)) as Doc);
            out.set(keyId(row.slice(0, s.nk)), row);
          }
        }
        return out;
      },
      count: async () => (exists ? Number((await e.rows(`SELECT count(*) FROM ${t}`))[0][0]) : 0),
      async eachKey(page) {
        if (!exists) return;
        let after: string | null = null;
        for (;;) {
          const rows = await e.rows(`SELECT _id, doc::text FROM ${t}${after === null ? '' : ` WHERE _id > ${e.lit(after, 'text')}`} ORDER BY _id LIMIT ${PAGE}`);
          if (!rows.length) return;
          await page(rows.map(([, doc]) => s.rowOf(fromJsonText(String(doc)) as Doc).slice(0, s.nk)));
          after = String(rows[rows.length - 1][0]);
        }
      },
      fromSource: s.fromSource,
      close: () => e.close(),
    };
  } catch (err) {
    return closing(e)(err);
  }
}
