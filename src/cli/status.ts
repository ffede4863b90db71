import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { redact } from '../core/logger.ts';
import { statusFile } from '../engine/status.ts';
import { sourceSpec } from '../registry/index.ts';
import type { Command } from './command.ts';
import { openReadOnly, resolveLog } from './common.ts';

export const statusCommand: Command = {
  summary: 'show topics, offsets, consumer groups and the source position',
  usage: `usage: sluice status (--config <pipeline.yaml> | --log-dir <dir>) [--state-dir <dir>] [--json]

Shows each topic's partitions with their start/end offsets, consumer groups and their lag,
the pipeline's last status (state, source position, snapshot progress, processors, sinks and
the tables they hold; from status.json in the pipeline's state.dir), and with --config what the source database
says: for PostgreSQL the replication slot (active, confirmed position, WAL it retains), for
MySQL/MariaDB the binlog end and oldest kept file, and whether the file the pipeline would
resume from was purged. On Kafka, each sink's consumer group, the partitions this worker applies,
and its lag per partition (--json). When the log cannot be reached (brokers down), the rest is
still shown, with the error, and the exit status is 1.

options:
  --state-dir   where the pipeline keeps status.json (default: the config's state.dir)
  --json        one JSON document instead of text

example:
  sluice status --config pipeline.yaml --json
`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'log-dir': { type: 'string' }, 'state-dir': { type: 'string' }, json: { type: 'boolean' } } });
    const at = await resolveLog(values);
    const report: Record<string, any> = { log: at.where, logReachable: false, topics: [], groups: [] };
    let dense = true;
    // A log that cannot be reached (brokers down) still leaves the pipeline's own status to show.
    let log: Awaited<ReturnType<typeof openReadOnly>> | null = null;
    try {
      log = await openReadOnly(at);
      report.logReachable = true;
      dense = log.capabilities.denseOffsets;
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code === 'LOG_MISSING' || !(at.cfg && at.stateDir && existsSync(statusFile(at.stateDir)))) throw e;
      report.logError = { code: err.code, message: err.message };
    }
    try {
      for (const t of log ? await log.listTopics() : []) {
        const parts = await log!.offsets(t.name);
        const span = parts.reduce((s, p) => s + p.end - p.start, 0);
        // Kafka's and NATS's offsets have gaps (transaction markers, aborted records): a span, not a count.
        report.topics.push({ name: t.name, partitions: parts, ...(dense ? { records: span } : { offsets: span }) });
      }
      for (const g of log ? await log.listGroups() : []) {
        const lag: Record<string, number> = {};
        for (const t of report.topics) {
          const c = await log!.committedOffsets(g, t.name);
          if (c.size === 0) continue;
          lag[t.name] = t.partitions.reduce((s: number, p: any) => s + (p.end - (c.get(p.partition) ?? p.start)), 0);
        }
        report.groups.push({ group: g, lag });
      }
    } finally {
      await log?.close();
    }
    const path = at.stateDir ? statusFile(at.stateDir) : null;
    if (path && existsSync(path)) {
      try {
        report.pipeline = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        report.pipeline = { error: `unreadable ${path}: ${(e as Error).message}` };
      }
    }
    const lines: string[] = [report.logError ? `log ${at.where}: cannot be read: [${report.logError.code}] ${report.logError.message}` : `log ${at.where}: reachable, ${report.topics.length} topics`];
    const spec = at.cfg?.source ? sourceSpec(at.cfg.source.type) : report.pipeline?.source?.type ? sourceSpec(report.pipeline.source.type) : null;
    let server: { key: string; value: Record<string, unknown>; line: string } | null = null;
    if (at.cfg?.source && spec?.serverStatus) {
      server = await spec.serverStatus(at.cfg.source, report.pipeline?.source ?? null);
      report[server.key] = server.value;
    }
    if (values.json) {
      process.stdout.write(redact(JSON.stringify(report, null, 2)) + '\n');
      return report.logError ? 1 : 0;
    }
    if (report.pipeline) {
      const p = report.pipeline;
      // The runner rewrites status.json every second while it runs: an old 'running' means it died.
      const age = Date.now() - Date.parse(p.updatedAt);
      const stale = (p.state === 'running' || p.state === 'starting') && age > 10_000 ? `; no update for ${Math.round(age / 1000)}s: is it still running?` : '';
      if (p.error) lines.push(`pipeline: ${p.error}`);
      else lines.push(`pipeline ${p.pipeline}: ${p.state} (pid ${p.pid}, updated ${p.updatedAt}${stale})`);
      if (p.source && spec) lines.push(`  source: ${spec.statusLine(p.source)}${p.source.error ? `; error ${p.source.error.code}: ${p.source.error.message}` : ''}`);
      if (p.ingest) lines.push(`  ingest: port ${p.ingest.port}, routes ${p.ingest.routes.join(' ')}, ${p.ingest.commits} commits this run, ${p.ingest.pendingBytes} bytes waiting for the log, ${p.ingest.dedupeIds} idempotency keys${p.ingest.lastError ? `; last commit failed: ${p.ingest.lastError}` : ''}`);
      for (const k of p.processors ?? []) {
        const ks = k.keyedState as { store: string; entries: number; cached?: number; threads?: number } | null | undefined;
        const held = ks ? `, state: ${ks.entries} entries ${ks.store === 'disk' ? `on disk (${ks.cached} cached in memory)` : 'in memory'}${ks.threads ? ` of ${ks.threads} worker threads` : ''}` : '';
        lines.push(`  processor ${k.name} (${k.type}): ${k.state}, ${k.processed} records processed this run${held}${k.error ? `; error ${k.error.code}: ${k.error.message}` : ''}`);
        // An expect processor's expectations: checks passed and failed since it started, and the last failure.
        for (const x of (k.expectations ?? []) as { name: string; check: string; action: string; passed: number; failed: number; lastFailure: { reason: string; at: string } | null }[]) {
          lines.push(`    expectation ${x.name} (${x.check}, ${x.action}): ${x.passed} passed, ${x.failed} failed${x.lastFailure ? `; last failure at ${x.lastFailure.at}: ${x.lastFailure.reason}` : ''}`);
        }
      }
      for (const k of p.sinks ?? []) {
        // How far behind the log's end each sink's committed offsets are.
        let behind = 0;
        for (const t of report.topics) for (const part of t.partitions) if (`${t.name}/${part.partition}` in (k.offsets ?? {})) behind += part.end - k.offsets[`${t.name}/${part.partition}`];
        const held = k.held ?? [];
        const extra = `${held.length ? `, ${held.length} table${held.length > 1 ? 's' : ''} held` : ''}${k.deadLettered ? `, ${k.deadLettered} changes dead-lettered this run` : ''}`;
        lines.push(`  sink ${k.name} (${k.type}): ${k.state}, ${k.applied} changes applied this run, ${behind} ${dense ? 'records' : 'offsets'} behind the log${k.lagMs !== null ? `, lag ${k.lagMs} ms` : ''}${typeof k.lagSeconds === 'number' && k.lagSeconds > 0 ? ` (${k.lagSeconds.toFixed(1)} s behind the source end to end)` : ''}${extra}${k.error ? `; error ${k.error.code}: ${k.error.message}` : ''}`);
        if (k.group) lines.push(`    consumer group ${k.group.name}, generation ${k.group.generation ?? '(joining)'}: applies ${k.group.partitions.length ? k.group.partitions.join(' ') : 'no partitions'}`);
        // A held table stays where its target refused a change until the pipeline restarts.
        for (const h of held) lines.push(`    held ${h.table} (${h.topic}) at partition ${h.partition} offset ${h.offset}: error ${h.error.code}: ${h.error.message}`);
      }
    }
    if (server) lines.push(server.line);
    lines.push('topics:');
    for (const t of report.topics) lines.push(`  ${t.name}  ${dense ? `${t.records} records` : `offsets ${t.offsets} (with gaps)`}  ${t.partitions.map((p: any) => `p${p.partition}=${p.start}..${p.end}`).join(' ')}`);
    if (report.groups.length) {
      lines.push('consumer groups:');
      for (const g of report.groups) lines.push(`  ${g.group}  ${Object.keys(g.lag).length ? `lag ${JSON.stringify(g.lag)}` : "no offsets in the log (a sink's group: they are in its target)"}`);
    }
    process.stdout.write(redact(lines.join('\n')) + '\n');
    return report.logError ? 1 : 0;
  },
};
