/**
 * A client of the Confluent Schema Registry REST API: Confluent's own registry, Apicurio Registry's
 * Confluent-compatible API (`http://host:8080/apis/ccompat/v7`), Redpanda's, or Sluice's built-in
 * one. Registering a schema, fetching one by id (cached: an id's schema never changes), the latest
 * version of a subject, and compatibility checks.
 *
 * Credentials go in `auth` or in the URL's user info (`http://user:pass@host:8081`); they are sent
 * as HTTP basic auth and never appear in messages, which name the URL without them. Each request
 * has a timeout (default 10 s). A registry that does not answer is REGISTRY_UNREACHABLE
 * (retriable); an error answer is REGISTRY_HTTP with its status, Confluent error code and message
 * (retriable for 5xx and 429).
 */
import { parseSchemaText, stringifySchema, type AvroSchema } from '../core/avro/index.ts';
import { registryError } from './errors.ts';

/** Confluent's API content type (v1), what the client sends and asks for. */
const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export interface RegistryClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8081` or `http://host:8080/apis/ccompat/v7`. */
  url: string;
  auth?: { username: string; password: string };
  /** Per request (default 10000 ms). */
  timeoutMs?: number;
}

export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  /** The schema's JSON text as the registry holds it. */
  schema: string;
}

export interface CompatibilityAnswer {
  compatible: boolean;
  /** The registry's reasons (with verbose answers; may be empty). */
  messages: string[];
}

/** The Confluent error answer a REGISTRY_HTTP error carries. */
export interface RegistryHttpDetail {
  status: number;
  errorCode: number | null;
}

export class SchemaRegistryClient {
  /** The URL without credentials, as messages name it. */
  readonly url: string;
  private readonly authHeader: string | undefined;
  private readonly timeoutMs: number;
  private readonly byId = new Map<number, Promise<string>>();
  private readonly registered = new Map<string, number>();

  constructor(opts: RegistryClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw registryError('REGISTRY_HTTP', `the schema registry URL ${JSON.stringify(opts.url.replace(/\/\/[^@/]*@/, '//***@'))} is not a URL (write e.g. http://127.0.0.1:8081)`, { retriable: false });
    }
    let auth = opts.auth;
    if (u.username || u.password) {
      auth ??= { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
      u.username = '';
      u.password = '';
    }
    this.url = u.toString().replace(/\/+$/, '');
    this.authHeader = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : undefined;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Registers `schema` under `subject` (or finds it there); returns its global id. Cached per subject and schema. */
  async register(subject: string, schema: AvroSchema | string): Promise<number> {
    const text = typeof schema === 'string' ? schema : stringifySchema(schema);
    const key = `${subject}\u0000${text}`;
    const known = this.registered.get(key);
    if (known !== undefined) return known;
    const r = (await this.request('POST', `/subjects/${enc(subject)}/versions`, { schema: text })) as { id?: unknown };
    const id = Number(r.id);
    if (!Number.isInteger(id)) throw this.badAnswer(`/subjects/${enc(subject)}/versions`, r);
    this.registered.set(key, id);
    this.byId.set(id, Promise.resolve(text));
    return id;
  }

  /** The schema text of global id `id` (cached). */
  getSchemaText(id: number): Promise<string> {
    let p = this.byId.get(id);
    if (!p) {
      p = this.request('GET', `/schemas/ids/${id}`).then((r) => {
        const s = (r as { schema?: unknown }).schema;
        if (typeof s !== 'string') throw this.badAnswer(`/schemas/ids/${id}`, r);
        return s;
      });
      this.byId.set(id, p);
      p.catch(() => this.byId.delete(id));
    }
    return p;
  }

  /** The parsed schema of global id `id` (read leniently, as a reader of others' schemas should). */
  async getById(id: number): Promise<AvroSchema> {
    return parseSchemaText(await this.getSchemaText(id), { mode: 'lenient' });
  }

  /** The latest live version of `subject` (REGISTRY_HTTP 404/40401 when there is none). */
  async latest(subject: string): Promise<SubjectVersion> {
    return this.version(subject, 'latest');
  }

  async version(subject: string, version: number | 'latest'): Promise<SubjectVersion> {
    const path = `/subjects/${enc(subject)}/versions/${version}`;
    const r = (await this.request('GET', path)) as Partial<SubjectVersion>;
    if (typeof r.schema !== 'string' || !Number.isInteger(r.id) || !Number.isInteger(r.version)) throw this.badAnswer(path, r);
    return { subject: r.subject ?? subject, version: r.version!, id: r.id!, schema: r.schema };
  }

  async subjects(): Promise<string[]> {
    return (await this.request('GET', '/subjects')) as string[];
  }

  async versions(subject: string): Promise<number[]> {
    return (await this.request('GET', `/subjects/${enc(subject)}/versions`)) as number[];
  }

  /** Whether `schema` may be registered under `subject` (against `version`, default the subject's level over all versions). */
  async checkCompatibility(subject: string, schema: AvroSchema | string, version: number | 'latest' | 'all' = 'all'): Promise<CompatibilityAnswer> {
    const text = typeof schema === 'string' ? schema : stringifySchema(schema);
    const path = version === 'all' ? `/compatibility/subjects/${enc(subject)}/versions?verbose=true` : `/compatibility/subjects/${enc(subject)}/versions/${version}?verbose=true`;
    const r = (await this.request('POST', path, { schema: text })) as { is_compatible?: unknown; messages?: unknown };
    if (typeof r.is_compatible !== 'boolean') throw this.badAnswer(path, r);
    return { compatible: r.is_compatible, messages: Array.isArray(r.messages) ? r.messages.map(String) : [] };
  }

  /** The compatibility level of `subject` (its own, else the global one), or the global one. */
  async compatibilityLevel(subject?: string): Promise<string> {
    const r = (await this.request('GET', subject === undefined ? '/config' : `/config/${enc(subject)}?defaultToGlobal=true`)) as { compatibilityLevel?: string; compatibility?: string };
    return r.compatibilityLevel ?? r.compatibility ?? 'BACKWARD';
  }

  async setCompatibilityLevel(level: string, subject?: string): Promise<void> {
    await this.request('PUT', subject === undefined ? '/config' : `/config/${enc(subject)}`, { compatibility: level });
  }

  async deleteSubject(subject: string, permanent = false): Promise<number[]> {
    return (await this.request('DELETE', `/subjects/${enc(subject)}${permanent ? '?permanent=true' : ''}`)) as number[];
  }

  /** One API call; the parsed JSON answer. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const where = `${method} ${this.url}${path}`;
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: {
          accept: `${REGISTRY_CONTENT_TYPE}, application/json`,
          ...(body !== undefined ? { 'content-type': REGISTRY_CONTENT_TYPE } : {}),
          ...(this.authHeader ? { authorization: this.authHeader } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      const why = err.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      throw registryError('REGISTRY_UNREACHABLE', `the schema registry at ${this.url} did not answer ${where} (${why}): check that it runs and the URL`);
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json as { error_code?: unknown; message?: unknown } | undefined;
      const code = typeof e?.error_code === 'number' ? e.error_code : null;
      const msg = typeof e?.message === 'string' ? e.message : text.slice(0, 300) || res.statusText;
      const hint = res.status === 401 || res.status === 403 ? ' (check the registry credentials)' : '';
      const err = registryError('REGISTRY_HTTP', `the schema registry answered ${where} with HTTP ${res.status}${code !== null ? ` error ${code}` : ''}: ${msg}${hint}`, { retriable: res.status >= 500 || res.status === 429 });
      (err as unknown as { detail: RegistryHttpDetail }).detail = { status: res.status, errorCode: code };
      throw err;
    }
    if (json === undefined) throw this.badAnswer(path, text.slice(0, 200));
    return json;
  }

  private badAnswer(path: string, got: unknown) {
    return registryError('REGISTRY_HTTP', `the schema registry at ${this.url} answered ${path} with something that is not the Confluent API's answer: ${JSON.stringify(got)?.slice(0, 200)}`, { retriable: false });
  }
}

/** The Confluent error code of a REGISTRY_HTTP error (null for other errors). */
export function registryErrorCode(e: unknown): number | null {
  return (e as { detail?: RegistryHttpDetail } | null)?.detail?.errorCode ?? null;
}

function enc(subject: string): string {
  return encodeURIComponent(subject);
}
