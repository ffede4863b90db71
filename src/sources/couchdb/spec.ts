/** The CouchDB source's spec: its config keys, factory, status and `source` block. */
import { boolean, connection, integer, list, object, string, type Infer } from '../../config/fields.ts';
import { defineSource } from '../../registry/spec.ts';
import { sourceCommonFields } from '../common/config.ts';
import { couchdbDebezium } from './debezium.ts';
import { COUCHDB_ERRORS } from './errors.ts';

/** CouchDB's rule for database names. */
export const DATABASE_NAME = '^[a-z][a-z0-9_$()+/-]*$';

const { tables: _tables, snapshotFetchSize: _fetch, retentionCheckIntervalMs: _retention, transactionMetadata: _tx, ...common } = sourceCommonFields({
  tables: '',
  tablesType: '',
  snapshot: ' (from the database\'s current `update_seq`)',
  snapshotFetchSize: '',
  heartbeat: 'Heartbeat period asked of the server on the changes feed (`heartbeat=`): it writes a newline that often while nothing changes, and a feed silent for three periods (plus 5 s) is taken for a dead connection (`COUCHDB_TIMEOUT`) and opened again.',
  topics: 'Topics are `<topicPrefix>.<database>`, the database name escaped as [topics.md](topics.md) says (`/`, `$`, `(`, `)`, `+`, `-` become `-` and two hex digits).',
  retention: '',
});

const config = object({
  connection: connection({
    schemes: ['http', 'https'],
    defaultPort: 5984,
    defaultUser: '',
    database: false,
    example: 'http://user:password@host:5984[/database]',
    description: 'The CouchDB server: `http://user:password@host:5984` (`https://` for TLS), or a mapping of host, port (`5984`), user, password, database. The password is a secret: write `${COUCHDB_PASSWORD}`; it never appears in logs, status or errors. A database in the path is captured when `databases` is empty. No user: requests go without credentials.',
  }).map((c, ctx) => {
    let raw: any = ctx.root;
    for (const p of ctx.path) raw = raw?.[p];
    return { ...c, tls: typeof raw === 'string' && /^https:/i.test(raw) };
  }),
  databases: list(string({ pattern: DATABASE_NAME }), {
    uniqueItems: true,
    type: 'list of database names',
    description: 'The CouchDB databases to capture, each read on its own `_changes` feed. Empty: the database named in `connection`. A listed database the server does not have stops the pipeline with `COUCHDB_DATABASE_MISSING`.',
  }).default([]),
  ...common,
  limit: integer({ min: 1, max: 100_000, description: 'Changes asked of the server per `_changes` request (`limit=`), each with its document: the largest batch read at a time.' }).default(1000),
  designDocs: boolean({ description: 'Capture design documents (`_design/…`) too. By default they are left out: they hold views and validation functions, not data.' }).default(false),
});

export type CouchdbSourceConfig = { type: 'couchdb' } & Infer<typeof config>;

/** The databases a config captures: `databases`, or the one in `connection`. */
export function capturedDatabases(c: Pick<CouchdbSourceConfig, 'databases' | 'connection'>): string[] {
  return c.databases.length ? c.databases : c.connection.database ? [c.connection.database] : [];
}

export const couchdbSource = defineSource({
  kind: 'source',
  type: 'couchdb',
  title: 'CouchDB source',
  docs: 'connectors/couchdb.md',
  config,
  errors: [COUCHDB_ERRORS],
  debezium: couchdbDebezium,
  check(raw, path, ctx) {
    const conn = raw?.connection;
    let named = false;
    if (typeof conn === 'string') {
      try {
        named = new URL(conn).pathname.replace(/^\/+|\/+$/g, '') !== '';
      } catch {
        return; // the connection's own check reports it
      }
    } else if (conn && typeof conn === 'object') named = typeof conn.database === 'string' && conn.database !== '';
    if (!named && !(Array.isArray(raw?.databases) && raw.databases.length > 0)) {
      ctx.fail([...path, 'databases' in (raw ?? {}) ? 'databases' : 'connection'], 'no database to capture: list them in `databases: [orders, customers]`, or name one in the connection URL (http://user:password@host:5984/orders)');
    }
  },
  topicPrefix: (c) => c.topicPrefix,
  describe: (c) => {
    const dbs = capturedDatabases(c);
    return `source couchdb ${c.connection.tls ? 'https' : 'http'}://${c.connection.user ? `${c.connection.user}@` : ''}${c.connection.host}:${c.connection.port}, database${dbs.length === 1 ? '' : 's'} ${dbs.join(', ')}, snapshot ${c.snapshot}`;
  },
  async create(c, ctx) {
    const { CouchdbSource } = await import('./source.ts');
    return new CouchdbSource({ type: 'couchdb', ...c }, ctx);
  },
  statusLine: (s) =>
    `phase ${s.phase}${s.databases ? ', ' + Object.entries(s.databases as Record<string, { seq: string; snapshot: boolean; conflicts: number }>).map(([db, d]) => `${db} at seq ${d.seq}${d.snapshot ? ' (snapshot)' : ''}${d.conflicts ? `, ${d.conflicts} conflicted` : ''}`).join('; ') : ''}`,
});
