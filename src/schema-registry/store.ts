/**
 * The built-in registry's state, kept in a compacted log topic (default `_sluice_schemas`, one
 * partition), in the layout Confluent's Schema Registry gives its `_schemas` topic:
 *
 *   key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}  value {"subject","version","id","schema","deleted"}
 *   key {"keytype":"CONFIG","subject":S|null,"magic":0}         value {"compatibilityLevel":L}  (null: removed)
 *   key {"keytype":"IDS","magic":0}                              value {"maxId":N}
 *
 * A soft delete rewrites a version with `deleted: true`; a permanent one writes a tombstone (null
 * value), which compaction removes later. The IDS record keeps the highest id ever given, so an id
 * is never handed out twice, even once every version using it is permanently deleted.
 *
 * On open the topic is read from its start, and the state is what its records say, so a restart
 * (or compaction) rebuilds the same subjects, versions and ids. Every change is appended and
 * committed (durable) through one producer before it is applied in memory and answered; changes
 * are made one at a time. One registry process per log: the embedded log refuses a second
 * producer of the same id (LOG_PRODUCER_BUSY), Kafka fences the older one.
 *
 * Schemas are kept in a canonical form: the schema parsed and written back (docs, defaults,
 * aliases and other attributes kept; whitespace and a redundant namespace dropped), so the same
 * schema written another way is the same schema, gets the same id, and is not a new version.
 * An id is global: one schema has one id in every subject.
 */
import { parseSchemaText, stringifySchema, type AvroSchema } from '../core/avro/index.ts';
import { SluiceError } from '../core/errors.ts';
import type { Log, Producer } from '../log/types.ts';
import { checkCompatibility, type CompatibilityLevel } from './compat.ts';
import { registryError } from './errors.ts';

export const DEFAULT_SCHEMA_TOPIC = '_sluice_schemas';

/** An answer of the Confluent API that is an error: HTTP status, Confluent error code, message. */
export class RegistryApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryApiError';
  }
}

const notFound = {
  subject: (s: string) => new RegistryApiError(404, 40401, `Subject '${s}' not found.`),
  version: (s: string, v: number | string) => new RegistryApiError(404, 40402, `Version ${v} not found for subject '${s}'.`),
  schema: (what: string) => new RegistryApiError(404, 40403, `Schema ${what} not found.`),
};

export interface SchemaVersion {
  subject: string;
  version: number;
  id: number;
  /** The schema's canonical JSON text. */
  schema: string;
  deleted: boolean;
}

export interface RegisterResult {
  id: number;
  version: number;
  /** The subject held this schema already (nothing was written). */
  existing: boolean;
}

export interface StoreOptions {
  topic?: string;
  /** The global compatibility level until one is set (default BACKWARD, as Confluent's). */
  defaultCompatibility?: CompatibilityLevel;
  /** The producer id the store writes with (default `sluice-schema-registry:<topic>`). */
  producerId?: string;
}

/** A parsed schema: its canonical text and its resolved form (422 42201 when invalid). */
export function canonicalSchema(text: string): { canonical: string; parsed: AvroSchema } {
  let parsed: AvroSchema;
  try {
    parsed = parseSchemaText(text);
  } catch (e) {
    throw new RegistryApiError(422, 42201, `Invalid schema: ${(e as Error).message}`);
  }
  return { canonical: stringifySchema(parsed), parsed };
}

const schemaKey = (subject: string, version: number) => JSON.stringify({ keytype: 'SCHEMA', subject, version, magic: 1 });
const configKey = (subject: string | null) => JSON.stringify({ keytype: 'CONFIG', subject, magic: 0 });
const IDS_KEY = JSON.stringify({ keytype: 'IDS', magic: 0 });

interface Change {
  key: string;
  value: string | null;
}

export class RegistryStore {
  /** subject → version → the version. */
  private readonly subjects = new Map<string, Map<number, SchemaVersion>>();
  private readonly configs = new Map<string | null, CompatibilityLevel>();
  /** canonical schema → id, and back (over every stored version, soft-deleted ones too). */
  private byCanonical = new Map<string, number>();
  private byId = new Map<number, string>();
  private maxId = 0;
  private readonly parsed = new Map<string, AvroSchema>();
  private queue: Promise<unknown> = Promise.resolve();
  private commits = 0;

  private constructor(
    private readonly producer: Producer,
    readonly topic: string,
    private readonly defaultLevel: CompatibilityLevel,
  ) {}

  /** Opens (creating when missing) the registry topic on `log` and rebuilds the state from it. */
  static async open(log: Log, opts: StoreOptions = {}): Promise<RegistryStore> {
    const topic = opts.topic ?? DEFAULT_SCHEMA_TOPIC;
    await log.ensureTopic(topic, log.capabilities.compaction ? { partitions: 1, compaction: true } : { partitions: 1 });
    const { producer } = await log.openProducer(opts.producerId ?? `sluice-schema-registry:${topic}`);
    const store = new RegistryStore(producer, topic, opts.defaultCompatibility ?? 'BACKWARD');
    try {
      const [p] = await log.offsets(topic);
      let offset = p?.start ?? 0;
      const end = p?.end ?? 0;
      while (offset < end) {
        const r = await log.read(topic, 0, offset, 1 << 20);
        for (const rec of r.records) {
          if (!rec.key) continue;
          store.apply(rec.key.toString('utf8'), rec.value === null ? null : rec.value.toString('utf8'), rec.offset);
        }
        if (r.next <= offset) break;
        offset = r.next;
      }
      store.reindex();
    } catch (e) {
      await producer.close().catch(() => {});
      throw e;
    }
    return store;
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.producer.close();
  }

  // ---------- reading ----------

  listSubjects(includeDeleted = false): string[] {
    const out: string[] = [];
    for (const [s, versions] of this.subjects) if ([...versions.values()].some((v) => includeDeleted || !v.deleted)) out.push(s);
    return out.sort();
  }

  /** The subject's versions, oldest first (40401 when it has none live, or none at all with includeDeleted). */
  versions(subject: string, includeDeleted = false): SchemaVersion[] {
    const vs = [...(this.subjects.get(subject)?.values() ?? [])].filter((v) => includeDeleted || !v.deleted).sort((a, b) => a.version - b.version);
    if (vs.length === 0) throw notFound.subject(subject);
    return vs;
  }

  /** A version by number, `latest` or -1 (42202 for anything else; 40401/40402 when missing). */
  version(subject: string, v: string | number, includeDeleted = false): SchemaVersion {
    const n = parseVersion(v);
    const all = this.subjects.get(subject);
    if (!all || ![...all.values()].some((x) => includeDeleted || !x.deleted)) throw notFound.subject(subject);
    if (n === 'latest') return this.versions(subject, includeDeleted).at(-1)!;
    const found = all.get(n);
    if (!found || (found.deleted && !includeDeleted)) throw notFound.version(subject, n);
    return found;
  }

  schemaById(id: number): string {
    const s = this.byId.get(id);
    if (s === undefined) throw notFound.schema(`with id ${id}`);
    return s;
  }

  /** Where schema `id` is registered: subject and version pairs. */
  usesOf(id: number, includeDeleted = false): { subject: string; version: number }[] {
    if (!this.byId.has(id)) throw notFound.schema(`with id ${id}`);
    const out: { subject: string; version: number }[] = [];
    for (const [s, versions] of this.subjects) for (const v of versions.values()) if (v.id === id && (includeDeleted || !v.deleted)) out.push({ subject: s, version: v.version });
    return out.sort((a, b) => (a.subject === b.subject ? a.version - b.version : a.subject < b.subject ? -1 : 1));
  }

  /** The version of `subject` holding `schemaText` (40401 subject, 40403 schema not found). */
  lookup(subject: string, schemaText: string, includeDeleted = false): SchemaVersion {
    const { canonical } = canonicalSchema(schemaText);
    const vs = this.versions(subject, includeDeleted);
    const found = vs.filter((v) => v.schema === canonical).at(-1);
    if (!found) throw notFound.schema(`for subject '${subject}'`);
    return found;
  }

  /** The subject's own level (undefined when it has none) or, for null, the global one. */
  config(subject: string | null): CompatibilityLevel | undefined {
    if (subject === null) return this.configs.get(null) ?? this.defaultLevel;
    return this.configs.get(subject);
  }

  effectiveLevel(subject: string): CompatibilityLevel {
    return this.configs.get(subject) ?? this.configs.get(null) ?? this.defaultLevel;
  }

  /**
   * Why `schemaText` may not be registered in `subject` (empty: it may): against `version` alone
   * when given (in the direction of the subject's level), else against what the level checks.
   */
  compatibilityMessages(subject: string, schemaText: string, version?: string | number): string[] {
    const { parsed } = canonicalSchema(schemaText);
    const level = this.effectiveLevel(subject);
    let live: SchemaVersion[];
    if (version === undefined) {
      live = this.subjects.has(subject) ? [...this.subjects.get(subject)!.values()].filter((v) => !v.deleted).sort((a, b) => a.version - b.version) : [];
    } else {
      const n = parseVersion(version);
      if (n === 'latest' && !this.listSubjects().includes(subject)) return [];
      live = [this.version(subject, version)];
    }
    const single = version !== undefined ? (level.replace('_TRANSITIVE', '') as CompatibilityLevel) : level;
    return checkCompatibility(single, parsed, live.map((v) => ({ version: v.version, schema: this.parsedOf(v.schema) })));
  }

  // ---------- writing ----------

  /**
   * Registers `schemaText` under `subject`: the live version holding it when there is one; else a
   * new version (409 when the subject's level forbids it), with the schema's id when it has one in
   * any subject, else a new id.
   */
  register(subject: string, schemaText: string): Promise<RegisterResult> {
    return this.serial(async () => {
      const { canonical } = canonicalSchema(schemaText);
      const all = this.subjects.get(subject);
      const live = all ? [...all.values()].filter((v) => !v.deleted).sort((a, b) => a.version - b.version) : [];
      const same = live.find((v) => v.schema === canonical);
      if (same) return { id: same.id, version: same.version, existing: true };
      const messages = this.compatibilityMessages(subject, schemaText);
      if (messages.length) throw new RegistryApiError(409, 409, `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: ${messages.join('; ')}`);
      let id = this.byCanonical.get(canonical);
      const changes: Change[] = [];
      if (id === undefined) {
        id = this.maxId + 1;
        changes.push({ key: IDS_KEY, value: JSON.stringify({ maxId: id }) });
      }
      const version = Math.max(0, ...(all ? [...all.keys()] : [])) + 1;
      changes.unshift({ key: schemaKey(subject, version), value: JSON.stringify({ subject, version, id, schema: canonical, deleted: false }) });
      await this.write(changes);
      return { id, version, existing: false };
    });
  }

  /** Deletes a subject's live versions (soft), or its soft-deleted ones for good (`permanent`); returns the versions. */
  deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    return this.serial(async () => {
      const all = [...(this.subjects.get(subject)?.values() ?? [])].sort((a, b) => a.version - b.version);
      if (all.length === 0) throw notFound.subject(subject);
      const live = all.filter((v) => !v.deleted);
      if (permanent) {
        if (live.length) throw new RegistryApiError(404, 40405, `Subject '${subject}' was not deleted first before being permanently deleted`);
        await this.write([...all.map((v) => ({ key: schemaKey(subject, v.version), value: null })), ...(this.configs.has(subject) ? [{ key: configKey(subject), value: null }] : [])]);
        return all.map((v) => v.version);
      }
      if (live.length === 0) throw new RegistryApiError(404, 40404, `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`);
      await this.write(live.map((v) => ({ key: schemaKey(subject, v.version), value: JSON.stringify({ ...v, deleted: true }) })));
      return live.map((v) => v.version);
    });
  }

  /** Deletes one version (soft, or for good once soft-deleted); returns its number. */
  deleteVersion(subject: string, v: string | number, permanent: boolean): Promise<number> {
    return this.serial(async () => {
      const found = this.version(subject, v, permanent);
      if (permanent) {
        if (!found.deleted) throw new RegistryApiError(404, 40407, `Subject '${subject}' Version ${found.version} was not deleted first before being permanently deleted`);
        await this.write([{ key: schemaKey(subject, found.version), value: null }]);
      } else {
        await this.write([{ key: schemaKey(subject, found.version), value: JSON.stringify({ ...found, deleted: true }) }]);
      }
      return found.version;
    });
  }

  /** Sets (level) or removes (null) the level of a subject, or the global one (subject null). */
  setConfig(subject: string | null, level: CompatibilityLevel | null): Promise<void> {
    return this.serial(() => this.write([{ key: configKey(subject), value: level === null ? null : JSON.stringify({ compatibilityLevel: level }) }]));
  }

  // ---------- internals ----------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Commits `changes` durably, then applies them (the very records a restart would read). */
  private async write(changes: Change[]): Promise<void> {
    const now = Date.now();
    for (const c of changes) this.producer.append(this.topic, { key: c.key, value: c.value, timestamp: now }, 0);
    try {
      await this.producer.commit(String(++this.commits));
    } catch (e) {
      await this.producer.abort().catch(() => {});
      throw e instanceof SluiceError ? e : new RegistryApiError(500, 50001, `Error while storing the schema registry's change: ${(e as Error).message}`);
    }
    for (const c of changes) this.apply(c.key, c.value, -1);
    this.reindex();
  }

  private apply(keyText: string, valueText: string | null, offset: number): void {
    let key: { keytype?: unknown; subject?: unknown; version?: unknown };
    let value: Record<string, unknown> | null;
    try {
      key = JSON.parse(keyText);
      value = valueText === null ? null : JSON.parse(valueText);
    } catch {
      throw registryError('REGISTRY_STORE', `the record at offset ${offset} of topic ${this.topic} is not JSON: the topic was not written by Sluice's schema registry`);
    }
    switch (key.keytype) {
      case 'SCHEMA': {
        const subject = String(key.subject);
        const version = Number(key.version);
        if (value === null) {
          this.subjects.get(subject)?.delete(version);
          if (this.subjects.get(subject)?.size === 0) this.subjects.delete(subject);
          return;
        }
        const id = Number(value.id);
        if (!Number.isInteger(id) || typeof value.schema !== 'string') throw registryError('REGISTRY_STORE', `the schema record at offset ${offset} of topic ${this.topic} has no id or schema`);
        let vs = this.subjects.get(subject);
        if (!vs) this.subjects.set(subject, (vs = new Map()));
        vs.set(version, { subject, version, id, schema: value.schema, deleted: value.deleted === true });
        if (id > this.maxId) this.maxId = id;
        return;
      }
      case 'CONFIG': {
        const subject = key.subject === null || key.subject === undefined ? null : String(key.subject);
        if (value === null) this.configs.delete(subject);
        else this.configs.set(subject, value.compatibilityLevel as CompatibilityLevel);
        return;
      }
      case 'IDS':
        if (value && Number(value.maxId) > this.maxId) this.maxId = Number(value.maxId);
        return;
      default:
        return; // other key types (Confluent's NOOP, DELETE_SUBJECT, MODE) carry nothing this registry keeps
    }
  }

  private reindex(): void {
    this.byCanonical = new Map();
    this.byId = new Map();
    for (const vs of this.subjects.values()) {
      for (const v of vs.values()) {
        this.byCanonical.set(v.schema, v.id);
        this.byId.set(v.id, v.schema);
      }
    }
  }

  private parsedOf(canonical: string): AvroSchema {
    let p = this.parsed.get(canonical);
    if (!p) this.parsed.set(canonical, (p = canonicalSchema(canonical).parsed));
    return p;
  }
}

/** A version in a path or body: a positive number, `latest` or -1 (latest); 42202 otherwise. */
export function parseVersion(v: string | number): number | 'latest' {
  if (v === 'latest' || v === -1 || v === '-1') return 'latest';
  const n = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) throw new RegistryApiError(422, 42202, `The specified version '${v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`);
  return n;
}
