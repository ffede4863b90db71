/**
 * Scale-out of a sink on Apache Kafka: one `sluice run --only source` captures a PostgreSQL
 * database into a real broker (scripts/kafka-server.sh), and three `sluice run --only sinks`
 * workers of the same pipeline share the topics' partitions as members of the sink's consumer
 * group. Under a running workload, two of the three workers are killed with SIGKILL again and again
 * and restarted. The target must end equal to the source (row count and checksum by SQL on both
 * sides), including an append-only table without a key, whose rows a repeated batch would double
 * and a lost one would miss. The workers' own log lines must show that the group really shared the
 * partitions (three members, each with some) and rebalanced after the kills.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, tempDir, waitUntil } from '../helpers/pipeline.ts';

const BROKER = '127.0.0.1:9092';
const PREFIX = `so${randomBytes(3).toString('hex')}.`;
const PARTITIONS = 6;
const ROUNDS = Number(process.env.SLUICE_SCALEOUT_ROUNDS ?? 6);

/** Row count and an order-independent checksum of (id, v). */
const TABLE_SUM = (t: string) => `SELECT count(*)::text || ':' || coalesce(sum(hashtext(id || ':' || v)::numeric), 0)::text AS s FROM ${t}`;

describe('sinks scale out as a Kafka consumer group', () => {
  let source: Awaited<ReturnType<typeof freshDatabase>>;
  let target: Awaited<ReturnType<typeof freshDatabase>>;
  const tmp = tempDir();
  before(async () => {
    source = await freshDatabase('sluice_so');
    target = await freshDatabase('sluice_sot');
    await source.client.query(`
      CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL);
      CREATE TABLE evt (id int NOT NULL, v int NOT NULL);  -- no key: appended, so a repeat shows
      INSERT INTO acct SELECT g, 0 FROM generate_series(1, 2000) g;
      INSERT INTO evt SELECT g, g FROM generate_series(1, 2000) g;
    `);
  });
  after(async () => {
    await source?.drop();
    await target?.drop();
    tmp.remove();
  });

  /** The pipeline's config for one process, with its own state directory (status.json). */
  function config(role: string): string {
    const dir = join(tmp.dir, role);
    mkdirSync(dir, { recursive: true });
    const sinks = `sinks:\n  - name: pg\n    type: postgres\n    batch: { maxRecords: 500 }\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`;
    const yaml = pipelineYaml('scaleout', source.name, dir, '', sinks).replace(
      /^log:\n(?: {2}.*\n)+/m,
      `log:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\n  partitions: ${PARTITIONS}\n  groupSessionTimeout: 6s\n`,
    );
    const path = join(dir, 'pipeline.yaml');
    writeFileSync(path, yaml);
    return path;
  }

  it('three workers, two killed with SIGKILL repeatedly under load: the target equals the source', async () => {
    const srcProc = startPipelineProcess(config('source'), ['--only', 'source']);
    const workerCfg = [0, 1, 2].map((i) => config(`worker${i}`));
    const start = (i: number) => startPipelineProcess(workerCfg[i], ['--only', 'sinks', '--log-level', 'info', '--log-format', 'json']);
    const workers = workerCfg.map((_, i) => start(i));
    /** Every worker process's stderr so far, restarts included. */
    const logs: string[] = [];
    const keep = (i: number) => logs.push(workers[i].stderrText());

    // The workload: updates, inserts and deletes of keyed rows, appends of keyless ones.
    const work = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: source.name });
    await work.connect();
    let stop = false;
    let ops = 0;
    const load = (async () => {
      let next = 2001;
      while (!stop) {
        await work.query('BEGIN');
        for (let i = 0; i < 20; i++) {
          const r = Math.random();
          const id = 1 + Math.floor(Math.random() * (next - 1));
          if (r < 0.5) await work.query('UPDATE acct SET v = v + 1 WHERE id = $1', [id]);
          else if (r < 0.65) await work.query('INSERT INTO acct VALUES ($1, 0) ON CONFLICT DO NOTHING', [next++]);
          else if (r < 0.75) await work.query('DELETE FROM acct WHERE id = $1', [id]);
          else await work.query('INSERT INTO evt VALUES ($1, $2)', [next++, Math.floor(Math.random() * 1e6)]);
          ops++;
        }
        await work.query('COMMIT');
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    try {
      const applied = async () => (await target.client.query(TABLE_SUM('evt')).catch(() => ({ rows: [{ s: '0:0' }] }))).rows[0].s;
      await waitUntil('the workers to apply the snapshot', async () => Number((await applied()).split(':')[0]) >= 2000, 120_000);
      for (let round = 0; round < ROUNDS; round++) {
        const spared = Math.floor(Math.random() * 3);
        const victims = [0, 1, 2].filter((i) => i !== spared);
        for (const i of victims) {
          keep(i);
          await stopProcess(workers[i], 'SIGKILL');
        }
        await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000));
        for (const i of victims) workers[i] = start(i);
        // Long enough for the dead members' sessions to end and the group to settle on three.
        await new Promise((r) => setTimeout(r, 9000 + Math.random() * 4000));
      }
      stop = true;
      await load;
      assert.ok(ops > 2000, `the workload ran while the workers were killed (${ops} operations)`);
      let last = '';
      await waitUntil(
        'the target equal to the source',
        async () => {
          for (const t of ['acct', 'evt']) {
            const [a, b] = [(await source.client.query(TABLE_SUM(t))).rows[0].s, (await target.client.query(TABLE_SUM(t))).rows[0].s];
            last = `${t}: source ${a}, target ${b}`;
            if (a !== b) return false;
          }
          return true;
        },
        180_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message} (${last})\n${workers.map((w) => w.stderrText().slice(-1500)).join('\n---\n')}`);
      });
    } finally {
      stop = true;
      await load.catch(() => {});
      await work.end();
      for (let i = 0; i < 3; i++) keep(i);
      await Promise.all([...workers, srcProc].map((w) => stopProcess(w)));
    }

    // The group really shared the partitions and rebalanced: joins of three members in which
    // each member got part of the partitions, and at least one join per kill round.
    const joins = logs
      .join('\n')
      .split('\n')
      .filter((l) => l.includes('sink joined its consumer group'))
      .map((l) => JSON.parse(l) as { generation: number; members?: number; partitions: string[] });
    assert.ok(joins.length >= 3 + 2 * ROUNDS, `each start and rebalance joins the group (${joins.length} joins)`);
    const generations = new Set(joins.map((j) => j.generation));
    assert.ok(generations.size > ROUNDS, `the group went through a generation per round at least (${generations.size})`);
    const byGen = new Map<number, string[][]>();
    for (const j of joins) byGen.set(j.generation, [...(byGen.get(j.generation) ?? []), j.partitions]);
    const shared = [...byGen.values()].filter((g) => g.length === 3 && g.every((p) => p.length > 0 && p.length < 2 * PARTITIONS));
    assert.ok(shared.length > 0, `some generation had three members each applying part of the partitions: ${JSON.stringify([...byGen])}`);
  });
});
