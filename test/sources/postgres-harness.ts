/**
 * The PostgreSQL side of the source kill -9 suite (conformance.ts), shared by the runs on each log
 * backend: the suite's tables in a fresh database, and — when the log is not the embedded one — a
 * PostgreSQL sink of the same pipeline, killed with it, whose target must end equal to the source.
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import type { SourceDatabase } from './conformance.ts';

/** Row count and an order-independent checksum of a table's (id, v). */
export const TABLE_SUM = (t: string) => `SELECT count(*)::text || ':' || coalesce(sum(hashtext(id || ':' || v)::numeric), 0)::text AS s FROM ${t}`;

export interface PostgresSuiteDatabase extends SourceDatabase {
  /** Runs SQL with `?` placeholders and returns its rows. */
  exec(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/**
 * Registers the suite's PostgreSQL database. With `log` (the `log:` section's body lines, e.g.
 * `backend: kafka` …), pipelines write to that log and carry a PostgreSQL sink into a target
 * database of their own, checked by `sinkEqualsSource`.
 */
export function postgresSuiteDatabase(big: number, log?: string): PostgresSuiteDatabase {
  const f = useDatabase(`
    CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text);
    CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, note text);
    INSERT INTO big SELECT g, 1, repeat('p', 200) FROM generate_series(1, ${big}) g;
    INSERT INTO hot SELECT g, 1, 'n' FROM generate_series(1, 200) g;
  `);
  let target: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  if (log) {
    before(async () => (target = await freshDatabase('sluice_t')));
    after(async () => target?.drop());
  }
  const sinks = () => (target ? `sinks:\n  - name: pg\n    type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n` : '');
  const yaml = (name: string, source: string, top: string) => {
    const y = pipelineYaml(name, f.db.name, f.tmp.dir, `snapshotFetchSize: 2000\n${source}`, log ? `${top}\n${sinks()}` : top);
    return log ? y.replace(/^log:\n(?: {2}.*\n)+/m, `log:\n${log.trim().split('\n').map((l) => `  ${l}\n`).join('')}`) : y;
  };
  const db: PostgresSuiteDatabase = {
    exec: (sql, params = []) => {
      let n = 0;
      return f.db.client.query(sql.replace(/\?/g, () => `$${++n}`), params);
    },
    versions: async (t) => new Map((await f.db.client.query(`SELECT id, v FROM ${t}`)).rows.map((r: any) => [r.id, r.v])),
    dir: () => f.tmp.dir,
    yaml,
    topic: (name, t) => `${name}.public.${t}`,
    ...(log ? { log: () => parseConfig(yaml('crash', '', ''), 'test.yaml', process.env).log } : {}),
  };
  targets.set(db, () => target);
  return db;
}

const targets = new WeakMap<SourceDatabase, () => Awaited<ReturnType<typeof freshDatabase>> | undefined>();

/**
 * Runs the suite's pipeline once more and waits until its PostgreSQL sink — killed with the
 * pipeline at every cycle, reading its topics from the suite's log — holds tables equal to the
 * source's (row count and checksum by SQL on both sides).
 */
export async function sinkEqualsSource(db: SourceDatabase, timeoutMs: number): Promise<void> {
  const target = targets.get(db)?.();
  if (!target) throw new Error('bug: sinkEqualsSource needs a database made with a log');
  const want = async (t: string) => (await (db as PostgresSuiteDatabase).exec(TABLE_SUM(t))).rows[0].s;
  const child = startPipelineProcess(join(db.dir(), 'pipeline.yaml'));
  try {
    let last = '';
    await waitUntil(
      'the PostgreSQL sink equal to the source',
      async () => {
        for (const t of ['hot', 'big']) {
          const [a, b] = [await want(t), (await target.client.query(TABLE_SUM(t)).catch(() => ({ rows: [{ s: 'no table' }] }))).rows[0].s];
          last = `${t}: source ${a}, sink ${b}`;
          if (a !== b) return false;
        }
        return true;
      },
      timeoutMs,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (${last})\n${child.stderrText().slice(-3000)}`);
    });
  } finally {
    await stopProcess(child);
  }
}
