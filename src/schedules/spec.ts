/**
 * The `schedules:` key of a pipeline: pulls from HTTP/JSON APIs on cron schedules into a topic
 * (docs/schedules.md), or a validation suite over a sink's table (`validate`, src/quality/validate),
 * or a reconcile (`reconcile`, reconcile.ts). Each schedule's keys, defaults and descriptions are here, and so are the
 * checks beyond the schema (cron syntax, expressions, pagination settings), which the config loader
 * runs so that problems are reported at their line.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { duration, integer, list, object, oneOf, raw, size, string, type Infer } from '../config/fields.ts';
import type { CheckContext } from '../registry/spec.ts';
import { checkExpr } from '../processors/exprs.ts';
import { cronProblem, isTimeZone } from './cron.ts';
import { checkValidate, VALIDATE } from '../quality/validate/spec.ts';
import { checkReconcile, RECONCILE } from './reconcile.ts';
import { checkSnapshot, SNAPSHOT } from './snapshot.ts';

const NAME = '^[A-Za-z0-9_.-]+$';

const pagination = object(
  {
    type: oneOf(['none', 'cursor', 'page', 'link'] as const, {
      description: '`none`: one request. `cursor`: the next request sets query parameter `param` to the value at `path` in the answer, until it is missing or empty. `page`: `param` counts pages from `start` until a page has no records or `maxPages` were read. `link`: follows the `Link: <…>; rel="next"` header (RFC 8288/5988) until there is none.',
    }).default('none'),
    param: string({ minLength: 1, description: 'The query parameter that carries the cursor or the page number (`cursor`, `page`).' }).optional(),
    path: string({ minLength: 1, description: 'Where the next cursor is in an answer, as a JSON path (`meta.next_cursor`, `$.paging.next`) (`cursor`).' }).optional(),
    start: integer({ description: 'The first page number (`page`).' }).default(1),
    maxPages: integer({ min: 1, description: 'At most this many requests per run. `page` stops there; `cursor` and `link` fail the run (SCHEDULE_LIMIT) when the API still names a next page, rather than write part of the data.' }).default(100),
  },
  { description: 'How to get every page of an answer.' },
);

const request = object(
  {
    url: string({ pattern: '^https?://', hint: 'an http:// or https:// URL', type: 'URL', description: 'The API endpoint. Put keys in headers or in `${VAR}` references; messages, logs and the run history show the URL without its query.' }),
    method: oneOf(['GET', 'POST'] as const, { description: 'HTTP method.' }).default('GET'),
    headers: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of header → value', description: 'Request headers, e.g. `Authorization: Bearer ${WEATHER_TOKEN}`. Values are never logged or printed.' }).default({}),
    body: raw({ description: 'A JSON body for `POST` (sent with `Content-Type: application/json` unless a header says otherwise).' }).optional(),
    timeoutMs: duration({ description: 'How long one request may take, until its whole answer is read; then it is retried.' }).default(30_000, '`30s`'),
    maxResponseBytes: size({ description: 'The largest answer read; a larger one fails the run (SCHEDULE_LIMIT).' }).default(64 << 20, '`64MiB`'),
    records: string({ minLength: 1, description: 'Where the records are in an answer, as a JSON path (`data.items`, `$.results`, `list[0].values`).' }).optional('the answer itself: its items if it is a list, else the answer as one record'),
    pagination: pagination.default({}, 'none'),
  },
  { description: 'The HTTP request of each run.' },
);

const retries = object(
  {
    attempts: integer({ min: 1, description: 'Tries of each request in all (1: no retry). Timeouts, network errors, 408, 429 and 5xx answers are retried; other answers are not.' }).default(3),
    backoffMs: duration({ description: 'Pause before the first retry; it doubles with each retry…' }).default(1000, '`1s`'),
    maxBackoffMs: duration({ description: '…up to this. A `Retry-After` header of a 429 or 503 answer is followed when it is no longer than this.' }).default(30_000, '`30s`'),
  },
  { description: 'Retries of a failing request, with exponential backoff.' },
);

const transform = object(
  {
    filter: string({ minLength: 1, description: 'A boolean [expression](processing.md#expressions) over a record: only records for which it is true are written.' }).optional(),
    base: string({ minLength: 1, description: 'An expression giving the object the output starts from, e.g. `$value` (the whole record); its fields are kept unless `drop` names them.' }).optional('none: only `fields`'),
    fields: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of field → expression', description: 'Output fields, each an expression over the record (the record is `$value`, its fields by name): `temp_c: number(main.temp) - 273.15`.' }).default({}),
    drop: list(string({ minLength: 1 }), { description: 'Fields of `base` left out.', type: 'list of field names' }).default([]),
    module: string({ minLength: 1, type: 'path', description: 'A JavaScript or TypeScript module (relative to the config file) whose function maps one record to a record, a list of them, or null to drop it (instead of `base`/`fields`).' }).optional(),
    export: string({ minLength: 1, description: "The module's function." }).default('default'),
    options: raw<Record<string, unknown>>({ jsonType: 'object', type: 'mapping', description: 'Given to the module as `ctx.options`.' }).default({}),
  },
  { description: 'What each record becomes before it is written: expressions (as the `map` processor\'s) or a module.' },
).map((t, ctx) => ({ ...t, module: t.module === undefined ? undefined : resolve(dirname(ctx.fileName || '.'), t.module) }));

export const SCHEDULE = object({
  name: string({ pattern: NAME, hint: 'letters, digits, _ . -', description: 'Names the schedule in the run history and in `sluice schedules run`; renaming it starts its history (and missed-run accounting) afresh.' }),
  cron: string({ minLength: 1, type: 'cron expression', description: 'When it runs: 5 fields (`*/15 * * * *`), 6 with seconds first (`*/10 * * * * *`), or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` ([schedules.md](schedules.md#cron-expressions)). Give `cron` or `after`.' }).optional('none: the schedule runs `after` others'),
  after: list(string({ pattern: NAME, hint: 'letters, digits, _ . -' }), { minItems: 1, type: 'list of schedule names', description: 'Runs once every schedule named here has run ok for the same fire time (a chain or graph of steps, as an Airflow DAG: `snapshot → reconcile → validate → publish`); when one of them fails or is skipped, this one is recorded `skipped` for that fire time, and so are the steps after it. Instead of `cron` ([schedules.md](schedules.md#steps-after-other-schedules)).' }).optional('none: the schedule runs on its `cron`'),
  timezone: string({ minLength: 1, description: 'The IANA time zone the cron fields are read in (`Europe/Berlin`).' }).default('UTC'),
  request: request.optional('none: the schedule is a `validate` one'),
  retries: retries.default({}, 'the defaults below'),
  transform: transform.optional('records as the API sends them'),
  topic: string({ pattern: NAME, hint: 'letters, digits, _ . -', description: 'The log topic the records are written to (created when missing); required with `request`.' }).optional('none (required with `request`)'),
  key: string({ minLength: 1, description: 'A JSON path into each (transformed) record giving its key (`city.id`); a record without it fails the run.' }).optional('none: records have no key (partition 0)'),
  onMissed: oneOf(['runOnce', 'skip'] as const, { description: 'When the pipeline starts after fire times passed while it was stopped: `runOnce` runs once at once for all of them, `skip` records them as skipped and waits for the next fire time.' }).default('runOnce'),
  maxRecords: integer({ min: 1, description: 'The most records one run may take from the API (all pages, before the transform); a run with more fails (SCHEDULE_LIMIT) and writes nothing. A run is one log commit held in memory until it commits, so this bounds both.' }).default(100_000),
  validate: VALIDATE.optional(),
  reconcile: RECONCILE.optional(),
  snapshot: SNAPSHOT.optional(),
});

export type ScheduleConfig = Infer<typeof SCHEDULE>;
/** A schedule that pulls from an API into a topic (it has `request` and `topic`). */
export type PullSchedule = ScheduleConfig & { request: NonNullable<ScheduleConfig['request']>; topic: string };
export const isPull = (s: ScheduleConfig): s is PullSchedule => s.request !== undefined;

/** What a schedule does: exactly one of these keys. */
export const SCHEDULE_KINDS = ['request', 'validate', 'reconcile', 'snapshot'] as const;

export const SCHEDULES = list(SCHEDULE, { description: 'Pulls from HTTP/JSON APIs on cron schedules into topics (`request`), or validates a sink\'s table with an expectation suite (`validate`), or reconciles the source with its sinks (`reconcile`), or reads source tables again (`snapshot`), with a run history in `<name>.schedules` ([schedules.md](schedules.md)).' });

/** The history topic of a pipeline's schedules. */
export const historyTopicOf = (pipeline: string): string => `${pipeline}.schedules`;

/** Checks the raw, schema-valid `schedules` list beyond its schema, reporting each problem at its path. */
export function checkSchedules(raw: unknown, ctx: CheckContext, pipeline: { name?: unknown; source?: { topicPrefix?: unknown }; sinks?: unknown } = {}): void {
  if (!Array.isArray(raw)) return;
  const seen = new Set<string>();
  const name = String(pipeline.name ?? '');
  // The source's change topics (`<topicPrefix>.<schema>.<table>`) and the pipeline's own topics are not a schedule's to write.
  const prefix = pipeline.source ? String(pipeline.source.topicPrefix ?? name) : null;
  raw.forEach((s: any, i) => {
    const at = (...p: string[]) => ['schedules', String(i), ...p];
    if (seen.has(s.name)) ctx.fail(at('name'), `another schedule is already named ${JSON.stringify(s.name)}; each needs its own name (it identifies its run history)`);
    seen.add(s.name);
    const kinds = SCHEDULE_KINDS.filter((k) => s[k] !== undefined);
    if (kinds.length !== 1) ctx.fail(kinds.length ? at(kinds[1]) : at(), kinds.length ? `a schedule does one thing: give ${kinds.join(' or ')}, not both (split it into two schedules)` : `schedule ${s.name} does nothing: give it one of ${SCHEDULE_KINDS.map((k) => `\`${k}\``).join(', ')}`);
    if (s.request !== undefined && s.topic === undefined) ctx.fail(at(), `schedule ${s.name} pulls (request) but names no \`topic\` to write the records to`);
    if (s.request === undefined) {
      for (const k of ['topic', 'transform', 'key'] as const) if (s[k] !== undefined) ctx.fail(at(k), `\`${k}\` is for a schedule that pulls from an API (request); schedule ${s.name} writes no records`);
    }
    if (s.validate !== undefined) checkValidate(s.validate, at('validate'), ctx, pipeline);
    if (s.reconcile !== undefined) checkReconcile(s.reconcile, at('reconcile'), ctx, pipeline);
    if (s.snapshot !== undefined) checkSnapshot(s.snapshot, at('snapshot'), ctx, pipeline);
    const topic = String(s.topic);
    // (A validation writes no records: no topic to check.)
    if (s.topic !== undefined && (topic === historyTopicOf(name) || topic === `${name}.dlq` || topic.startsWith(`${name}.retry.`) || topic.startsWith(`${name}.__`))) ctx.fail(at('topic'), `${topic} is the pipeline's own topic; write the records to a topic of their own (e.g. topic_external_data)`);
    else if (s.topic !== undefined && prefix !== null && topic.startsWith(prefix + '.')) ctx.fail(at('topic'), `${topic} would be taken for one of the source's change topics (${prefix}.<schema>.<table>); choose a name outside ${prefix}.*, e.g. topic_external_data`);
    const tz = s.timezone ?? 'UTC';
    if (!isTimeZone(tz)) ctx.fail(at('timezone'), `unknown time zone ${JSON.stringify(tz)}; use an IANA name such as UTC or Europe/Berlin`);
    if (s.cron === undefined && s.after === undefined) ctx.fail(at(), `schedule ${s.name} has no \`cron\` (when it runs) and no \`after\` (the schedules it follows): give one`);
    else if (s.cron !== undefined && s.after !== undefined) ctx.fail(at('after'), `schedule ${s.name} has both \`cron\` and \`after\`: a step runs either on its own cron or after others, not both (drop one)`);
    if (s.cron !== undefined) {
      const problem = cronProblem(String(s.cron), isTimeZone(tz) ? tz : 'UTC');
      if (problem) ctx.fail(at('cron'), `${JSON.stringify(s.cron)}: ${problem}`);
    }
    const p = s.request?.pagination ?? {};
    if ((p.type === 'cursor' || p.type === 'page') && !p.param) ctx.fail(at('request', 'pagination'), `${p.type} pagination needs \`param\`: the query parameter that carries the ${p.type === 'cursor' ? 'cursor' : 'page number'}`);
    if (p.type === 'cursor' && !p.path) ctx.fail(at('request', 'pagination'), 'cursor pagination needs `path`: where the next cursor is in an answer (e.g. `meta.next_cursor`)');
    for (const [k, v] of Object.entries(s.request?.headers ?? {})) {
      if (typeof v !== 'string' && typeof v !== 'number') ctx.fail(at('request', 'headers', k), 'a header value must be text');
    }
    if (s.request?.body !== undefined && (s.request?.method ?? 'GET') === 'GET') ctx.fail(at('request', 'body'), 'a GET request has no body: set `method: POST`, or remove `body`');
    const t = s.transform;
    if (t) {
      const exprs = t.base !== undefined || Object.keys(t.fields ?? {}).length > 0;
      if (t.module !== undefined && exprs) ctx.fail(at('transform'), 'give either `module` or expressions (`base`, `fields`), not both');
      if (t.module !== undefined) {
        const file = resolve(dirname(ctx.fileName), String(t.module));
        if (!existsSync(file)) ctx.fail(at('transform', 'module'), `${file} does not exist (the path is relative to the config file)`);
      }
      checkExpr(t.filter, at('transform', 'filter'), ctx, 'boolean');
      checkExpr(t.base, at('transform', 'base'), ctx);
      for (const [name, src] of Object.entries(t.fields ?? {})) {
        if (typeof src !== 'string' || src.trim() === '') ctx.fail(at('transform', 'fields', name), `the field ${JSON.stringify(name)} needs an expression as text (quote it: "${String(src)}")`);
        else checkExpr(src, at('transform', 'fields', name), ctx);
      }
    }
  });
  checkAfter(raw, ctx);
}

/** `after` names schedules of this pipeline, and the steps form no cycle. */
function checkAfter(raw: any[], ctx: CheckContext): void {
  const names = new Set(raw.map((s) => s.name));
  const after = new Map<string, string[]>(raw.map((s) => [s.name, Array.isArray(s.after) ? s.after.map(String) : []]));
  raw.forEach((s: any, i) => {
    (Array.isArray(s.after) ? s.after : []).forEach((u: unknown, j: number) => {
      if (u === s.name) ctx.fail(['schedules', String(i), 'after', String(j)], `schedule ${s.name} cannot run after itself`);
      else if (!names.has(u)) ctx.fail(['schedules', String(i), 'after', String(j)], `no schedule is named ${JSON.stringify(u)} (schedules: ${[...names].join(', ')})`);
    });
  });
  // A cycle: a walk from a schedule through `after` that comes back to it.
  const state = new Map<string, 'open' | 'done'>();
  const walk = (n: string, path: string[]): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    for (const u of after.get(n) ?? []) {
      if (u === n || !names.has(u)) continue;
      const c = walk(u, [...path, n]);
      if (c) return c;
    }
    state.set(n, 'done');
    return null;
  };
  for (const [i, s] of raw.entries()) {
    const cycle = walk(s.name, []);
    if (cycle) {
      ctx.fail(['schedules', String(i), 'after'], `the schedules' \`after\` steps make a cycle (${cycle.reverse().join(' → ')}), so none of them would ever run: one of them needs a \`cron\` instead`);
      return;
    }
  }
}

/** Each schedule's direct followers (the schedules whose `after` names it). */
export function followersOf(schedules: ScheduleConfig[]): Map<string, ScheduleConfig[]> {
  const out = new Map<string, ScheduleConfig[]>();
  for (const s of schedules) for (const u of s.after ?? []) out.set(u, [...(out.get(u) ?? []), s]);
  return out;
}
