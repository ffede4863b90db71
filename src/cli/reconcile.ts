/**
 * `sluice reconcile`: proof that the source and each sink's target agree, while changes keep
 * flowing (src/quality/reconcile). Exit 0 when they agree, 1 on drift or error, 2 on bad usage.
 */
import { reconcileError } from '../quality/reconcile/errors.ts';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import type { PipelineConfig } from '../config/types.ts';
import { openLog } from '../log/open.ts';
import { appendHistory, renderText } from '../quality/reconcile/report.ts';
import { repair, repairRequestOf, type RepairRequest, type RepairResult } from '../quality/reconcile/repair.ts';
import { runningStatus } from '../quality/reconcile/recheck.ts';
import { reconcile, verify, type ReconcileReport } from '../quality/reconcile/run.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice reconcile <pipeline.yaml> [--table <schema.table>]… [--sink <name>]… [options]

Compares every table the source captures with each sink's target table, while the pipeline runs
and changes keep flowing: the source is read in key order in chunks (one short statement per
chunk, no lock held), each chunk's key range is read from the target, and both get a row count
and an order-independent checksum of values normalized by type (numbers by value, timestamps as
UTC microseconds, JSON with sorted keys, bytes as hex). Ranges that differ come down to their keys
(missing in target, extra in target, value differs: which columns). Those keys are read again
once the pipeline's source has passed the source position of the first read and the sink has
applied the log up to there (status.json in the state dir), so changes in flight are not drift.
With the pipeline stopped, the targets are compared as they stand.

Each run is appended to <state.dir>/reconcile/history.jsonl.

options:
  --config <file>    the pipeline (or give it as the argument)
  --table <name>     only this source table (schema.table or table; repeatable)
  --sink <name>      only this sink (repeatable)
  --chunk <rows>     rows per source chunk (default 10000)
  --wait <duration>  how long a re-check waits for the pipeline to catch up (default 60s;
                     e.g. 500ms, 30s, 2m)
  --repair           re-emit the differing keys from the source through the pipeline (a read
                     event per row the source has, a delete for a key it does not), then
                     re-check them. While the pipeline runs, the request goes to its server
                     (POST /api/actions/repair; needs server: in the config); when it is
                     stopped, the events are appended to the log and apply when it runs next
  --json             the report as one JSON document on stdout
  --quiet            no progress lines on stderr

Compared: PostgreSQL and MySQL/MariaDB sources with sinks that read the source's change topics:
postgres, mysql and duckdb tables; delta and iceberg tables of mode: merge (the current version,
read into an in-memory DuckDB); mongodb and postgres_jsonb collections without a document
template (read by _id; timestamps compared to the millisecond documents keep). Sinks reading a
processor's output, append-mode lake tables and other sink types are listed as not comparable. A
DuckDB file is open in the running pipeline (one process per file): reconcile it with the
pipeline stopped, or inside it (a reconcile schedule, POST /api/actions/reconcile). Error codes:
docs/errors.md, Reconcile.

exit status: 0 source and targets agree (or everything repaired), 1 drift or an error, 2 bad usage

examples:
  sluice reconcile pipeline.yaml
  sluice reconcile pipeline.yaml --table public.orders --sink replica --json
  sluice reconcile pipeline.yaml --repair
`;

/** `30s`, `500ms`, `2m`, or seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(`--wait takes a duration such as 500ms, 30s or 2m, not ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/** Asks the running pipeline to repair (its server's `repair` action). */
async function repairViaServer(cfg: PipelineConfig, req: RepairRequest): Promise<RepairResult> {
  const s = cfg.server;
  if (!s) throw reconcileError('RECONCILE_REPAIR_UNREACHABLE', 'the pipeline is running and has no server: the embedded log takes one writer, so either stop the pipeline and repair, or add `server: {}` to the config so reconcile can ask it to');
  const host = s.host === '0.0.0.0' || s.host === '::' ? '127.0.0.1' : s.host;
  const port = s.port === 0 ? null : s.port;
  if (!port) throw reconcileError('RECONCILE_REPAIR_UNREACHABLE', 'the pipeline\'s server listens on a port it picked (server.port: 0): give it a fixed port to repair while it runs');
  const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/api/actions/repair`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(s.token ? { authorization: `Bearer ${s.token}` } : {}) },
    body: JSON.stringify(req),
  });
  const body = (await res.json().catch(() => ({}))) as RepairResult & { error?: string };
  if (!res.ok) throw reconcileError('RECONCILE_REPAIR_UNREACHABLE', `the pipeline refused the repair (HTTP ${res.status}): ${body.error ?? ''}`);
  return body;
}

export const reconcileCommand: Command = {
  summary: 'compare source tables with sink targets while changes flow; --repair fixes drift',
  usage: USAGE,
  async run(args) {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        table: { type: 'string', multiple: true },
        sink: { type: 'string', multiple: true },
        chunk: { type: 'string' },
        wait: { type: 'string' },
        repair: { type: 'boolean' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
      },
    });
    const file = values.config ?? positionals[0];
    if (!file || positionals.length > (values.config ? 0 : 1)) throw new UsageError('give one pipeline config: sluice reconcile <pipeline.yaml>');
    const chunk = values.chunk !== undefined ? Number(values.chunk) : 10_000;
    if (!(Number.isInteger(chunk) && chunk > 0)) throw new UsageError(`--chunk takes a number of rows, not ${values.chunk}`);
    const waitMs = values.wait !== undefined ? parseDuration(values.wait) : 60_000;
    const cfg = await loadConfig(file);
    const progress = values.quiet ? undefined : (l: string) => process.stderr.write(`reconcile: ${l}\n`);
    const run = await reconcile(cfg, { tables: values.table, sinks: values.sink, chunk, waitMs, progress });
    let report: ReconcileReport & { repair?: unknown } = run;
    await appendHistory(cfg.state.dir, run);
    const byHand = run.results.flatMap((r) => r.keys.filter((k) => k.notASourceKey).map((k) => `${r.sink} ${r.table} ${JSON.stringify(k.key)}`));
    if (values.repair && !run.ok && run.results.some((r) => r.keys.some((k) => !k.notASourceKey))) {
      const req = repairRequestOf(run.results);
      const n = req.tables.reduce((s, t) => s + t.keys.length, 0);
      progress?.(`repairing ${n} key${n === 1 ? '' : 's'} in ${req.tables.length} table${req.tables.length === 1 ? '' : 's'}`);
      let done: RepairResult;
      const running = runningStatus(cfg.state.dir) !== null;
      if (running) done = await repairViaServer(cfg, req);
      else {
        const log = await openLog(cfg.log);
        try {
          done = await repair(log, cfg, req);
        } finally {
          await log.close();
        }
      }
      progress?.(`appended ${done.reads} read event${done.reads === 1 ? '' : 's'} and ${done.deletes} delete${done.deletes === 1 ? '' : 's'}${running ? '; re-checking once the sinks applied them' : '; they apply when the pipeline runs'}`);
      const after = running ? await verify(cfg, run, { waitMs }) : run;
      const fixed = run.results.reduce((s, r) => s + r.keys.length, 0) - after.results.reduce((s, r) => s + r.keys.length, 0);
      report = { ...after, repair: { ...done, requested: n, fixed, pending: !running, byHand } };
      if (running) await appendHistory(cfg.state.dir, after);
    }
    if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else {
      process.stdout.write(renderText(report));
      const r = report.repair as { requested: number; fixed: number; pending: boolean } | undefined;
      if (r) process.stdout.write(r.pending ? `repair: ${r.requested} key(s) re-emitted into the log; they apply when the pipeline runs (then run reconcile again)\n` : `repair: ${r.fixed} of ${r.requested} key(s) fixed\n`);
      if (values.repair && byHand.length) process.stdout.write(`repair: ${byHand.length} extra row(s) have a key no source row can have, so no event can remove them; delete them from the target by hand:\n${byHand.map((x) => `  ${x}\n`).join('')}`);
    }
    return report.ok ? 0 : 1;
  },
};
