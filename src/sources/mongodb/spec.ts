/** The MongoDB source's spec: its config keys, factory, status and Debezium `source` block. */
import { duration, list, object, oneOf, string, type Infer } from '../../config/fields.ts';
import { defineSource } from '../../registry/spec.ts';
import { mongoUrlDatabase } from '../../core/net.ts';
import { sourceCommonFields } from '../common/config.ts';
import { mongodbDebezium } from './debezium.ts';
import { MONGODB_ERRORS } from './errors.ts';

const { tables: _tables, retentionCheckIntervalMs: _retention, transactionMetadata: _tx, heartbeatIntervalMs: _hb, ...common } = sourceCommonFields({
  tables: '',
  tablesType: '',
  snapshot: ' (from the cluster time at the first start)',
  snapshotFetchSize: 'Documents asked of the server per batch, in the snapshot and in the change streams.',
  heartbeat: '',
  topics: 'Topics are `<topicPrefix>.<database>.<collection>`, as Debezium\'s MongoDB connector names them.',
  retention: '',
});

const config = object({
  connection: string({
    pattern: '^mongodb(\\+srv)?://',
    hint: 'a mongodb://user:password@host:port/database URL',
    type: 'mongodb:// URL',
    description: 'The MongoDB server or replica set: `mongodb://user:password@host:port/database?replicaSet=rs0` (or `mongodb+srv://`). Change streams need a replica set or a sharded cluster. The database in the path is the one captured when `collections` is empty.',
  }),
  collections: list(string({ pattern: '^[^.$]+\\.[^$]+$' }), {
    description: '`database.collection` names to capture, each on a change stream of its own. Empty: every collection of the database in `connection` at the start (collections created later are not picked up). A listed collection that does not exist yet is captured from its first write.',
    type: 'list of `database.collection`',
  }).default([]),
  ...common,
  shape: oneOf(['debezium', 'row'] as const, {
    description: "`debezium`: events as Debezium's MongoDB connector writes them: `before`/`after` are the documents as Extended JSON text, `updateDescription` says what an update changed, the key is `{\"id\": …}`. Processors' expressions read those documents as rows (`after.total`). `row`: each top-level field is a column typed from its BSON type (nested documents and arrays as JSON text), keyed by `_id`, as Debezium's ExtractNewDocumentState would make them: what table sinks (PostgreSQL, MariaDB, DuckDB, lakes) take, with `schemaEvolution` adding the columns new fields bring.",
  }).default('debezium'),
  fullDocument: oneOf(['updateLookup', 'default'] as const, {
    description: "`updateLookup`: an update event's `after` is the whole document as it is when the change is read (the server looks it up; Debezium's `capture.mode: change_streams_update_full`). `default`: `after` is null for updates and `updateDescription` says what changed.",
  }).default('updateLookup'),
  preImages: oneOf(['off', 'whenAvailable', 'required'] as const, {
    description: "`before` of updates and deletes from the server's pre-images (MongoDB 6.0+, with `changeStreamPreAndPostImages` enabled on the collection): `whenAvailable` writes it when the server has it, `required` fails the stream when it does not. `off`: `before` is null, as in Debezium's default.",
  }).default('off'),
  maxAwaitMs: duration({ description: 'How long the server holds a change stream request open while there is nothing new (`maxAwaitTimeMS`).' }).default(500, '`500ms`'),
  connectTimeoutMs: duration({ description: 'How long finding and connecting to the server may take.' }).default(10_000, '`10s`'),
  socketTimeoutMs: duration({ description: "How long a request may wait for the server's answer (the driver's `socketTimeoutMS`; longer than `maxAwaitMs`). A server that hangs mid-stream (frozen, or a network that drops packets silently) then fails the source with `MONGODB_TIMEOUT`, and it restarts from its last durable checkpoint instead of waiting forever." }).default(30_000, '`30s`'),
});

export type MongodbSourceConfig = { type: 'mongodb' } & Infer<typeof config>;

export const mongodbSource = defineSource({
  kind: 'source',
  type: 'mongodb',
  title: 'MongoDB source',
  docs: 'connectors/mongodb.md',
  config,
  errors: [MONGODB_ERRORS],
  debezium: mongodbDebezium,
  check(raw, path, ctx) {
    const none = !Array.isArray(raw?.collections) || raw.collections.length === 0;
    if (none && typeof raw?.connection === 'string' && /^mongodb(\+srv)?:\/\//.test(raw.connection) && !mongoUrlDatabase(raw.connection)) {
      ctx.fail([...path, 'collections' in (raw ?? {}) ? 'collections' : 'connection'], 'no collection to capture: list them in `collections: [shop.orders]`, or name the database in the URL (mongodb://host:27017/shop) to capture all of its collections');
    }
    if (raw?.shape === 'row' && raw?.fullDocument === 'default') ctx.fail([...path, 'fullDocument'], "`shape: row` needs whole documents: with `fullDocument: default` an update's event has no document to make a row of. Use `fullDocument: updateLookup`, or `shape: debezium`");
  },
  topicPrefix: (c) => c.topicPrefix,
  describe: (c) => `source mongodb ${c.connection.replace(/\/\/[^@/]*@/, '//').replace(/\?.*$/, '')}, ${c.collections.length ? `${c.collections.length} collection${c.collections.length > 1 ? 's' : ''}` : 'all collections'}, snapshot ${c.snapshot}, shape ${c.shape}, fullDocument ${c.fullDocument}`,
  async create(c, ctx) {
    const { loadDriver } = await import('../../core/drivers.ts');
    const mod = await loadDriver('mongodb', 'the mongodb source', () => import('./source.ts'));
    await mod.loadBson();
    return new mod.MongodbSource({ type: 'mongodb', ...c }, ctx);
  },
  statusLine: (s) =>
    `phase ${s.phase}, ${s.collections ?? 0} collection${s.collections === 1 ? '' : 's'}${s.snapshot ? `, snapshot ${s.snapshot.collection} ${s.snapshot.documents} documents` : ''}${s.dropped ? `, dropped: ${s.dropped.join(', ')}` : ''}`,
});
