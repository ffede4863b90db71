/**
 * Loads a pipeline YAML: env-var interpolation (`${VAR}`, `${VAR:-default}`, `$${` for a literal),
 * unit parsing and validation against the schema the component specs define (config/pipeline.ts),
 * each problem reported at its file:line:column with the key, all at once; then the defaults.
 */
import { readFile } from 'node:fs/promises';
import AjvModule from 'ajv';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { coreError, type SluiceError } from '../core/errors.ts';
import { addSecret, redact } from '../core/logger.ts';
import { isLoopback } from '../core/net.ts';
import { processorSpec, sinkSpec, sourceSpec } from '../registry/index.ts';
import { checkIngest } from '../sources/http/spec.ts';
import { checkSchedules } from '../schedules/spec.ts';
import { checkAlerts } from '../alerts/spec.ts';
import { fieldAt, maskUrl, normalizeTree, type JsonSchema } from './fields.ts';
import { PIPELINE, type PipelineConfig } from './pipeline.ts';

export type { PipelineConfig } from './pipeline.ts';

const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule;
const ajv = new (Ajv as any)({ allErrors: true, strict: false });

type Validate = ((data: unknown) => boolean) & { errors?: any[] | null };
/** Validators compiled so far, by the component branches they kept (a process usually needs one). */
const validators = new Map<string, Validate>();

/**
 * The schema validator for `raw`: the pipeline schema without the branches of component types
 * `raw` does not name (an `allOf` entry whose `if` is `{ required: [k], properties: { k: { const: v } } }`
 * with no `k: v` anywhere in the config). Such a branch's `if` cannot hold for this config, so the
 * answer is the same; but the whole schema (every connector's fields) takes Ajv ~250 ms and ~20 MiB
 * of transient memory to compile, a pipeline's own components a fraction of that, at every start.
 */
function validatorFor(raw: unknown): Validate {
  const named = new Map<string, Set<unknown>>();
  const collect = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(collect);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if (typeof v !== 'object' || v === null) (named.get(k) ?? named.set(k, new Set()).get(k)!).add(v);
        else collect(v);
      }
    }
  };
  collect(raw);
  const kept: string[] = [];
  const prune = (x: unknown, path: string): unknown => {
    if (Array.isArray(x)) return x.map((v, i) => prune(v, `${path}/${i}`));
    if (!x || typeof x !== 'object') return x;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (k === 'allOf' && Array.isArray(v)) {
        const left = v
          .filter((branch, i) => {
            const d = discriminator(branch?.if);
            if (!d) return true;
            if (!named.get(d[0])?.has(d[1])) return false;
            kept.push(`${path}/${i}`);
            return true;
          })
          .map((branch, i) => prune(branch, `${path}/allOf/${i}`));
        // JSON Schema wants allOf non-empty: with no branch left, the key goes.
        if (left.length) out[k] = left;
      } else out[k] = prune(v, `${path}/${k}`);
    }
    return out;
  };
  const schema = prune(PIPELINE.schema, '');
  const key = kept.join(' ');
  let v = validators.get(key);
  if (!v) validators.set(key, (v = ajv.compile(schema) as Validate));
  return v;
}

/** `[k, v]` of an `if` that is exactly "key k is the constant v", else null. */
function discriminator(cond: any): [string, unknown] | null {
  if (!cond || typeof cond !== 'object' || Object.keys(cond).some((k) => k !== 'required' && k !== 'properties')) return null;
  const props = Object.entries(cond.properties ?? {});
  if (props.length !== 1) return null;
  const [k, p] = props[0] as [string, any];
  if (!p || typeof p !== 'object' || Object.keys(p).length !== 1 || !('const' in p)) return null;
  if (!Array.isArray(cond.required) || cond.required.length !== 1 || cond.required[0] !== k) return null;
  return [k, p.const];
}

interface Problem {
  line: number;
  col: number;
  path: string;
  message: string;
}

export function exportJsonSchema(): object {
  return { $schema: 'http://json-schema.org/draft-07/schema#', title: 'Sluice pipeline', ...PIPELINE.schema };
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
  // Passwords met on the way (written, substituted or inside URLs) are masked in every message
  // of this config, and in every later log line of the process (core/logger.ts).
  const secrets = new Set<string>();
  try {
    return parse(text, fileName, env, secrets);
  } catch (e) {
    const err = e as SluiceError;
    if (err?.code === 'CONFIG_INVALID') err.message = scrub(err.message, secrets);
    throw err;
  } finally {
    for (const s of secrets) addSecret(s);
  }
}

function parse(text: string, fileName: string, env: NodeJS.ProcessEnv, secrets: Set<string>): PipelineConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const problems: Problem[] = [];
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  for (const e of doc.errors) problems.push({ ...at(e.pos[0]), path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` });
  if (problems.length) throw configError(fileName, problems);
  interpolate(doc.contents as Node, [], env, (node, path, msg) => problems.push({ ...at(node.range?.[0] ?? 0), path: path.join('.'), message: msg }), doc.toJS(), secrets);
  collectSecrets(doc.toJS(), [], secrets);
  if (problems.length) throw configError(fileName, problems);
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw configError(fileName, [{ line: 1, col: 1, path: '', message: 'the config must be a mapping (key: value lines)' }]);
  const fail = (path: string[], msg: string) => problems.push({ ...nodePos(doc, path, at), path: path.join('.'), message: msg });
  // Sizes and durations with units, connection URLs: checked here, so that their messages say
  // what to write; everything else by the schema. Problems of both kinds are reported together.
  normalizeTree(PIPELINE, raw, [], fail);
  const reported = new Set(problems.map((p) => p.path));
  const validate = validatorFor(raw);
  if (!validate(raw)) {
    for (const err of dedupe(validate.errors ?? [], raw)) {
      const path = err.instancePath.split('/').slice(1).map((s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      if (reported.has(path.join('.'))) continue;
      let message: string;
      let where = path;
      if (err.keyword === 'additionalProperties') {
        const key = err.params.additionalProperty as string;
        where = [...path, key];
        const known = Object.keys(fieldAt(PIPELINE, path, raw)?.schema.properties ?? schemaAt(path, raw)?.properties ?? {});
        const tag = tagOf(path, raw);
        if (tag && !known.includes(tag)) known.unshift(tag);
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
        message = `${JSON.stringify(valueAt(raw, path))} is not allowed here (${fieldAt(PIPELINE, path, raw)?.schema['x-hint'] ?? 'see docs/config.md'})`;
      } else if (err.keyword === 'anyOf') {
        const hint = fieldAt(PIPELINE, path, raw)?.schema['x-hint'];
        message = hint ? `${hint} (got ${JSON.stringify(valueAt(raw, path))})` : `has an unexpected value ${JSON.stringify(valueAt(raw, path))}`;
      } else message = `${err.message} (got ${JSON.stringify(valueAt(raw, path))})`;
      problems.push({ ...nodePos(doc, where, at, err.keyword === 'additionalProperties'), path: where.join('.'), message });
    }
  }
  if (problems.length) throw configError(fileName, problems);
  checkPipeline(raw, { fileName, pos: (p) => nodePos(doc, p, at), fail });
  if (problems.length) throw configError(fileName, problems);
  return PIPELINE.resolve(raw, { root: raw, path: [], fileName });
}

/** Checks across components and each component's own checks (its spec's `check`). */
function checkPipeline(raw: any, ctx: { fileName: string; pos(p: string[]): { line: number; col: number }; fail(p: string[], m: string): void }): void {
  if (raw.source) sourceSpec(raw.source.type).check?.(raw.source, ['source'], ctx);
  if (raw.ingest) checkIngest(raw.ingest, ctx.fileName, ctx.fail);
  if (raw.server && typeof raw.server === 'object') {
    // Without a token only this machine may reach the server: it shows dead letters and replays them.
    const host = String(raw.server.host ?? '127.0.0.1');
    if (!isLoopback(host) && !raw.server.token) ctx.fail(['server', 'host'], `server.token is required when server.host is ${host} (not a loopback address): anyone who reaches it could read the pipeline's status and dead letters and replay them. Add \`token: \${SLUICE_TOKEN}\` (at least 16 characters) under server, or listen on 127.0.0.1`);
  }
  const unique = (list: any[], what: string, key: string, why: string) => {
    const seen = new Set<string>();
    list.forEach((x, i) => {
      if (seen.has(x.name)) ctx.fail([key, String(i), 'name'], `another ${what} is already named ${JSON.stringify(x.name)}; each ${what} needs its own name (${why})`);
      seen.add(x.name);
    });
  };
  const sinks: any[] = raw.sinks ?? [];
  const processors: any[] = raw.processors ?? [];
  unique(sinks, 'sink', 'sinks', "it identifies the sink's stored offsets");
  unique(processors, 'processor', 'processors', 'it identifies its producer and checkpoint');
  const targets = new Map<string, number>();
  sinks.forEach((s, i) => {
    const spec = sinkSpec(s.type);
    spec.check?.(s, ['sinks', String(i)], ctx);
    // Two sinks writing one exclusive target (a DuckDB file) would fight over its lock.
    const target = spec.exclusiveTarget?.(PIPELINE_SINK(s, i, raw));
    if (target) {
      const other = targets.get(target);
      if (other !== undefined) ctx.fail(['sinks', String(i)], `sinks ${JSON.stringify(sinks[other].name)} and ${JSON.stringify(s.name)} both write the ${target}; give each sink its own target`);
      else targets.set(target, i);
    }
  });
  processors.forEach((p, i) => processorSpec(p.type).check?.(p, ['processors', String(i)], ctx));
  checkSchedules(raw.schedules, ctx, raw);
  checkAlerts(raw.alerts, ctx);
  // An input without a dot or `*` that names no processor is a typo far more often than a topic.
  const names = processors.map((p) => String(p.name));
  const ingestTopics: string[] = [...(raw.ingest?.routes ?? []), ...(raw.schedules ?? [])].filter((r: any) => r.topic !== undefined).map((r: any) => String(r.topic));
  const inputsOf = (list: any[], key: 'inputs' | 'topics', section: string) =>
    list.forEach((x, i) =>
      (x[key] ?? []).forEach((e: unknown, j: number) => {
        if (typeof e !== 'string' || e === 'source' || e.startsWith('topic:') || /[.*]/.test(e) || names.includes(e) || ingestTopics.includes(e)) return;
        if (e === 'ingest') {
          if (!raw.ingest) ctx.fail([section, String(i), key, String(j)], '`ingest` reads the event gateway\'s topics, but the pipeline has no `ingest` section');
          return;
        }
        const near = names.find((n) => editDistance(n, e) <= 2);
        ctx.fail([section, String(i), key, String(j)], `${JSON.stringify(e)} names no processor of this pipeline${near ? ` (did you mean ${JSON.stringify(near)}?)` : names.length ? ` (processors: ${names.join(', ')})` : ''}: give a processor's name, \`source\`, a topic pattern with a dot or \`*\`, or \`topic:${e}\` for a topic of that exact name`);
      }),
    );
  inputsOf(processors, 'inputs', 'processors');
  inputsOf(sinks, 'topics', 'sinks');
  // Without a source there are no change topics to default to: each reader names what it reads.
  if (!raw.source) {
    sinks.forEach((s, i) => {
      if (!s.topics?.length) ctx.fail(['sinks', String(i)], `sink ${JSON.stringify(s.name)} reads the source's change topics by default, but the pipeline has no source: list the topics it applies (\`topics: ['dbserver1.inventory.*']\`), or add a source`);
    });
    processors.forEach((p, i) => {
      if (!p.inputs?.length) ctx.fail(['processors', String(i)], `processor ${JSON.stringify(p.name)} reads the source's change topics by default, but the pipeline has no source: list its \`inputs\`, or add a source`);
    });
    if (!sinks.length && !processors.length && !raw.ingest && !raw.schedules?.length) ctx.fail([], 'the pipeline has neither a source nor processors or sinks: it would do nothing; add a `source` (and the `sinks` to apply it to)');
  }
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** A sink's resolved config without its type (for checks that need its defaults). */
function PIPELINE_SINK(s: any, i: number, raw: any): any {
  return fieldAt(PIPELINE, ['sinks', String(i)], raw)!.resolve(s, { root: raw, path: ['sinks', String(i)], fileName: '' });
}

/** The tag key (`type`, `backend`) of the tagged mapping at `path`, if it is one. */
function tagOf(path: string[], raw: unknown): string | null {
  const node = fieldAt(PIPELINE, path, raw, false);
  return node?.children?.variants ? (node.children.tag ?? 'type') : null;
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
 * mapping and one branch describes mappings (a connection), that branch's errors are the useful
 * ones (unknown key, wrong type of port); otherwise the anyOf alone, with a hint.
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
    // `if`: the branch selector; `not`/`anyOf` inside an `if` only decide which branch applies.
    if (drop.has(e) || e.keyword === 'if' || /\/if\//.test(e.schemaPath)) return false;
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function schemaAtPointer(pointer: string): any {
  let s: any = PIPELINE.schema;
  for (const p of pointer.replace(/^#\//, '').split('/')) s = s?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return s;
}

/** The JSON Schema at a path (used where the field tree has no node, e.g. inside a connection mapping). */
function schemaAt(path: string[], raw: unknown): JsonSchema | undefined {
  const parent = fieldAt(PIPELINE, path.slice(0, -1), raw)?.schema;
  const obj = parent?.properties ? parent : parent?.anyOf?.find((x: any) => x.properties);
  const s = obj?.properties?.[path[path.length - 1]];
  return s?.anyOf?.find((x: any) => x.properties) ?? s;
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

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}`, `${VAR:-default}` and `$${` in string scalars (values, not keys). Env vars
 * are strings; where the schema wants an integer or a boolean (`port: ${PGPORT:-5432}`), the
 * substituted text is read as one, so the variable works quoted or not. Inside a connection URL
 * written with its scheme (`postgres://${PGUSER}:${PGPASSWORD}@${PGHOST}/${PGDATABASE}`), a value
 * substituted into the user, password, path or parameters is percent-encoded, so that a password
 * holding `@ : /` stays the password; the host and port are substituted as they are, and so is a
 * variable holding the whole URL (`${DATABASE_URL}`, which must be encoded already). Values
 * substituted as passwords are added to `secrets`.
 */
function interpolate(node: Node | null, path: string[], env: NodeJS.ProcessEnv, fail: (n: Node, path: string[], msg: string) => void, root: unknown, secrets: Set<string>): void {
  if (!node) return;
  if (isMap(node)) {
    for (const it of node.items) interpolate(it.value as Node, [...path, isScalar(it.key) ? String(it.key.value) : '?'], env, fail, root, secrets);
  } else if (isSeq(node)) node.items.forEach((it, i) => interpolate(it as Node, [...path, String(i)], env, fail, root, secrets));
  else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
    let replaced = false;
    const schema = fieldAt(PIPELINE, path, root)?.schema ?? schemaAt(path, root);
    const part = isUrlSchema(schema) ? urlPartAt(node.value) : null;
    const secretKey = /(^|_)pass(word)?$|secret|token|salt/i.test(path[path.length - 1] ?? '');
    const out = node.value.replace(REFERENCE, (m: string, name: string, def: string | undefined, offset: number) => {
      if (m === '$${') return '${';
      replaced = true;
      const v = env[name];
      // Shell semantics: ${VAR} takes any set value (even empty); ${VAR:-d} also replaces an empty one.
      let value: string;
      if (v !== undefined && (def === undefined || v !== '')) value = v;
      else if (def !== undefined) value = def;
      else {
        fail(node, path, `environment variable ${name} is not set (set it, or write \${${name}:-default} for a default)`);
        return '';
      }
      const where = part?.(offset);
      if (where === 'password' || secretKey) secrets.add(value);
      return where && where !== 'host' ? encodeURIComponent(value) : value;
    });
    node.value = replaced ? coerce(out, schema) : out;
  }
}

/** Whether a field's value is a URL with a fixed scheme (a connection, a MongoDB URL). */
function isUrlSchema(schema: JsonSchema | undefined): boolean {
  return [schema, ...(schema?.anyOf ?? [])].some((s: any) => typeof s?.pattern === 'string' && s.pattern.endsWith('://'));
}

/**
 * For a URL template that starts with its scheme, which part of the URL each character offset is
 * in, judged by the template's own characters (what a variable holds cannot move the boundaries):
 * `user`, `password`, `host` (host and port) or `rest` (path, parameters). Null when the template
 * does not start with a scheme (the variable is the URL, or its start).
 */
function urlPartAt(template: string): ((offset: number) => 'user' | 'password' | 'host' | 'rest') | null {
  const skeleton = template.replace(REFERENCE, (m) => 'x'.repeat(m.length));
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(skeleton);
  if (!scheme) return null;
  const authStart = scheme[0].length;
  const rest = skeleton.slice(authStart).search(/[/?#]/);
  const authEnd = rest < 0 ? skeleton.length : authStart + rest;
  const at = skeleton.lastIndexOf('@', authEnd - 1);
  const userEnd = at >= authStart ? at : authStart;
  const colon = skeleton.indexOf(':', authStart);
  return (offset) => {
    if (offset < userEnd) return colon >= 0 && colon < userEnd && offset > colon ? 'password' : 'user';
    if (offset < authEnd) return 'host';
    return 'rest';
  };
}

/** Passwords in a config as written (after interpolation): `password` values and those inside URLs. */
function collectSecrets(v: unknown, path: string[], secrets: Set<string>): void {
  if (Array.isArray(v)) v.forEach((x, i) => collectSecrets(x, [...path, String(i)], secrets));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collectSecrets(x, [...path, k], secrets);
  else if (typeof v === 'number' || typeof v === 'boolean') {
    if (/(^|_)pass(word)?$|secret|token|salt/i.test(path[path.length - 1] ?? '')) secrets.add(String(v));
  } else if (typeof v === 'string') {
    if (/(^|_)pass(word)?$|secret|token|salt/i.test(path[path.length - 1] ?? '')) secrets.add(v);
    for (const m of v.matchAll(/[A-Za-z][A-Za-z0-9+.-]*:?\/\/?[^\s:@/"'`]*:([^\s"'`]*)@/g)) {
      secrets.add(m[1]);
      try {
        secrets.add(decodeURIComponent(m[1]));
      } catch {
        // not percent-encoded
      }
    }
  }
}

/** A message with the passwords of the config (and of any URL in it) replaced by `***`. */
function scrub(message: string, secrets: Set<string>): string {
  let out = maskUrl(message);
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length < 3) continue;
    for (const form of new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])) out = out.split(form).join('***');
  }
  return redact(out);
}

function coerce(v: string, schema: any): string | number | boolean {
  const types = new Set<string>([schema?.type, ...(schema?.anyOf ?? []).map((x: any) => x.type), ...(schema?.enum ?? []).map((x: unknown) => typeof x)].filter(Boolean));
  if ((types.has('integer') || types.has('number')) && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  if (types.has('boolean') && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  return v;
}

function configError(fileName: string, problems: Problem[]): SluiceError {
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = problems.map((p) => `${fileName}:${p.line}:${p.col}: ${p.path ? p.path + ': ' : ''}${p.message}`);
  return coreError('CONFIG_INVALID', `invalid config (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${lines.join('\n  ')}`);
}
