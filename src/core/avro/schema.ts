/**
 * Avro schemas (Apache Avro 1.12 specification): the JSON form parsed into a resolved graph, and
 * written back.
 *
 * The resolved form: every node is an object with a `type` (a primitive name, `record`, `enum`,
 * `fixed`, `array`, `map` or `union`). Named types (record, enum, fixed) carry their fullname; a
 * reference to a named type is the very node that defines it, so recursive types are cyclic
 * graphs. Attributes the specification does not define (Iceberg's `field-id`, `element-id`,
 * `key-id`/`value-id`, `adjust-to-utc`, a `connect.name`, and unknown logical types) are kept in
 * `attrs` (of the type, or of the record field) and written back by `schemaToJson`.
 *
 * Logical types: a known, valid `logicalType` is resolved into `logical` (decimal, uuid, date,
 * time-millis/micros, timestamp-millis/micros/nanos, local-timestamp-millis/micros/nanos,
 * duration); the attribute stays in `attrs` too. An unknown logical type is ignored, as the
 * specification says. An invalid one (a decimal whose scale exceeds its precision, a date on a
 * string) is an error in `strict` mode (the default: schemas Sluice writes) and ignored in
 * `lenient` mode (schemas read from files: the specification says to use the underlying type).
 *
 * Lenient mode also accepts names that are not valid Avro names and drops defaults that do not
 * match their field's type, as Java's reader does for the schema of a file it reads.
 *
 * How values of logical types look in JavaScript (binary.ts encodes and decodes them so):
 * - decimal (bytes or fixed): a plain decimal string with exactly `scale` fraction digits
 *   ("-12.50"); encoding also takes a number or a bigint (an integral value), never rounding;
 * - uuid (string or fixed 16): the canonical lower-case string;
 * - duration (fixed 12): `{ months, days, millis }`;
 * - date, time-*, timestamp-*: the underlying int or long (encoding also takes a `Date`).
 */
import { writeValue } from '../serde/json.ts';
import { parseJson } from '../serde/parse.ts';
import { avroError } from './errors.ts';
import type { SluiceError } from '../errors.ts';

export type PrimitiveName = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';
export const PRIMITIVE_NAMES: readonly PrimitiveName[] = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'];
const PRIMITIVES: ReadonlySet<string> = new Set(PRIMITIVE_NAMES);

export type LogicalType =
  | { name: 'decimal'; precision: number; scale: number }
  | { name: 'uuid' | 'date' | 'time-millis' | 'time-micros' | 'duration' }
  | { name: 'timestamp-millis' | 'timestamp-micros' | 'timestamp-nanos' }
  | { name: 'local-timestamp-millis' | 'local-timestamp-micros' | 'local-timestamp-nanos' };

/** Attributes beyond those the specification defines for the type, as written (e.g. `logicalType`, `element-id`). */
export type Attrs = Record<string, unknown>;

export interface PrimitiveSchema {
  type: PrimitiveName;
  attrs: Attrs;
  logical?: LogicalType;
}

interface NamedBase {
  /** The fullname (`namespace.name`, or `name` in the null namespace). */
  name: string;
  /** The namespace ('' for the null namespace). */
  namespace: string;
  aliases: string[];
  doc?: string;
  attrs: Attrs;
}

export interface RecordField {
  name: string;
  type: AvroSchema;
  doc?: string;
  order: 'ascending' | 'descending' | 'ignore';
  aliases: string[];
  /** Attributes beyond name/type/doc/default/order/aliases, e.g. Iceberg's `field-id`. */
  attrs: Attrs;
  /** Whether the field has a usable default. */
  hasDefault: boolean;
  /** The default as written in the schema's JSON (kept when `schemaToJson` writes the schema back). */
  default?: unknown;
  /** The default as the codec takes values (bytes as Buffer, decimals as strings): what a missing field is written as. */
  defaultValue?: unknown;
}

export interface RecordSchema extends NamedBase {
  type: 'record';
  fields: RecordField[];
  /** Declared as an `error` (a protocol's error type): encoded as a record. */
  error?: boolean;
}

export interface EnumSchema extends NamedBase {
  type: 'enum';
  symbols: string[];
  default?: string;
}

export interface FixedSchema extends NamedBase {
  type: 'fixed';
  size: number;
  logical?: LogicalType;
}

export interface ArraySchema {
  type: 'array';
  items: AvroSchema;
  attrs: Attrs;
}

export interface MapSchema {
  type: 'map';
  values: AvroSchema;
  attrs: Attrs;
}

export interface UnionSchema {
  type: 'union';
  branches: AvroSchema[];
}

export type NamedSchema = RecordSchema | EnumSchema | FixedSchema;
export type AvroSchema = PrimitiveSchema | NamedSchema | ArraySchema | MapSchema | UnionSchema;

export interface ParseSchemaOptions {
  /** `strict` (default) for schemas Sluice writes; `lenient` for schemas read from others' files (see the top of this file). */
  mode?: 'strict' | 'lenient';
  /** Named types already defined (by fullname), which the schema may reference; types it defines are added. */
  names?: Map<string, NamedSchema>;
  /** The namespace a top-level simple name is in (default: the null namespace). */
  namespace?: string;
}

// ---------- parsing ----------

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RECORD_KEYS = new Set(['type', 'name', 'namespace', 'doc', 'aliases', 'fields']);
const ENUM_KEYS = new Set(['type', 'name', 'namespace', 'doc', 'aliases', 'symbols', 'default']);
const FIXED_KEYS = new Set(['type', 'name', 'namespace', 'doc', 'aliases', 'size']);
const FIELD_KEYS = new Set(['name', 'type', 'doc', 'default', 'order', 'aliases']);
const ORDERS = new Set(['ascending', 'descending', 'ignore']);

/** Parses a schema given as JSON text. */
export function parseSchemaText(text: string, opts: ParseSchemaOptions = {}): AvroSchema {
  try {
    JSON.parse(text);
  } catch (e) {
    throw avroError('AVRO_SCHEMA_INVALID', `the schema is not valid JSON (${(e as Error).message})`);
  }
  // Parsed again for exact long defaults (integers beyond 2^53 become bigint).
  return parseSchema(parseJson(text), opts);
}

/** Parses a schema given as a JSON value (`"long"`, `{"type": "record", …}`, `["null", "string"]`). */
export function parseSchema(json: unknown, opts: ParseSchemaOptions = {}): AvroSchema {
  const p = new Parser(opts);
  const s = p.node(json, '$', '', opts.namespace ?? '');
  for (const check of p.deferred) check();
  return s;
}

/** A malformed schema: what is wrong, and where (a JSON path into the schema, and the field when inside one). */
function invalid(path: string, label: string, message: string): SluiceError {
  return avroError('AVRO_SCHEMA_INVALID', `at ${path}${label ? ` (${label})` : ''}: ${message}`);
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '…' : s;
}

function child(path: string, key: string): string {
  return NAME.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function attrsOf(o: Record<string, unknown>, reserved: ReadonlySet<string>): Attrs {
  const out: Attrs = {};
  for (const k of Object.keys(o)) if (!reserved.has(k)) out[k] = o[k];
  return out;
}

class Parser {
  readonly strict: boolean;
  readonly names: Map<string, NamedSchema>;
  /** Where each name this parse defined was defined (for "defined twice"). */
  readonly definedAt = new Map<string, string>();
  /** Checks run once every name is defined: defaults (which may reference types defined later). */
  readonly deferred: (() => void)[] = [];

  constructor(opts: ParseSchemaOptions) {
    this.strict = (opts.mode ?? 'strict') === 'strict';
    this.names = opts.names ?? new Map();
  }

  node(json: unknown, path: string, label: string, ns: string): AvroSchema {
    if (typeof json === 'string') return this.reference(json, path, label, ns);
    if (Array.isArray(json)) return this.union(json, path, label, ns);
    if (!isObject(json)) throw invalid(path, label, `a schema is a type name (a string), an object with a "type", or an array (a union); found ${show(json)}`);
    const t = json.type;
    if (t === undefined) throw invalid(path, label, `the schema object has no "type": ${show(json)}`);
    if (typeof t !== 'string') throw invalid(child(path, 'type'), label, `"type" must be a string naming the type; found ${show(t)}`);
    switch (t) {
      case 'record':
      case 'error':
        return this.record(json, path, label, ns);
      case 'enum':
        return this.enumType(json, path, label, ns);
      case 'fixed':
        return this.fixed(json, path, label, ns);
      case 'array': {
        if (!('items' in json)) throw invalid(path, label, 'an array needs "items" (the schema of its items)');
        const attrs = attrsOf(json, new Set(['type', 'items']));
        return { type: 'array', items: this.node(json.items, child(path, 'items'), label, ns), attrs };
      }
      case 'map': {
        if (!('values' in json)) throw invalid(path, label, 'a map needs "values" (the schema of its values; keys are strings)');
        const attrs = attrsOf(json, new Set(['type', 'values']));
        return { type: 'map', values: this.node(json.values, child(path, 'values'), label, ns), attrs };
      }
      case 'union':
        throw invalid(path, label, 'a union is written as a JSON array of its branches, not as {"type": "union"}');
    }
    if (PRIMITIVES.has(t)) {
      const attrs = attrsOf(json, new Set(['type']));
      const s: PrimitiveSchema = { type: t as PrimitiveName, attrs };
      const logical = this.logical(s.type, attrs, 0, path, label);
      if (logical) s.logical = logical;
      return s;
    }
    // {"type": "SomeName"}: a reference to a named type in object form.
    return this.reference(t, child(path, 'type'), label, ns);
  }

  reference(name: string, path: string, label: string, ns: string): AvroSchema {
    if (PRIMITIVES.has(name)) return { type: name as PrimitiveName, attrs: {} };
    const full = name.includes('.') || ns === '' ? name : `${ns}.${name}`;
    // A simple name not found in the enclosing namespace is looked up in the null namespace (as Java does).
    const found = this.names.get(full) ?? (name.includes('.') ? undefined : this.names.get(name));
    if (found) return found;
    if (['record', 'error', 'enum', 'fixed', 'array', 'map'].includes(name)) {
      throw invalid(path, label, `"${name}" needs the object form, e.g. {"type": "${name}", …}`);
    }
    const known = [...this.names.keys()];
    const hint = known.length === 0 ? 'no named types are defined before it' : `defined before it: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}`;
    throw invalid(path, label, `unknown type "${name}"${full !== name ? ` (looked up as "${full}")` : ''}; a name must be defined before it is used (${hint})`);
  }

  union(json: unknown[], path: string, label: string, ns: string): UnionSchema {
    const branches: AvroSchema[] = [];
    const seen = new Map<string, number>();
    json.forEach((b, i) => {
      const at = `${path}[${i}]`;
      if (Array.isArray(b)) throw invalid(at, label, 'a union may not contain a union directly');
      const s = this.node(b, at, label, ns);
      if (s.type === 'union') throw invalid(at, label, 'a union may not contain a union directly');
      const key = unionKey(s);
      const prev = seen.get(key);
      if (prev !== undefined) throw invalid(at, label, `the union has two branches of type ${key} (${prev} and ${i}); only named types (record, enum, fixed) of different names may repeat`);
      seen.set(key, i);
      branches.push(s);
    });
    return { type: 'union', branches };
  }

  /** Checks a name attribute and computes the fullname and namespace of a named type's definition. */
  named(o: Record<string, unknown>, path: string, label: string, ns: string): { full: string; namespace: string } {
    const name = o.name;
    if (name === undefined) throw invalid(path, label, `a ${o.type} needs a "name"`);
    if (typeof name !== 'string' || name === '') throw invalid(child(path, 'name'), label, `"name" must be a non-empty string; found ${show(name)}`);
    const nsAttr = o.namespace;
    if (nsAttr !== undefined && nsAttr !== null && typeof nsAttr !== 'string') throw invalid(child(path, 'namespace'), label, `"namespace" must be a string; found ${show(nsAttr)}`);
    let full: string;
    let namespace: string;
    if (name.includes('.')) {
      full = name;
      namespace = name.slice(0, name.lastIndexOf('.'));
    } else {
      namespace = typeof nsAttr === 'string' ? nsAttr : ns;
      full = namespace === '' ? name : `${namespace}.${name}`;
    }
    if (this.strict) {
      const parts = full.split('.');
      const bad = parts.find((p) => !NAME.test(p));
      if (bad !== undefined) {
        throw invalid(child(path, 'name'), label, `"${full}" is not a valid fullname: each dot-separated part must match [A-Za-z_][A-Za-z0-9_]* (${JSON.stringify(bad)} does not)`);
      }
      const simple = parts[parts.length - 1];
      if (PRIMITIVES.has(simple)) throw invalid(child(path, 'name'), label, `"${full}": a named type may not be named after a primitive type (${simple})`);
    }
    const first = this.definedAt.get(full) ?? (this.names.has(full) ? 'a schema parsed before' : undefined);
    if (first !== undefined) throw invalid(path, label, `the name "${full}" is defined twice (first at ${first})`);
    return { full, namespace };
  }

  define(s: NamedSchema, path: string): void {
    this.names.set(s.name, s);
    this.definedAt.set(s.name, path);
  }

  common(o: Record<string, unknown>, path: string, label: string): { doc?: string; aliases: string[] } {
    const out: { doc?: string; aliases: string[] } = { aliases: this.aliases(o.aliases, child(path, 'aliases'), label) };
    if (typeof o.doc === 'string') out.doc = o.doc;
    else if (o.doc !== undefined && this.strict) throw invalid(child(path, 'doc'), label, `"doc" must be a string; found ${show(o.doc)}`);
    return out;
  }

  aliases(v: unknown, path: string, label: string): string[] {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((a) => typeof a !== 'string')) {
      if (!this.strict) return [];
      throw invalid(path, label, `"aliases" must be an array of strings; found ${show(v)}`);
    }
    return v as string[];
  }

  record(o: Record<string, unknown>, path: string, label: string, ns: string): RecordSchema {
    const { full, namespace } = this.named(o, path, label, ns);
    const rec: RecordSchema = { type: 'record', name: full, namespace, ...this.common(o, path, label), fields: [], attrs: attrsOf(o, RECORD_KEYS) };
    if (o.type === 'error') rec.error = true;
    this.define(rec, path);
    const fields = o.fields;
    if (!Array.isArray(fields)) throw invalid(fields === undefined ? path : child(path, 'fields'), label || full, `a record needs "fields", an array of {"name", "type"} objects; found ${show(fields)}`);
    const seen = new Set<string>();
    fields.forEach((f, i) => {
      const at = `${child(path, 'fields')}[${i}]`;
      if (!isObject(f)) throw invalid(at, full, `a field is an object with "name" and "type"; found ${show(f)}`);
      const name = f.name;
      if (typeof name !== 'string' || name === '') throw invalid(child(at, 'name'), full, `a field needs a "name" (a non-empty string); found ${show(name)}`);
      const flabel = `field ${full}.${name}`;
      if (this.strict && !NAME.test(name)) throw invalid(child(at, 'name'), flabel, `"${name}" is not a valid field name: it must match [A-Za-z_][A-Za-z0-9_]*`);
      if (seen.has(name)) throw invalid(child(at, 'name'), flabel, `the record has two fields named "${name}"`);
      seen.add(name);
      if (!('type' in f)) throw invalid(at, flabel, 'the field has no "type"');
      const type = this.node(f.type, child(at, 'type'), flabel, namespace);
      let order: RecordField['order'] = 'ascending';
      if (f.order !== undefined) {
        if (typeof f.order === 'string' && ORDERS.has(f.order)) order = f.order as RecordField['order'];
        else if (this.strict) throw invalid(child(at, 'order'), flabel, `"order" must be "ascending", "descending" or "ignore"; found ${show(f.order)}`);
      }
      const field: RecordField = { name, type, order, ...this.common(f, at, flabel), attrs: attrsOf(f, FIELD_KEYS), hasDefault: false };
      if ('default' in f) {
        field.default = f.default;
        this.deferred.push(() => {
          try {
            field.defaultValue = defaultValue(field.type, f.default);
            field.hasDefault = true;
          } catch (e) {
            if (!(e instanceof DefaultMismatch)) throw e;
            if (this.strict) throw invalid(child(at, 'default'), flabel, `the default ${show(f.default)} does not match the field's type: ${e.message}`);
          }
        });
      }
      rec.fields.push(field);
    });
    return rec;
  }

  enumType(o: Record<string, unknown>, path: string, label: string, ns: string): EnumSchema {
    const { full, namespace } = this.named(o, path, label, ns);
    const symbols = o.symbols;
    if (!Array.isArray(symbols) || symbols.some((x) => typeof x !== 'string')) {
      throw invalid(symbols === undefined ? path : child(path, 'symbols'), label || full, `an enum needs "symbols", an array of strings; found ${show(symbols)}`);
    }
    const seen = new Set<string>();
    for (const [i, sym] of (symbols as string[]).entries()) {
      if (this.strict && !NAME.test(sym)) throw invalid(`${child(path, 'symbols')}[${i}]`, label || full, `the symbol ${JSON.stringify(sym)} must match [A-Za-z_][A-Za-z0-9_]*`);
      if (seen.has(sym)) throw invalid(`${child(path, 'symbols')}[${i}]`, label || full, `the symbol "${sym}" appears twice`);
      seen.add(sym);
    }
    const s: EnumSchema = { type: 'enum', name: full, namespace, ...this.common(o, path, label), symbols: symbols as string[], attrs: attrsOf(o, ENUM_KEYS) };
    if (o.default !== undefined) {
      if (typeof o.default === 'string' && seen.has(o.default)) s.default = o.default;
      else if (this.strict) throw invalid(child(path, 'default'), label || full, `the enum's default must be one of its symbols; found ${show(o.default)}`);
    }
    this.define(s, path);
    return s;
  }

  fixed(o: Record<string, unknown>, path: string, label: string, ns: string): FixedSchema {
    const { full, namespace } = this.named(o, path, label, ns);
    const size = o.size;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || size > 0x7fffffff) {
      throw invalid(size === undefined ? path : child(path, 'size'), label || full, `a fixed needs "size", a non-negative integer (its number of bytes); found ${show(size)}`);
    }
    const s: FixedSchema = { type: 'fixed', name: full, namespace, ...this.common(o, path, label), size, attrs: attrsOf(o, FIXED_KEYS) };
    const logical = this.logical('fixed', s.attrs, size, path, label || full);
    if (logical) s.logical = logical;
    this.define(s, path);
    return s;
  }

  /** The logical type `attrs.logicalType` names on `base`, when known and valid (invalid: an error in strict mode). */
  logical(base: PrimitiveName | 'fixed', attrs: Attrs, size: number, path: string, label: string): LogicalType | undefined {
    const name = attrs.logicalType;
    if (name === undefined) return undefined;
    const fail = (why: string): undefined => {
      if (this.strict) throw invalid(child(path, 'logicalType'), label, why);
      return undefined;
    };
    if (typeof name !== 'string') return fail(`"logicalType" must be a string; found ${show(name)}`);
    const on = (allowed: string): string => `the logical type ${name} annotates ${allowed}, not ${base === 'fixed' ? `a fixed of size ${size}` : base}`;
    switch (name) {
      case 'decimal': {
        if (base !== 'bytes' && base !== 'fixed') return fail(on('bytes or fixed'));
        const { precision, scale = 0 } = attrs as { precision?: unknown; scale?: unknown };
        if (typeof precision !== 'number' || !Number.isInteger(precision) || precision < 1) return fail(`a decimal needs "precision", an integer of at least 1; found ${show(precision)}`);
        if (typeof scale !== 'number' || !Number.isInteger(scale) || scale < 0 || scale > precision) return fail(`a decimal's "scale" must be an integer from 0 to its precision (${precision}); found ${show(scale)}`);
        if (base === 'fixed') {
          const max = maxFixedPrecision(size);
          if (precision > max) return fail(`a decimal on a fixed of ${size} bytes holds at most ${max} digits; precision is ${precision}`);
        }
        return { name, precision, scale };
      }
      case 'uuid':
        return base === 'string' || (base === 'fixed' && size === 16) ? { name } : fail(on('string or a fixed of size 16'));
      case 'date':
      case 'time-millis':
        return base === 'int' ? { name } : fail(on('int'));
      case 'time-micros':
      case 'timestamp-millis':
      case 'timestamp-micros':
      case 'timestamp-nanos':
      case 'local-timestamp-millis':
      case 'local-timestamp-micros':
      case 'local-timestamp-nanos':
        return base === 'long' ? { name } : fail(on('long'));
      case 'duration':
        return base === 'fixed' && size === 12 ? { name } : fail(on('a fixed of size 12'));
      default:
        return undefined; // unknown logical types are ignored (Iceberg's "map" on arrays, for one)
    }
  }
}

/** The type a union branch counts as when checking for duplicates. */
function unionKey(s: AvroSchema): string {
  return s.type === 'record' || s.type === 'enum' || s.type === 'fixed' ? s.name : s.type;
}

/** The most decimal digits a two's-complement number of `size` bytes always holds: floor(log10(2^(8·size−1) − 1)). */
export function maxFixedPrecision(size: number): number {
  if (size === 0) return 0;
  return ((1n << BigInt(8 * size - 1)) - 1n).toString().length - 1;
}

// ---------- defaults ----------

class DefaultMismatch extends Error {}

/** A field's JSON default as the codec takes values; DefaultMismatch when it does not fit the type. */
function defaultValue(s: AvroSchema, v: unknown): unknown {
  const no = (why: string): never => {
    throw new DefaultMismatch(why);
  };
  switch (s.type) {
    case 'null':
      return v === null ? null : no(`a null takes null`);
    case 'boolean':
      return typeof v === 'boolean' ? v : no('a boolean takes true or false');
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff ? v : no('an int takes an integer from -2^31 to 2^31-1');
    case 'long':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
      if (typeof v === 'bigint' && v >= -(1n << 63n) && v < 1n << 63n) return v;
      return no('a long takes an integer from -2^63 to 2^63-1');
    case 'float':
    case 'double':
      if (typeof v === 'number') return v;
      if (typeof v === 'bigint') return Number(v);
      return no(`a ${s.type} takes a number`);
    case 'string':
      return typeof v === 'string' ? v : no('a string takes a string');
    case 'bytes':
    case 'fixed': {
      if (typeof v !== 'string' || /[\u0100-\uffff]/.test(v)) return no(`${s.type} takes a string of code points 0-255 (one per byte)`);
      const b = Buffer.from(v, 'latin1');
      if (s.type === 'fixed' && b.length !== s.size) return no(`the fixed ${s.name} takes ${s.size} bytes, the default has ${b.length}`);
      const lt = s.logical;
      if (lt?.name === 'decimal') return decimalString(bigintFromTwosComplement(b, 0, b.length), lt.scale);
      if (lt?.name === 'uuid') return uuidString(b, 0);
      if (lt?.name === 'duration') return durationValue(b, 0);
      return b;
    }
    case 'enum':
      return typeof v === 'string' && s.symbols.includes(v) ? v : no(`the enum ${s.name} takes one of ${s.symbols.join(', ')}`);
    case 'array':
      if (!Array.isArray(v)) return no('an array takes a JSON array');
      return v.map((x) => defaultValue(s.items, x));
    case 'map': {
      if (!isObject(v)) return no('a map takes a JSON object');
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) setKey(out, k, defaultValue(s.values, v[k]));
      return out;
    }
    case 'record': {
      if (!isObject(v)) return no(`the record ${s.name} takes a JSON object`);
      const out: Record<string, unknown> = {};
      for (const f of s.fields) {
        if (f.name in v) out[f.name] = defaultValue(f.type, v[f.name]);
        else if (f.hasDefault) out[f.name] = f.defaultValue;
        else no(`the record ${s.name} needs its field ${f.name}`);
      }
      return out;
    }
    case 'union':
      // Avro 1.12: a union's default is of the first branch it matches.
      for (const b of s.branches) {
        try {
          return defaultValue(b, v);
        } catch (e) {
          if (!(e instanceof DefaultMismatch)) throw e;
        }
      }
      return no(`it matches no branch of the union [${s.branches.map(typeName).join(', ')}]`);
  }
}

/** Sets a key on a plain object, `__proto__` included (as an own property, not the prototype). */
export function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

// ---------- writing schemas ----------

/** A type's name as a union branch or message names it: the primitive, `array`, `map`, or the fullname. */
export function typeName(s: AvroSchema): string {
  if (s.type === 'union') return `[${s.branches.map(typeName).join(', ')}]`;
  return s.type === 'record' || s.type === 'enum' || s.type === 'fixed' ? s.name : s.type;
}

function split(full: string): { simple: string; namespace: string } {
  const i = full.lastIndexOf('.');
  return i < 0 ? { simple: full, namespace: '' } : { simple: full.slice(i + 1), namespace: full.slice(0, i) };
}

/**
 * The schema as a JSON value, with every attribute it was parsed with (docs, aliases, defaults as
 * written, `field-id`s, logical types): each named type defined at its first occurrence, referenced
 * by name after.
 */
export function schemaToJson(s: AvroSchema): unknown {
  return toJson(s, '', new Set());
}

/** The schema as JSON text (what a container file's `avro.schema` holds). */
export function stringifySchema(s: AvroSchema): string {
  return writeValue(schemaToJson(s) as never);
}

function withAttrs(o: Record<string, unknown>, attrs: Attrs): Record<string, unknown> {
  for (const k of Object.keys(attrs)) if (!(k in o)) o[k] = attrs[k];
  return o;
}

function toJson(s: AvroSchema, ns: string, seen: Set<NamedSchema>): unknown {
  switch (s.type) {
    case 'union':
      return s.branches.map((b) => toJson(b, ns, seen));
    case 'array':
      return withAttrs({ type: 'array', items: toJson(s.items, ns, seen) }, s.attrs);
    case 'map':
      return withAttrs({ type: 'map', values: toJson(s.values, ns, seen) }, s.attrs);
    case 'record':
    case 'enum':
    case 'fixed': {
      const { simple, namespace } = split(s.name);
      if (seen.has(s)) return namespace === ns || namespace === '' ? simple : s.name;
      seen.add(s);
      const o: Record<string, unknown> = { type: s.type === 'record' && s.error ? 'error' : s.type, name: simple };
      if (namespace !== ns) o.namespace = namespace;
      if (s.doc !== undefined) o.doc = s.doc;
      if (s.aliases.length) o.aliases = s.aliases;
      if (s.type === 'record') {
        o.fields = s.fields.map((f) => {
          const fo: Record<string, unknown> = { name: f.name, type: toJson(f.type, namespace, seen) };
          if (f.doc !== undefined) fo.doc = f.doc;
          if ('default' in f) fo.default = f.default;
          if (f.order !== 'ascending') fo.order = f.order;
          if (f.aliases.length) fo.aliases = f.aliases;
          return withAttrs(fo, f.attrs);
        });
      } else if (s.type === 'enum') {
        o.symbols = s.symbols;
        if (s.default !== undefined) o.default = s.default;
      } else {
        o.size = s.size;
      }
      return withAttrs(o, s.attrs);
    }
    default:
      return Object.keys(s.attrs).length === 0 ? s.type : withAttrs({ type: s.type }, s.attrs);
  }
}

/** The schema's Parsing Canonical Form (specification: "Parsing Canonical Form for Schemas"). */
export function canonicalForm(s: AvroSchema): string {
  return canonical(s, new Set());
}

function canonical(s: AvroSchema, seen: Set<NamedSchema>): string {
  switch (s.type) {
    case 'union':
      return `[${s.branches.map((b) => canonical(b, seen)).join(',')}]`;
    case 'array':
      return `{"type":"array","items":${canonical(s.items, seen)}}`;
    case 'map':
      return `{"type":"map","values":${canonical(s.values, seen)}}`;
    case 'record':
    case 'enum':
    case 'fixed': {
      const name = JSON.stringify(s.name);
      if (seen.has(s)) return name;
      seen.add(s);
      if (s.type === 'enum') return `{"name":${name},"type":"enum","symbols":[${s.symbols.map((x) => JSON.stringify(x)).join(',')}]}`;
      if (s.type === 'fixed') return `{"name":${name},"type":"fixed","size":${s.size}}`;
      const fields = s.fields.map((f) => `{"name":${JSON.stringify(f.name)},"type":${canonical(f.type, seen)}}`).join(',');
      return `{"name":${name},"type":"${s.error ? 'error' : 'record'}","fields":[${fields}]}`;
    }
    default:
      return `"${s.type}"`;
  }
}

const FP_EMPTY = 0xc15d213aa4d7a795n;
let fpTable: bigint[] | undefined;

/** The CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form, as an unsigned 64-bit bigint. */
export function fingerprint64(s: AvroSchema): bigint {
  if (!fpTable) {
    fpTable = [];
    for (let i = 0; i < 256; i++) {
      let fp = BigInt(i);
      for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (FP_EMPTY & -(fp & 1n));
      fpTable.push(BigInt.asUintN(64, fp));
    }
  }
  let fp = FP_EMPTY;
  for (const b of Buffer.from(canonicalForm(s), 'utf8')) fp = (fp >> 8n) ^ fpTable[Number((fp ^ BigInt(b)) & 0xffn)];
  return fp;
}

// ---------- logical type values (shared by the codec and defaults) ----------

/** A two's-complement big-endian integer. */
export function bigintFromTwosComplement(b: Uint8Array, start: number, end: number): bigint {
  if (end === start) return 0n;
  let v: bigint;
  if (end - start <= 6) {
    let n = 0;
    for (let i = start; i < end; i++) n = n * 256 + b[i];
    v = BigInt(n);
  } else {
    v = BigInt('0x' + Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('hex'));
  }
  return b[start] & 0x80 ? v - (1n << BigInt(8 * (end - start))) : v;
}

/** `unscaled × 10^-scale` as a plain decimal string with exactly `scale` fraction digits. */
export function decimalString(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  let digits = (neg ? -unscaled : unscaled).toString();
  if (scale > 0) {
    if (digits.length <= scale) digits = '0'.repeat(scale - digits.length + 1) + digits;
    digits = `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  }
  return neg ? '-' + digits : digits;
}

/** The canonical (lower-case, dashed) text of 16 UUID bytes. */
export function uuidString(b: Uint8Array, start: number): string {
  const h = Buffer.from(b.buffer, b.byteOffset + start, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface Duration {
  months: number;
  days: number;
  millis: number;
}

/** A duration's three little-endian unsigned 32-bit counts. */
export function durationValue(b: Uint8Array, start: number): Duration {
  const u32 = (o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
  return { months: u32(start), days: u32(start + 4), millis: u32(start + 8) };
}
