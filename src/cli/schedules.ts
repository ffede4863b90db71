/**
 * `sluice schedules list|run|history`: the pipeline's scheduled pulls (docs/schedules.md). `list`
 * shows each schedule with its next fire time and last run; `run` runs one now (writing its records
 * and its history entry to the log, as a cron run would); `history` prints the runs.
 */
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/index.ts';
import type { PipelineConfig } from '../config/types.ts';
import { createLogger, redact } from '../core/logger.ts';
import { openLog } from '../log/open.ts';
import type { Log } from '../log/types.ts';
import { logSpec } from '../registry/index.ts';
import { nextFire, parseCron } from '../schedules/cron.ts';
import { scheduleError } from '../schedules/errors.ts';
import { readHistory } from '../schedules/history.ts';
import { executeRun } from '../schedules/run.ts';
import { registerSecrets } from '../schedules/scheduler.ts';
import { historyTopicOf } from '../schedules/spec.ts';
import { loadTransformer } from '../schedules/transform.ts';
import type { RunEntry } from '../schedules/types.ts';
import { validationLines } from '../schedules/validate.ts';
import { RunWriter } from '../schedules/writer.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice schedules list <pipeline.yaml>
       sluice schedules run <pipeline.yaml> <schedule>
       sluice schedules history <pipeline.yaml> [schedule] [--json] [--limit N]

The pipeline's schedules (the \`schedules:\` key) pull from HTTP/JSON APIs at cron times into a
topic while \`sluice run\` runs; each run is recorded in the topic <pipeline>.schedules.

list      each schedule: its cron and time zone, its next fire time, and its last run
run       runs one schedule now, writes its records and its history entry to the log (in one
          commit), and prints the result; exits 1 when the run failed. The embedded log takes
          one writer: stop the pipeline first (on Kafka or NATS it may run beside it).
history   the runs, oldest first: start, schedule, status, duration, records, requests, error
  --json       one JSON object per line (runId, trigger, fireTime, status, startedAt, endedAt,
               durationMs, records, pages, attempts, error, reason, missed)
  --limit N    only the last N runs (default 20; 0: all)

The pipeline may also be given as --config <pipeline.yaml>.

examples:
  sluice schedules list pipeline.yaml
  sluice schedules run pipeline.yaml weather
  sluice schedules history pipeline.yaml weather --limit 5
`;

export const schedulesCommand: Command = {
  summary: 'list the scheduled pulls, run one now, or show their run history',
  usage: USAGE,
  async run(args) {
    const [action, ...rest] = args;
    if (action !== 'list' && action !== 'run' && action !== 'history') throw new UsageError(action ? `unknown action ${action}: use list, run or history` : 'give an action: list, run or history');
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } } });
    const file = values.config ?? positionals.shift();
    if (!file) throw new UsageError('give the pipeline config: sluice schedules ' + action + ' <pipeline.yaml>');
    const cfg = await loadConfig(file);
    // Header and query keys are masked in what this prints, as in the pipeline's log (also in
    // history entries recorded before their messages were masked).
    for (const s of cfg.schedules) registerSecrets(s);
    if (action === 'list') {
      if (positionals.length) throw new UsageError(`list takes no more arguments (got ${positionals.join(' ')})`);
      return list(cfg);
    }
    if (action === 'run') {
      const name = positionals.shift();
      if (!name || positionals.length) throw new UsageError('give one schedule to run: sluice schedules run <pipeline.yaml> <schedule>');
      return runNow(cfg, name);
    }
    if (positionals.length > 1) throw new UsageError(`history takes at most one schedule (got ${positionals.join(' ')})`);
    const limit = values.limit === undefined ? 20 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--limit must be a whole number, not ${values.limit}`);
    return history(cfg, positionals[0], limit, values.json === true);
  },
};

/** Writes to stdout with passwords and keys masked (core/logger.ts's redact). */
const print = (text: string): boolean => process.stdout.write(redact(text));

function scheduleOf(cfg: PipelineConfig, name: string) {
  const s = cfg.schedules.find((x) => x.name === name);
  if (!s) throw scheduleError('SCHEDULE_UNKNOWN', `the pipeline ${cfg.name} has no schedule ${JSON.stringify(name)}${cfg.schedules.length ? `; its schedules: ${cfg.schedules.map((x) => x.name).join(', ')}` : ' (it has no `schedules:`)'}`);
  return s;
}

/** The history, or nothing when the log does not exist yet (nothing has run). */
async function historyOf(cfg: PipelineConfig, schedule?: string): Promise<RunEntry[]> {
  if (cfg.log.backend === 'embedded' && !existsSync(cfg.log.dir)) return [];
  const log = await openLog(cfg.log, { readOnly: true });
  try {
    return await readHistory(log, cfg.name, schedule);
  } finally {
    await log.close();
  }
}

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.000Z$/, 'Z'));

async function list(cfg: PipelineConfig): Promise<number> {
  if (!cfg.schedules.length) {
    print(`the pipeline ${cfg.name} has no schedules\n`);
    return 0;
  }
  const entries = await historyOf(cfg);
  const rows = cfg.schedules.map((s) => {
    const last = [...entries].reverse().find((e) => e.schedule === s.name);
    const lastText = last ? `${last.status} ${iso(Date.parse(last.startedAt))}${last.status === 'ok' ? ` (${last.records} records)` : last.error ? ` [${last.error.code}]` : ''}` : 'never ran';
    if (s.cron === undefined) return [s.name, `after ${s.after!.join(', ')}`, '-', s.topic ?? (s.validate ? `validates ${s.validate.sink}:${s.validate.table}` : s.snapshot ? `snapshots ${s.snapshot.tables.join(', ')}` : 'reconciles'), lastText];
    return [s.name, s.timezone === 'UTC' ? s.cron : `${s.cron} (${s.timezone})`, iso(nextFire(parseCron(s.cron), Date.now(), s.timezone)), s.topic ?? (s.validate ? `validates ${s.validate.sink}:${s.validate.table}` : s.snapshot ? `snapshots ${s.snapshot.tables.join(', ')}` : 'reconciles'), lastText];
  });
  print(table(['schedule', 'cron', 'next fire', 'topic', 'last run'], rows));
  return 0;
}

async function runNow(cfg: PipelineConfig, name: string): Promise<number> {
  const s = scheduleOf(cfg, name);
  const logger = createLogger({ level: 'warn', format: cfg.logging.format });
  const transformer = await loadTransformer(s, { pipeline: cfg.name, logger });
  const log: Log = await openLog(cfg.log);
  let e: RunEntry | null;
  try {
    const writer = await RunWriter.open(log, cfg.name, true);
    try {
      const started = new Date();
      e = await executeRun(
        { pipeline: cfg.name, schedule: s, log, writer, transformer, logger, topicDefaults: logSpec(cfg.log.backend).topicDefaults(cfg.log as never), config: cfg },
        { runId: `${s.name}@manual-${started.toISOString()}`, trigger: 'manual', fireTime: null, recordFire: false },
      );
    } finally {
      await writer.close();
    }
  } finally {
    await log.close();
  }
  if (!e) return 1;
  if (!s.request) {
    for (const x of e.reconcile ?? []) print(`  ${x.status === 'ok' ? 'ok   ' : x.status.toUpperCase().padEnd(5)} ${x.sink} ${x.table}: ${x.missing} missing, ${x.extra} extra, ${x.differing} differing${x.reason ? ` (${x.reason})` : ''}\n`);
    print(`run ${e.runId}: ${e.status === 'ok' ? 'passed' : 'failed'} after ${e.durationMs} ms${e.validation ? `, ${e.validation.rows} row(s) of ${e.validation.table} read` : ''}${e.error ? `: [${e.error.code}] ${e.error.message}` : ''}\n${validationLines(e).join('\n')}${e.validation ? '\n' : ''}recorded in ${historyTopicOf(cfg.name)}\n`);
    return e.status === 'ok' ? 0 : 1;
  }
  print(
    e.status === 'ok'
      ? `run ${e.runId}: ok, ${e.records} record(s) written to ${s.topic} in ${e.durationMs} ms (${e.pages} page(s), ${e.attempts} request(s)); recorded in ${historyTopicOf(cfg.name)}\n`
      : `run ${e.runId}: failed after ${e.durationMs} ms (${e.attempts} request(s)): [${e.error?.code}] ${e.error?.message}\nnothing written to ${s.topic}; recorded in ${historyTopicOf(cfg.name)}\n`,
  );
  return e.status === 'ok' ? 0 : 1;
}

async function history(cfg: PipelineConfig, name: string | undefined, limit: number, json: boolean): Promise<number> {
  if (name !== undefined) scheduleOf(cfg, name);
  const all = await historyOf(cfg, name);
  const shown = limit > 0 ? all.slice(-limit) : all;
  if (json) {
    for (const e of shown) print(JSON.stringify(e) + '\n');
    return 0;
  }
  if (!all.length) {
    print(`no runs recorded${name ? ` for ${name}` : ''} (${historyTopicOf(cfg.name)})\n`);
    return 0;
  }
  const rows = shown.map((e) => [iso(Date.parse(e.startedAt)), e.schedule, e.trigger, e.status, `${e.durationMs} ms`, String(e.records), String(e.attempts), e.error ? `[${e.error.code}] ${e.error.message.replace(/\s+/g, ' ').slice(0, 200)}` : (e.reason ?? '')]);
  print(table(['started', 'schedule', 'trigger', 'status', 'duration', 'records', 'requests', 'error / note'], rows));
  // A failed validation's failing expectations, each with its count and examples.
  for (const e of shown) if (e.validation && e.status === 'failed') print(`${e.runId}:\n${validationLines(e, true).join('\n')}\n`);
  if (shown.length < all.length) print(`(the last ${shown.length} of ${all.length} runs; --limit 0 shows all)\n`);
  return 0;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
