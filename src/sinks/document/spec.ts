/** The document sinks' specs: `mongodb` and `postgres_jsonb` (one implementation, two stores). */
import { connection, list, object, raw, string, type Field, type Infer, type ResolveContext } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';
import { checkDocumentSink, mongoUrlDatabase } from './config.ts';
import { DOCUMENT_ERRORS } from './errors.ts';
import type { DocTemplate } from './types.ts';

const pgConnection = (description = 'The PostgreSQL database of the collection tables, as for the PostgreSQL source.') => connection({ schemes: ['postgres', 'postgresql'], defaultPort: 5432, defaultUser: 'postgres', database: true, example: 'postgres://user:password@host:port/database', description });
const mongoUrl = (description = 'The MongoDB server: `mongodb://user:password@host:port/database` (or `mongodb+srv://`); the database in the path is the default for `database`.') => string({ pattern: '^mongodb(\\+srv)?://', description, hint: 'a mongodb://host:port/database URL', type: 'mongodb:// URL' });

const collection = object({
  table: string({ minLength: 1, description: '`schema.table` pattern (`*` wildcard) of the source tables this entry shapes; the first matching entry wins.' }),
  collection: string({ minLength: 1, description: "Collection name; `{schema}` and `{table}` are replaced." }).optional("the sink's `tableName`"),
  indexes: list(list(string({ minLength: 1 }), { minItems: 1 }), { description: 'Secondary indexes, each a list of (dotted) document fields.', type: 'list of field lists' }).default([]),
  document: raw<DocTemplate>({ jsonType: 'object', type: 'template', description: 'Nested mapping; leaves are `$column`, `$$source_ts`, `$$sync_ts`, `$$op`, `$$table` or literals. Absent: every column as a top-level field.' }).optional('every column'),
});

/** One entry of `collections`, with its defaults and config positions. */
export interface CollectionConfig {
  table: string;
  collection: string;
  indexes: string[][];
  document?: DocTemplate;
  /** `file:line` of the entry in the config, for messages. */
  at: string;
  /** Template field path (`a.b`) → `file:line:col` of its value, for messages. */
  positions: Record<string, string>;
}

/** Keys both document sinks have. */
const docCommon = () => ({
  ...sinkBaseFields(sinkBatch(20_000, 16 << 20)),
  tableName: string({ minLength: 1, description: 'Default collection name; `{schema}` and `{table}` are replaced.' }).default('{table}'),
  collections: list(collection, { description: 'Per source table: its collection, indexes and document template.' }).default([]),
});

/** The raw (written) value at the path being resolved, to read what `check` recorded on it. */
function rawAt(ctx: ResolveContext): any {
  let v = ctx.root;
  for (const p of ctx.path) v = v?.[p];
  return v;
}

/** Collections with their defaults and the config positions `check` recorded (for messages). */
function withPositions<C extends { tableName: string; collections: Infer<typeof collection>[] }>(c: C, ctx: ResolveContext): Omit<C, 'collections'> & { collections: CollectionConfig[] } {
  const written = rawAt(ctx)?.collections ?? [];
  return {
    ...c,
    collections: c.collections.map((e, i) => ({
      ...e,
      collection: e.collection ?? c.tableName,
      at: String(written[i]?.__at ?? ''),
      positions: (written[i]?.__positions ?? {}) as Record<string, string>,
    })),
  };
}

const mongoConfig = object({
  ...docCommon(),
  connection: mongoUrl(),
  database: string({ minLength: 1, description: 'Database of the collections.' }).optional('the URL\'s, else `sluice`'),
  derive: object({ connection: mongoUrl('Where the derived collections live.').optional("the sink's"), database: string({ minLength: 1, description: 'Database of the derived collections.' }).optional("the sink's"), module: string({ minLength: 1, description: 'Module exporting `derivers`, relative to this file.' }) }, { description: 'Derived collections, recomputed for the keys each batch touches.' }).optional(),
}).map((c, ctx) => {
  const database = c.database ?? mongoUrlDatabase(c.connection) ?? 'sluice';
  const d = c.derive;
  const derive = d ? { connection: d.connection ?? c.connection, database: d.database ?? (d.connection ? mongoUrlDatabase(d.connection) : undefined) ?? database, module: moduleFile(ctx) } : undefined;
  return { ...withPositions(c, ctx), database, derive };
});

const jsonbConfig = object({
  ...docCommon(),
  connection: pgConnection(),
  schema: string({ minLength: 1, description: 'Schema of the collection tables (created if missing).' }).default('public'),
  derive: object({ connection: pgConnection('Where the derived collections live.').optional("the sink's"), schema: string({ minLength: 1, description: 'Schema of the derived collections.' }).optional("the sink's"), module: string({ minLength: 1, description: 'Module exporting `derivers`, relative to this file.' }) }, { description: 'Derived collections, recomputed for the keys each batch touches.' }).optional(),
}).map((c, ctx) => {
  const d = c.derive;
  const derive = d ? { connection: d.connection ?? c.connection, schema: d.schema ?? c.schema, module: moduleFile(ctx) } : undefined;
  return { ...withPositions(c, ctx), derive };
});

/** The derive module's absolute path, as `check` resolved it against the config file. */
function moduleFile(ctx: ResolveContext): string {
  const d = rawAt(ctx)?.derive;
  return String(d?.__file ?? d?.module);
}

export type MongoSinkConfig = { type: 'mongodb' } & Infer<typeof mongoConfig>;
export type PostgresJsonbSinkConfig = { type: 'postgres_jsonb' } & Infer<typeof jsonbConfig>;
export type DocumentSinkConfig = MongoSinkConfig | PostgresJsonbSinkConfig;
export type DocumentCollectionConfig = CollectionConfig;

const create = async (c: DocumentSinkConfig, ctx: { logger: any; id: string }) => {
  const { loadDriver } = await import('../../core/drivers.ts');
  // The driver loads first, so that a missing one is named, not a stack trace.
  if (c.type === 'mongodb') await loadDriver('mongodb', 'the mongodb sink', () => import('mongodb'));
  const { DocumentSink } = await import('./sink.ts');
  return new DocumentSink(c, ctx.logger, ctx.id);
};

export const mongodbSink = defineSink({
  kind: 'sink',
  type: 'mongodb',
  title: 'MongoDB document sink',
  docs: 'connectors/documents.md',
  config: mongoConfig as Field<Infer<typeof mongoConfig>, 'required'>,
  errors: [SINK_ERRORS, DOCUMENT_ERRORS],
  check: checkDocumentSink,
  describe: (c) => `mongodb ${c.connection.replace(/\/\/[^@/]*@/, '//')} database ${c.database}`,
  create: (c, ctx) => create({ type: 'mongodb', ...c }, ctx),
});

export const postgresJsonbSink = defineSink({
  kind: 'sink',
  type: 'postgres_jsonb',
  title: 'PostgreSQL JSONB document sink',
  docs: 'connectors/documents.md',
  config: jsonbConfig as Field<Infer<typeof jsonbConfig>, 'required'>,
  errors: [SINK_ERRORS, DOCUMENT_ERRORS],
  check: checkDocumentSink,
  describe: (c) => `postgres_jsonb ${c.connection.user}@${c.connection.host}:${c.connection.port}/${c.connection.database} schema ${c.schema}`,
  create: (c, ctx) => create({ type: 'postgres_jsonb', ...c }, ctx),
});
