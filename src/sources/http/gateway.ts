/**
 * The HTTP event gateway: `POST <route path>` takes one JSON event (or, on a batch route, a list),
 * checks it (credentials, rate limit, room in the log, content type, size, JSON, the route's JSON
 * Schema, key and idempotency key), writes it to the route's topic and answers 2xx once the log
 * commit carrying it is durable. What a request is refused for gets its status code and a JSON body
 * saying what to do, and none of its events reach the log (a batch route with `onInvalid: partial`
 * writes its valid events and reports each one).
 *
 * Records: key = the key field's value (as text), value = the event's JSON as the client sent it
 * (the bytes of its element in a batch), timestamp = when the gateway took it; no headers (they
 * cost 2.5 µs an event to write, half again the event's value; the idempotency key is read back
 * from the value at start).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import AjvModule from 'ajv/dist/2020.js';
import AjvDraft7 from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Logger } from '../../core/logger.ts';
import { Counter, Gauge, Histogram, type Registry } from '../../core/metrics.ts';
import type { Log, TopicConfig } from '../../log/types.ts';
import { readBody, HttpProblem } from './body.ts';
import { GroupCommit, type PendingEvent } from './commit.ts';
import { IdWindow } from './dedupe.ts';
import { arrayElements } from './split.ts';
import { RateLimiter } from './limits.ts';
import { INGEST_ERRORS, type IngestConfig, type IngestRoute } from './spec.ts';

type ValidateFn = ((v: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Record<string, unknown>; keyword: string }[] | null };
const ctor = <T>(m: T): T => ((m as { default?: T }).default ?? m) as T;
const Ajv2020 = ctor(AjvModule) as unknown as new (o: object) => { compile(s: object): ValidateFn };
const Ajv7 = ctor(AjvDraft7) as unknown as new (o: object) => { compile(s: object): ValidateFn };
const addFormats = ctor(addFormatsModule) as unknown as (ajv: object) => void;

export interface GatewayOptions {
  cfg: IngestConfig;
  pipeline: string;
  log: Log;
  topicDefaults: TopicConfig;
  logger: Logger;
  registry: Registry;
  /** The most records any reader of a topic is behind (for `maxSinkLag`); null: none reads it, or unknown. */
  lag?: (topic: string) => number | null;
}

interface Route {
  cfg: IngestRoute;
  keyPath: string[] | null;
  idPath: string[] | null;
  validate: ValidateFn | null;
  limiter: RateLimiter | null;
  allow: Set<string>;
  requests: Map<number, Counter>;
  events: Record<'accepted' | 'duplicate' | 'invalid', Counter>;
  latency: Histogram;
}

interface Violation {
  path: string;
  message: string;
}

/** A field of an event by a dotted path, split once per route. */
function fieldAt(ev: unknown, path: readonly string[]): unknown {
  let v: unknown = ev;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

const scalarText = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null);

/** Tokens are compared as SHA-256 digests in constant time: neither their length nor a prefix leaks. */
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function compileSchema(r: IngestRoute): ValidateFn | null {
  if (r.schema === undefined) return null;
  let schema: unknown = r.schema;
  try {
    if (typeof schema === 'string') schema = JSON.parse(readFileSync(schema, 'utf8'));
  } catch (e) {
    throw INGEST_ERRORS.error('INGEST_SCHEMA', `route ${r.path}: cannot read its JSON Schema ${String(r.schema)}: ${(e as Error).message}`);
  }
  const draft = String((schema as { $schema?: string }).$schema ?? '');
  const ajv = draft.includes('draft-07') || draft.includes('draft-06') || draft.includes('draft-04') ? new Ajv7({ allErrors: true, strict: false }) : new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  try {
    return ajv.compile(schema as object);
  } catch (e) {
    throw INGEST_ERRORS.error('INGEST_SCHEMA', `route ${r.path}: its JSON Schema does not compile: ${(e as Error).message}. Fix the schema`);
  }
}

export class Gateway {
  private server: Server | null = null;
  private readonly routes = new Map<string, Route>();
  private readonly credentials: { name: string; digest: Buffer }[];
  private readonly ids: IdWindow;
  private readonly commit: GroupCommit;
  private readonly created = new Set<string>();
  private draining = false;
  private inflight = 0;
  private readonly idle: (() => void)[] = [];
  private readonly pendingGauge: Gauge;
  private readonly dedupeGauge: Gauge;
  private readonly evictedCounter: Counter;
  port = 0;

  constructor(private readonly o: GatewayOptions) {
    const { cfg, registry, pipeline } = o;
    this.credentials = cfg.credentials.map((c) => ({ name: c.name, digest: digest(c.token) }));
    this.ids = new IdWindow(cfg.dedupeWindow, cfg.maxDedupeIds);
    const caps = o.log.capabilities;
    this.commit = new GroupCommit(o.log, `ingest:${pipeline}`, {
      records: Math.min(caps.maxCommitRecords ?? Infinity, 50_000),
      bytes: Math.min(caps.maxCommitBytes ? Math.floor(caps.maxCommitBytes / 2) : Infinity, 16 << 20),
    });
    for (const r of cfg.routes) {
      const labels = { pipeline, route: r.path };
      const events = (result: string) => registry.register(new Counter('sluice_ingest_events_total', 'Events received by the gateway, by route and result (accepted: durable in the log; duplicate: an idempotency key already taken; invalid: refused by the schema or a missing key)', { ...labels, result }));
      this.routes.set(r.path, {
        cfg: r,
        keyPath: r.key ? r.key.split('.') : null,
        idPath: r.idempotencyKey ? r.idempotencyKey.split('.') : null,
        validate: compileSchema(r),
        limiter: r.rateLimit ? new RateLimiter(r.rateLimit.perSecond, r.rateLimit.burst ?? r.rateLimit.perSecond) : null,
        allow: new Set(r.allow),
        requests: new Map(),
        events: { accepted: events('accepted'), duplicate: events('duplicate'), invalid: events('invalid') },
        latency: registry.register(new Histogram('sluice_ingest_request_seconds', 'Time from a request’s arrival to its answer (a 2xx after the log commit), by route', labels)),
      });
    }
    this.pendingGauge = registry.register(new Gauge('sluice_ingest_pending_bytes', 'Bytes of events accepted and not yet durable in the log', { pipeline }));
    this.dedupeGauge = registry.register(new Gauge('sluice_ingest_dedupe_ids', 'Idempotency keys remembered within the dedupe window', { pipeline }));
    this.evictedCounter = registry.register(new Counter('sluice_ingest_dedupe_evicted_total', 'Idempotency keys forgotten before their window ended because maxDedupeIds was reached', { pipeline }));
  }

  private requestsCounter(route: Route, status: number): Counter {
    let c = route.requests.get(status);
    if (!c) route.requests.set(status, (c = this.o.registry.register(new Counter('sluice_ingest_requests_total', 'Requests answered by the gateway, by route and status code', { pipeline: this.o.pipeline, route: route.cfg.path, status: String(status) }))));
    return c;
  }

  /** Reads back the ids within the dedupe window, creates the topics, and listens. */
  async start(): Promise<number> {
    const { cfg, log, logger } = this.o;
    for (const r of cfg.routes) {
      if (!this.created.has(r.topic)) {
        await log.ensureTopic(r.topic, { ...this.o.topicDefaults, ...(r.partitions ? { partitions: r.partitions } : {}), ...(r.retention ? { retentionMs: r.retention } : {}) });
        this.created.add(r.topic);
      }
    }
    const scopes = new Set<string>();
    for (const r of cfg.routes) {
      if (!r.idempotencyKey || scopes.has(r.topic)) continue;
      scopes.add(r.topic);
      try {
        // Every id field the routes into this topic use: the first one an event has is its id.
        const paths = cfg.routes.filter((x) => x.topic === r.topic && x.idempotencyKey).map((x) => x.idempotencyKey!.split('.'));
        const idOf = (v: unknown) => {
          for (const p of paths) {
            const id = scalarText(fieldAt(v, p));
            if (id !== null) return id;
          }
          return null;
        };
        const n = await this.ids.recover(log, r.topic, r.topic, idOf);
        if (n) logger.info('read back the idempotency keys within the dedupe window', { topic: r.topic, ids: n });
      } catch (e) {
        throw INGEST_ERRORS.error('INGEST_RECOVER', `cannot read back the event ids of topic ${r.topic}: ${(e as Error).message}`, { cause: e });
      }
    }
    const server = createServer({ requestTimeout: cfg.requestTimeout, connectionsCheckingInterval: Math.max(100, Math.min(1000, cfg.requestTimeout / 4)), headersTimeout: Math.min(cfg.requestTimeout, 60_000), keepAliveTimeout: cfg.keepAliveTimeout }, (req, res) => {
      this.inflight++;
      this.handle(req, res).finally(() => {
        if (--this.inflight === 0) for (const f of this.idle.splice(0)) f();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(INGEST_ERRORS.error('INGEST_LISTEN', `the gateway cannot listen on ${cfg.host}:${cfg.port}: ${(e as Error).message}. Choose another ingest.port or stop what uses it`)));
      server.listen(cfg.port, cfg.host, () => resolve());
    });
    this.server = server;
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : cfg.port;
    logger.info('event gateway listening', { url: `http://${cfg.host}:${this.port}`, routes: cfg.routes.map((r) => `${r.path} → ${r.topic}`).join(', ') });
    return this.port;
  }

  /**
   * Stops taking requests and drains: new connections are refused, requests already received are
   * answered once their commits end (new ones on open connections get 503), idle connections
   * close, then the producer.
   */
  async stop(): Promise<void> {
    this.draining = true;
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      if (this.inflight > 0) await new Promise<void>((r) => this.idle.push(r));
      server.closeIdleConnections();
      // Connections still open (a client mid-request past the drain) end here.
      const t = setTimeout(() => server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(t);
    }
    await this.commit.close();
  }

  status(): Record<string, unknown> {
    return { port: this.port, routes: [...this.routes.keys()], pendingBytes: this.commit.pendingBytes, dedupeIds: this.ids.size, commits: this.commit.commits, lastError: this.commit.lastError?.message ?? null };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0];
    const route = this.routes.get(path);
    let status = 500;
    try {
      if (path === '/health' && !route) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpProblem(405, '/health answers GET', {}, { allow: 'GET, HEAD' });
        const problem = this.draining ? 'shutting down' : this.commit.lastError ? `the last log commit failed: ${this.commit.lastError.message}` : null;
        status = problem ? 503 : 200;
        this.send(res, status, problem ? { status: 'unavailable', reason: problem } : { status: 'ok', pendingBytes: this.commit.pendingBytes });
        return;
      }
      if (!route) throw new HttpProblem(404, `no route ${path}: routes are ${[...this.routes.keys()].join(', ')} (POST) and /health (GET)`);
      if (req.method !== 'POST') throw new HttpProblem(405, `${path} takes POST`, {}, { allow: 'POST' });
      if (this.draining) throw new HttpProblem(503, 'the gateway is shutting down: retry shortly', {}, { 'retry-after': '1', connection: 'close' });
      const who = this.authenticate(req, route);
      this.checkRoom(route);
      const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/json' && !type.endsWith('+json')) throw new HttpProblem(415, `content-type must be application/json, not ${type ? JSON.stringify(type) : 'missing'}`);
      const body = await readBody(req, this.o.cfg.maxBodyBytes);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (e) {
        throw new HttpProblem(400, `the body is not valid JSON: ${(e as Error).message}`);
      }
      const events = this.eventsOf(route, parsed);
      if (route.limiter) {
        const key = route.cfg.rateLimit!.by === 'credential' && who ? `c:${who}` : `ip:${req.socket.remoteAddress ?? ''}`;
        const wait = route.limiter.take(key, events.length);
        if (wait > 0) throw new HttpProblem(429, `rate limit of ${route.cfg.rateLimit!.perSecond} events/s for this ${route.cfg.rateLimit!.by === 'credential' && who ? 'credential' : 'client'} reached: retry after ${wait} s`, {}, { 'retry-after': String(wait) });
      }
      // The bytes each event came as: the body (one event), or its element of a top-level array.
      const raw = !route.cfg.batch ? [body] : Array.isArray(parsed) ? arrayElements(body, events.length)?.map(([a, b]) => body.subarray(a, b)) : undefined;
      const result = await this.write(route, events, raw);
      status = result.status;
      this.send(res, status, result.body);
    } catch (e) {
      if (e instanceof HttpProblem) {
        status = e.status;
        this.send(res, status, { error: e.message, ...e.extra }, e.headers);
        if (status === 413 || (status === 400 && !req.complete)) req.resume();
      } else {
        status = 500;
        this.o.logger.error('the gateway failed a request', { route: path, error: (e as Error).message });
        this.send(res, 500, { error: 'internal error: see the gateway log' });
      }
    } finally {
      if (route) {
        this.requestsCounter(route, status).inc();
        route.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
      this.pendingGauge.set(this.commit.pendingBytes);
    }
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
  }

  /** The credential's name, or null on an open route. 401 without a known one, 403 with one the route does not allow. */
  private authenticate(req: IncomingMessage, route: Route): string | null {
    if (!route.allow.size) return null;
    const auth = req.headers.authorization;
    const token = auth?.toLowerCase().startsWith('bearer ') ? auth.slice(7).trim() : typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'].trim() : null;
    const challenge = { 'www-authenticate': 'Bearer realm="sluice"' };
    if (!token) throw new HttpProblem(401, `${route.cfg.path} needs a credential: send Authorization: Bearer <token> or X-API-Key: <token>`, {}, challenge);
    const d = digest(token);
    const found = this.credentials.find((c) => timingSafeEqual(c.digest, d));
    if (!found) throw new HttpProblem(401, 'the token is not one this gateway knows: check it, or ask for a new one', {}, challenge);
    if (!route.allow.has(found.name)) throw new HttpProblem(403, `credential ${found.name} may not send to ${route.cfg.path}`);
    return found.name;
  }

  /** 503 while accepted events wait for the log beyond the bound, or a reader of the topics is too far behind. */
  private checkRoom(route: Route): void {
    const { cfg } = this.o;
    if (this.commit.pendingBytes > cfg.maxPendingBytes) throw new HttpProblem(503, `the log is behind: ${this.commit.pendingBytes} bytes of events wait for their commit; retry shortly`, {}, { 'retry-after': '1' });
    if (cfg.maxSinkLag !== undefined) {
      const lag = this.o.lag?.(route.cfg.topic) ?? null;
      if (lag !== null && lag > cfg.maxSinkLag) throw new HttpProblem(503, `the pipeline is behind: a reader of ${route.cfg.topic} is ${lag} records behind (ingest.maxSinkLag is ${cfg.maxSinkLag}); retry later`, {}, { 'retry-after': '2' });
    }
  }

  private eventsOf(route: Route, parsed: unknown): unknown[] {
    if (!route.cfg.batch) {
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpProblem(400, `${route.cfg.path} takes one JSON object per request${Array.isArray(parsed) ? ': send lists to a batch route' : ''}`);
      return [parsed];
    }
    const list = Array.isArray(parsed) ? parsed : parsed && typeof parsed === 'object' && Array.isArray((parsed as { events?: unknown }).events) ? (parsed as { events: unknown[] }).events : null;
    if (!list) throw new HttpProblem(400, `${route.cfg.path} takes a JSON array of events, or {"events": [...]}`);
    if (list.length === 0) throw new HttpProblem(400, 'the batch holds no events');
    if (list.length > this.o.cfg.maxBatchEvents) throw new HttpProblem(413, `the batch holds ${list.length} events; this gateway takes at most ${this.o.cfg.maxBatchEvents} per request`);
    return list;
  }

  /** What is wrong with one event: schema violations, then a missing key or idempotency key. */
  private violations(route: Route, ev: unknown): Violation[] {
    const out: Violation[] = [];
    if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) return [{ path: '', message: 'an event is a JSON object' }];
    if (route.validate && !route.validate(ev)) {
      for (const e of route.validate.errors ?? []) {
        const extra = e.keyword === 'additionalProperties' ? ` (${String(e.params?.additionalProperty)})` : e.keyword === 'enum' ? ` (${(e.params?.allowedValues as unknown[] | undefined)?.map((x) => JSON.stringify(x)).join(', ')})` : '';
        // A missing property is reported at its own path, where a client looks for it.
        const path = e.keyword === 'required' ? `${e.instancePath}/${String(e.params?.missingProperty)}` : e.instancePath || '/';
        out.push({ path, message: `${e.message ?? e.keyword}${extra}` });
      }
    }
    const { key, idempotencyKey } = route.cfg;
    const told = new Set(out.map((v) => v.path));
    const keyPath = key && `/${key.replace(/\./g, '/')}`;
    const idPath = idempotencyKey && `/${idempotencyKey.replace(/\./g, '/')}`;
    if (key && keyPath && !told.has(keyPath) && scalarText(fieldAt(ev, route.keyPath!)) === null) out.push({ path: keyPath, message: `the key field ${key} is missing or not a string, number or boolean` });
    if (idempotencyKey && idPath && !told.has(idPath) && scalarText(fieldAt(ev, route.idPath!)) === null) out.push({ path: idPath, message: `the idempotency key ${idempotencyKey} is missing or not a string or number` });
    return out;
  }

  private async write(route: Route, events: unknown[], raw: Buffer[] | undefined): Promise<{ status: number; body: unknown }> {
    const r = route.cfg;
    const now = Date.now();
    const results: ({ index: number; status: 'accepted' | 'duplicate' } | { index: number; status: 'invalid'; errors: Violation[] })[] = [];
    const invalid: { index: number; errors: Violation[] }[] = [];
    events.forEach((ev, index) => {
      const v = this.violations(route, ev);
      if (v.length) invalid.push({ index, errors: v });
    });
    route.events.invalid.inc(invalid.length);
    if (invalid.length && (r.onInvalid === 'reject' || !r.batch || invalid.length === events.length)) {
      const body = r.batch ? { error: `${invalid.length} of ${events.length} events are invalid; nothing was written`, invalid } : { error: 'the event is invalid; nothing was written', violations: invalid[0].errors };
      throw new HttpProblem(400, body.error, r.batch ? { invalid } : { violations: invalid[0].errors });
    }
    const bad = new Set(invalid.map((x) => x.index));
    // Idempotency: ids taken before, ids whose commit is running (wait for it), and repeats within this request.
    const fresh: { index: number; ev: unknown; id: string | null }[] = [];
    const seenHere = new Set<string>();
    const waits: { index: number; p: Promise<boolean>; id: string; ev: unknown }[] = [];
    for (let i = 0; i < events.length; i++) {
      if (bad.has(i)) continue;
      const id = route.idPath ? scalarText(fieldAt(events[i], route.idPath)) : null;
      if (id !== null) {
        if (seenHere.has(id)) {
          results.push({ index: i, status: 'duplicate' });
          continue;
        }
        seenHere.add(id);
        const known = this.ids.lookup(r.topic, id, now);
        if (known === 'duplicate') {
          results.push({ index: i, status: 'duplicate' });
          continue;
        }
        if (known) {
          waits.push({ index: i, p: known, id, ev: events[i] });
          continue;
        }
      }
      fresh.push({ index: i, ev: events[i], id });
    }
    // A retry that raced its original: the original's commit decides.
    for (const w of waits) {
      if (await w.p) results.push({ index: w.index, status: 'duplicate' });
      else fresh.push({ index: w.index, ev: w.ev, id: w.id });
    }
    if (fresh.length) {
      let bytes = 0;
      const out: PendingEvent[] = fresh.map(({ ev, index }) => {
        const value = raw?.[index] ?? JSON.stringify(ev);
        const key = route.keyPath ? scalarText(fieldAt(ev, route.keyPath)) : null;
        bytes += value.length + (key?.length ?? 0) + 32;
        return { topic: r.topic, record: { key, value, timestamp: now } };
      });
      let settle!: (ok: boolean) => void;
      const committed = new Promise<boolean>((res) => (settle = res));
      // Each id maps to this commit until it ends; settle() touches only ids still mapped to it.
      for (const f of fresh) if (f.id !== null) this.ids.reserve(r.topic, f.id, committed);
      let ok = false;
      try {
        await this.commit.write(out, bytes);
        ok = true;
      } catch (e) {
        this.o.logger.warn('a log commit of the gateway failed; its requests were answered 503', { route: r.path, error: (e as Error).message });
        throw new HttpProblem(503, `the log did not take the events (${(e as Error).message}); nothing of this request was written: retry`, {}, { 'retry-after': '1' });
      } finally {
        for (const f of fresh) if (f.id !== null) this.ids.settle(r.topic, f.id, committed, ok, now);
        settle(ok);
        this.dedupeGauge.set(this.ids.size);
        if (this.ids.evicted) {
          this.evictedCounter.inc(this.ids.evicted);
          this.ids.evicted = 0;
        }
      }
      for (const f of fresh) results.push({ index: f.index, status: 'accepted' });
    }
    const accepted = results.filter((x) => x.status === 'accepted').length;
    const duplicates = results.length - accepted;
    route.events.accepted.inc(accepted);
    route.events.duplicate.inc(duplicates);
    if (invalid.length) {
      for (const x of invalid) results.push({ index: x.index, status: 'invalid', errors: x.errors });
      results.sort((a, b) => a.index - b.index);
      return { status: 207, body: { accepted, duplicates, invalid: invalid.length, results } };
    }
    if (!r.batch) return { status: 200, body: { status: accepted ? 'accepted' : 'duplicate', topic: r.topic } };
    return { status: 200, body: { accepted, duplicates, topic: r.topic } };
  }
}
