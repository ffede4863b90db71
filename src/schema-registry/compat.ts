/**
 * Avro schema compatibility, by the specification's schema resolution ("Schema Resolution"): can a
 * reader with schema R decode data written with schema W? And the registry's compatibility modes
 * on top (Confluent's names and meanings):
 *
 *   BACKWARD    the new schema reads data written with the latest registered one
 *   FORWARD     the latest registered schema reads data written with the new one
 *   FULL        both
 *   *_TRANSITIVE  the same against every registered (not deleted) version, not only the latest
 *   NONE        no check
 *
 * The rules (as Java's org.apache.avro.SchemaCompatibility applies them):
 * - same primitive type; or a promotion of the writer's type: int → long, float, double;
 *   long → float, double; float → double; string ↔ bytes;
 * - records: the same unqualified name (or a reader alias naming the writer); each reader field
 *   is read from the writer field of its name (or one of its aliases), recursively, and a reader
 *   field the writer lacks needs a default; writer fields the reader lacks are skipped;
 * - enums: the same name, and every writer symbol is a reader symbol unless the reader has a default;
 * - fixed: the same name and size; arrays: their items; maps: their values;
 * - unions: a writer union is readable when each of its branches is; a writer non-union is read
 *   by a reader union when some branch reads it, and by a reader non-union when that reads it.
 * Logical types are not compared (Java does not either): a decimal's scale or a timestamp's unit
 * may change without a complaint, the data stays decodable.
 *
 * Each incompatibility is one message naming the path (`Value.after.email`) and what breaks.
 */
import type { AvroSchema, NamedSchema, RecordSchema } from '../core/avro/index.ts';

export const COMPATIBILITY_LEVELS = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

export function isCompatibilityLevel(v: unknown): v is CompatibilityLevel {
  return typeof v === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(v);
}

const PROMOTIONS: Record<string, readonly string[]> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};

function simpleName(full: string): string {
  const i = full.lastIndexOf('.');
  return i < 0 ? full : full.slice(i + 1);
}

function describe(s: AvroSchema): string {
  switch (s.type) {
    case 'record':
    case 'enum':
    case 'fixed':
      return `${s.type} ${s.name}`;
    case 'array':
      return `array of ${describe(s.items)}`;
    case 'map':
      return `map of ${describe(s.values)}`;
    case 'union':
      return `union [${s.branches.map(describe).join(', ')}]`;
    default:
      return s.type;
  }
}

function namesMatch(reader: NamedSchema, writer: NamedSchema): boolean {
  if (simpleName(reader.name) === simpleName(writer.name)) return true;
  return reader.aliases.some((a) => a === writer.name || simpleName(a) === simpleName(writer.name));
}

/**
 * Why a reader with `reader` cannot decode data written with `writer`: one message per problem
 * (empty when it can). `path` prefixes the messages (the top-level type's name by default).
 */
export function readerIncompatibilities(reader: AvroSchema, writer: AvroSchema, path?: string): string[] {
  const out: string[] = [];
  check(reader, writer, path ?? rootName(reader), out, new Set());
  return out;
}

function rootName(s: AvroSchema): string {
  return s.type === 'record' || s.type === 'enum' || s.type === 'fixed' ? simpleName(s.name) : '';
}

function at(path: string): string {
  return path ? `at ${path}: ` : '';
}

/** Whether `reader` reads `writer` (without collecting messages; for picking a union branch). */
function reads(reader: AvroSchema, writer: AvroSchema, inProgress: Set<string>): boolean {
  const out: string[] = [];
  check(reader, writer, '', out, inProgress);
  return out.length === 0;
}

const pairIds = new WeakMap<object, number>();
let nextPairId = 0;
function idOf(s: object): number {
  let id = pairIds.get(s);
  if (id === undefined) pairIds.set(s, (id = nextPairId++));
  return id;
}

function check(reader: AvroSchema, writer: AvroSchema, path: string, out: string[], inProgress: Set<string>): void {
  if (writer.type === 'union') {
    // Every branch the writer may have written must be readable.
    for (const b of writer.branches) check(reader, b, path, out, inProgress);
    return;
  }
  if (reader.type === 'union') {
    if (reader.branches.some((b) => reads(b, writer, inProgress))) return;
    // The branch meant to read it (the same named type, or the same type): its own reasons say more.
    const meant = reader.branches.find((b) => b.type === writer.type && (!('name' in b) || namesMatch(b as NamedSchema, writer as NamedSchema)));
    if (meant) return check(meant, writer, path, out, inProgress);
    out.push(`${at(path)}the writer's ${describe(writer)} matches no branch of the reader's ${describe(reader)}`);
    return;
  }
  if (reader.type !== writer.type) {
    if (PROMOTIONS[writer.type]?.includes(reader.type)) return;
    out.push(`${at(path)}the reader's type ${describe(reader)} cannot read the writer's ${describe(writer)} (no promotion from ${writer.type} to ${reader.type})`);
    return;
  }
  switch (reader.type) {
    case 'array':
      check(reader.items, (writer as typeof reader).items, path ? `${path}[]` : '[]', out, inProgress);
      return;
    case 'map':
      check(reader.values, (writer as typeof reader).values, path ? `${path}{}` : '{}', out, inProgress);
      return;
    case 'fixed': {
      const w = writer as typeof reader;
      if (!namesMatch(reader, w)) out.push(`${at(path)}the reader's fixed ${reader.name} and the writer's fixed ${w.name} have different names`);
      else if (reader.size !== w.size) out.push(`${at(path)}the fixed ${reader.name} has size ${reader.size} in the reader and ${w.size} in the writer`);
      return;
    }
    case 'enum': {
      const w = writer as typeof reader;
      if (!namesMatch(reader, w)) {
        out.push(`${at(path)}the reader's enum ${reader.name} and the writer's enum ${w.name} have different names`);
        return;
      }
      if (reader.default !== undefined) return;
      const missing = w.symbols.filter((x) => !reader.symbols.includes(x));
      if (missing.length) out.push(`${at(path)}the writer's enum ${w.name} has symbol${missing.length > 1 ? 's' : ''} ${missing.join(', ')} that the reader's lacks (and the reader's enum has no default)`);
      return;
    }
    case 'record': {
      const w = writer as RecordSchema;
      if (!namesMatch(reader, w)) {
        out.push(`${at(path)}the reader's record ${reader.name} and the writer's record ${w.name} have different names`);
        return;
      }
      const pair = `${idOf(reader)}:${idOf(w)}`;
      if (inProgress.has(pair)) return; // a recursive type: assumed compatible while it is being checked
      inProgress.add(pair);
      try {
        for (const rf of reader.fields) {
          const fpath = path ? `${path}.${rf.name}` : rf.name;
          const wf = w.fields.find((f) => f.name === rf.name) ?? w.fields.find((f) => rf.aliases.includes(f.name));
          if (!wf) {
            if (!rf.hasDefault) out.push(`${at(fpath)}the reader's field "${rf.name}" has no default, and the writer's record ${w.name} has no such field (add a default, or keep the field)`);
            continue;
          }
          check(rf.type, wf.type, fpath, out, inProgress);
        }
      } finally {
        inProgress.delete(pair);
      }
      return;
    }
    default:
      return; // the same primitive
  }
}

/** A registered version, as the modes check against it. */
export interface VersionedSchema {
  version: number;
  schema: AvroSchema;
}

/**
 * Whether `candidate` may be registered after `existing` (the subject's live versions, oldest
 * first) under `level`: the messages of every incompatibility, each saying which version and
 * direction breaks (empty: compatible).
 */
export function checkCompatibility(level: CompatibilityLevel, candidate: AvroSchema, existing: VersionedSchema[]): string[] {
  if (level === 'NONE' || existing.length === 0) return [];
  const transitive = level.endsWith('_TRANSITIVE');
  const against = transitive ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const out: string[] = [];
  for (const old of against) {
    if (backward) {
      for (const m of readerIncompatibilities(candidate, old.schema)) out.push(`${level}: the new schema cannot read data written with version ${old.version}: ${m}`);
    }
    if (forward) {
      for (const m of readerIncompatibilities(old.schema, candidate)) out.push(`${level}: version ${old.version} cannot read data written with the new schema: ${m}`);
    }
  }
  return out;
}
