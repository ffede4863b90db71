/**
 * The Redis sink: each change's row becomes one Redis key (`key` template), a hash of its fields or
 * a JSON string (`format`), with an optional expiry (`ttl`); a delete removes the key. A batch is
 * written in two round trips:
 *
 * 1. `WATCH` the offsets hash and every key of the batch, `TYPE` of every key (and the stored
 *    offsets, when the batch says where it expects them): a key of another type is refused before
 *    anything is written, and the WATCH makes sure nothing changes between this look and the write.
 * 2. `MULTI`, per key `DEL` + `HSET` (+ `PEXPIRE`) or `SET … PX`, the batch's offsets (`HSET` on
 *    `<offsetsTable>:<pipeline>:<sink>`, field `<topic>/<partition>` → next offset) and the count
 *    of records applied per partition (`HINCRBY`, field `<topic>/<partition>:applied`), `EXEC`.
 *
 * EXEC applies all of it or, when a watched key changed (another client, an expiry), none of it:
 * the data never stands without its offsets. On start the sink reads the offsets hash and the
 * engine resumes there, so a crash at any point neither loses nor repeats a change. Each key is
 * deleted before it is written, so a hash holds exactly the row's fields, and writing a batch
 * again writes the same keys.
 */
import { isRetriable, SluiceError } from '../../core/errors.ts';
import type { Row } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS } from '../../config/fields.ts';
import { toJsonText } from '../document/json.ts';
import { TableShape } from '../document/reshape.ts';
import { Decimal, type Doc, type DocValue } from '../document/types.ts';
import { sinkError } from '../errors.ts';
import type { Sink, SinkBatch, SinkRecord } from '../types.ts';
import { redisError } from './errors.ts';
import { parseTemplate, type KeyPart } from './key.ts';
import { RedisConnectionError, RedisReplyError, RespClient, type Arg, type Reply } from './resp.ts';
import type { RedisSinkConfig } from './spec.ts';

/** One key the batch writes (`value` set) or deletes. */
interface Write {
  key: string;
  record: SinkRecord;
  /** Hash: field, value, field, value…; JSON: the text. Null: delete the key. */
  value: string[] | string | null;
}

/** How many times a batch is tried again at once when a watched key changed (before the supervisor's backoff). */
const CONFLICT_RETRIES = 5;

const where = (r: SinkRecord): string => `${r.topic}/${r.partition}@${r.offset}`;

/** A value as text: a key part or a hash field. Strings as they are; dates ISO-8601; other values JSON. */
export function valueText(v: DocValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Decimal) return v.text;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return toJsonText(v);
}

export class RedisSink implements Sink {
  private client: RespClient | null = null;
  private readonly parts: KeyPart[];
  private readonly offsetsKey: string;
  private readonly shapes = new Map<string, TableShape>();
  private readonly truncatesSeen = new Set<string>();

  constructor(
    private readonly cfg: RedisSinkConfig,
    private readonly logger: Logger,
    pipeline: string,
  ) {
    const parts = parseTemplate(cfg.key);
    // The config check refused a bad template already.
    if (typeof parts === 'string') throw redisError('REDIS_KEY_TEMPLATE', `sink ${cfg.name}: key ${JSON.stringify(cfg.key)}: ${parts}`);
    this.parts = parts;
    this.offsetsKey = `${cfg.offsetsTable}:${pipeline}:${cfg.name}`;
  }

  get name(): string {
    return this.cfg.name;
  }

  private get where(): string {
    const c = this.cfg.connection;
    return `${c.host}:${c.port} (db ${c.db})`;
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg.connection;
    try {
      this.client = await RespClient.connect({
        host: c.host,
        port: c.port,
        user: c.user,
        password: c.password,
        db: c.db,
        tls: c.tls,
        connectTimeoutMs: c.connectTimeoutMs || DEFAULT_CONNECT_TIMEOUT_MS,
        commandTimeoutMs: c.statementTimeoutMs || DEFAULT_STATEMENT_TIMEOUT_MS,
      });
      const offsets = await this.storedOffsets();
      this.logger.info('redis sink open', { sink: this.cfg.name, server: this.where, offsets: this.offsetsKey, key: this.cfg.key, format: this.cfg.format, ttlMs: this.cfg.ttl });
      return offsets;
    } catch (e) {
      this.client?.close();
      this.client = null;
      throw this.explain(e);
    }
  }

  async storedOffsets(): Promise<Map<string, Map<number, number>>> {
    let r: Reply;
    try {
      r = await this.client!.call('HGETALL', this.offsetsKey);
    } catch (e) {
      if (e instanceof RedisReplyError && e.prefix === 'WRONGTYPE') {
        throw redisError('REDIS_WRONGTYPE', `sink ${this.cfg.name}: the key ${this.offsetsKey}, where the sink keeps its offsets, is not a hash: another program uses it; set the sink's offsetsTable to another prefix (or delete the key to apply everything again)`, { cause: e });
      }
      throw this.explain(e);
    }
    const out = new Map<string, Map<number, number>>();
    const items = (r ?? []) as string[];
    for (let i = 0; i + 1 < items.length; i += 2) {
      const m = /^(.+)\/(\d+)$/.exec(items[i]);
      if (!m) continue;
      let parts = out.get(m[1]);
      if (!parts) out.set(m[1], (parts = new Map()));
      parts.set(Number(m[2]), Number(items[i + 1]));
    }
    return out;
  }

  async close(): Promise<void> {
    this.client?.close();
    this.client = null;
  }

  async apply(batch: SinkBatch): Promise<void> {
    const writes = this.writesOf(batch);
    try {
      for (let attempt = 1; ; attempt++) {
        if (await this.write(batch, writes)) return;
        if (attempt >= CONFLICT_RETRIES) {
          throw redisError('REDIS_CONFLICT', `sink ${this.cfg.name}: another client kept changing keys of the batch while it was written (${attempt} tries); nothing of the batch was written, it is applied again`);
        }
      }
    } catch (e) {
      throw this.explain(e);
    }
  }

  /** One try at the batch: false when a watched key changed (nothing was written). */
  private async write(batch: SinkBatch, writes: Write[]): Promise<boolean> {
    const client = this.client!;
    const keys = [...new Set(writes.map((w) => w.key))];
    const fenced = batch.offsets.filter((o) => o.from !== undefined);
    const look: Arg[][] = [['WATCH', this.offsetsKey]];
    for (let i = 0; i < keys.length; i += 1000) look.push(['WATCH', ...keys.slice(i, i + 1000)]);
    for (const k of keys) look.push(['TYPE', k]);
    if (fenced.length) look.push(['HMGET', this.offsetsKey, ...fenced.map((o) => `${o.topic}/${o.partition}`)]);
    const seen = await client.pipeline(look);
    const failed = seen.find((r) => r instanceof RedisReplyError);
    if (failed) throw failed;
    const wanted = this.cfg.format === 'hash' ? 'hash' : 'string';
    const typeAt = 1 + Math.ceil(keys.length / 1000);
    const types = new Map(keys.map((k, i) => [k, seen[typeAt + i] as string]));
    for (const w of writes) {
      const t = types.get(w.key)!;
      if (t === 'none' || t === wanted) continue;
      await client.call('UNWATCH');
      throw redisError(
        'REDIS_WRONGTYPE',
        `sink ${this.cfg.name}: the key ${JSON.stringify(w.key)} (of record ${where(w.record)}) holds a ${t}, and the sink writes ${wanted === 'hash' ? 'hashes (format: hash)' : 'strings (format: json)'}: another program uses this key, or the sink's format changed. Change the sink's key template, or delete the key; nothing of this batch was written`,
      );
    }
    if (fenced.length) {
      const stored = seen[seen.length - 1] as (string | null)[];
      const moved = fenced.find((o, i) => Number(stored[i] ?? 0) !== o.from);
      if (moved) {
        await client.call('UNWATCH');
        throw sinkError('SINK_FENCED', `sink ${this.cfg.name}: ${moved.topic}/${moved.partition} stands at ${stored[fenced.indexOf(moved)] ?? 0} in Redis, not at ${moved.from}: another worker applied it; joining the group again`);
      }
    }

    const tx: Arg[][] = [['MULTI']];
    const ttl = this.cfg.ttl;
    for (const w of writes) {
      if (w.value === null) tx.push(['DEL', w.key]);
      else if (typeof w.value === 'string') tx.push(ttl ? ['SET', w.key, w.value, 'PX', ttl] : ['SET', w.key, w.value]);
      else {
        tx.push(['DEL', w.key]);
        // A row without a non-null field is no hash: Redis keeps no empty hashes.
        if (w.value.length) {
          tx.push(['HSET', w.key, ...w.value]);
          if (ttl) tx.push(['PEXPIRE', w.key, ttl]);
        }
      }
    }
    if (batch.offsets.length) tx.push(['HSET', this.offsetsKey, ...batch.offsets.flatMap((o) => [`${o.topic}/${o.partition}`, o.next])]);
    for (const [field, n] of this.appliedCounts(batch)) tx.push(['HINCRBY', this.offsetsKey, field, n]);
    tx.push(['EXEC']);
    const replies = await client.pipeline(tx);
    const exec = replies[replies.length - 1];
    if (exec instanceof RedisReplyError) {
      // EXECABORT: a command was refused as it was queued (out of memory, a read-only replica): nothing was written.
      const cause = replies.find((r, i) => i < replies.length - 1 && r instanceof RedisReplyError) as RedisReplyError | undefined;
      const why = cause ?? exec;
      throw redisError('REDIS_COMMAND_FAILED', `sink ${this.cfg.name}: Redis at ${this.where} refused the batch: ${why.message}; nothing of it was written${retriableReply(why) ? ', retrying' : '. Fix the cause and restart'}`, { retriable: retriableReply(why), cause: why });
    }
    if (exec === null) return false;
    const bad = (exec as Reply[]).find((r) => r instanceof RedisReplyError) as RedisReplyError | undefined;
    if (bad) {
      throw redisError('REDIS_COMMAND_FAILED', `sink ${this.cfg.name}: Redis at ${this.where} failed a command inside the batch's transaction (${bad.message}); Redis does not roll back, so the batch may be partly written with its offsets. Fix the cause, then delete the sink's offsets hash ${this.offsetsKey} to write everything again`, { retriable: false, cause: bad });
    }
    return true;
  }

  /** Records applied per partition in the batch (`<topic>/<partition>:applied` → count). */
  private appliedCounts(batch: SinkBatch): Map<string, number> {
    const out = new Map<string, number>();
    const add = (r: SinkRecord) => {
      const f = `${r.topic}/${r.partition}:applied`;
      out.set(f, (out.get(f) ?? 0) + 1);
    };
    for (const t of batch.tables) {
      if (t.truncate) add(t.truncate);
      for (const r of t.changes) add(r);
    }
    return out;
  }

  /** The keys the batch writes and deletes, in order (deletes of a table before its upserts). */
  private writesOf(batch: SinkBatch): Write[] {
    const out: Write[] = [];
    for (const t of batch.tables) {
      if (t.truncate && !this.truncatesSeen.has(t.topic)) {
        this.truncatesSeen.add(t.topic);
        this.logger.warn('redis sink does not apply truncates: the keys of the table stay until they expire or are deleted', { sink: this.cfg.name, topic: t.topic });
      }
      for (const r of t.keyless) {
        if (r.op === 'u' || r.op === 'd') {
          throw sinkError('SINK_NO_KEY', `sink ${this.cfg.name}: table ${t.schema.schema}.${t.schema.table} has no primary key, so its ${r.op === 'u' ? 'update' : 'delete'} (${where(r)}) cannot find its Redis key; give the source table a primary key, then re-snapshot`);
        }
        out.push(this.upsert(r));
      }
      for (const r of t.deletes) out.push(this.remove(r));
      for (const r of t.upserts) out.push(this.upsert(r));
    }
    return out;
  }

  private shape(s: SchemaRecord): TableShape {
    let shape = this.shapes.get(s.id);
    if (!shape) this.shapes.set(s.id, (shape = new TableShape(s, null, { name: this.cfg.name, label: 'Redis', json: this.cfg.format === 'json' })));
    return shape;
  }

  private upsert(r: SinkRecord): Write {
    const env = parseJson(r.value);
    // A change event's row image; any other record (a flat row, an event) is its own value.
    const isEnvelope = env !== null && typeof env === 'object' && !Array.isArray(env) && !Buffer.isBuffer(env) && 'op' in env && 'after' in env;
    const after = isEnvelope ? (env as Row).after : env;
    if (after === null || typeof after !== 'object' || Array.isArray(after) || Buffer.isBuffer(after)) {
      if (this.cfg.format === 'hash') {
        throw redisError('REDIS_NOT_OBJECT', `sink ${this.cfg.name}: record ${where(r)} holds ${Array.isArray(after) ? 'a list' : after === null ? 'null' : `a ${typeof after}`}, not an object, which format: hash cannot store as hash fields (format: json stores any value)`);
      }
      return { key: this.keyOf(r, null), record: r, value: toJsonText(after as DocValue) };
    }
    const row = this.shape(r.schema).convert(after as Row);
    const key = this.keyOf(r, row);
    if (this.cfg.format === 'json') return { key, record: r, value: toJsonText(row) };
    const fields: string[] = [];
    for (const [f, v] of Object.entries(row)) if (v !== null && v !== undefined) fields.push(f, valueText(v));
    return { key, record: r, value: fields };
  }

  private remove(r: SinkRecord): Write {
    let row: Doc | null = null;
    if (this.parts.some((p) => 'field' in p)) {
      // The row image before the delete holds at least the key columns (all columns with REPLICA IDENTITY FULL).
      const before = (parseJson(r.value) as Row).before;
      if (before && typeof before === 'object' && !Array.isArray(before) && !Buffer.isBuffer(before)) row = this.shape(r.schema).convert(before as Row);
    }
    return { key: this.keyOf(r, row), record: r, value: null };
  }

  /** The record's Redis key by the template; `row` is its converted row (null: only the key is known). */
  private keyOf(r: SinkRecord, row: Doc | null): string {
    let keyRow: Doc | null | undefined;
    const keyDoc = (): Doc | null => {
      if (keyRow === undefined) {
        const k = r.key === null ? null : parseJson(r.key);
        keyRow = k !== null && typeof k === 'object' && !Array.isArray(k) && !Buffer.isBuffer(k) ? this.shape(r.schema).convert(k as Row) : k === null ? null : { '': k as DocValue };
      }
      return keyRow;
    };
    const missing = (what: string): never => {
      throw redisError('REDIS_KEY_TEMPLATE', `sink ${this.cfg.name}: the key template ${JSON.stringify(this.cfg.key)} needs ${what}, which record ${where(r)} (${r.op === 'd' ? 'a delete' : 'op ' + r.op}) lacks or holds as null; use fields every record has (a delete knows its key columns only, unless the table has REPLICA IDENTITY FULL)`);
    };
    let out = '';
    for (const p of this.parts) {
      if ('text' in p) out += p.text;
      else if ('ref' in p) {
        if (p.ref === 'topic') out += r.topic;
        else if (p.ref === 'table') out += r.schema.table;
        else if (p.ref === 'schema') out += r.schema.schema;
        else {
          const k = keyDoc();
          if (!k) missing('{key}');
          const cols = r.schema.keyColumns.length ? r.schema.keyColumns : Object.keys(k!);
          out += cols.map((c) => (k![c] === null || k![c] === undefined ? missing(`{key} (its column ${c})`) : valueText(k![c]))).join(':');
        }
      } else if ('keyField' in p) {
        const v = keyDoc()?.[p.keyField];
        out += v === null || v === undefined ? missing(`{key.${p.keyField}}`) : valueText(v);
      } else {
        const v = row?.[p.field] ?? keyDoc()?.[p.field];
        out += v === null || v === undefined ? missing(`{${p.field}}`) : valueText(v);
      }
    }
    return out;
  }

  private explain(e: unknown): unknown {
    if (e instanceof SluiceError) return e;
    const name = this.cfg.name;
    if (e instanceof RedisConnectionError || isRetriable(e)) {
      const code = (e as { code?: string }).code;
      const hint =
        code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `: start Redis there (redis-server, or systemctl start redis-server) or fix the sink's connection`
          : code === 'ETIMEDOUT'
            ? ' (connectTimeout / statementTimeout of the sink\'s connection set the limits)'
            : '';
      return sinkError('SINK_CONNECTION_LOST', `sink ${name}: cannot use Redis at ${this.where}: ${(e as Error).message}${hint}; retrying, and resuming from the offsets stored in Redis`, { cause: e });
    }
    if (e instanceof RedisReplyError) {
      if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(e.prefix) || /invalid password|DB index is out of range|AUTH <password> called without any password/i.test(e.message)) {
        return redisError('REDIS_AUTH', `sink ${name}: Redis at ${this.where} refused the connection: ${e.message}. Fix the user, password or db of the sink's connection`, { cause: e });
      }
      return redisError('REDIS_COMMAND_FAILED', `sink ${name}: Redis at ${this.where} refused a command: ${e.message}`, { retriable: retriableReply(e), cause: e });
    }
    return e;
  }
}

/** Error replies a later try may not get: memory freed, a replica promoted, loading done. */
function retriableReply(e: RedisReplyError): boolean {
  return ['OOM', 'READONLY', 'LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN'].includes(e.prefix);
}
