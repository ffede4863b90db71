/**
 * Loads a pipeline YAML: env-var interpolation (`${VAR}`, `${VAR:-default}`, `$${` for a literal),
 * JSON Schema validation with errors that point at file:line:column and the key, then defaults.
 */
import { readFile } from 'node:fs/promises';
import AjvModule from 'ajv';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { SluiceError } from '../core/errors.ts';
import { DURATION_KEYS, pipelineSchema, SIZE_KEYS } from './schema.ts';
import { checkDocumentSink, documentSinkDefaults, DOCUMENT_SINK_TYPES } from '../sinks/document/config.ts';
import type { BatchConfig, MysqlSourceConfig, PipelineConfig, PostgresSourceConfig, SinkConfig, UnwrapField } from './types.ts';
import { coreError } from '../core/errors.ts';

export type { PipelineConfig } from './types.ts';

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const ajv = new (Ajv as any)({ allErrors: true, strict: false });
const validate = ajv.compile(pipelineSchema);

interface Problem {
  line: number;
  col: number;
  path: string;
  message: string;
}

export function exportJsonSchema(): object {
  return pipelineSchema;
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw coreError('CONFIG_INVALID', `cannot read config ${path}: ${(e as Error).message}`);
  }
  return parseConfig(text, path, env);
}

export function parseConfig(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): PipelineConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const problems: Problem[] = [];
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  for (const e of doc.errors) problems.push({ ...at(e.pos[0]), path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` });
  if (problems.length) throw configError(fileName, problems);
  interpolate(doc.contents as Node, [], env, (node, path, msg) => problems.push({ ...at(node.range?.[0] ?? 0), path: path.join('.'), message: msg }), doc.toJS());
  if (problems.length) throw configError(fileName, problems);
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw configError(fileName, [{ line: 1, col: 1, path: '', message: 'the config must be a mapping (key: value lines)' }]);
  const fail = (path: string[], msg: string) => problems.push({ ...nodePos(doc, path, at), path: path.join('.'), message: msg });
  normalizeUnits(raw, [], doc, fail);
  checkUrl(raw, fail);
  if (problems.length) throw configError(fileName, problems);
  if (!validate(raw)) {
    for (const err of dedupe(validate.errors ?? [], raw)) {
      const path = err.instancePath.split('/').slice(1).map((s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      let message: string;
      let where = path;
      if (err.keyword === 'additionalProperties') {
        const key = err.params.additionalProperty as string;
        where = [...path, key];
        const typed = path[0] === 'sinks' || (path.length === 1 && path[0] === 'source');
        const known = Object.keys(schemaAt(path, raw)?.properties ?? {}).filter((k) => k !== 'type' || !typed);
        if (path[0] === 'sinks') known.push('type');
        else if (typed) known.unshift('type');
        const near = suggest(key, known);
        message = `unknown key${near ? ` (did you mean '${near}'?)` : ''}; allowed: ${known.join(', ')}`;
      } else if (err.keyword === 'required') {
        message = `missing required key '${err.params.missingProperty}'`;
      } else if (err.keyword === 'enum') {
        const allowed = err.params.allowedValues as unknown[];
        const got = valueAt(raw, path);
        const near = typeof got === 'string' ? suggest(got, allowed.filter((v): v is string => typeof v === 'string')) : null;
        message = `must be ${oneOf(allowed.map((v) => JSON.stringify(v)))} (got ${JSON.stringify(got)}${near ? `; did you mean "${near}"?` : ''})`;
      } else if (err.keyword === 'type') {
        message = `must be ${TYPE_NAMES[err.params.type as string] ?? err.params.type} (got ${JSON.stringify(valueAt(raw, path))})`;
      } else if (err.keyword === 'pattern') {
        message = `${JSON.stringify(valueAt(raw, path))} is not allowed here (${patternHint(path)})`;
      } else if (err.keyword === 'anyOf') {
        message = anyOfHint(path, valueAt(raw, path), raw);
      } else message = `${err.message} (got ${JSON.stringify(valueAt(raw, path))})`;
      problems.push({ ...nodePos(doc, where, at, err.keyword === 'additionalProperties'), path: where.join('.'), message });
    }
    throw configError(fileName, problems);
  }
  const names = new Set<string>();
  (raw.sinks ?? []).forEach((x: any, i: number) => {
    if (names.has(x.name)) fail(['sinks', String(i), 'name'], `another sink is already named ${JSON.stringify(x.name)}; each sink needs its own name (it identifies the sink's stored offsets)`);
    names.add(x.name);
    if (DOCUMENT_SINK_TYPES.has(x.type)) checkDocumentSink(x, ['sinks', String(i)], { fileName, pos: (p) => nodePos(doc, p, at), fail });
  });
  if (problems.length) throw configError(fileName, problems);
  return withDefaults(raw);
}

const TYPE_NAMES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value lines)',
};

/** "1 or 2", "one of a, b or c", or the single value. */
function oneOf(values: string[]): string {
  if (values.length === 1) return values[0];
  if (values.length === 2) return `${values[0]} or ${values[1]}`;
  return `one of ${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

/**
 * ajv reports an anyOf failure once for the anyOf and once per branch. When the value is a
 * mapping and one branch describes mappings (source.connection), that branch's errors are the
 * useful ones (unknown key, wrong type of port); otherwise the anyOf alone, with a hint.
 */
function dedupe(errors: any[], raw: unknown): any[] {
  const drop = new Set<any>();
  for (const a of errors.filter((e) => e.keyword === 'anyOf')) {
    const branches = errors.filter((e) => e !== a && e.instancePath.startsWith(a.instancePath) && e.schemaPath.startsWith(a.schemaPath + '/'));
    const path = a.instancePath.split('/').slice(1).map((x: string) => x.replace(/~1/g, '/').replace(/~0/g, '~'));
    const v = valueAt(raw, path);
    const branchSchemas: any[] = schemaAtPointer(a.schemaPath) ?? [];
    const objBranch = branchSchemas.findIndex((b) => b?.type === 'object');
    if (v && typeof v === 'object' && !Array.isArray(v) && objBranch >= 0) {
      drop.add(a);
      for (const b of branches) if (!b.schemaPath.startsWith(`${a.schemaPath}/${objBranch}/`)) drop.add(b);
    } else for (const b of branches) drop.add(b);
  }
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (drop.has(e) || e.keyword === 'if') return false;
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function schemaAtPointer(pointer: string): any {
  let s: any = pipelineSchema;
  for (const p of pointer.replace(/^#\//, '').split('/')) s = s?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return s;
}

function patternHint(path: string[]): string {
  const k = path[path.length - 1];
  if (k === 'slot') return 'lower-case letters, digits and _; at most 63';
  if (k === 'name' || k === 'topicPrefix') return 'letters, digits, _ . -';
  if (k === 'connection') return 'a mongodb://host:port/database URL';
  return 'see docs/config.md';
}

function anyOfHint(path: string[], v: unknown, raw?: any): string {
  const k = path[path.length - 1];
  if (k === 'connection' && path[0] === 'sinks') return `must be a URL (postgres://user:password@host:port/database, or mysql://… for a mysql sink) or a mapping with host, port, user, password, database (got ${JSON.stringify(v)})`;
  if (k === 'connection' && raw?.source?.type === 'mysql') return `must be a URL mysql://user:password@host:port[/database] or a mapping with host, port, user, password, database (got ${JSON.stringify(v)})`;
  if (k === 'connection') return `must be a URL postgres://user:password@host:port/database or a mapping with host, port, user, password, database (got ${JSON.stringify(v)})`;
  if (SIZE_KEYS.has(k)) return `must be a size such as 1048576 or "64MiB" (got ${JSON.stringify(v)})`;
  if (DURATION_KEYS.has(k)) return `must be a duration such as 500, "500ms" or "10s" (got ${JSON.stringify(v)})`;
  return `has an unexpected value ${JSON.stringify(v)}`;
}

function schemaAt(path: string[], raw?: unknown): any {
  let s: any = pipelineSchema;
  for (let i = 0; i < path.length; i++) {
    const p = path[i];
    if (s?.type === 'array' && /^\d+$/.test(p)) {
      s = s.items;
      // A sink's keys depend on its type: take the if/then branch that matches the value's type.
      if (s?.allOf) {
        const type = (valueAt(raw, path.slice(0, i + 1)) as any)?.type;
        s = s.allOf.find((b: any) => b.if?.properties?.type?.const === type)?.then ?? { properties: s.properties };
      }
      continue;
    }
    s = s?.properties?.[p] ?? s?.anyOf?.find((x: any) => x.properties)?.properties?.[p];
    // The source's keys depend on its type too.
    if (s?.allOf && s?.type !== 'array') {
      const type = (valueAt(raw, path.slice(0, i + 1)) as any)?.type;
      s = s.allOf.find((b: any) => b.if?.properties?.type?.const === type)?.then ?? { properties: s.properties };
    }
  }
  if (s?.anyOf) s = s.anyOf.find((x: any) => x.properties) ?? s;
  return s;
}

function valueAt(obj: any, path: string[]): unknown {
  let v = obj;
  for (const p of path) v = v?.[p];
  return v;
}

function nodePos(doc: Document, path: string[], at: (o: number) => { line: number; col: number }, atKey = false): { line: number; col: number } {
  if (atKey && path.length > 0) {
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
    if (isMap(parent)) {
      const pair = parent.items.find((it: any) => isScalar(it.key) && String(it.key.value) === path[path.length - 1]);
      if (pair && (pair.key as Node).range) return at((pair.key as Node).range![0]);
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    if (n < path.length) {
      // Unknown key: point at the key itself.
      const parent = sub.length ? doc.getIn(sub, true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((it: any) => isScalar(it.key) && String(it.key.value) === path[n]);
        if (pair && (pair.key as Node).range) return at((pair.key as Node).range![0]);
      }
    }
    const node = sub.length ? (doc.getIn(sub, true) as Node | undefined) : (doc.contents as Node | undefined);
    if (node && (node as Node).range) return at((node as Node).range![0]);
  }
  return { line: 1, col: 1 };
}

function suggest(key: string, known: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = levenshtein(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/**
 * Replaces `${VAR}`, `${VAR:-default}` and `$${` in string scalars (values, not keys). Env vars
 * are strings; where the schema wants an integer or a boolean (`port: ${PGPORT:-5432}`), the
 * substituted text is read as one, so the variable works quoted or not.
 */
function interpolate(node: Node | null, path: string[], env: NodeJS.ProcessEnv, fail: (n: Node, path: string[], msg: string) => void, root: unknown): void {
  if (!node) return;
  if (isMap(node)) {
    for (const it of node.items) interpolate(it.value as Node, [...path, isScalar(it.key) ? String(it.key.value) : '?'], env, fail, root);
  } else if (isSeq(node)) node.items.forEach((it, i) => interpolate(it as Node, [...path, String(i)], env, fail, root));
  else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
    let replaced = false;
    const out = node.value.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (m, name: string, def: string | undefined) => {
      if (m === '$${') return '${';
      replaced = true;
      const v = env[name];
      // Shell semantics: ${VAR} takes any set value (even empty); ${VAR:-d} also replaces an empty one.
      if (v !== undefined && (def === undefined || v !== '')) return v;
      if (def !== undefined) return def;
      fail(node, path, `environment variable ${name} is not set (set it, or write \${${name}:-default} for a default)`);
      return '';
    });
    node.value = replaced ? coerce(out, schemaAt(path, root)) : out;
  }
}

function coerce(v: string, schema: any): string | number | boolean {
  const types = new Set<string>([schema?.type, ...(schema?.enum ?? []).map((x: unknown) => typeof x)].filter(Boolean));
  if ((types.has('integer') || types.has('number')) && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  if (types.has('boolean') && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  return v;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1e3, KIB: 1024, MB: 1e6, MIB: 1 << 20, GB: 1e9, GIB: 1 << 30 };
const DURATION_UNITS: Record<string, number> = { MS: 1, S: 1000, M: 60_000, H: 3_600_000, D: 86_400_000 };

function normalizeUnits(obj: any, path: string[], doc: Document, fail: (path: string[], msg: string) => void): void {
  if (!obj || typeof obj !== 'object') return;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string' && (SIZE_KEYS.has(k) || DURATION_KEYS.has(k))) {
      const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v.trim());
      const units = SIZE_KEYS.has(k) ? SIZE_UNITS : DURATION_UNITS;
      const unit = (m?.[2] || (SIZE_KEYS.has(k) ? 'B' : 'MS')).toUpperCase();
      if (!m || !(unit in units)) {
        fail([...path, k], SIZE_KEYS.has(k) ? `must be a size such as 1048576 or "64MiB" (got ${JSON.stringify(v)})` : `must be a duration such as 500, "500ms" or "10s" (got ${JSON.stringify(v)})`);
        continue;
      }
      obj[k] = Math.round(Number(m[1]) * units[unit]);
    } else if (Array.isArray(v)) v.forEach((x, i) => normalizeUnits(x, [...path, k, String(i)], doc, fail));
    else if (v && typeof v === 'object') normalizeUnits(v, [...path, k], doc, fail);
  }
}

function configError(fileName: string, problems: Problem[]): SluiceError {
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = problems.map((p) => `${fileName}:${p.line}:${p.col}: ${p.path ? p.path + ': ' : ''}${p.message}`);
  return coreError('CONFIG_INVALID', `invalid config (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${lines.join('\n  ')}`);
}

/** A URL connection that cannot be parsed, or names no database, is reported at its line. */
function checkUrl(raw: any, fail: (path: string[], msg: string) => void): void {
  const urls: [string[], unknown][] = [[['source', 'connection'], raw?.source?.connection]];
  if (Array.isArray(raw?.sinks)) raw.sinks.forEach((k: any, i: number) => urls.push([['sinks', String(i), 'connection'], k?.connection]));
  for (const [path, c] of urls) {
    if (typeof c !== 'string' || !/^(postgres(ql)?|mysql|mariadb):\/\//.test(c)) continue;
    const masked = c.replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@');
    const scheme = c.startsWith('postgres') ? 'postgres' : 'mysql';
    // A MySQL source may leave the database out: its tables name their databases.
    const dbOptional = path[0] === 'source' && scheme === 'mysql';
    try {
      const u = new URL(c);
      if (u.pathname.length <= 1 && !dbOptional) fail(path, `the URL names no database: write ${masked.replace(/\/?$/, '/<database>')}`);
    } catch {
      fail(path, `not a valid URL (got ${JSON.stringify(masked)}); write ${scheme}://user:password@host:port/database, percent-encoding special characters in the password`);
    }
  }
}

/** A connection URL; defaults are PostgreSQL's unless given (MySQL: 3306, root). */
function parseUrl(url: string, defaultPort = 5432, defaultUser = 'postgres') {
  const u = new URL(url);
  return {
    host: decodeURIComponent(u.hostname) || '127.0.0.1',
    port: u.port ? Number(u.port) : defaultPort,
    user: decodeURIComponent(u.username) || defaultUser,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres',
  };
}

const SINK_DEFAULTS = {
  tables: [] as string[],
  tableName: '{table}',
  deletes: 'hard' as const,
  softDeleteColumn: '__deleted',
  addFields: [] as UnwrapField[],
  schemaEvolution: 'add_columns' as const,
  offsetsTable: 'sluice_offsets',
};


function sinkDefaults(raw: any, pipelineBatch: BatchConfig): SinkConfig {
  const common = {
    ...SINK_DEFAULTS,
    ...Object.fromEntries(Object.entries(raw).filter(([k]) => k in SINK_DEFAULTS)),
    name: raw.name as string,
    // A columnar store prefers fewer, bigger transactions.
    batch: {
      maxRecords: raw.batch?.maxRecords ?? (raw.type === 'duckdb' ? 100_000 : 20_000),
      maxBytes: raw.batch?.maxBytes ?? (raw.type === 'duckdb' ? 64 << 20 : 16 << 20),
      maxDelayMs: raw.batch?.maxDelayMs ?? pipelineBatch.maxDelayMs,
    },
  };
  if (DOCUMENT_SINK_TYPES.has(raw.type)) return documentSinkDefaults(raw, common, (c: any) => (typeof c === 'string' ? parseUrl(c) : { host: '127.0.0.1', port: 5432, user: 'postgres', ...c }));
  if (raw.type === 'postgres') {
    const connection = typeof raw.connection === 'string' ? parseUrl(raw.connection) : { host: '127.0.0.1', port: 5432, user: 'postgres', ...raw.connection };
    return { ...common, type: 'postgres', connection, schema: raw.schema ?? 'public' };
  }
  if (raw.type === 'mysql') {
    const connection = typeof raw.connection === 'string' ? parseUrl(raw.connection, 3306, 'root') : { host: '127.0.0.1', port: 3306, user: 'root', ...raw.connection };
    return { ...common, type: 'mysql', connection };
  }
  return { ...common, type: 'duckdb', path: raw.path, changeTableName: raw.changeTableName ?? '{table}_changes' };
}

/** The MySQL source's settings with defaults. */
function mysqlSourceDefaults(name: string, s: any): MysqlSourceConfig {
  let connection: MysqlSourceConfig['connection'];
  if (typeof s.connection === 'string') {
    const u = new URL(s.connection);
    connection = {
      host: decodeURIComponent(u.hostname) || '127.0.0.1',
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username) || 'root',
      password: u.password ? decodeURIComponent(u.password) : undefined,
      database: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
    };
  } else connection = { host: '127.0.0.1', port: 3306, user: 'root', ...s.connection };
  // A stable id per pipeline name, away from the usual small ids of real replicas.
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return {
    type: 'mysql',
    connection,
    serverId: s.serverId ?? 5400 + (h % 1000),
    tables: s.tables ?? [],
    snapshot: s.snapshot ?? 'initial',
    snapshotFetchSize: s.snapshotFetchSize ?? 10_000,
    gtid: s.gtid ?? 'auto',
    heartbeatIntervalMs: s.heartbeatIntervalMs ?? 10_000,
    topicPrefix: s.topicPrefix ?? name,
    transactionMetadata: s.transactionMetadata ?? false,
  };
}

function postgresSourceDefaults(name: string, s: any): PostgresSourceConfig {
  const conn = typeof s.connection === 'string' ? parseUrl(s.connection) : { host: '127.0.0.1', port: 5432, user: 'postgres', ...s.connection };
  const slot = s.slot ?? `sluice_${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
  return {
    type: 'postgres',
    connection: conn,
    slot,
    publication: s.publication ?? slot,
    tables: s.tables ?? [],
    protocol: s.protocol ?? 1,
    streaming: s.streaming ?? false,
    binary: s.binary ?? false,
    snapshot: s.snapshot ?? 'initial',
    snapshotFetchSize: s.snapshotFetchSize ?? 10_000,
    heartbeatIntervalMs: s.heartbeatIntervalMs ?? 10_000,
    statusIntervalMs: s.statusIntervalMs ?? 10_000,
    topicPrefix: s.topicPrefix ?? name,
    transactionMetadata: s.transactionMetadata ?? false,
    createPublication: s.createPublication ?? true,
  };
}

function withDefaults(raw: any): PipelineConfig {
  const name: string = raw.name;
  const s = raw.source;
  const batch: BatchConfig = { maxRecords: raw.batch?.maxRecords ?? 5000, maxBytes: raw.batch?.maxBytes ?? 4 << 20, maxDelayMs: raw.batch?.maxDelayMs ?? 20 };
  return {
    name,
    source: s.type === 'mysql' ? mysqlSourceDefaults(name, s) : postgresSourceDefaults(name, s),
    log: {
      backend: 'embedded',
      dir: raw.log?.dir ?? `./data/${name}/log`,
      partitions: raw.log?.partitions ?? 3,
      segmentBytes: raw.log?.segmentBytes ?? 64 << 20,
      retentionMs: raw.log?.retentionMs,
      retentionBytes: raw.log?.retentionBytes,
    },
    batch,
    sinks: (raw.sinks ?? []).map((x: any) => sinkDefaults(x, batch)),
    serialization: { schemas: raw.serialization?.schemas ?? false },
    maxQueueBytes: raw.maxQueueBytes ?? 32 << 20,
    server: raw.server ? { host: raw.server.host ?? '127.0.0.1', port: raw.server.port ?? 8080 } : undefined,
    logging: { level: raw.logging?.level ?? 'info', format: raw.logging?.format ?? 'text' },
  };
}
