/**
 * The built-in schema registry's HTTP server: the subset of Confluent Schema Registry's REST API
 * (v1 content type `application/vnd.schemaregistry.v1+json`) that serializers, deserializers and
 * tools use, over a RegistryStore. Answers and errors are Confluent's shapes: errors are
 * `{"error_code", "message"}` with its codes (40401 subject not found, 40402 version not found,
 * 40403 schema not found, 409 incompatible, 42201 invalid schema, 42202 invalid version,
 * 42203 invalid compatibility level, 50001 store error). Only AVRO schemas are served.
 *
 *   GET    /subjects                                   ?deleted=true
 *   GET    /subjects/{s}/versions                      ?deleted=true
 *   GET    /subjects/{s}/versions/{v|latest}           ?deleted=true
 *   GET    /subjects/{s}/versions/{v}/schema
 *   GET    /subjects/{s}/versions/{v}/referencedby     (always [])
 *   POST   /subjects/{s}/versions                      register → {"id"}
 *   POST   /subjects/{s}                               lookup → {"subject","id","version","schema"}
 *   DELETE /subjects/{s}                               ?permanent=true
 *   DELETE /subjects/{s}/versions/{v}                  ?permanent=true
 *   GET    /schemas/ids/{id}   /schemas/ids/{id}/schema   /schemas/ids/{id}/versions   /schemas/ids/{id}/subjects
 *   GET    /schemas/types
 *   POST   /compatibility/subjects/{s}/versions/{v|latest}   /compatibility/subjects/{s}/versions   ?verbose=true
 *   GET    /config   PUT /config   GET /config/{s} (?defaultToGlobal=true)   PUT /config/{s}   DELETE /config/{s}
 *   GET    /mode     GET /mode/{s}                     (always READWRITE)
 *   GET    /                                           {}
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { isCompatibilityLevel, COMPATIBILITY_LEVELS } from './compat.ts';
import { RegistryApiError, type RegistryStore } from './store.ts';

export const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const ACCEPTED_BODY_TYPES = ['application/vnd.schemaregistry.v1+json', 'application/vnd.schemaregistry+json', 'application/json', 'application/octet-stream'];

export interface RegistryServerOptions {
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  /** HTTP basic auth every request must carry (401 otherwise). */
  auth?: { username: string; password: string };
  /** The largest request body taken (default 4 MiB; 413 beyond). */
  maxBodyBytes?: number;
}

export interface RegistryServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

type Query = URLSearchParams;
type Handler = (m: string[], q: Query, body: () => Promise<Record<string, unknown>>) => unknown;

interface Route {
  method: string;
  re: RegExp;
  handler: Handler;
}

const SEG = '([^/]+)';

function flag(q: Query, name: string): boolean {
  return q.get(name) === 'true';
}

function schemaOf(body: Record<string, unknown>): string {
  const type = body.schemaType ?? 'AVRO';
  if (type !== 'AVRO') throw new RegistryApiError(422, 42201, `Invalid schema: schemaType ${JSON.stringify(type)} is not served by this registry (Sluice's built-in registry serves AVRO only)`);
  if (Array.isArray(body.references) && body.references.length > 0) throw new RegistryApiError(422, 42201, 'Invalid schema: schema references are not supported by this registry; inline the referenced types');
  if (typeof body.schema !== 'string') throw new RegistryApiError(422, 42201, `Invalid schema: the body needs "schema", the schema's JSON as a string (found ${body.schema === undefined ? 'none' : typeof body.schema})`);
  return body.schema;
}

function levelOf(body: Record<string, unknown>): (typeof COMPATIBILITY_LEVELS)[number] {
  const level = body.compatibility ?? body.compatibilityLevel;
  if (!isCompatibilityLevel(level)) throw new RegistryApiError(422, 42203, `Invalid compatibility level ${JSON.stringify(level)}: one of ${COMPATIBILITY_LEVELS.join(', ')}`);
  return level;
}

function intId(s: string): number {
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) throw new RegistryApiError(404, 40403, `Schema ${s} not found.`);
  return n;
}

function routes(store: RegistryStore): Route[] {
  const r: Route[] = [];
  const on = (method: string, path: string, handler: Handler) => r.push({ method, re: new RegExp(`^${path.replaceAll('{}', SEG)}/?$`), handler });
  on('GET', '', () => ({}));
  on('GET', '/subjects', (_, q) => store.listSubjects(flag(q, 'deleted')));
  on('GET', '/subjects/{}/versions', ([s], q) => store.versions(s, flag(q, 'deleted')).map((v) => v.version));
  on('GET', '/subjects/{}/versions/{}', ([s, v], q) => {
    const found = store.version(s, v, flag(q, 'deleted'));
    return { subject: found.subject, version: found.version, id: found.id, schema: found.schema };
  });
  on('GET', '/subjects/{}/versions/{}/schema', ([s, v], q) => JSON.parse(store.version(s, v, flag(q, 'deleted')).schema));
  on('GET', '/subjects/{}/versions/{}/referencedby', ([s, v]) => (store.version(s, v), []));
  on('POST', '/subjects/{}/versions', async ([s], _, body) => ({ id: (await store.register(s, schemaOf(await body()))).id }));
  on('POST', '/subjects/{}', async ([s], q, body) => {
    const found = store.lookup(s, schemaOf(await body()), flag(q, 'deleted'));
    return { subject: found.subject, id: found.id, version: found.version, schema: found.schema };
  });
  on('DELETE', '/subjects/{}', ([s], q) => store.deleteSubject(s, flag(q, 'permanent')));
  on('DELETE', '/subjects/{}/versions/{}', ([s, v], q) => store.deleteVersion(s, v, flag(q, 'permanent')));
  on('GET', '/schemas/ids/{}', ([id]) => ({ schema: store.schemaById(intId(id)) }));
  on('GET', '/schemas/ids/{}/schema', ([id]) => JSON.parse(store.schemaById(intId(id))));
  on('GET', '/schemas/ids/{}/versions', ([id], q) => store.usesOf(intId(id), flag(q, 'deleted')));
  on('GET', '/schemas/ids/{}/subjects', ([id], q) => [...new Set(store.usesOf(intId(id), flag(q, 'deleted')).map((u) => u.subject))]);
  on('GET', '/schemas/types', () => ['AVRO']);
  const compat = async (s: string, v: string | undefined, q: Query, body: () => Promise<Record<string, unknown>>) => {
    const messages = store.compatibilityMessages(s, schemaOf(await body()), v);
    return flag(q, 'verbose') ? { is_compatible: messages.length === 0, messages } : { is_compatible: messages.length === 0 };
  };
  on('POST', '/compatibility/subjects/{}/versions/{}', ([s, v], q, body) => compat(s, v, q, body));
  on('POST', '/compatibility/subjects/{}/versions', ([s], q, body) => compat(s, undefined, q, body));
  on('GET', '/config', () => ({ compatibilityLevel: store.config(null) }));
  on('PUT', '/config', async (_, __, body) => {
    const level = levelOf(await body());
    await store.setConfig(null, level);
    return { compatibility: level };
  });
  on('GET', '/config/{}', ([s], q) => {
    const level = store.config(s) ?? (flag(q, 'defaultToGlobal') ? store.config(null) : undefined);
    if (!level) throw new RegistryApiError(404, 40408, `Subject '${s}' does not have subject-level compatibility configured`);
    return { compatibilityLevel: level };
  });
  on('PUT', '/config/{}', async ([s], _, body) => {
    const level = levelOf(await body());
    await store.setConfig(s, level);
    return { compatibility: level };
  });
  on('DELETE', '/config/{}', async ([s]) => {
    const level = store.config(s);
    if (!level) throw new RegistryApiError(404, 40401, `Subject '${s}' not found.`);
    await store.setConfig(s, null);
    return { compatibilityLevel: level };
  });
  on('GET', '/mode', () => ({ mode: 'READWRITE' }));
  on('GET', '/mode/{}', () => ({ mode: 'READWRITE' }));
  return r;
}

function send(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': REGISTRY_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: number, message: string, extra?: Record<string, string>): void {
  send(res, status, { error_code: code, message }, extra);
}

function decodePart(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new RegistryApiError(400, 400, `The path part ${p} is not validly percent-encoded`);
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type && !ACCEPTED_BODY_TYPES.includes(type)) {
      req.resume();
      reject(new RegistryApiError(415, 415, `Unsupported content type ${type}: send ${REGISTRY_CONTENT_TYPE} or application/json`));
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new RegistryApiError(413, 413, `The request body of ${declared} bytes is larger than this registry takes (${limit} bytes)`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new RegistryApiError(413, 413, `The request body is larger than this registry takes (${limit} bytes)`));
        return;
      }
      chunks.push(c);
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return reject(new RegistryApiError(400, 400, 'The request has no body: send a JSON object, e.g. {"schema": "…"}'));
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        return reject(new RegistryApiError(400, 400, `The request body is not valid JSON: ${(e as Error).message}`));
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return reject(new RegistryApiError(400, 400, 'The request body must be a JSON object'));
      resolve(v as Record<string, unknown>);
    });
  });
}

/** Serves the registry API over `store`; resolves once listening. */
export async function startRegistryServer(store: RegistryStore, opts: RegistryServerOptions = {}): Promise<RegistryServer> {
  const table = routes(store);
  const limit = opts.maxBodyBytes ?? 4 << 20;
  const expected = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : null;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (expected && !sameSecret(req.headers.authorization ?? '', expected)) {
      req.resume();
      return sendError(res, 401, 401, 'Unauthorized: this registry needs HTTP basic auth with the configured user and password', { 'www-authenticate': 'Basic realm="sluice-schema-registry"' });
    }
    const url = new URL(req.url ?? '/', 'http://registry');
    // Matched on the raw path (so an encoded '/' stays inside its subject), then each part decoded.
    let pathMatched = false;
    for (const route of table) {
      const m = route.re.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const args = m.slice(1).map(decodePart);
      let bodyRead = false;
      const body = () => {
        bodyRead = true;
        return readBody(req, limit);
      };
      const result = await route.handler(args, url.searchParams, body);
      if (!bodyRead) req.resume();
      return send(res, 200, result);
    }
    req.resume();
    if (pathMatched) return sendError(res, 405, 405, `HTTP ${req.method} is not allowed on ${url.pathname}`);
    return sendError(res, 404, 404, `HTTP 404 Not Found: ${url.pathname} is not part of the schema registry API`);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) return res.destroy();
      if (e instanceof RegistryApiError) return sendError(res, e.status, e.errorCode, e.message);
      const err = e as { code?: string; message?: string };
      sendError(res, 500, 50001, `Error in the backend data store: ${err.code ? `[${err.code}] ` : ''}${err.message ?? String(e)}`);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
