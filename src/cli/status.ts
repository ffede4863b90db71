import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MysqlPipelineConfig, PgPipelineConfig } from '../config/types.ts';
import { resolveLog, requireLogDir } from './common.ts';
import type { Command } from './main.ts';

export const statusCommand: Command = {
  summary: 'show topics, offsets, consumer groups and the source position',
  usage: `usage: sluice status (--config <pipeline.yaml> | --log-dir <dir>) [--json]

Shows each topic's partitions with their start/end offsets, consumer groups and their lag,
the pipeline's last status (state, source position, snapshot progress), and with --config
the replication slot on the server (active, confirmed position, WAL it retains) — or, for a
MySQL/MariaDB source, the server's binlog end and oldest kept file, and whether the file the
pipeline would resume from was purged.

example:
  sluice status --config pipeline.yaml --json
`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'log-dir': { type: 'string' }, json: { type: 'boolean' } } });
    const { dir, cfg } = await resolveLog(values);
    requireLogDir(dir);
    const { openEmbeddedLog } = await import('../log/embedded/index.ts');
    const log = await openEmbeddedLog({ dir, readOnly: true });
    const report: Record<string, any> = { log: dir, topics: [], groups: [] };
    try {
      for (const t of await log.listTopics()) {
        const parts = await log.offsets(t.name);
        report.topics.push({ name: t.name, partitions: parts, records: parts.reduce((s, p) => s + p.end - p.start, 0) });
      }
      for (const g of await log.listGroups()) {
        const lag: Record<string, number> = {};
        for (const t of report.topics) {
          const c = await log.committedOffsets(g, t.name);
          if (c.size === 0) continue;
          lag[t.name] = t.partitions.reduce((s: number, p: any) => s + (p.end - (c.get(p.partition) ?? p.start)), 0);
        }
        report.groups.push({ group: g, lag });
      }
    } finally {
      await log.close();
    }
    const statusPath = join(dir, 'status.json');
    if (existsSync(statusPath)) {
      try {
        report.pipeline = JSON.parse(readFileSync(statusPath, 'utf8'));
      } catch (e) {
        report.pipeline = { error: `unreadable ${statusPath}: ${(e as Error).message}` };
      }
    }
    if (cfg?.source.type === 'postgres') report.slot = await slotStatus(cfg as PgPipelineConfig);
    if (cfg?.source.type === 'mysql') report.binlog = await binlogStatus(cfg as MysqlPipelineConfig);
    if (values.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    const lines: string[] = [`log ${dir}`];
    if (report.pipeline) {
      const p = report.pipeline;
      // The runner rewrites status.json every second while it runs: an old 'running' means it died.
      const age = Date.now() - Date.parse(p.updatedAt);
      const stale = (p.state === 'running' || p.state === 'starting') && age > 10_000 ? `; no update for ${Math.round(age / 1000)}s: is it still running?` : '';
      if (p.error) lines.push(`pipeline: ${p.error}`);
      else lines.push(`pipeline ${p.pipeline}: ${p.state} (pid ${p.pid}, updated ${p.updatedAt}${stale})`);
      if (p.source?.type === 'mysql') lines.push(`  source: phase ${p.source.phase}, binlog ${p.source.position ?? '-'}${p.source.gtid ? `, gtid ${p.source.gtid}` : ''}${p.source.snapshot ? `, snapshot ${JSON.stringify(p.source.snapshot)}` : ''}`);
      else if (p.source) lines.push(`  source: phase ${p.source.phase}, received ${p.source.receivedLsn}, confirmed ${p.source.confirmedLsn}${p.source.snapshot ? `, snapshot ${JSON.stringify(p.source.snapshot)}` : ''}`);
      for (const k of p.sinks ?? []) {
        // How far behind the log's end each sink's committed offsets are.
        let behind = 0;
        for (const t of report.topics) for (const part of t.partitions) if (`${t.name}/${part.partition}` in (k.offsets ?? {})) behind += part.end - k.offsets[`${t.name}/${part.partition}`];
        lines.push(`  sink ${k.name} (${k.type}): ${k.state}, ${k.applied} changes applied this run, ${behind} records behind the log${k.lagMs !== null ? `, lag ${k.lagMs} ms` : ''}${k.error ? `; error ${k.error.code}: ${k.error.message}` : ''}`);
      }
    }
    if (report.binlog?.error) lines.push(`binlog: unknown (${report.binlog.error})`);
    else if (report.binlog) lines.push(`binlog: server at ${report.binlog.current}, oldest kept ${report.binlog.oldest}${report.binlog.checkpointFilePurged ? ` — the checkpoint's file ${report.binlog.checkpointFile} was PURGED: take a new snapshot` : ''}`);
    if (report.slot?.error) lines.push(`slot ${report.slot.name}: unknown (${report.slot.error})`);
    else if (report.slot) lines.push(report.slot.exists === false ? `slot ${report.slot.name}: does not exist` : `slot ${report.slot.name}: ${report.slot.active ? 'active' : 'inactive'}, confirmed ${report.slot.confirmedFlushLsn}, retains ${(report.slot.retainedWalBytes / 1048576).toFixed(1)} MiB of WAL`);
    lines.push('topics:');
    for (const t of report.topics) lines.push(`  ${t.name}  ${t.records} records  ${t.partitions.map((p: any) => `p${p.partition}=${p.start}..${p.end}`).join(' ')}`);
    if (report.groups.length) {
      lines.push('consumer groups:');
      for (const g of report.groups) lines.push(`  ${g.group}  lag ${JSON.stringify(g.lag)}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};

/**
 * The replication slot as the server sees it. A database that cannot be reached does not hide the
 * log's state: the reason is reported in place of the slot.
 */
async function slotStatus(cfg: PgPipelineConfig): Promise<Record<string, unknown>> {
  const { connect } = await import('../sources/postgres/replication.ts');
  let c: Awaited<ReturnType<typeof connect>>;
  try {
    c = await connect(cfg.source.connection, false);
  } catch (e) {
    return { name: cfg.source.slot, error: (e as Error).message };
  }
  try {
    const r = await c.query(
      `SELECT active, confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained FROM pg_replication_slots WHERE slot_name = $1`,
      [cfg.source.slot],
    );
    if (!r.rowCount) return { name: cfg.source.slot, exists: false };
    return { name: cfg.source.slot, active: r.rows[0].active === 't' || r.rows[0].active === true, confirmedFlushLsn: r.rows[0].confirmed, retainedWalBytes: Number(r.rows[0].retained) };
  } catch (e) {
    return { name: cfg.source.slot, error: (e as Error).message };
  } finally {
    await c.end().catch(() => {});
  }
}

/** The server's binlog as a MySQL source's resume point needs it: current end, oldest file kept. */
async function binlogStatus(cfg: MysqlPipelineConfig): Promise<Record<string, unknown>> {
  const mysql = (await import('mysql2/promise')).default;
  const c = cfg.source.connection;
  let conn: Awaited<ReturnType<typeof mysql.createConnection>>;
  try {
    conn = await mysql.createConnection({ host: c.host, port: c.port, user: c.user, password: c.password, connectTimeout: 5000 });
  } catch (e) {
    return { error: (e as Error).message };
  }
  try {
    const [master] = (await conn.query('SHOW MASTER STATUS')) as unknown as [{ File: string; Position: number }[]];
    const [logs] = (await conn.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
    const last = await lastCheckpointFile(cfg);
    return {
      current: master[0] ? `${master[0].File}:${master[0].Position}` : 'binlog off',
      oldest: logs[0]?.Log_name ?? '-',
      checkpointFile: last,
      checkpointFilePurged: last !== null && logs.length > 0 && !logs.some((l) => l.Log_name === last),
    };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    await conn.end().catch(() => {});
  }
}

async function lastCheckpointFile(cfg: MysqlPipelineConfig): Promise<string | null> {
  try {
    const st = JSON.parse(await readFile(join(cfg.log.dir, 'status.json'), 'utf8'));
    const pos = st?.source?.position;
    return typeof pos === 'string' ? pos.split(':')[0] : null;
  } catch {
    return null;
  }
}
