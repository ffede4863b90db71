/**
 * The pipeline's HTTP endpoint: GET /health (200 while running; `degraded` while a sink holds a
 * table), /metrics (Prometheus text), /status (JSON: source position, snapshot progress, queue),
 * the operations console (`/` and `/ui/`, a page over the JSON API under `/api/`, see
 * docs/console.md) and named actions (`POST /api/actions/<name>`).
 *
 * Security: with `server.token` set, everything but /health and the console's static page wants
 * `Authorization: Bearer <token>` (compared as SHA-256 digests in constant time). Without a token
 * the server only listens on loopback (config validation refuses other hosts) and answers only
 * requests whose Host header names a loopback address or the configured host (a DNS-rebinding
 * page cannot read it). No CORS headers, a strict Content-Security-Policy, POST only with a JSON
 * body of at most 64 KiB, and every answer passes through `redact` (no password leaves it).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { redact, type Logger } from '../core/logger.ts';
import { isLoopback } from '../core/net.ts';

export interface ServerDeps {
  metrics: { render(): string };
  status(): unknown;
  /** Problems that make /health answer 503 (e.g. a failed sink); empty: healthy. */
  problems?(): string[];
  /** Tables sinks hold (`onError: skip_table`): /health still answers 200, with status `degraded`. */
  held?(): string[];
  logger: Logger;
  /**
   * Extension point: named operations served as `POST /api/actions/<name>` (JSON body in, JSON
   * answer out; 404 for an unknown name). A thrown error answers 500 with its message, or the
   * error's `status` (a number 400–599) when it has one.
   */
  actions?: Record<string, (body: unknown) => Promise<unknown>>;
  /** The console's data (src/server/console.ts); without it `/api/*` but actions answers 404. */
  console?: ConsoleApi;
}

/** What the console page reads and does, besides /status. */
export interface ConsoleApi {
  info(): unknown;
  topics(): Promise<unknown>;
  graph(): Promise<unknown>;
  lag(): unknown;
  dlq(q: { q?: string; from?: number; max?: number }): Promise<unknown>;
  replay(body: { processor?: string | string[]; from?: number }): Promise<unknown>;
  reconcile(): Promise<unknown>;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Bearer token required for everything but /health and the static page. */
  token?: string;
}

/** An error whose answer is `status` with `message` (bad input, a conflict), not 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const MAX_BODY = 64 * 1024;

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** The console's files: an explicit map from URL path to file, so no other file can be asked for. */
const UI_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
/** Beside this module: src/server/ui in a checkout, dist/server/ui in the package (copied by `npm run build`). */
const UI_DIR = new URL('./ui/', import.meta.url);
let uiCache: Map<string, Buffer> | null = null;
function uiFile(name: string): Buffer {
  uiCache ??= new Map();
  let b = uiCache.get(name);
  if (!b) uiCache.set(name, (b = readFileSync(new URL(name, UI_DIR))));
  return b;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function startServer(cfg: ServerConfig, deps: ServerDeps): Promise<{ port: number; close(): Promise<void> }> {
  const want = cfg.token ? digest(cfg.token) : null;
  const hostName = cfg.host.replace(/^\[|\]$/g, '').toLowerCase();
  const send = (res: ServerResponse, code: number, body: string | Buffer, type: string, headers: Record<string, string> = {}) => {
    if (res.headersSent) return;
    res.writeHead(code, { ...SECURITY_HEADERS, 'content-type': type, ...headers }).end(body);
  };
  const json = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) => send(res, code, redact(JSON.stringify(body, null, 2)), 'application/json', headers);

  const authorized = (req: IncomingMessage): boolean => {
    if (!want) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return !!m && timingSafeEqual(digest(m[1]), want);
  };
  /** Without a token, only requests addressed to loopback (or the configured host): no DNS rebinding. */
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (want) return true;
    const h = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    return isLoopback(h) || h === hostName;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const path = u.pathname;
    const method = req.method ?? 'GET';
    if (!hostAllowed(req)) return json(res, 421, { error: 'this server answers requests for its loopback address only; set server.token to serve other hosts' });
    if (path === '/health') {
      if (method !== 'GET' && method !== 'HEAD') return json(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      const problems = deps.problems?.() ?? [];
      const held = deps.held?.() ?? [];
      if (problems.length) return json(res, 503, { status: 'failing', problems, ...(held.length ? { held } : {}) });
      if (held.length) return json(res, 200, { status: 'degraded', held });
      return json(res, 200, { status: 'ok' });
    }
    const ui = Object.hasOwn(UI_FILES, path) ? UI_FILES[path] : undefined;
    if (ui) {
      // The page itself holds no data: it loads without the token and asks for it (docs/console.md).
      if (method !== 'GET' && method !== 'HEAD') return json(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      if (path === '/ui') return send(res, 308, '', 'text/plain', { location: '/ui/' });
      return send(res, 200, method === 'HEAD' ? '' : uiFile(ui.file), ui.type);
    }
    if (!authorized(req)) return json(res, 401, { error: 'unauthorized: send Authorization: Bearer <server.token>' }, { 'www-authenticate': 'Bearer realm="sluice"' });
    if (path.startsWith('/api/actions/')) {
      const name = decodeURIComponent(path.slice('/api/actions/'.length));
      const action = deps.actions && Object.hasOwn(deps.actions, name) ? deps.actions[name] : undefined;
      if (!action) return json(res, 404, { error: `no action ${JSON.stringify(name)}${deps.actions && Object.keys(deps.actions).length ? ` (actions: ${Object.keys(deps.actions).join(', ')})` : ''}` });
      if (method !== 'POST') return json(res, 405, { error: 'use POST' }, { allow: 'POST' });
      const body = await readJson(req);
      return json(res, 200, (await action(body)) ?? {});
    }
    const c = deps.console;
    const get = (): boolean => {
      if (method === 'GET' || method === 'HEAD') return true;
      json(res, 405, { error: 'use GET' }, { allow: 'GET, HEAD' });
      return false;
    };
    switch (path) {
      case '/metrics':
        if (get()) send(res, 200, redact(deps.metrics.render()), 'text/plain; version=0.0.4');
        return;
      case '/status':
      case '/api/status':
        if (get()) json(res, 200, deps.status());
        return;
    }
    if (c) {
      switch (path) {
        case '/api/info':
          if (get()) json(res, 200, c.info());
          return;
        case '/api/topics':
          if (get()) json(res, 200, await c.topics());
          return;
        case '/api/graph':
          if (get()) json(res, 200, await c.graph());
          return;
        case '/api/lag':
          if (get()) json(res, 200, c.lag());
          return;
        case '/api/reconcile':
          if (get()) json(res, 200, await c.reconcile());
          return;
        case '/api/dlq': {
          if (!get()) return;
          const num = (k: string) => {
            const v = u.searchParams.get(k);
            if (v === null || v === '') return undefined;
            const n = Number(v);
            if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `${k} must be a whole number, not ${JSON.stringify(v)}`);
            return n;
          };
          json(res, 200, await c.dlq({ q: u.searchParams.get('q') ?? undefined, from: num('from'), max: num('max') }));
          return;
        }
        case '/api/dlq/replay': {
          if (method !== 'POST') return json(res, 405, { error: 'use POST' }, { allow: 'POST' });
          const body = (await readJson(req)) as Record<string, unknown>;
          if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object: {"processor"?: name or [names], "from"?: offset}');
          const p = body.processor;
          if (p !== undefined && typeof p !== 'string' && !(Array.isArray(p) && p.every((x) => typeof x === 'string'))) throw new HttpError(400, 'processor must be a name or a list of names');
          if (body.from !== undefined && !(Number.isInteger(body.from) && (body.from as number) >= 0)) throw new HttpError(400, 'from must be an offset (a whole number)');
          json(res, 200, await c.replay({ processor: p as string | string[] | undefined, from: body.from as number | undefined }));
          return;
        }
      }
    }
    json(res, 404, { error: `not found: ${path}; try /health, /metrics, /status${c ? ', /ui/ or /api/…' : ''}` });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : typeof (e as { status?: unknown })?.status === 'number' && (e as { status: number }).status >= 400 && (e as { status: number }).status < 600 ? (e as { status: number }).status : 500;
      if (status === 500) deps.logger.warn('http request failed', { url: req.url, error: (e as Error)?.message });
      const code = (e as { code?: unknown })?.code;
      json(res, status, { error: e instanceof Error ? e.message : String(e), ...(typeof code === 'string' ? { code } : {}) }, status === 413 ? { connection: 'close' } : {});
      // A body too large is not read to its end: the connection goes.
      if (status === 413) req.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
  deps.logger.info('http server listening', { url: `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`, ...(deps.console ? { console: '/ui/' } : {}), auth: want ? 'bearer token' : 'none (loopback only)' });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The request's JSON body: a JSON content type (a CSRF guard: a form cannot send one), at most 64 KiB. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'send the body as JSON, with content-type: application/json');
  const declared = Number(req.headers['content-length']);
  if (declared > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
}
