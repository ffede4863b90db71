/**
 * The document layer: change events reshaped into nested documents (seed 000's operational data
 * layer) and kept in a document store — MongoDB, or PostgreSQL JSONB as the embedded-friendly
 * alternative — plus derived collections recomputed for the keys each batch touched.
 *
 * Values inside documents: strings, numbers, booleans, null, nested objects/arrays, `Date`
 * (BSON date in MongoDB; ISO-8601 text in JSONB), `Decimal` (exact decimal: BSON Decimal128 in
 * MongoDB; a JSON number in JSONB, which PostgreSQL keeps exact), `bigint` (int64), Buffer.
 */

/** A document template: nested mappings whose leaves are `$column`, `$$source_ts`, `$$sync_ts`, `$$op`, `$$table` or literals (docs/connectors/documents.md). */
export type DocTemplate = { [field: string]: DocTemplateValue };
export type DocTemplateValue = string | number | boolean | null | DocTemplateValue[] | DocTemplate;

/** An exact decimal value carried as its text, e.g. `2500.75`. */
export class Decimal {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
  toJSON(): string {
    return this.text;
  }
}

export type DocValue = null | string | number | boolean | bigint | Date | Decimal | Buffer | DocValue[] | Doc;
export interface Doc {
  [field: string]: DocValue;
}

/** Equality filter on top-level or dotted fields, e.g. `{ customer_id: 7 }` or `{ 'account_details.status': 'ACTIVE' }`. */
export type Filter = Record<string, string | number | boolean | bigint | null>;

/**
 * One database of documents. Every document is addressed by its `_id` (a string or number the
 * sink derives from the source row's primary key; one column → that value, several → `a|b`).
 */
export interface DocumentStore {
  /** Creates the collection and the listed secondary indexes if missing. */
  ensureCollection(name: string, indexes?: string[][]): Promise<void>;
  /** Replaces (or inserts) each document by `_id`. */
  upsert(collection: string, docs: Doc[]): Promise<void>;
  deleteIds(collection: string, ids: (string | number)[]): Promise<void>;
  deleteAll(collection: string): Promise<void>;
  find(collection: string, filter: Filter): Promise<Doc[]>;
  findOne(collection: string, filter: Filter): Promise<Doc | null>;
  count(collection: string): Promise<number>;
  close(): Promise<void>;
}

/** A change as a deriver sees it: the source table and the row images, after the document sink applied it. */
export interface DerivedChange {
  /** Source `schema.table` (MySQL: `database.table`). */
  table: string;
  op: 'c' | 'u' | 'd' | 'r' | 't';
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/**
 * A derived collection kept current incrementally: for each batch the sink asks which keys the
 * changes touched, then recomputes only those documents from the operational layer (`source`)
 * and writes them to the derived store. Recomputing a key is deterministic, so replaying a batch
 * after a crash gives the same documents (exactly-once by idempotence).
 */
export interface Deriver {
  /** Output collection name, e.g. `customer_analytics`. */
  collection: string;
  /** Secondary indexes of the output collection. */
  indexes?: string[][];
  /** Keys (output `_id`s) a change affects. May look documents up in the operational layer. */
  affected(change: DerivedChange, source: DocumentStore): Promise<(string | number)[]> | (string | number)[];
  /** The document for `key` (with `_id: key`), or null to delete it. `now` is the computation time. */
  compute(key: string | number, source: DocumentStore, now: Date): Promise<Doc | null>;
  /** Every key that should exist, for a from-scratch recomputation (`sluice derive --rebuild`, tests). */
  allKeys(source: DocumentStore): Promise<(string | number)[]>;
}
