/** The Redis sink's spec: `type: redis`. */
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS, duration, Field, maskUrl, object, oneOf, string, type Infer, type JsonSchema } from '../../config/fields.ts';
import { defineSink } from '../../registry/spec.ts';
import { sinkBaseFields, sinkBatch } from '../config.ts';
import { SINK_ERRORS } from '../errors.ts';
import { REDIS_ERRORS } from './errors.ts';
import { templateProblem } from './key.ts';

/** Where the sink connects, with the defaults filled in. */
export interface RedisConnectionConfig {
  host: string;
  port: number;
  /** An ACL user (Redis 6+); absent: the default user. */
  user?: string;
  password?: string;
  /** The logical database index (`SELECT`). */
  db: number;
  tls: boolean;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

const DURATION = { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$' }] };
const EXAMPLE = 'redis://:password@host:6379/0';

function ms(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(String(v).trim());
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return m ? Math.round(Number(m[1]) * unit[(m[2] ?? 'ms').toLowerCase()]) : undefined;
}

/**
 * `connection`: a URL `redis://[user][:password]@host[:port][/db]` (`rediss://` for TLS) or a
 * mapping of its parts. A malformed URL is reported with its password masked.
 */
function redisConnection(): Field<RedisConnectionConfig, 'default'> {
  const mapping: JsonSchema = {
    type: 'object',
    additionalProperties: false,
    properties: {
      host: { type: 'string', description: 'Server host.' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Server port.' },
      user: { type: 'string', description: 'ACL user (Redis 6+); absent: the default user.' },
      password: { type: 'string', description: 'Use ${VAR} rather than writing it into the file.' },
      db: { type: 'integer', minimum: 0, description: 'Database index (SELECT).' },
      tls: { type: 'boolean', description: 'Connect over TLS.' },
      connectTimeout: { ...DURATION, description: `How long connecting may take (default ${DEFAULT_CONNECT_TIMEOUT_MS / 1000}s).` },
      statementTimeout: { ...DURATION, description: `How long one batch may go unanswered (default ${DEFAULT_STATEMENT_TIMEOUT_MS / 60_000}m).` },
    },
  };
  const hint = `must be a URL ${EXAMPLE} (rediss:// for TLS) or a mapping with host, port, user, password, db, tls, connectTimeout, statementTimeout`;
  const schema: JsonSchema = {
    anyOf: [{ type: 'string', pattern: '^rediss?://', description: EXAMPLE }, mapping],
    'x-hint': hint,
    description: 'The Redis server: a URL `redis://[user][:password]@host[:port][/db]` (`rediss://` for TLS) or a mapping with `host`, `port`, `user`, `password`, `db`, `tls`, `connectTimeout`, `statementTimeout`.',
  };
  const normalize = (v: any) => {
    if (typeof v === 'string') {
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        return { value: v, error: `not a valid URL (got ${JSON.stringify(maskUrl(v))}); write ${EXAMPLE}, percent-encoding special characters in the password` };
      }
      const db = u.pathname.replace(/^\//, '');
      if (db !== '' && !/^\d+$/.test(db)) return { value: v, error: `the URL's path is the database index, a number (got ${JSON.stringify(db)} in ${JSON.stringify(maskUrl(v))})` };
      return { value: v };
    }
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const k of ['connectTimeout', 'statementTimeout']) if (k in v && ms(v[k]) === undefined) return { value: v, error: `${k}: must be a duration such as 500, "500ms" or "10s" (got ${JSON.stringify(v[k])})` };
    }
    return { value: v };
  };
  const resolve = (v: any): RedisConnectionConfig => {
    if (v === undefined) v = {};
    if (typeof v === 'string') {
      const u = new URL(v);
      const db = u.pathname.replace(/^\//, '');
      return {
        host: decodeURIComponent(u.hostname).replace(/^\[|\]$/g, '') || '127.0.0.1',
        port: u.port ? Number(u.port) : 6379,
        user: u.username ? decodeURIComponent(u.username) : undefined,
        password: u.password ? decodeURIComponent(u.password) : undefined,
        db: db ? Number(db) : 0,
        tls: u.protocol === 'rediss:',
        connectTimeoutMs: ms(u.searchParams.get('connectTimeout') ?? undefined),
        statementTimeoutMs: ms(u.searchParams.get('statementTimeout') ?? undefined),
      };
    }
    return { host: v.host ?? '127.0.0.1', port: v.port ?? 6379, user: v.user, password: v.password, db: v.db ?? 0, tls: v.tls ?? false, connectTimeoutMs: ms(v.connectTimeout), statementTimeoutMs: ms(v.statementTimeout) };
  };
  return new Field<RedisConnectionConfig, 'default'>('default', schema, { description: schema.description, type: 'URL or mapping', defaultText: '`redis://127.0.0.1:6379/0`' }, resolve, undefined, normalize);
}

const config = object({
  // Each record is a few commands in one MULTI/EXEC; a few thousand keep a transaction short
  // (Redis runs it without serving others meanwhile).
  ...sinkBaseFields(sinkBatch(5_000, 8 << 20)),
  connection: redisConnection(),
  key: string({
    minLength: 1,
    description:
      'The Redis key of a record. `{key}` is the record\'s key (one key column: its value; several: their values joined by `:`), `{key.<column>}` one key column, `{<field>}` a field of the row, `{table}`, `{schema}`, `{topic}` where it came from.',
  }).default('{table}:{key}'),
  format: oneOf(['hash', 'json'] as const, { description: '`hash`: each top-level field becomes a hash field (strings as they are, other values as JSON, null fields left out). `json`: the whole row as one JSON string value.' }).default('hash'),
  ttl: duration({ description: 'Expiry of each written key (PEXPIRE, in the same transaction), renewed by each write; 0: none.' }).default(0),
  offsetsTable: string({ pattern: '^[A-Za-z0-9_:.-]+$', description: 'Prefix of the hash holding the consumed log offsets, `<prefix>:<pipeline>:<sink>` (written in the same MULTI/EXEC as the data).' }).default('sluice:offsets'),
});

export type RedisSinkConfig = { type: 'redis' } & Infer<typeof config>;

export const redisSink = defineSink({
  kind: 'sink',
  type: 'redis',
  title: 'Redis sink',
  docs: 'connectors/sinks.md',
  config,
  errors: [SINK_ERRORS, REDIS_ERRORS],
  check(raw, path, ctx) {
    const p = typeof raw.key === 'string' ? templateProblem(raw.key) : null;
    if (p) ctx.fail([...path, 'key'], p);
  },
  describe: (c) => `redis ${c.connection.tls ? 'rediss' : 'redis'}://${c.connection.host}:${c.connection.port}/${c.connection.db} key ${c.key} (${c.format}${c.ttl ? `, ttl ${c.ttl} ms` : ''})`,
  async create(c, ctx) {
    const { RedisSink } = await import('./sink.ts');
    return new RedisSink({ type: 'redis', ...c }, ctx.logger, ctx.pipeline);
  },
});
