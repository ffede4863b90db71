/**
 * The "mask" transform: masks the fields its rules name, keeping each record's shape.
 *
 * Change events (Debezium envelopes, with or without their `schema` part): the columns are masked
 * in `before` and `after`, and in the key when they are key columns. The record's headers stay —
 * its schema header still describes the columns, since masking keeps their types: a method that
 * writes text (`hash`, `redact`, `keep_first`, `keep_last`) takes text columns only, and a
 * non-text value (a number, boolean, array, struct) is an error (MASK_NOT_TEXT) rather than a
 * text the sinks would fail to write into the column. Two things the event cannot tell, which the
 * user must: whether the target column is long enough (a hash is 64 characters, `replacement` as
 * long as written) and typed as text (numeric, uuid, date-time and bytes columns arrive as text
 * too), and whether it accepts `with: null` (a NOT NULL column refuses it). PostgreSQL's
 * placeholder for an unchanged TOASTed value stays as it is. Tombstones keep their key, masked.
 *
 * Other records (flat rows, events): top-level fields and dotted paths into nested objects;
 * non-text values are masked as their text (`42` → `"42"`, objects as their JSON).
 *
 * Rules apply per table: `schema.table` of a change event's source, else the topic's last two
 * parts. The rules of each table are worked out once and cached.
 */
import { createHash, createHmac } from 'node:crypto';
import { UNAVAILABLE_VALUE, type Row, type Value } from '../../core/event.ts';
import { addSecret } from '../../core/logger.ts';
import { writeValue } from '../../core/serde/json.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { ProcessorContext, TransformInput, TransformOutput } from '../../registry/spec.ts';
import { fromTopicPart, topicPart } from '../../sources/common/names.ts';
import { maskError, type MaskProcessorConfig, type MaskRule } from './spec.ts';

type Method = MaskRule['with'];

/** One field of a table to mask, and how. */
interface Action {
  /** The field as written in the rule. */
  field: string;
  /** Its dotted path, when it has dots. */
  path: string[] | null;
  method: Method;
  /** The masked text of a text value (all methods but `null`). */
  text: ((s: string) => string) | null;
}

/** Where a record is, for messages: never its values. */
interface Where {
  /** `table public.customers` or `topic app.events`. */
  what: string;
  /** Whether values must keep their types (change events and their tombstones). */
  typed: boolean;
}

const MASK_CHAR = '*';
const CACHE_MAX = 10_000;
const SURROGATE = /[\uD800-\uDFFF]/;

/** `s` with all but its last (`last`) or first `keep` characters (code points) replaced by `*`; whole when it has no more than `keep`. */
export function keepChars(s: string, keep: number, last: boolean): string {
  const chars = SURROGATE.test(s) ? Array.from(s) : null;
  const n = chars ? chars.length : s.length;
  if (n <= keep) return MASK_CHAR.repeat(n);
  const shown = chars ? (last ? chars.slice(n - keep) : chars.slice(0, keep)).join('') : last ? s.slice(n - keep) : s.slice(0, keep);
  return last ? MASK_CHAR.repeat(n - keep) + shown : shown + MASK_CHAR.repeat(n - keep);
}

/** The text function of a rule's method (null for `null`). */
export function maskFunction(rule: Pick<MaskRule, 'with' | 'keep' | 'replacement'>, salt: string | undefined, algorithm: MaskProcessorConfig['hashAlgorithm']): ((s: string) => string) | null {
  switch (rule.with) {
    case 'null':
      return null;
    case 'redact': {
      const r = rule.replacement;
      return () => r;
    }
    case 'keep_last':
      return (s) => keepChars(s, rule.keep, true);
    case 'keep_first':
      return (s) => keepChars(s, rule.keep, false);
    case 'hash': {
      if (salt === undefined) throw maskError('MASK_CONFIG', 'a mask rule hashes but the processor has no `salt`: set salt (e.g. salt: ${MASK_SALT})');
      const key = salt;
      if (algorithm === 'sha256') return (s) => createHash('sha256').update(key, 'utf8').update(s, 'utf8').digest('hex');
      return (s) => createHmac('sha256', key).update(s, 'utf8').digest('hex');
    }
  }
}

/** A `*` pattern (`public.*`) as a regular expression. */
function pattern(p: string): RegExp {
  return new RegExp('^' + p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

const isObject = (v: Value | undefined): v is Row => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);

/** The type of a value, for messages. */
function typeName(v: Value): string {
  if (Array.isArray(v)) return 'an array';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (typeof v === 'object') return 'a struct';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'bigint') return 'an integer';
  return `a ${typeof v}`;
}

/** A non-text value as the text the methods mask (flat rows and events). */
function textOf(v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return writeValue(v);
}

/** The envelope in a parsed change event value (bare or in `{schema, payload}`); null for other values. */
function envelopeOf(doc: Value): Row | null {
  let p: Value = doc;
  if (isObject(doc) && 'payload' in doc && 'schema' in doc && Object.keys(doc).length === 2) p = doc.payload;
  return isObject(p) && typeof p.op === 'string' && isObject(p.source) && 'before' in p && 'after' in p ? p : null;
}

/** A topic's last two parts, as written and as the names they stand for. */
function topicNames(topic: string): { schemaPart: string; tablePart: string; name: string } {
  const parts = topic.split('.');
  const tablePart = parts[parts.length - 1];
  const schemaPart = parts.length > 1 ? parts[parts.length - 2] : '';
  return { schemaPart, tablePart, name: `${fromTopicPart(schemaPart) ?? schemaPart}.${fromTopicPart(tablePart) ?? tablePart}` };
}

/** The processor: each record of the inputs, masked, on the output topic (a RecordTransform, synchronous). */
export function maskTransform(cfg: MaskProcessorConfig, ctx: ProcessorContext): { apply(rec: TransformInput): TransformOutput[] } {
  if (cfg.salt !== undefined) addSecret(cfg.salt);
  const rules = cfg.rules.map((r) => ({ rule: r, tables: r.tables ? r.tables.map(pattern) : null, text: maskFunction(r, cfg.salt, cfg.hashAlgorithm) }));
  const template = cfg.output;
  const usesNames = /\{(?:schema|table)\}/.test(template);

  // The actions of a table (`schema.table`): the first rule naming a field masks it.
  const byTable = new Map<string, Action[]>();
  const actionsFor = (table: string): Action[] => {
    let a = byTable.get(table);
    if (a) return a;
    a = [];
    const taken = new Set<string>();
    for (const r of rules) {
      if (r.tables && !r.tables.some((re) => re.test(table))) continue;
      for (const field of r.rule.fields) {
        if (taken.has(field)) continue;
        taken.add(field);
        a.push({ field, path: field.includes('.') ? field.split('.') : null, method: r.rule.with, text: r.text });
      }
    }
    if (byTable.size >= CACHE_MAX) byTable.clear();
    byTable.set(table, a);
    return a;
  };

  const outputs = new Map<string, string>();
  const outputTopic = (topic: string, schemaPart: string, tablePart: string): string => {
    if (!usesNames) return template.replace(/\{topic\}/g, () => topic);
    const k = `${topic}\u0000${schemaPart}\u0000${tablePart}`;
    let t = outputs.get(k);
    if (t === undefined) {
      t = template.replace(/\{topic\}/g, () => topic).replace(/\{schema\}/g, () => schemaPart).replace(/\{table\}/g, () => tablePart);
      if (outputs.size >= CACHE_MAX) outputs.clear();
      outputs.set(k, t);
    }
    return t;
  };

  /** The masked value of one field. */
  const maskOne = (v: Value, a: Action, where: Where): Value => {
    if (v === UNAVAILABLE_VALUE) return v; // not data: "unchanged", which the sinks keep
    if (v === null || a.text === null) return null;
    if (typeof v === 'string') return a.text(v);
    if (where.typed) {
      throw maskError(
        'MASK_NOT_TEXT',
        `mask ${cfg.name} cannot ${a.method === 'hash' ? 'hash' : a.method === 'redact' ? 'redact' : `apply ${a.method} to`} column ${JSON.stringify(a.field)} of ${where.what}: its value is ${typeName(v)}, and a text in its place would not fit the column's type that the event's schema records. Mask it with \`with: null\`, or mask a text column`,
      );
    }
    return a.text(textOf(v));
  };

  /** Masks the fields of `obj` in place; true when any was there. */
  const maskRow = (obj: Row, actions: Action[], where: Where, isKey: boolean): boolean => {
    let changed = false;
    for (const a of actions) {
      let target: Row | null = obj;
      let field = a.field;
      if (!(field in obj)) {
        if (a.path === null) continue;
        for (let i = 0; i < a.path.length - 1 && target !== null; i++) {
          const next: Value | undefined = target[a.path[i]];
          target = isObject(next) ? next : null;
        }
        field = a.path[a.path.length - 1];
        if (target === null || !(field in target)) continue;
      }
      if (isKey && a.method === 'null') {
        throw maskError('MASK_KEY_NULL', `mask ${cfg.name} would null the key column ${JSON.stringify(a.field)} of ${where.what}: every row would get the same key (and a compacted topic would keep one of them). Mask it with \`with: hash\` instead`);
      }
      target[field] = maskOne(target[field], a, where);
      changed = true;
    }
    return changed;
  };

  /** The key with its fields masked (the same bytes when none is there). */
  const maskKey = (key: Buffer | null, actions: Action[], where: Where): Buffer | string | null => {
    if (key === null) return null;
    const doc = parseJson(key);
    let row: Value = doc;
    if (isObject(doc) && 'payload' in doc && 'schema' in doc && Object.keys(doc).length === 2) row = doc.payload;
    if (!isObject(row)) return key;
    return maskRow(row, actions, where, true) ? writeValue(doc) : key;
  };

  return {
    apply(rec: TransformInput): TransformOutput[] {
      const headers = rec.headers;
      if (rec.value === null) {
        // A tombstone: its key must be masked like its change event's, or it deletes nothing.
        const t = topicNames(rec.topic);
        const actions = actionsFor(t.name);
        const topic = outputTopic(rec.topic, t.schemaPart, t.tablePart);
        // Masked as a flat record's key: where its change event's key was not text, that event
        // was an error (MASK_NOT_TEXT), and the tombstone of a key never written deletes nothing.
        const key = actions.length === 0 ? rec.key : maskKey(rec.key, actions, { what: `table ${t.name}`, typed: false });
        return [{ topic, key, value: null, headers }];
      }
      const doc = parseJson(rec.value);
      const env = envelopeOf(doc);
      if (env !== null) {
        const { schema, table } = ctx.tableOf(env.source as Row);
        const name = `${schema}.${table}`;
        const actions = actionsFor(name);
        const topic = outputTopic(rec.topic, topicPart(schema), topicPart(table));
        if (actions.length === 0) return [{ topic, key: rec.key, value: rec.value, headers }];
        if (typeof env.after === 'string' || typeof env.before === 'string') {
          throw maskError('MASK_DOCUMENT', `mask ${cfg.name} cannot mask the MongoDB documents of ${name}: the source writes them as Extended JSON text (shape: debezium), which mask does not rewrite. Capture the collection with \`shape: row\` (one column per field), then mask its columns`);
        }
        const where: Where = { what: `table ${name}`, typed: true };
        let changed = false;
        if (isObject(env.before)) changed = maskRow(env.before, actions, where, false) || changed;
        if (isObject(env.after)) changed = maskRow(env.after, actions, where, false) || changed;
        const key = maskKey(rec.key, actions, where);
        return [{ topic, key, value: changed ? writeValue(doc) : rec.value, headers }];
      }
      const t = topicNames(rec.topic);
      const topic = outputTopic(rec.topic, t.schemaPart, t.tablePart);
      const actions = actionsFor(t.name);
      if (actions.length === 0) return [{ topic, key: rec.key, value: rec.value, headers }];
      const where: Where = { what: `topic ${rec.topic}`, typed: false };
      const changed = isObject(doc) && maskRow(doc, actions, where, false);
      const key = maskKey(rec.key, actions, where);
      return [{ topic, key, value: changed ? writeValue(doc) : rec.value, headers }];
    },
  };
}
