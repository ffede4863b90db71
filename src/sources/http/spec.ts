/**
 * The HTTP event gateway's spec (`ingest:` beside the pipeline's source): routes that take JSON
 * events over HTTP into topics of the log, each request answered 2xx only once its events are
 * durable. Its config keys, defaults, docs and error codes come from here; the gateway itself is
 * gateway.ts.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { boolean, duration, integer, list, object, oneOf, raw, size, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';

export const INGEST_ERRORS = defineErrors('HTTP event gateway', {
  INGEST_LISTEN: { retriable: false, meaning: 'the gateway cannot listen on its host and port (in use, or not an address of this machine)' },
  INGEST_SCHEMA: { retriable: false, meaning: "a route's JSON Schema cannot be read or compiled; the message names the route and the problem" },
  INGEST_RECOVER: { retriable: true, meaning: 'the gateway could not read back the event ids of its topics (for deduplication) at start' },
});

const credential = object({
  name: string({ minLength: 1, description: 'Names the credential in `allow`, in metrics and in logs (the token itself never appears).' }),
  token: string({ minLength: 16, description: 'The secret a client sends as `Authorization: Bearer <token>` or `X-API-Key: <token>`; write `${MOBILE_TOKEN}` rather than the token itself.', hint: 'at least 16 characters' }),
});

const rateLimit = object(
  {
    perSecond: integer({ min: 1, description: 'Events per second each key may send on average.' }),
    burst: integer({ min: 1, description: 'Events a key may send at once after a quiet spell (the bucket size).' }).optional('`perSecond`'),
    by: oneOf(['credential', 'ip'] as const, { description: 'What a key is: the credential a request authenticated with (`ip` where the route takes none), or the client address.' }).default('credential'),
  },
  { description: 'A token bucket per key: past it the answer is 429 with `Retry-After`.' },
);

const route = object({
  path: string({ pattern: '^/[A-Za-z0-9/_.~-]*$', description: 'The URL path, matched exactly (a query string is ignored). `POST` only.', hint: 'a path such as /events/user' }),
  topic: string({ pattern: '^[A-Za-z0-9_.-]+$', description: 'The topic its events go to.', hint: 'letters, digits, _ . -' }),
  batch: boolean({ description: 'The body is a list of events (a JSON array, or `{"events": [...]}`) rather than one event.' }).default(false),
  schema: raw<unknown>({ type: 'mapping or path', description: 'A JSON Schema (draft 2020-12 or 07) every event must satisfy, inline or as a file relative to the config file. A request with a violation is answered 400 listing every one. Formats (`date-time`, `uuid`, `email`, …) are checked.' }).optional('any JSON object'),
  key: string({ minLength: 1, description: 'The event field whose value is the record key (e.g. `user_id`): the topic partition and per-key order follow it. A dotted path reaches into objects. An event without it is refused.' }).optional('no key: round robin'),
  idempotencyKey: string({ minLength: 1, description: 'The event field that identifies an event (e.g. `event_id`): an event whose id the gateway took within `dedupeWindow` is answered as a duplicate and not written again, so client retries do not duplicate. An event without it is refused.' }).optional('none: no deduplication'),
  allow: list(string({ minLength: 1 }), { description: 'Names of the `credentials` this route takes: none sent or an unknown one, 401; a known one not listed, 403. Empty: the route is open.' }).default([]),
  rateLimit: rateLimit.optional('none'),
  onInvalid: oneOf(['reject', 'partial'] as const, {
    description: 'A batch with an invalid event: `reject` answers 400 and writes nothing; `partial` writes the valid ones and answers 207 with a result per event (400 when none is valid).',
  }).default('reject'),
  partitions: integer({ min: 1, max: 10_000, description: 'Partitions of the topic when the gateway creates it (seed 004: `topic_app_events` has 6).' }).optional("the log's default"),
  retention: duration({ description: 'Retention of the topic when the gateway creates it (e.g. `1d`).' }).optional("the log's default"),
});

const config = object(
  {
    host: string({ description: 'Listen address.' }).default('127.0.0.1'),
    port: integer({ min: 0, max: 65535, description: 'Listen port; `0` picks a free one (logged at start).' }).default(8090),
    credentials: list(credential, { description: 'API keys / bearer tokens routes may `allow`.' }).default([]),
    routes: list(route, { minItems: 1, description: 'Paths and the topics their events go to. `GET /health` is always served.' }),
    maxBodyBytes: size({ description: 'Largest request body, after decompression; past it the answer is 413.' }).default(1 << 20, '`1MiB`'),
    maxBatchEvents: integer({ min: 1, description: 'Most events in one batch request; past it the answer is 413.' }).default(1000),
    dedupeWindow: duration({ description: 'How long an idempotency key is remembered. Rebuilt at start from the topics themselves (each record carries its id), so a restart forgets nothing within the window.' }).default(600_000, '`10m`'),
    maxDedupeIds: integer({ min: 1000, description: 'Bound on remembered ids (about 150 bytes each); past it the oldest are forgotten before their window ends (counted in `sluice_ingest_dedupe_evicted_total`).' }).default(1_000_000),
    maxPendingBytes: size({ description: 'Bytes of events accepted but not yet durable; past it requests are answered 503 with `Retry-After` instead of queueing without bound.' }).default(32 << 20, '`32MiB`'),
    maxSinkLag: integer({ min: 1, description: "Records a sink or processor of this pipeline may be behind on the gateway's topics before requests are answered 503 with `Retry-After`." }).optional('not checked'),
    requestTimeout: duration({ description: 'A client must send its whole request within this time (slow clients get 408 and the connection closes).' }).default(10_000, '`10s`'),
    keepAliveTimeout: duration({ description: 'An idle keep-alive connection is closed after this.' }).default(5000, '`5s`'),
  },
  {
    description: "An HTTP event gateway ([connectors/http.md](connectors/http.md)): routes take JSON events into topics, each answered 2xx only once its events are durable in the log. Runs beside the source (or without one).",
  },
);

/** Resolves a route's schema file (a string) against the config file; an inline schema stays. */
const withSchemaPaths = config.map((c, ctx) => ({
  ...c,
  routes: c.routes.map((r) => (typeof r.schema === 'string' ? { ...r, schema: resolve(dirname(ctx.fileName || '.'), r.schema) } : r)),
}));

export const INGEST = withSchemaPaths;
export type IngestConfig = Infer<typeof config>;
export type IngestRoute = IngestConfig['routes'][number];

/** Checks beyond the schema: unknown credential names, duplicate paths, missing schema files. */
export function checkIngest(raw: any, fileName: string, fail: (path: string[], message: string) => void): void {
  const names = new Set<string>((raw.credentials ?? []).map((c: any) => c.name));
  const paths = new Set<string>();
  (raw.routes ?? []).forEach((r: any, i: number) => {
    const at = ['ingest', 'routes', String(i)];
    if (paths.has(r.path)) fail([...at, 'path'], `two routes take ${r.path}: give each its own path`);
    paths.add(r.path);
    if (r.path === '/health') fail([...at, 'path'], '/health is the gateway\'s own health check: choose another path');
    (r.allow ?? []).forEach((n: string, j: number) => {
      if (!names.has(n)) fail([...at, 'allow', String(j)], `no credential is named ${JSON.stringify(n)}; known: ${[...names].join(', ') || 'none (add ingest.credentials)'}`);
    });
    if (typeof r.schema === 'string') {
      const file = resolve(dirname(fileName), r.schema);
      if (!existsSync(file)) fail([...at, 'schema'], `${file} does not exist (the path is relative to the config file)`);
    } else if (r.schema !== undefined && (typeof r.schema !== 'object' || r.schema === null || Array.isArray(r.schema))) {
      fail([...at, 'schema'], 'a JSON Schema is a mapping, or the path of a file holding one');
    }
  });
  const tokens = new Set<string>();
  (raw.credentials ?? []).forEach((c: any, i: number) => {
    if (tokens.has(c.token)) fail(['ingest', 'credentials', String(i), 'token'], 'two credentials have the same token: a request could not say which it is');
    tokens.add(c.token);
  });
}

export function describeIngest(c: IngestConfig): string {
  return `ingest http://${c.host}:${c.port}: ${c.routes.map((r) => `${r.path} → ${r.topic}${r.batch ? ' (batch)' : ''}`).join(', ')}`;
}
