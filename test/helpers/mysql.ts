/**
 * MariaDB/MySQL as a CDC source in tests: a fresh database per suite on the machine's server
 * (127.0.0.1:3306, root, no password; `scripts/setup.sh` turned the row-based binlog on), and
 * pipeline YAML for it. A missing server fails the suite: nothing is skipped.
 */
import { after, before } from 'node:test';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parseConfig } from '../../src/config/index.ts';
import type { PipelineConfig } from '../../src/config/types.ts';
import { existsSync, readFileSync } from 'node:fs';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { tempDir, waitUntil } from './pipeline.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from './targets.ts';

export async function mysqlAdmin(database?: string): Promise<mysql.Connection> {
  return mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, password: process.env.MYSQL_PASSWORD_TEST, database, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, timezone: 'Z' });
}

export interface MysqlFixture {
  name: string;
  conn: mysql.Connection;
  /** Runs SQL (several statements allowed). */
  q: (sql: string, params?: unknown[]) => Promise<any>;
  tmp: ReturnType<typeof tempDir>;
}

/** Registers hooks giving the suite a fresh database (set up with `setupSql`) and a temp dir. */
export function useMysqlDatabase(setupSql = ''): MysqlFixture {
  const f = {} as MysqlFixture;
  before(async () => {
    f.name = `sluice_m${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const admin = await mysqlAdmin();
    await admin.query(`CREATE DATABASE \`${f.name}\``);
    await admin.end();
    f.conn = await mysqlAdmin(f.name);
    await f.conn.query("SET time_zone = '+00:00'");
    f.q = async (sql, params) => (await f.conn.query(sql, params))[0];
    f.tmp = tempDir();
    if (setupSql) await f.conn.query(setupSql);
  });
  after(async () => {
    await f.conn?.query(`DROP DATABASE IF EXISTS \`${f.name}\``).catch(() => {});
    await f.conn?.end().catch(() => {});
    f.tmp?.remove();
  });
  return f;
}

/** Pipeline YAML for a MySQL source on database `db`. `sourceExtra` lines go under `source:`. */
export function mysqlPipelineYaml(name: string, db: string, dir: string, sourceExtra = '', topExtra = ''): string {
  return `name: ${name}
source:
  type: mysql
  connection:
    host: ${MYSQL_HOST}
    port: ${MYSQL_PORT}
    user: ${MYSQL_USER}
    database: ${db}
  heartbeatIntervalMs: 1000
${/^skippedOperations:/m.test(sourceExtra) ? '' : '  skippedOperations: []  # truncates too (Debezium skips them by default)\n'}${sourceExtra.split('\n').filter(Boolean).map((l) => '  ' + l).join('\n')}
state:
  dir: ${join(dir, 'state')}
log:
  dir: ${join(dir, 'log')}
  partitions: 3
logging:
  level: warn
${topExtra}
`;
}

export function mysqlPipelineConfig(name: string, db: string, dir: string, sourceExtra = '', topExtra = ''): PipelineConfig {
  return parseConfig(mysqlPipelineYaml(name, db, dir, sourceExtra, topExtra), 'test.yaml', process.env);
}

/** A logger for in-process pipelines in tests: errors only, unless SLUICE_TEST_LOG says otherwise. */
export const quietLogger = () => createLogger({ level: (process.env.SLUICE_TEST_LOG as 'error') ?? 'error' });

/** Whether the pipeline keeping its state in `stateDir` reports its source streaming (snapshot done). */
export function isStreaming(stateDir: string): boolean {
  return existsSync(stateDir + '/status.json') && JSON.parse(readFileSync(stateDir + '/status.json', 'utf8')).source?.phase === 'stream';
}

/**
 * Runs the pipeline in this process, does `act` (once it streams, with `afterStreaming`), waits
 * until `cond` holds, then stops it. A pipeline failure fails the call.
 */
export async function runUntil(cfg: PipelineConfig, what: string, cond: () => Promise<boolean>, act?: () => Promise<void>, opts: { afterStreaming?: boolean } = {}): Promise<void> {
  const ac = new AbortController();
  let failed: unknown = null;
  const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() }).catch((e) => {
    failed = e;
  });
  const check = (c: () => Promise<boolean> | boolean) => async () => {
    if (failed) throw failed;
    return c();
  };
  try {
    if (opts.afterStreaming) await waitUntil('the pipeline streaming', check(() => isStreaming(cfg.state.dir)));
    if (act) await act();
    await waitUntil(what, check(cond));
  } finally {
    ac.abort();
    await run;
  }
  if (failed) throw failed;
}
