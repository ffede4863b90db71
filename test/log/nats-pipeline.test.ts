/**
 * The source kill -9 suite (test/sources/conformance.ts) with NATS JetStream as the log: `sluice
 * run` from PostgreSQL into the machine's nats-server, killed with SIGKILL during the snapshot and
 * while streaming. Every change must be in the topics exactly once, as the suite checks against the
 * workload's own record; and a PostgreSQL sink of the same pipeline, killed with it, reading its
 * topics from NATS and storing its offsets in its target, must end equal to the source (row count
 * and checksum by SQL on both sides): the source → sink path is exactly once on this backend.
 */
import { join } from 'node:path';
import { after, before } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { sourceConformance } from '../sources/conformance.ts';
import { NATS_URL, removeNamespace, requireNats, uniqueNamespace } from './nats-helpers.ts';

const NAMESPACE = uniqueNamespace('pipe');

before(requireNats);
after(() => removeNamespace(NAMESPACE));

/** The sink's target database. */
let target: Awaited<ReturnType<typeof freshDatabase>>;
/** Row count and an order-independent checksum of a table's (id, v). */
const TABLE_SUM = (t: string) => `SELECT count(*)::text || ':' || coalesce(sum(hashtext(id || ':' || v)::numeric), 0)::text AS s FROM ${t}`;

sourceConformance({
  name: 'PostgreSQL → NATS JetStream',
  cycles: Number(process.env.SLUICE_CRASH_CYCLES ?? 6),
  database(big) {
    const f = useDatabase(`
      CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text);
      CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO big SELECT g, 1, repeat('p', 200) FROM generate_series(1, ${big}) g;
      INSERT INTO hot SELECT g, 1, 'n' FROM generate_series(1, 200) g;
    `);
    before(async () => (target = await freshDatabase('sluice_t')));
    after(async () => target?.drop());
    const sinks = () => `sinks:\n  - name: pg\n    type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`;
    const yaml = (name: string, source: string, top: string) =>
      pipelineYaml(name, f.db.name, f.tmp.dir, `snapshotFetchSize: 2000\n${source}`, `${top}\n${target ? sinks() : ''}`).replace(
        /^log:\n(?: {2}.*\n)+/m,
        `log:\n  backend: nats\n  servers: ['${NATS_URL}']\n  namespace: ${NAMESPACE}\n  partitions: 3\n`,
      );
    return {
      exec: (sql, params = []) => {
        let n = 0;
        return f.db.client.query(sql.replace(/\?/g, () => `$${++n}`), params);
      },
      versions: async (t) => new Map((await f.db.client.query(`SELECT id, v FROM ${t}`)).rows.map((r: any) => [r.id, r.v])),
      dir: () => f.tmp.dir,
      yaml,
      topic: (name, t) => `${name}.public.${t}`,
      log: () => parseConfig(yaml('crash', '', ''), 'test.yaml', process.env).log,
    };
  },
  async verify(db) {
    // The sink, killed with the pipeline at every cycle, read its topics from NATS: once it has
    // caught up, its tables equal the source's.
    const want = async (t: string) => (await (db as unknown as { exec(sql: string): Promise<{ rows: { s: string }[] }> }).exec(TABLE_SUM(t))).rows[0].s;
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
        300_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message} (${last})\n${child.stderrText().slice(-3000)}`);
      });
    } finally {
      await stopProcess(child);
    }
  },
});
