/**
 * One definition per config key, from which everything else is derived: the JSON Schema the YAML is
 * validated against (and `sluice schema` prints), the TypeScript type of the loaded config (with
 * defaults applied: `Infer<typeof field>`), the defaults themselves, the reference tables in
 * docs/config.md, and the unit parsing of sizes and durations.
 *
 * Why not a schema library: the loader's error messages point at file:line:column and name the
 * allowed keys of the component at hand, which needs the JSON Schema laid out as `if type = X then
 * {X's keys}` per component; and a loaded config has two types (what a user may write, where
 * defaulted keys are optional, and what the code reads, where they are filled in, some computed
 * from the pipeline name). Both fit in this small builder; a library would need its own
 * post-processing for each.
 */
import { coreError } from '../core/errors.ts';

export type JsonSchema = Record<string, any>;
type Presence = 'required' | 'default' | 'optional';

/** What a field's defaults and conversions may depend on. */
export interface ResolveContext {
  /** The whole config as written (validated), e.g. for the pipeline name. */
  root: any;
  /** Path of the value being resolved, e.g. ['sinks', '0', 'batch']. */
  path: string[];
  /** The config file's name (for messages and relative paths). */
  fileName: string;
}

export interface FieldDoc {
  description?: string;
  /** How the type reads in the docs (`integer 1–65535`, `size`, …). */
  type: string;
  /** How the default reads in the docs when it is computed (`sluice_<name>`). */
  defaultText?: string;
}

type Default<T> = T | ((ctx: ResolveContext) => T);

export class Field<T, P extends Presence = Presence> {
  declare readonly _out: T;
  constructor(
    readonly presence: P,
    readonly schema: JsonSchema,
    readonly doc: FieldDoc,
    /** Turns a validated input value into the config value (undefined input: apply the default). */
    readonly resolveValue: (raw: any, ctx: ResolveContext) => T,
    /** Fields below this one, for docs (objects) or per type (tagged unions). */
    readonly children?: { fields?: Record<string, Field<any>>; items?: Field<any>; variants?: Record<string, Field<any>>; tag?: string; defaultVariant?: string },
    /** Normalizes a written value before validation (sizes, durations); returns an error message or undefined. */
    readonly normalize?: (raw: any) => { value?: any; error?: string },
  ) {}

  /** Absent values take `v` (or what `v` computes from the config). */
  default(v: Default<T> | (T extends object ? Record<string, unknown> : never), text?: string): Field<T, 'default'> {
    const schema = typeof v === 'function' || v === undefined ? { ...this.schema } : { ...this.schema, default: v };
    const resolve = this.resolveValue;
    return new Field<T, 'default'>('default', schema, { ...this.doc, defaultText: text ?? (typeof v === 'function' ? undefined : docValue(v)) }, (raw, ctx) => (raw === undefined ? (typeof v === 'function' ? (v as (c: ResolveContext) => T)(ctx) : resolve(structuredClone(v), ctx)) : resolve(raw, ctx)), this.children, this.normalize);
  }

  /** May be absent; then the config value is undefined. */
  optional(text?: string): Field<T | undefined, 'optional'> {
    const resolve = this.resolveValue;
    return new Field<T | undefined, 'optional'>('optional', this.schema, { ...this.doc, defaultText: text ?? 'none' }, (raw, ctx) => (raw === undefined ? undefined : resolve(raw, ctx)), this.children, this.normalize);
  }

  describe(description: string): Field<T, P> {
    return new Field<T, P>(this.presence, { ...this.schema, description }, { ...this.doc, description }, this.resolveValue, this.children, this.normalize);
  }

  /** Runs `fn` on the resolved value (e.g. to convert it), keeping schema and docs. */
  map<U>(fn: (v: T, ctx: ResolveContext) => U): Field<U, P> {
    const resolve = this.resolveValue;
    return new Field<U, P>(this.presence, this.schema, this.doc, (raw, ctx) => fn(resolve(raw, ctx), ctx), this.children, this.normalize) as Field<U, P>;
  }

  resolve(raw: unknown, ctx: ResolveContext): T {
    return this.resolveValue(raw, ctx);
  }
}

export type Infer<F> = F extends Field<infer T, any> ? T : never;
type Shape = Record<string, Field<any, Presence>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOut<S extends Shape> = Simplify<
  { [K in keyof S as S[K] extends Field<any, 'optional'> ? never : K]: Infer<S[K]> } & { [K in keyof S as S[K] extends Field<any, 'optional'> ? K : never]?: Infer<S[K]> }
>;

function docValue(v: unknown): string {
  if (Array.isArray(v)) return v.length === 0 ? '`[]`' : '`' + JSON.stringify(v) + '`';
  return '`' + (typeof v === 'string' ? v : JSON.stringify(v)) + '`';
}

const id = <T>(raw: T): T => raw;
const withDesc = (s: JsonSchema, d?: string): JsonSchema => (d ? { ...s, description: d } : s);

export interface Opts {
  description?: string;
}

export function string(o: Opts & { pattern?: string; minLength?: number; hint?: string; type?: string } = {}): Field<string, 'required'> {
  const s: JsonSchema = { type: 'string' };
  if (o.pattern) s.pattern = o.pattern;
  if (o.minLength !== undefined) s.minLength = o.minLength;
  if (o.hint) s['x-hint'] = o.hint;
  return new Field('required', withDesc(s, o.description), { description: o.description, type: o.type ?? (o.pattern ? `string \`${o.pattern.replace(/^\^|\$$/g, '')}\`` : 'string') }, id);
}

export function integer(o: Opts & { min?: number; max?: number } = {}): Field<number, 'required'> {
  const s: JsonSchema = { type: 'integer' };
  if (o.min !== undefined) s.minimum = o.min;
  if (o.max !== undefined) s.maximum = o.max;
  const range = o.min !== undefined && o.max !== undefined ? ` ${o.min}–${o.max}` : o.min !== undefined ? ` ≥ ${o.min}` : '';
  return new Field('required', withDesc(s, o.description), { description: o.description, type: `integer${range}` }, id);
}

export function boolean(o: Opts = {}): Field<boolean, 'required'> {
  return new Field('required', withDesc({ type: 'boolean' }, o.description), { description: o.description, type: 'boolean' }, id);
}

export function oneOf<const V extends readonly (string | number)[]>(values: V, o: Opts = {}): Field<V[number], 'required'> {
  return new Field('required', withDesc({ enum: [...values] }, o.description), { description: o.description, type: values.map((v) => '`' + v + '`').join(' \\| ') }, id);
}

/** Any JSON value of the given JSON type, kept as written (checked elsewhere, e.g. document templates). */
export function raw<T = unknown>(o: Opts & { jsonType?: string; type?: string } = {}): Field<T, 'required'> {
  return new Field('required', withDesc(o.jsonType ? { type: o.jsonType } : {}, o.description), { description: o.description, type: o.type ?? 'any' }, id);
}

export function list<T>(item: Field<T, any>, o: Opts & { uniqueItems?: boolean; minItems?: number; type?: string } = {}): Field<T[], 'required'> {
  const s: JsonSchema = { type: 'array', items: item.schema };
  if (o.uniqueItems) s.uniqueItems = true;
  if (o.minItems !== undefined) s.minItems = o.minItems;
  return new Field('required', withDesc(s, o.description), { description: o.description, type: o.type ?? `list of ${item.doc.type}` }, (v: any[], ctx) => v.map((x, i) => item.resolve(x, { ...ctx, path: [...ctx.path, String(i)] })), { items: item });
}

export function object<S extends Shape>(fields: S, o: Opts & { type?: string } = {}): Field<ObjectOut<S>, 'required'> {
  const required = Object.entries(fields).filter(([, f]) => f.presence === 'required').map(([k]) => k);
  const s: JsonSchema = { type: 'object', additionalProperties: false, properties: Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.schema])) };
  if (required.length) s.required = required;
  const resolve = (v: any, ctx: ResolveContext) => {
    const src = v ?? {};
    const out: Record<string, unknown> = {};
    for (const [k, f] of Object.entries(fields)) {
      const r = f.resolve(src[k], { ...ctx, path: [...ctx.path, k] });
      if (r !== undefined || f.presence !== 'optional') out[k] = r;
    }
    return out as ObjectOut<S>;
  };
  return new Field('required', withDesc(s, o.description), { description: o.description, type: o.type ?? 'mapping' }, resolve, { fields });
}

/**
 * A mapping whose keys depend on its `type` (a source, a sink, …; the tag key may be another, e.g.
 * the log's `backend`): one variant per type, each an object field. The JSON Schema says `if type is
 * X then X's keys`, so errors name the keys of the variant the user wrote.
 */
export function tagged<V extends Record<string, Field<any, any>>, const Tag extends string = 'type'>(
  variants: V,
  o: Opts & { tag?: Tag; tagDescription?: string; defaultVariant?: keyof V & string } = {},
): Field<{ [K in keyof V]: Simplify<{ [T in Tag]: K } & Infer<V[K]>> }[keyof V], 'required'> {
  const tag = (o.tag ?? 'type') as Tag;
  const types = Object.keys(variants);
  const s: JsonSchema = {
    type: 'object',
    ...(o.defaultVariant ? {} : { required: [tag] }),
    properties: { [tag]: withDesc({ enum: types }, o.tagDescription) },
    allOf: types.map((t) => {
      const v = variants[t].schema;
      const is: JsonSchema = { required: [tag], properties: { [tag]: { const: t } } };
      return { if: t === o.defaultVariant ? { anyOf: [is, { not: { required: [tag] } }] } : is, then: { ...v, properties: { [tag]: {}, ...v.properties } } };
    }),
  };
  const variantOf = (v: any): string => v?.[tag] ?? o.defaultVariant;
  const resolve = (v: any, ctx: ResolveContext) => {
    const t = variantOf(v);
    return { [tag]: t, ...variants[t].resolve(v ?? {}, ctx) };
  };
  return new Field('required', withDesc(s, o.description), { description: o.description, type: types.map((t) => '`' + t + '`').join(' \\| ') }, resolve as any, { variants, tag, defaultVariant: o.defaultVariant });
}

/** The variant of a tagged field a written value selects (by its tag, or the default). */
export function variantOf(f: Field<any>, v: any): Field<any> | undefined {
  const c = f.children;
  if (!c?.variants) return undefined;
  const t = v && typeof v === 'object' && !Array.isArray(v) ? (v[c.tag ?? 'type'] ?? c.defaultVariant) : undefined;
  return t === undefined ? undefined : c.variants[t];
}

// ---------- units ----------

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1e3, KIB: 1024, MB: 1e6, MIB: 1 << 20, GB: 1e9, GIB: 1 << 30 };
const DURATION_UNITS: Record<string, number> = { MS: 1, S: 1000, M: 60_000, H: 3_600_000, D: 86_400_000 };
const SIZE_HINT = 'must be a size such as 1048576 or "64MiB"';
const DURATION_PATTERN = '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$';
const DURATION_HINT = 'must be a duration such as 500, "500ms" or "10s"';

function unitField(units: Record<string, number>, defUnit: string, pattern: string, hint: string, type: string, o: Opts): Field<number, 'required'> {
  const s = withDesc({ anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern }], 'x-hint': hint }, o.description);
  const normalize = (v: any) => {
    if (typeof v !== 'string') return { value: v };
    const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v.trim());
    const unit = (m?.[2] || defUnit).toUpperCase();
    if (!m || !(unit in units)) return { error: `${hint} (got ${JSON.stringify(v)})` };
    return { value: Math.round(Number(m[1]) * units[unit]) };
  };
  return new Field('required', s, { description: o.description, type }, (v) => (typeof v === 'string' ? (normalize(v).value as number) : v), undefined, normalize);
}

/** Bytes: a number, or a string with a unit (`64MiB`, `1.5GB`). */
export const size = (o: Opts = {}) => unitField(SIZE_UNITS, 'B', '^\\d+(\\.\\d+)?\\s*(B|KB|KiB|MB|MiB|GB|GiB)?$', SIZE_HINT, 'size', o);
/** Milliseconds: a number, or a string with a unit (`500ms`, `10s`, `7d`). */
export const duration = (o: Opts = {}) => unitField(DURATION_UNITS, 'MS', '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$', DURATION_HINT, 'duration', o);

/** Milliseconds that may be negative (an offset before a time): `-5m`, `10s`, `0`. */
export function signedDuration(o: Opts = {}): Field<number, 'required'> {
  const hint = 'must be a duration such as 0, "-5m" or "10s"';
  const sch = withDesc({ anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?$' }], 'x-hint': hint }, o.description);
  const normalize = (v: any) => {
    if (typeof v !== 'string') return { value: v };
    const m = /^(-?)(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v.trim());
    const unit = (m?.[3] || 'MS').toUpperCase();
    if (!m || !(unit in DURATION_UNITS)) return { error: `${hint} (got ${JSON.stringify(v)})` };
    return { value: (m[1] ? -1 : 1) * Math.round(Number(m[2]) * DURATION_UNITS[unit]) };
  };
  return new Field('required', sch, { description: o.description, type: 'duration' }, (v) => (typeof v === 'string' ? (normalize(v).value as number) : v), undefined, normalize);
}

// ---------- connections ----------

export type PostgresConnectionConfig = ConnectionConfig;
export interface ConnectionConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** How long connecting (TCP, TLS, authentication) may take; absent: DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** How long one statement may wait for its answer; absent: DEFAULT_STATEMENT_TIMEOUT_MS. */
  statementTimeoutMs?: number;
}

/** A server that accepts TCP but does not complete the handshake in this long is hung or unreachable. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** The longest a statement may go unanswered before its connection is given up (and retried). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 300_000;

/** A connection's connect and statement timeouts, with the defaults filled in. */
export function timeoutsOf(c: { connectTimeoutMs?: number; statementTimeoutMs?: number }): { connectMs: number; statementMs: number } {
  return { connectMs: c.connectTimeoutMs || DEFAULT_CONNECT_TIMEOUT_MS, statementMs: c.statementTimeoutMs || DEFAULT_STATEMENT_TIMEOUT_MS };
}

/** The timeout keys a connection takes, as mapping keys and as URL parameters (`?statementTimeout=10m`). */
const TIMEOUT_KEYS = { connectTimeout: 'connectTimeoutMs', statementTimeout: 'statementTimeoutMs' } as const;

function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(v.trim());
  if (!m) return undefined;
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[(m[2] || 'ms').toUpperCase()]);
  return ms > 0 ? ms : undefined;
}

/**
 * A database connection written as a URL (`postgres://user:password@host:port/database`) or as a
 * mapping of its parts. Unparseable URLs and URLs without a required database are reported at their
 * line, with the password masked.
 */
export function connection<const D extends boolean>(o: {
  schemes: string[];
  defaultPort: number;
  defaultUser: string;
  /** Whether the database must be named (a MySQL source may leave it out). */
  database: D;
  /** The URL form, for messages: `postgres://user:password@host:port/database`. */
  example: string;
  description?: string;
}): Field<D extends true ? ConnectionConfig : Omit<ConnectionConfig, 'database'> & { database?: string }, 'required'> {
  const pattern = `^(${o.schemes.join('|')})://`;
  const mapping: JsonSchema = {
    type: 'object',
    additionalProperties: false,
    ...(o.database ? { required: ['database'] } : {}),
    properties: {
      host: { type: 'string', description: 'Server host.' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'Server port.' },
      user: { type: 'string' },
      password: { type: 'string', description: 'Use ${VAR} rather than writing it into the file.' },
      database: { type: 'string' },
      connectTimeout: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: DURATION_PATTERN }], description: `How long connecting may take (default ${DEFAULT_CONNECT_TIMEOUT_MS / 1000}s).` },
      statementTimeout: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: DURATION_PATTERN }], description: `How long one statement may go unanswered (default ${DEFAULT_STATEMENT_TIMEOUT_MS / 60_000}m).` },
    },
  };
  const hint = `must be a URL ${o.example} or a mapping with host, port, user, password, database, connectTimeout, statementTimeout`;
  const s = withDesc({ anyOf: [{ type: 'string', pattern, description: o.example }, mapping], 'x-hint': hint }, o.description);
  const normalize = (v: any) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      // Timeouts written with units (`10s`) become milliseconds; a bad one is reported here.
      const out = { ...v };
      for (const k of Object.keys(TIMEOUT_KEYS)) {
        if (!(k in out) || typeof out[k] !== 'string') continue;
        const ms = parseDuration(out[k]);
        if (ms === undefined) return { value: v, error: `${k}: ${DURATION_HINT} (got ${JSON.stringify(out[k])})` };
        out[k] = ms;
      }
      return { value: out };
    }
    if (typeof v !== 'string' || !new RegExp(pattern).test(v)) return { value: v };
    const masked = maskUrl(v);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return { value: v, error: `not a valid URL (got ${JSON.stringify(masked)}); write ${o.example}, percent-encoding special characters in the password` };
    }
    if (u.pathname.length <= 1 && o.database) return { value: v, error: `the URL names no database: write ${masked.replace(/\/?(\?.*)?$/, '/<database>$1')}` };
    for (const k of Object.keys(TIMEOUT_KEYS)) {
      const p = u.searchParams.get(k);
      if (p !== null && parseDuration(p) === undefined) return { value: v, error: `URL parameter ${k}: ${DURATION_HINT} (got ${JSON.stringify(p)})` };
    }
    return { value: v };
  };
  const resolve = (v: any) => {
    if (typeof v === 'string') {
      const u = new URL(v);
      const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
      const out: Record<string, unknown> = {
        host: decodeURIComponent(u.hostname) || '127.0.0.1',
        port: u.port ? Number(u.port) : o.defaultPort,
        user: decodeURIComponent(u.username) || o.defaultUser,
        password: u.password ? decodeURIComponent(u.password) : undefined,
        database: database || (o.database ? o.defaultUser : undefined),
      };
      for (const [k, key] of Object.entries(TIMEOUT_KEYS)) {
        const p = u.searchParams.get(k);
        if (p !== null) out[key] = parseDuration(p);
      }
      return out;
    }
    const { connectTimeout, statementTimeout, ...rest } = v;
    const out: Record<string, unknown> = { host: '127.0.0.1', port: o.defaultPort, user: o.defaultUser, ...rest };
    if (connectTimeout !== undefined) out.connectTimeoutMs = parseDuration(connectTimeout);
    if (statementTimeout !== undefined) out.statementTimeoutMs = parseDuration(statementTimeout);
    return out;
  };
  return new Field('required', s, { description: o.description, type: 'URL or mapping' }, resolve as any, undefined, normalize);
}

/**
 * Text with the password of every URL in it replaced by `***`: `scheme://user:password@host`,
 * also when the URL is malformed (`postgres//user:password@host`, a password holding `/` or `@`).
 */
export function maskUrl(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1***@');
}
// `password` itself is the placeholder of the examples in messages, not a password.
const URL_CREDENTIALS = /([A-Za-z][A-Za-z0-9+.-]*:?\/\/?[^\s:@/"'`]*:)(?!password@)[^\s"'`]*@/g;

// ---------- walking ----------

/**
 * The field at a path of the written config, following tagged unions by the written `type`; with
 * `variant` false, a tagged union at the end of the path is returned as itself.
 */
export function fieldAt(root: Field<any>, path: string[], raw: unknown, variant = true): Field<any> | undefined {
  let f: Field<any> | undefined = root;
  let v: any = raw;
  for (const p of path) {
    if (!f) return undefined;
    if (f.children?.variants) f = variantOf(f, v);
    if (!f) return undefined;
    if (f.children?.items) f = f.children.items;
    else f = f.children?.fields?.[p];
    v = v?.[p];
  }
  if (variant && f?.children?.variants) return variantOf(f, v) ?? f;
  return f;
}

/**
 * Normalizes sizes and durations written with units and checks connection URLs, in place; calls
 * `fail` with the path and message of each problem.
 */
export function normalizeTree(f: Field<any>, v: any, path: string[], fail: (path: string[], msg: string) => void): any {
  if (v === undefined || v === null) return v;
  if (f.normalize) {
    const r = f.normalize(v);
    if (r.error) fail(path, r.error);
    return r.error && r.value === undefined ? v : r.value;
  }
  const c = f.children;
  if (c?.variants) {
    const variant = variantOf(f, v);
    return variant ? normalizeTree(variant, v, path, fail) : v;
  }
  if (c?.items && Array.isArray(v)) return v.map((x, i) => normalizeTree(c.items!, x, [...path, String(i)], fail));
  if (c?.fields && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, sub] of Object.entries(c.fields)) if (k in v) v[k] = normalizeTree(sub, v[k], [...path, k], fail);
  }
  return v;
}

/** One row of a reference table: `a.b.c`, its type, default and meaning. */
export interface DocRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

/** The reference rows of a field's children (objects and lists of objects descend). */
export function docRows(f: Field<any>, prefix: string): DocRow[] {
  const out: DocRow[] = [];
  const fields = f.children?.fields ?? f.children?.items?.children?.fields;
  if (!fields) return out;
  const base = f.children?.items ? `${prefix}[]` : prefix;
  for (const [k, sub] of Object.entries(fields)) {
    const key = base ? `${base}.${k}` : k;
    // A component's own `type` (source, sinks[], …) is documented as the section it opens; a nested one (window.type, alerts.receivers[].type) is a key like any.
    if (k === 'type' && sub.children === undefined && base && !base.includes('.')) continue;
    out.push({ key, type: sub.doc.type, default: sub.presence === 'required' ? 'required' : (sub.doc.defaultText ?? 'none'), description: sub.doc.description ?? '' });
    if (sub.children?.fields || sub.children?.items?.children?.fields) out.push(...docRows(sub, key));
  }
  return out;
}

/** A config value that cannot be resolved (should have been caught by validation). */
export function configBug(path: string[], msg: string): never {
  throw coreError('CONFIG_INVALID', `${path.join('.')}: ${msg}`);
}
