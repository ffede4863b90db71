/**
 * One pull from an HTTP/JSON API: the request of a schedule, every page of its answer (cursor,
 * page number or `Link: rel="next"`), each request bounded by a timeout and retried with
 * exponential backoff when retrying can help. Returns the records of all pages, or throws a coded
 * error (SCHEDULE_*) saying what went wrong; header values and URL queries are never in a message.
 */
import type { Value } from '../core/event.ts';
import { SluiceError } from '../core/errors.ts';
import { redact } from '../core/logger.ts';
import { parseJson } from '../core/serde/parse.ts';
import { scheduleError } from './errors.ts';
import { isPull, type PullSchedule, type ScheduleConfig } from './spec.ts';

export interface PullStats {
  /** Pages read. */
  pages: number;
  /** HTTP requests sent, retries included. */
  attempts: number;
}

export interface PullOptions {
  retries: ScheduleConfig['retries'];
  maxRecords: number;
  /** Stops the pull (the pipeline stopping); the pull then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Filled in as the pull goes (also when it fails). */
  stats?: PullStats;
}

/** A URL as messages show it: without its query, which may hold a key. */
export function displayUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(an invalid URL)';
  }
}

/** Reads a JSON path (`a.b[0].c`, `$.a.b`, `a.0.c`); undefined where it leads nowhere. */
export function atPath(v: unknown, path: string): unknown {
  const steps = path
    .replace(/^\$\.?/, '')
    .split(/\.|\[(\d+)\]/)
    .filter((s) => s !== undefined && s !== '');
  let cur: unknown = v;
  for (const s of steps) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Array.isArray(cur) ? (/^\d+$/.test(s) ? cur[Number(s)] : undefined) : Object.hasOwn(cur, s) ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return cur;
}

/** The `rel="next"` target of a Link header, resolved against `base`. */
export function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) return new URL(m[1], base).href;
  }
  return undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    const onAbort = () => (clearTimeout(t), reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface Page {
  body: Value;
  link: string | null;
}

/** One request, once: the parsed answer or a coded error (retriable or not). */
async function requestOnce(s: PullSchedule, url: string, signal: AbortSignal | undefined): Promise<Page> {
  const r = s.request;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k] = String(v);
  let body: string | undefined;
  if (r.method === 'POST' && r.body !== undefined) {
    body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'accept')) headers.accept = 'application/json';
  const timeout = AbortSignal.timeout(r.timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const where = `${r.method} ${displayUrl(url)}`;
  const failed = (e: unknown): never => {
    if (signal?.aborted) throw signal.reason;
    if (timeout.aborted) throw scheduleError('SCHEDULE_TIMEOUT', `${where} gave no complete answer within ${r.timeoutMs} ms (request.timeoutMs): raise the timeout, or ask for smaller pages`);
    if (e instanceof SluiceError) throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    // Some causes name the whole URL (fetch's "…a URL that includes credentials: http://user:pass@…?key=…"): shown as displayUrl, like the rest of the message.
    const why = redact(String(cause?.code ?? cause?.message ?? (e as Error).message).split(String(url)).join(displayUrl(url)));
    throw scheduleError('SCHEDULE_NETWORK', `${where}: cannot reach the API (${why}); check the URL and that the host is reachable from here`, { cause: e });
  };
  let res: Response;
  try {
    res = await fetch(url, { method: r.method, headers, body, signal: both, redirect: 'follow' });
  } catch (e) {
    return failed(e);
  }
  let bytes: Buffer;
  try {
    bytes = await readBounded(res, r.maxResponseBytes, where);
  } catch (e) {
    return failed(e);
  }
  if (res.status < 200 || res.status > 299) {
    const retriable = res.status === 408 || res.status === 429 || res.status >= 500;
    const text = bytes.toString('utf8', 0, Math.min(bytes.length, 200)).replace(/\s+/g, ' ').trim();
    const hint = res.status === 401 || res.status === 403 ? ': check the auth header (request.headers) and its environment variable' : res.status === 404 ? ': check request.url' : retriable ? '' : ': check the request (url, method, body)';
    const err = scheduleError('SCHEDULE_HTTP', `${where} answered ${res.status} ${res.statusText}${text ? ` (${text})` : ''}${hint}`, { retriable });
    (err as SluiceError & { retryAfterMs?: number }).retryAfterMs = retryAfter(res.headers.get('retry-after'));
    throw err;
  }
  let parsed: Value;
  try {
    parsed = parseJson(bytes);
  } catch (e) {
    const head = bytes.toString('utf8', 0, Math.min(bytes.length, 60)).replace(/\s+/g, ' ');
    throw scheduleError('SCHEDULE_BAD_RESPONSE', `${where} answered with something that is not JSON (${res.headers.get('content-type') ?? 'no content-type'}, ${bytes.length} bytes, starting ${JSON.stringify(head)}): ${(e as Error).message.replace(/: the message is not valid JSON.*$/s, '')}; check request.url points at the JSON API`);
  }
  return { body: parsed, link: res.headers.get('link') };
}

function retryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  if (/^\d+$/.test(h.trim())) return Number(h.trim()) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function readBounded(res: Response, max: number, where: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => {});
    throw scheduleError('SCHEDULE_LIMIT', `${where} answers ${declared} bytes, more than request.maxResponseBytes (${max}); raise it or ask for smaller pages`);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => {});
      throw scheduleError('SCHEDULE_LIMIT', `${where} answered more than request.maxResponseBytes (${max} bytes); raise it or ask for smaller pages`);
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, n);
}

/** One request with its retries. */
async function request(s: PullSchedule, url: string, o: PullOptions, stats: PullStats): Promise<Page> {
  const { attempts, backoffMs, maxBackoffMs } = o.retries;
  for (let attempt = 1; ; attempt++) {
    stats.attempts++;
    try {
      return await requestOnce(s, url, o.signal);
    } catch (e) {
      if (o.signal?.aborted) throw e;
      const retriable = e instanceof SluiceError && e.retriable;
      if (!retriable || attempt >= attempts) {
        if (retriable && e instanceof SluiceError) e.message += ` (after ${attempt} attempt${attempt > 1 ? 's' : ''}; retries.attempts is ${attempts})`;
        throw e;
      }
      const backoff = Math.min(backoffMs * 2 ** (attempt - 1), maxBackoffMs);
      const asked = (e as { retryAfterMs?: number }).retryAfterMs;
      await sleep(asked !== undefined && asked <= maxBackoffMs ? Math.max(asked, backoff) : backoff, o.signal);
    }
  }
}

/** The records of one answer, at `request.records` (or the answer itself). */
function recordsOf(s: PullSchedule, body: Value, url: string): Value[] {
  const path = s.request.records;
  if (path === undefined) {
    if (Array.isArray(body)) return body;
    if (body !== null && typeof body === 'object') return [body];
    throw scheduleError('SCHEDULE_BAD_RESPONSE', `${s.request.method} ${displayUrl(url)} answered ${body === null ? 'null' : `a ${typeof body}`}, not a list or an object of records; set request.records to where the records are`);
  }
  const v = atPath(body, path);
  if (Array.isArray(v)) return v as Value[];
  const what = v === undefined ? 'nothing there' : v === null ? 'null' : `a ${typeof v}`;
  const keys = body !== null && typeof body === 'object' && !Array.isArray(body) ? ` (the answer's keys: ${Object.keys(body).slice(0, 10).join(', ')})` : '';
  throw scheduleError('SCHEDULE_BAD_RESPONSE', `request.records is ${path}, but ${s.request.method} ${displayUrl(url)} has ${what} at that path, not a list${keys}`);
}

/** Every record of every page of the schedule's request. */
export async function pull(schedule: ScheduleConfig, o: PullOptions): Promise<Value[]> {
  if (!isPull(schedule)) throw new Error(`bug: schedule ${schedule.name} has no request to pull`);
  const s: PullSchedule = schedule;
  const stats = o.stats ?? { pages: 0, attempts: 0 };
  const p = s.request.pagination;
  const out: Value[] = [];
  let url = s.request.url;
  let page = p.start;
  let lastCursor: string | undefined;
  if (p.type === 'page') url = withParam(url, p.param!, String(page));
  for (;;) {
    const answer = await request(s, url, o, stats);
    stats.pages++;
    const recs = recordsOf(s, answer.body, url);
    for (const r of recs) out.push(r);
    if (out.length > o.maxRecords) throw scheduleError('SCHEDULE_LIMIT', `${s.name}: the API gave more than maxRecords (${o.maxRecords}) records in this run (${out.length} after ${stats.pages} page${stats.pages > 1 ? 's' : ''}); raise maxRecords or narrow the request`);
    let next: string | undefined;
    if (p.type === 'cursor') {
      const c = atPath(answer.body, p.path!);
      if (c !== undefined && c !== null && c !== '' && c !== false) {
        if (typeof c !== 'string' && typeof c !== 'number' && typeof c !== 'bigint') throw scheduleError('SCHEDULE_BAD_RESPONSE', `the cursor at ${p.path} of ${displayUrl(url)} is ${Array.isArray(c) ? 'a list' : `a ${typeof c}`}, not a text or a number; check request.pagination.path`);
        const cursor = String(c);
        if (cursor === lastCursor) throw scheduleError('SCHEDULE_BAD_RESPONSE', `${displayUrl(url)} gave the same cursor twice in a row (at ${p.path}); it would be read forever: check request.pagination.param and path`);
        lastCursor = cursor;
        if (recs.length > 0) next = withParam(s.request.url, p.param!, cursor);
      }
    } else if (p.type === 'page') {
      if (recs.length > 0 && stats.pages < p.maxPages) next = withParam(s.request.url, p.param!, String(++page));
      else return out;
    } else if (p.type === 'link') {
      next = nextLink(answer.link, url);
      if (next === url) throw scheduleError('SCHEDULE_BAD_RESPONSE', `${displayUrl(url)} names itself as its next page (Link rel="next"); it would be read forever`);
    }
    if (next === undefined) return out;
    if (stats.pages >= p.maxPages) throw scheduleError('SCHEDULE_LIMIT', `${s.name}: the API still names a next page after request.pagination.maxPages (${p.maxPages}) pages; raise maxPages or narrow the request (nothing of this run is written)`);
    url = next;
  }
}

function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.href;
}
