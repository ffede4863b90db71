/**
 * Scale-out of a sink on Apache Kafka: one `sluice run --only source` captures a PostgreSQL
 * database into a real broker (scripts/kafka-server.sh), and three `sluice run --only sinks`
 * workers of the same pipeline share the topics' partitions as members of the sink's consumer
 * group. Under a running workload, two of the three workers are killed with SIGKILL again and again
 * and restarted. The target must end equal to the source (row count and checksum by SQL on both
 * sides), including an append-only table without a key, whose rows a repeated batch would double
 * and a lost one would miss. The workers' own log lines must show that the group really shared the
 * partitions (three members, each with some) and rebalanced after the kills. The workload also
 * truncates the keyless table now and then: each worker stops its partitions at the truncate, and
 * it is applied once, when all have reached it (a truncate applied early would lose the rows
 * after it in other workers' partitions; one applied late would wipe rows the source keeps). Every
 * other round's truncate comes while the three share the topic and must be applied before the
 * kills; the others race the kills.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  function config(role: string, o: { name: string; source: () => string; target: () => string; partitions: number; server?: boolean } = { name: 'scaleout', source: () => source.name, target: () => target.name, partitions: PARTITIONS }): string {
    const dir = join(tmp.dir, `${o.name}-${role}`);
    mkdirSync(dir, { recursive: true });
    const sinks = `sinks:\n  - name: pg\n    type: postgres\n    batch: { maxRecords: 500 }\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${o.target()} }\n${o.server ? 'server:\n  port: 0\n' : ''}`;
    const yaml = pipelineYaml(o.name, o.source(), dir, '', sinks).replace(
      /^log:\n(?: {2}.*\n)+/m,
      `log:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\n  partitions: ${o.partitions}\n  groupSessionTimeout: 6s\n`,
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
    /** Rounds ask for a TRUNCATE of the keyless table: a truncate of a topic whose partitions the workers share. */
    let truncates = 0;
    let truncateNow = false;
    const load = (async () => {
      let next = 2001;
      while (!stop) {
        await work.query('BEGIN');
        if (truncateNow) {
          await work.query('TRUNCATE evt');
          truncateNow = false;
          truncates++;
        }
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
      /** How many times the running workers said they applied a truncate of the shared topic. */
      const appliedShared = () => workers.reduce((n, w) => n + (w.stderrText().match(/sink applied a truncate of a topic its group shares/g)?.length ?? 0), 0);
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 1) {
          // A truncate while the three workers share the topic (the group settled in the round
          // before): it must meet all three and be applied once, before the kills.
          const before = appliedShared();
          const t = truncates;
          truncateNow = true;
          await waitUntil('the workload to truncate the keyless table', async () => truncates > t, 30_000);
          await waitUntil('a worker to apply the truncate of the topic the three share', async () => appliedShared() > before, 60_000).catch((e: Error) => {
            throw new Error(`${e.message}\n${workers.map((w) => w.stderrText().slice(-2000)).join('\n---\n')}`);
          });
        } else if (round > 0) {
          // One that races the kills: whoever survives meets it, alone or with the restarted.
          truncateNow = true;
        }
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
      assert.ok(truncates >= ROUNDS - 1, `the workload truncated the keyless table (${truncates} times)`);
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

    const all = logs.join('\n');
    assert.match(all, /sink applied a truncate of a topic its group shares/, 'a truncate met workers sharing its topic, and one applied it');
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

  it('a truncate of a topic two workers share is applied once, after both reached it', async () => {
    const src = await freshDatabase('sluice_so2');
    const tgt = await freshDatabase('sluice_so2t');
    const procs: ReturnType<typeof startPipelineProcess>[] = [];
    try {
      // Keyed, so that its rows spread over both partitions (a keyless table's rows all go to partition 0).
      await src.client.query('CREATE TABLE evt2 (id int PRIMARY KEY, v int NOT NULL); INSERT INTO evt2 SELECT g, g FROM generate_series(1, 1000) g');
      const o = { name: 'scaleout2', source: () => src.name, target: () => tgt.name, partitions: 2 };
      procs.push(startPipelineProcess(config('source', o), ['--only', 'source']));
      const [a, b] = ['a', 'b'].map((w) => startPipelineProcess(config(w, { ...o, server: w === 'a' }), ['--only', 'sinks', '--log-level', 'info', '--log-format', 'json']));
      procs.push(a, b);
      const count = async () => Number((await tgt.client.query('SELECT count(*) AS n FROM evt2').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n);
      await waitUntil('the workers to apply the snapshot', async () => (await count()) === 1000, 120_000);
      // Both workers in one generation, a partition each.
      const joined = (w: typeof a) => w.stderrText().split('\n').filter((l) => l.includes('sink joined its consumer group')).map((l) => JSON.parse(l) as { generation: number; partitions: string[] });
      await waitUntil('a generation of two workers with a partition each', async () => {
        const [ja, jb] = [joined(a).at(-1), joined(b).at(-1)];
        return !!ja && !!jb && ja.generation === jb.generation && ja.partitions.length === 1 && jb.partitions.length === 1;
      }, 120_000).catch((e: Error) => {
        // What each worker said (joins, rebalances, retries): this wait timed out in 2 of 5 runs after adaptive batching.
        throw new Error(`${e.message}\n${a.stderrText().slice(-3000)}\n---\n${b.stderrText().slice(-3000)}`);
      });
      // B stalls (shorter than its session: it stays in the group) while rows, a TRUNCATE and more
      // rows go by: A reaches the truncate in its partition first. Applied there and then, it would
      // leave B's rows from before the truncate to come after it; applied again by B, it would wipe
      // A's rows from after it.
      b.kill('SIGSTOP');
      try {
        await src.client.query('INSERT INTO evt2 SELECT g, g FROM generate_series(1001, 1500) g');
        await src.client.query('TRUNCATE evt2');
        await src.client.query('INSERT INTO evt2 SELECT g, -g FROM generate_series(2001, 2500) g');
        await new Promise((r) => setTimeout(r, 4000));
      } finally {
        b.kill('SIGCONT');
      }
      let last = '';
      await waitUntil('the target equal to the source', async () => {
        const [x, y] = [(await src.client.query(TABLE_SUM('evt2'))).rows[0].s, (await tgt.client.query(TABLE_SUM('evt2'))).rows[0].s];
        last = `source ${x}, target ${y}`;
        return x === y;
      }, 60_000).catch((e: Error) => {
        throw new Error(`${e.message} (${last})\n${a.stderrText().slice(-1500)}\n---\n${b.stderrText().slice(-1500)}`);
      });
      await waitUntil('one worker to apply the truncate and the other to move past it', async () => {
        const both = a.stderrText() + b.stderrText();
        return /sink applied a truncate of a topic its group shares/.test(both) && /sink moved its partitions past a truncate another worker applied/.test(both);
      }, 20_000);

      // sluice status of a worker: its group, the partition it applies, lag per partition; the
      // topics' offsets (Kafka's have gaps). With the brokers unreachable: the pipeline's own
      // status all the same, the error, exit 1.
      const cfgA = config('a', o);
      const st = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', cfgA], { encoding: 'utf8' });
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, /^log kafka .*: reachable, \d+ topics/);
      assert.match(st.stdout, /\n {4}consumer group sink\.scaleout2\.pg, generation \d+: applies scaleout2\.public\.evt2\/[01]\n/);
      assert.match(st.stdout, /\n {2}scaleout2\.public\.evt2 {2}offsets \d+ \(with gaps\) {2}p0=0\.\.\d+ p1=0\.\.\d+/);
      const js = JSON.parse(spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', cfgA, '--json'], { encoding: 'utf8' }).stdout);
      const sinkA = js.pipeline.sinks[0];
      assert.deepEqual(Object.keys(sinkA.partitionLag), sinkA.group.partitions, 'lag of the partition the worker applies');
      // /metrics: the lag of that partition, and of no other.
      const url = a.stderrText().split('\n').filter((l) => l.includes('http server listening')).map((l) => JSON.parse(l).url as string)[0];
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const lags = [...metrics.matchAll(/^sluice_sink_partition_lag\{pipeline="scaleout2",component="sink",sink="pg",topic="([^"]+)",partition="(\d)"\} (\d+)$/gm)];
      assert.deepEqual(lags.map((m) => `${m[1]}/${m[2]}`), sinkA.group.partitions, metrics);
      assert.equal(lags[0][3], '0', 'caught up');
      writeFileSync(cfgA, readFileSync(cfgA, 'utf8').replace(`brokers: ['${BROKER}']`, "brokers: ['127.0.0.1:1']\n  connectTimeout: 2s"));
      const down = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', cfgA], { encoding: 'utf8' });
      assert.equal(down.status, 1, down.stdout + down.stderr);
      assert.match(down.stdout, /^log kafka 127\.0\.0\.1:1.*: cannot be read: \[LOG_KAFKA_UNREACHABLE\] /);
      assert.match(down.stdout, /\n {2}sink pg \(postgres\): running/);
    } finally {
      await Promise.all(procs.map((p) => stopProcess(p)));
      await src.drop();
      await tgt.drop();
    }
  });
});
