/**
 * The expect processor's transform: every record of its inputs is checked against each
 * expectation that applies to it (all of them, so each counts), then
 *
 * - passes on unchanged when it failed none, or only `warn` ones (counted, logged at most once
 *   per `warnInterval` per expectation);
 * - is thrown as EXPECTATION_FAILED, marked `deadLetter`, when it failed a `dlq` one: the task
 *   writes it to `<pipeline>.dlq` with the message naming each failed expectation and why
 *   (whatever the processor's `onError`, which is for records the checks cannot read);
 * - is thrown as EXPECTATION_STOP, marked `halt`, when it failed a `stop` one: the task stops
 *   before writing it.
 *
 * Records of a referential expectation's table (the side inputs) only feed that table's keys in
 * the keyed state. Deletes, truncates and tombstones pass unchecked (volume counts them, tombstones
 * aside). Counts are per run (since the processor started), as `processed` is.
 */
import { Counter, Registry } from '../../core/metrics.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { openDocuments } from '../../core/serde/documents.ts';
import { SCHEMA_HEADER } from '../../core/schemas.ts';
import type { KeyedState, ProcessorContext, RecordTransform, TransformInput } from '../../registry/spec.ts';
import { actionOf, kindOf, type Action, type Kind } from '../../quality/expectations/config.ts';
import { compileCheck, refKey, uniquePrefix, type RecordCheck, type Subject } from '../../quality/expectations/checks.ts';
import { VolumeCheck, type Verdict } from '../../quality/expectations/volume.ts';
import { outputTopic } from '../common.ts';
import { compileExpr, type Compiled } from '../expr/index.ts';
import { evaluate, scopeOf } from '../exprs.ts';
import { expectError, type ExpectationConfig, type ExpectProcessorConfig } from './spec.ts';

const META = 'meta';

interface Change {
  op?: unknown;
  before?: unknown;
  after?: unknown;
  source?: unknown;
}
const isChange = (v: unknown): v is Change => v !== null && typeof v === 'object' && !Array.isArray(v) && 'op' in v && 'source' in v;

/** One expectation at run time: its check, its counts, its metrics. */
class Tracked {
  readonly kind: Kind;
  readonly action: Action;
  passed = 0;
  failed = 0;
  lastFailure: { reason: string; at: string } | null = null;
  /** Failures not logged yet (warn), and when the last line was. */
  private unlogged = 0;
  private loggedAt = -Infinity;
  private readonly pass: Counter;
  private readonly fail: Counter;
  check: RecordCheck | null = null;
  volume: VolumeCheck | null = null;
  when: Compiled | null;

  constructor(readonly e: ExpectationConfig, labels: Record<string, string>, registry: Registry) {
    this.kind = kindOf(e);
    this.action = actionOf(e);
    this.when = e.when ? compileExpr(e.when, { expect: 'boolean' }) : null;
    const help = 'Expectation checks by result (a record checked, or for volume a window judged)';
    this.pass = registry.register(new Counter('sluice_expectation_checks_total', help, { ...labels, expectation: e.name, result: 'pass' }));
    this.fail = registry.register(new Counter('sluice_expectation_checks_total', help, { ...labels, expectation: e.name, result: 'fail' }));
  }

  passes(n = 1): void {
    this.passed += n;
    this.pass.inc(n);
  }

  fails(reason: string, n = 1): void {
    this.failed += n;
    this.fail.inc(n);
    this.lastFailure = { reason, at: new Date().toISOString() };
  }

  /** Whether a warn failure is to be logged now (at most once per interval), and how many it stands for. */
  toLog(now: number, every: number): number {
    this.unlogged++;
    if (now - this.loggedAt < every) return 0;
    const n = this.unlogged;
    this.unlogged = 0;
    this.loggedAt = now;
    return n;
  }

  status() {
    return { name: this.e.name, check: this.kind, action: this.action, passed: this.passed, failed: this.failed, lastFailure: this.lastFailure };
  }
}

/** A record's place, for messages. */
const where = (rec: TransformInput) => `${rec.topic}${rec.partition !== undefined ? `/${rec.partition}/${rec.offset}` : ''}`;

/** Whether a table entry (a topic, `*` pattern or `topic:<name>`) names `topic`: for side records when the engine does not say which entry reads them. */
function entryReads(entry: string, topic: string): boolean {
  if (entry.startsWith('topic:')) return entry.slice(6) === topic;
  return new RegExp('^' + entry.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(topic);
}

export function expectTransform(c: ExpectProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const what = `processor ${c.name}`;
  const registry = ctx.registry ?? new Registry();
  const labels = { pipeline: ctx.pipeline, processor: c.name };
  let state: KeyedState | null = null;
  let clock = -Infinity;
  let saved = -Infinity;
  const env = {
    state: () => {
      if (!state) throw new Error(`bug: ${what} reads keyed state before it is opened`);
      return state;
    },
    clock: () => clock,
  };
  const now0 = Date.now();
  const all = c.expectations.map((e) => {
    const t = new Tracked(e, labels, registry);
    if (t.kind === 'volume') t.volume = new VolumeCheck(e.volume!, now0);
    else t.check = compileCheck(e, c.name, env);
    return t;
  });
  const records = all.filter((t) => t.check);
  const volumes = all.filter((t) => t.volume);
  const windows = new Map(c.expectations.filter((e) => e.unique).map((e) => [uniquePrefix(e.name), e.unique!.window]));
  /** Per referenced table entry: its key columns (one per distinct `key` of the expectations on it). */
  const tables = new Map<string, Set<string | undefined>>();
  for (const e of c.expectations) if (e.referential) (tables.get(e.referential.table) ?? tables.set(e.referential.table, new Set()).get(e.referential.table)!).add(e.referential.key);
  const isSide = ctx.isSide ?? (() => false);
  const tableOfTopic = (topic: string): string | undefined => ctx.sideInput?.(topic) ?? [...tables.keys()].find((t) => entryReads(t, topic)) ?? (tables.size === 1 ? [...tables.keys()][0] : undefined);

  const warn = (t: Tracked, reason: string, rec: TransformInput | null, now: number) => {
    const n = t.toLog(now, c.warnInterval);
    if (n) ctx.logger.warn('a record failed an expectation (action: warn); it was passed on', { processor: c.name, expectation: t.e.name, check: t.kind, reason, ...(rec ? { at: where(rec) } : {}), ...(n > 1 ? { failuresSinceLastLine: n } : {}) });
  };

  const stop = (t: Tracked, reason: string, rec: TransformInput | null) => {
    const e = expectError(
      'EXPECTATION_STOP',
      `processor ${c.name} stopped: expectation ${t.e.name} (${t.kind}) failed${rec ? ` at ${where(rec)}` : ''}: ${reason}. The ${rec ? 'record was not written; the processor resumes at it' : 'processor resumes where it stopped'} when restarted: fix the data or the expectation, or set its action to ${t.kind === 'volume' ? 'warn' : 'dlq or warn'}`,
    );
    (e as { halt?: boolean }).halt = true;
    return e;
  };

  /** Counts window verdicts; a failure of a `stop` volume expectation throws. */
  const judged = (t: Tracked, vs: Verdict[], rec: TransformInput | null, now: number) => {
    for (const v of vs) {
      if (v.pass) {
        t.passes(v.times);
        continue;
      }
      t.fails(v.reason!, v.times);
      if (t.action === 'stop') throw stop(t, v.reason!, rec);
      warn(t, v.reason!, rec, now);
    }
  };

  /** A record of a referenced table: its key goes into (or, deleted, out of) the table's keys. */
  const sideRecord = (rec: TransformInput) => {
    const table = tableOfTopic(rec.topic);
    const keys = table === undefined ? undefined : tables.get(table);
    if (!keys) return;
    const v = rec.value === null ? null : openDocuments(parseJson(rec.value));
    if (isChange(v) && v.op === 't') return; // a truncate: its rows' deletes are not in the log
    let recordKey: unknown;
    const keyOf = (): unknown => (recordKey ??= rec.key === null ? null : parseKey(rec.key));
    for (const col of keys) {
      const fromKey = (): unknown => {
        const k = keyOf();
        if (k === null || typeof k !== 'object' || Array.isArray(k)) return k;
        const o = k as Record<string, unknown>;
        return col === undefined ? (Object.keys(o).length === 1 ? Object.values(o)[0] : null) : o[col];
      };
      const of = (row: unknown): unknown => {
        if (col !== undefined && row !== null && typeof row === 'object' && !Array.isArray(row) && (row as Record<string, unknown>)[col] !== undefined) return (row as Record<string, unknown>)[col];
        return fromKey();
      };
      const s = env.state();
      if (v === null || (isChange(v) && v.op === 'd')) {
        const k = of(isChange(v) ? v.before : null);
        if (k !== null && k !== undefined) s.delete(refKey(table!, col, k));
        continue;
      }
      const row = isChange(v) ? v.after : v;
      const k = of(row);
      if (k === null || k === undefined) throw new TypeError(`${what}: a record of table ${table} (${where(rec)}) without ${col ?? 'a key'}`);
      // An update that moved the key (a `key` column that is not the primary key): the old value goes.
      if (isChange(v) && v.op === 'u' && col !== undefined && v.before && typeof v.before === 'object') {
        const old = (v.before as Record<string, unknown>)[col];
        if (old !== undefined && old !== null && refKey(table!, col, old) !== refKey(table!, col, k)) s.delete(refKey(table!, col, old));
      }
      s.put(refKey(table!, col, k), 1);
    }
  };

  return {
    open(s) {
      state = s;
      clock = s.get<{ clock: number }>(META)?.clock ?? -Infinity;
      saved = clock;
      const gone: string[] = [];
      for (const [k, v] of s.entries()) {
        if (!k.startsWith('u\u0000')) continue;
        const w = windows.get(k.slice(0, k.indexOf('\u0000', 2) + 1));
        if (w === undefined) gone.push(k); // of a unique expectation no longer configured
        else s.timer(Math.ceil(((v as { t: number }).t + w + 1) / 1000) * 1000, k);
      }
      for (const k of gone) s.delete(k);
    },

    apply(rec) {
      if (tables.size && isSide(rec.topic)) {
        sideRecord(rec);
        return [];
      }
      const out = [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: rec.value, headers: rec.headers }];
      if (rec.value === null) return out;
      const now = Date.now();
      for (const t of volumes) judged(t, t.volume!.record(now), rec, now);
      const scope = scopeOf(rec);
      const v = scope.value;
      const change = isChange(v);
      if (change && v.op !== 'c' && v.op !== 'u' && v.op !== 'r') return out; // deletes and truncates pass unchecked
      if (rec.timestamp > clock) clock = rec.timestamp;
      const sid = rec.headers?.[SCHEMA_HEADER];
      const subject: Subject = { rec, scope, row: change ? v.after : v, schema: sid ? ctx.schemaOf?.(sid) : undefined, now };
      const failures: { t: Tracked; reason: string }[] = [];
      const checked: Tracked[] = [];
      for (const t of records) {
        if (t.when && evaluate(t.when, scope, `${what} (expectation ${t.e.name}, when)`) !== true) continue;
        checked.push(t);
        const reason = t.check!.test(subject);
        if (reason === null) t.passes();
        else {
          t.fails(reason);
          failures.push({ t, reason });
        }
      }
      if (failures.length) {
        const halt = failures.find((f) => f.t.action === 'stop');
        if (halt) throw stop(halt.t, halt.reason, rec);
        if (failures.some((f) => f.t.action === 'dlq')) {
          const e = expectError('EXPECTATION_FAILED', `processor ${c.name}: ${failures.map((f) => `expectation ${f.t.e.name} (${f.t.kind}${f.t.action === 'warn' ? ', warn' : ''}): ${f.reason}`).join('; ')}`);
          (e as { deadLetter?: boolean }).deadLetter = true;
          throw e;
        }
        for (const f of failures) warn(f.t, f.reason, rec, now);
      }
      for (const t of checked) t.check!.keep?.(subject);
      return out;
    },

    tick(now) {
      for (const t of volumes) judged(t, t.volume!.tick(now), null, now);
      if (!state) return [];
      if (clock !== saved) {
        state.put(META, { clock });
        saved = clock;
      }
      // A unique value's timer at or before the clock: it leaves the window unless kept again since (a later timer holds it then).
      for (const k of state.due(clock)) {
        const w = windows.get(k.slice(0, k.indexOf('\u0000', 2) + 1));
        const seen = state.get<{ t: number }>(k);
        if (seen !== undefined && (w === undefined || seen.t + w < clock)) state.delete(k);
      }
      return [];
    },

    status() {
      return { expectations: all.map((t) => t.status()) };
    },
  };
}

function parseKey(b: Buffer): unknown {
  try {
    return parseJson(b);
  } catch {
    return b.toString('utf8');
  }
}
