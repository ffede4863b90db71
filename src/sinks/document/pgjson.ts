/**
 * Documents in PostgreSQL JSONB: one table per collection, `(_id text PRIMARY KEY, doc jsonb NOT
 * NULL)`, in a configurable schema. A requested index on fields `a.b`, `c` becomes a btree index
 * on the expressions `(doc #> '{a,b}')`, `(doc #> '{c}')`, and `find` compares exactly those
 * expressions, so the planner uses it. `_id` is kept as text (a numeric key `7` is `'7'`); the
 * document holds `_id` with its own type too.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { PostgresConnectionConfig } from '../../config/fields.ts';
import { fromJsonText, toJsonText } from './json.ts';
import type { DocumentStores } from './stores.ts';
import type { Doc, DocumentStore, Filter } from './types.ts';
import { sinkError } from '../errors.ts';
import { closeWithin, pgDeadlineOptions, withStatementDeadline } from '../timeouts.ts';

const qi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
const ql = (s: string): string => "'" + s.replace(/'/g, "''") + "'";

/** `doc #> '{a,b}'` for the dotted field `a.b`. */
export function pathExpr(field: string): string {
  const parts = field.split('.').map((p) => '"' + p.replace(/["\\]/g, '\\$&') + '"');
  return `(doc #> ${ql(`{${parts.join(',')}}`)})`;
}

/** A PostgreSQL identifier of at most 63 bytes: cut, with a hash of the whole name when cut. */
function shortName(name: string): string {
  if (Buffer.byteLength(name) <= 63) return name;
  const h = createHash('sha1').update(name).digest('hex').slice(0, 8);
  let cut = name.slice(0, 54);
  while (Buffer.byteLength(cut) > 54) cut = cut.slice(0, -1);
  return `${cut}_${h}`;
}

/** Rows per statement: the JSON of thousands of documents in one parameter. */
const CHUNK_BYTES = 8 << 20;

/** The last query queued on each client: calls run one after another, as one connection requires. */
const tails = new WeakMap<pg.Client, Promise<unknown>>();

/**
 * Runs a query after those already queued on the client. A store may be called concurrently (the
 * demo's lag probes and dashboard read while the sink writes elsewhere); pg's own queue for
 * overlapping calls is deprecated and goes away in pg 9.
 */
function serialQuery(client: pg.Client, text: string | pg.QueryArrayConfig | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult> {
  const run = (): Promise<pg.QueryResult> => (typeof text === 'string' ? client.query(text, values) : client.query(text as pg.QueryConfig));
  const prev = tails.get(client);
  const next = prev ? prev.then(run, run) : run();
  const tail = next.catch(() => undefined);
  tails.set(client, tail);
  return next;
}

export class PgJsonStore implements DocumentStore {
  private readonly ensured = new Set<string>();

  constructor(
    private readonly client: pg.Client,
    readonly schema: string,
  ) {}

  private query(text: string | pg.QueryArrayConfig | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult> {
    return serialQuery(this.client, text, values);
  }

  private table(collection: string): string {
    return `${qi(this.schema)}.${qi(collection)}`;
  }

  async ensureCollection(name: string, indexes: string[][] = []): Promise<void> {
    const key = name + '\u0000' + JSON.stringify(indexes);
    if (this.ensured.has(key)) return;
    const t = this.table(name);
    await this.query(`CREATE SCHEMA IF NOT EXISTS ${qi(this.schema)}`);
    await this.query(`CREATE TABLE IF NOT EXISTS ${t} (_id text PRIMARY KEY, doc jsonb NOT NULL)`);
    const cols = await this.query(`SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, [t]);
    const have = new Set(cols.rows.map((r) => r.attname as string));
    if (!have.has('_id') || !have.has('doc')) {
      throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `table ${t} exists but is not a document table (_id text, doc jsonb): it has ${[...have].join(', ')}. Give the document sink another schema (or collection / offsetsTable name)`);
    }
    for (const fields of indexes) {
      const name2 = shortName(`${name}_${fields.join('_').replace(/\./g, '_')}_idx`);
      await this.query(`CREATE INDEX IF NOT EXISTS ${qi(name2)} ON ${t} (${fields.map(pathExpr).join(', ')})`);
    }
    this.ensured.add(key);
  }

  async upsert(collection: string, docs: Doc[]): Promise<void> {
    // The last document per _id wins (one statement cannot update a row twice).
    const byId = new Map<string, Doc>();
    for (const d of docs) byId.set(String(d._id), d);
    let chunk = '';
    const flush = async () => {
      if (!chunk) return;
      await this.query(
        `INSERT INTO ${this.table(collection)} (_id, doc) SELECT e->>0, e->1 FROM jsonb_array_elements($1::jsonb) AS e
         ON CONFLICT (_id) DO UPDATE SET doc = EXCLUDED.doc`,
        ['[' + chunk + ']'],
      );
      chunk = '';
    };
    for (const [id, d] of byId) {
      chunk += (chunk ? ',' : '') + '[' + JSON.stringify(id) + ',' + toJsonText(d) + ']';
      if (chunk.length >= CHUNK_BYTES) await flush();
    }
    await flush();
  }

  async deleteIds(collection: string, ids: (string | number)[]): Promise<void> {
    if (ids.length === 0) return;
    await this.query(`DELETE FROM ${this.table(collection)} WHERE _id = ANY($1::text[])`, [ids.map(String)]);
  }

  async deleteAll(collection: string): Promise<void> {
    await this.query(`TRUNCATE ${this.table(collection)}`);
  }

  private where(filter: Filter): { sql: string; values: unknown[] } {
    const conds: string[] = [];
    const values: unknown[] = [];
    for (const [field, v] of Object.entries(filter)) {
      if (field === '_id') {
        values.push(String(v));
        conds.push(`_id = $${values.length}`);
      } else if (v === null) {
        // MongoDB's { f: null } matches a null or a missing field.
        conds.push(`(${pathExpr(field)} IS NULL OR ${pathExpr(field)} = 'null'::jsonb)`);
      } else {
        values.push(toJsonText(v));
        conds.push(`${pathExpr(field)} = $${values.length}::jsonb`);
      }
    }
    return { sql: conds.length ? ` WHERE ${conds.join(' AND ')}` : '', values };
  }

  async find(collection: string, filter: Filter): Promise<Doc[]> {
    if (!(await this.exists(collection))) return [];
    const w = this.where(filter);
    const r = await this.query({ text: `SELECT doc::text FROM ${this.table(collection)}${w.sql} ORDER BY _id`, values: w.values, rowMode: 'array' });
    return r.rows.map((row) => fromJsonText(row[0] as string) as Doc);
  }

  async findOne(collection: string, filter: Filter): Promise<Doc | null> {
    if (!(await this.exists(collection))) return null;
    const w = this.where(filter);
    const r = await this.query({ text: `SELECT doc::text FROM ${this.table(collection)}${w.sql} LIMIT 1`, values: w.values, rowMode: 'array' });
    return r.rows.length ? (fromJsonText(r.rows[0][0] as string) as Doc) : null;
  }

  async count(collection: string): Promise<number> {
    if (!(await this.exists(collection))) return 0;
    const r = await this.query(`SELECT count(*)::int8 AS n FROM ${this.table(collection)}`);
    return Number(r.rows[0].n);
  }

  /** Reading a collection never written is an empty result, as in MongoDB. */
  private async exists(collection: string): Promise<boolean> {
    for (const k of this.ensured) if (k.startsWith(collection + '\u0000')) return true;
    const r = await this.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [this.table(collection)]);
    return r.rows[0].ok as boolean;
  }

  async close(): Promise<void> {
    // The client belongs to the store set.
  }
}

const destroyPg = (c: pg.Client, why?: Error): void => (c as unknown as { connection: { stream: { destroy(e?: Error): void } } }).connection.stream.destroy(why);

const sameDatabase = (a: PostgresConnectionConfig, b: PostgresConnectionConfig): boolean =>
  a.host === b.host && a.port === b.port && a.user === b.user && a.database === b.database;

async function connect(c: PostgresConnectionConfig, name: string, onError: (e: Error) => void): Promise<pg.Client> {
  const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, application_name: `sluice sink ${name}`, ...pgDeadlineOptions(c) });
  client.on('error', onError);
  withStatementDeadline(client, c, 'PostgreSQL', (why) => destroyPg(client, why));
  await client.connect();
  await client.query(`SET TimeZone = 'UTC'`);
  return client;
}

export interface PgJsonStoresOptions {
  name: string;
  connection: PostgresConnectionConfig;
  schema: string;
  derive?: { connection: PostgresConnectionConfig; schema: string };
}

/**
 * The data store, and the derived one: on the same client (one transaction for the whole batch)
 * when both are in one database, else on a second client whose writes commit on their own.
 */
export async function openPgJsonStores(o: PgJsonStoresOptions): Promise<DocumentStores & { connectionError(): Error | null }> {
  let lost: Error | null = null;
  const onError = (e: Error) => {
    lost ??= e;
  };
  const client = await connect(o.connection, o.name, onError);
  let other: pg.Client | null = null;
  let derived: PgJsonStore | null = null;
  try {
    if (o.derive) {
      if (sameDatabase(o.connection, o.derive.connection)) derived = new PgJsonStore(client, o.derive.schema);
      else {
        other = await connect(o.derive.connection, o.name, onError);
        derived = new PgJsonStore(other, o.derive.schema);
      }
    }
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
  const data = new PgJsonStore(client, o.schema);
  return {
    data,
    derived,
    transactional: other === null,
    parallelism: 1,
    connectionError: () => lost,
    async atomically<T>(fn: () => Promise<T>): Promise<T> {
      await serialQuery(client, 'BEGIN');
      try {
        const out = await fn();
        await serialQuery(client, 'COMMIT');
        return out;
      } catch (e) {
        await serialQuery(client, 'ROLLBACK').catch(() => {});
        throw e;
      }
    },
    async close() {
      await closeWithin(() => client.end(), () => destroyPg(client));
      if (other) await closeWithin(() => other!.end(), () => destroyPg(other!));
    },
  };
}
