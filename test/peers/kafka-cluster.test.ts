/**
 * Broker faults under a running pipeline (the peers lane: `npm run test:peers`, not part of
 * `npm test`; it starts a 3-node KRaft cluster of its own, scripts/kafka-server.sh cluster, RF 3,
 * min.insync.replicas 2).
 *
 * 1. `sluice run` from PostgreSQL into the cluster, with a PostgreSQL sink reading the topics back,
 *    under a live workload recorded by the workload itself. Mid-stream one broker that is not the
 *    KRaft controller is killed with SIGKILL, the workload goes on for 10 s, the node is restarted;
 *    once every partition has its 3 replicas in sync again the same is done to the active
 *    controller. The pipeline may retry but must not exit. At the end every change is in the topics
 *    exactly once (against the workload's record) and the sink's tables equal the source's.
 * 2. `sluice run` started while every broker is down logs a retried LOG_KAFKA_UNREACHABLE naming
 *    the brokers, and proceeds once the cluster is started.
 *
 * What each fault cost (how long the sink lagged, which errors were retried) is printed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { LogConfig } from '../../src/config/types.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { assertHistories, assertTransactions, WorkloadRecord } from '../helpers/history.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const BROKERS = ['127.0.0.1:19092', '127.0.0.1:19093', '127.0.0.1:19094'];
const BIG = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TABLE_SUM = (t: string) => `SELECT count(*)::text || ':' || coalesce(sum(hashtext(id || ':' || v)::numeric), 0)::text AS s FROM ${t}`;

function kafkaServer(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['scripts/kafka-server.sh', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function startCluster(): void {
  const r = kafkaServer('cluster', 'start');
  assert.equal(r.status, 0, `the 3-node Kafka cluster did not come up (bash scripts/kafka-server.sh cluster start, exit ${r.status}):\n${r.stderr.slice(-4000)}`);
}

/** Node id (1-3) of the active KRaft controller, as Kafka's MetadataQuorumCommand reports it. */
function controller(): number {
  for (let i = 0; i < 10; i++) {
    const up = BROKERS.find((_, n) => kafkaServer('cluster', 'pid', String(n + 1)).status === 0);
    if (up) {
      const r = kafkaServer('tools', 'org.apache.kafka.tools.MetadataQuorumCommand', '--bootstrap-server', up, 'describe', '--status');
      const m = /LeaderId:\s+(\d+)/.exec(r.stdout);
      if (m && Number(m[1]) >= 1) return Number(m[1]);
    }
    spawnSync('sleep', ['1']);
  }
  throw new Error('MetadataQuorumCommand did not name a KRaft controller leader');
}

function kill9(node: number): void {
  const pid = kafkaServer('cluster', 'pid', String(node));
  assert.equal(pid.status, 0, `node ${node} is not running: ${pid.stderr}`);
  process.kill(Number(pid.stdout.trim()), 'SIGKILL');
}

function startNode(node: number): void {
  const r = kafkaServer('cluster', 'start-node', String(node));
  assert.equal(r.status, 0, `node ${node} did not come back (cluster start-node ${node}):\n${r.stderr.slice(-4000)}`);
}

/** Until every partition of every topic (internal ones included) has all its replicas in sync. */
async function fullyReplicated(timeoutMs = 120_000): Promise<void> {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const admin = new Kafka({ brokers: BROKERS, clientId: 'peers-test', logLevel: logLevel.NOTHING, retry: { retries: 2 } }).admin();
  try {
    await waitUntil('every partition with 3 replicas in sync', async () => {
      await admin.connect();
      const md = await admin.fetchTopicMetadata();
      return md.topics.every((t) => t.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length));
    }, timeoutMs);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function logYaml(prefix: string): string {
  return `log:\n  backend: kafka\n  brokers: [${BROKERS.map((b) => `'${b}'`).join(', ')}]\n  topicPrefix: '${prefix}'\n  partitions: 3\n  replicationFactor: 3\n`;
}

/** Lines of the pipeline's stderr with retried failures (`… failed, retrying`), shortened. */
function retries(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /retrying/.test(l)).map((l) => l.slice(0, 400));
}

describe('Kafka cluster faults (3 nodes, RF 3)', () => {
  before(() => startCluster());
  after(() => {
    kafkaServer('cluster', 'stop');
  });

  describe('a broker and then the active controller killed with SIGKILL under a running pipeline', () => {
    const PREFIX = `pf${randomBytes(3).toString('hex')}.`;
    const f = useDatabase(`
      CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text);
      CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, note text);
      CREATE TABLE beat (id int PRIMARY KEY, at bigint NOT NULL);
      INSERT INTO big SELECT g, 1, repeat('p', 200) FROM generate_series(1, ${BIG}) g;
      INSERT INTO hot SELECT g, 1, 'n' FROM generate_series(1, 200) g;
    `);
    let target: Awaited<ReturnType<typeof freshDatabase>>;
    before(async () => (target = await freshDatabase('sluice_t')));
    after(async () => target?.drop());

    it('keeps going or resumes by itself; every change once in the topics; the sink equals the source', async () => {
      const sinks = `sinks:\n  - name: pg\n    type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`;
      const yaml = pipelineYaml('crash', f.db.name, f.tmp.dir, 'transactionMetadata: true', `batch:\n  maxRecords: 500\n  maxDelayMs: 5\n${sinks}`).replace(/^log:\n(?: {2}.*\n)+/m, logYaml(PREFIX));
      const cfgPath = join(f.tmp.dir, 'pipeline.yaml');
      writeFileSync(cfgPath, yaml);
      const logCfg: LogConfig = parseConfig(yaml, 'test.yaml', process.env).log;
      const exec = (sql: string, params: unknown[] = []) => f.db.client.query(sql, params);

      // Workload as in test/sources/conformance.ts, plus a heartbeat row every 200 ms in a
      // transaction of its own: the sink's newest heartbeat tells how far behind it is.
      const work = new WorkloadRecord([
        { table: 'big', ids: range(1, BIG) },
        { table: 'hot', ids: range(1, 200) },
      ]);
      let running = true;
      let nextId = 10_000;
      let beat = 0;
      let lastBeat = 0;
      const workload = (async () => {
        while (running) {
          if (Date.now() - lastBeat >= 200) {
            lastBeat = Date.now();
            await exec('INSERT INTO beat VALUES ($1, $2)', [++beat, lastBeat]);
          }
          const n = 1 + Math.floor(Math.random() * 5);
          await exec('BEGIN');
          for (let i = 0; i < n; i++) {
            const r = Math.random();
            if (r < 0.4) {
              const id = 1 + Math.floor(Math.random() * 200);
              await exec('UPDATE hot SET v = v + 1 WHERE id = $1', [id]);
              work.change('hot', 'u', id);
            } else if (r < 0.6) {
              const id = 1 + Math.floor(Math.random() * BIG);
              await exec('UPDATE big SET v = v + 1 WHERE id = $1', [id]);
              work.change('big', 'u', id);
            } else if (r < 0.85) {
              const id = nextId++;
              await exec(`INSERT INTO hot VALUES ($1, 1, 'new')`, [id]);
              work.change('hot', 'c', id);
            } else {
              const live = work.created('hot');
              if (!live.length) continue;
              const id = live[Math.floor(Math.random() * live.length)];
              await exec('DELETE FROM hot WHERE id = $1', [id]);
              work.change('hot', 'd', id);
            }
          }
          if (Math.random() < 0.05) {
            await exec('ROLLBACK');
            work.rolledBack();
          } else {
            await exec('COMMIT');
            work.committed();
          }
          await sleep(2);
        }
      })();

      // The sink's lag, sampled every 250 ms: now minus the newest heartbeat it has applied.
      const samples: { at: number; lag: number }[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const r = await target.client.query('SELECT max(at)::text AS at FROM beat').catch(() => null);
          const at = Number(r?.rows[0]?.at ?? 0);
          if (at) samples.push({ at: Date.now(), lag: Date.now() - at });
          await sleep(250);
        }
      })();
      const maxLag = (from: number, to: number) => Math.max(0, ...samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.lag));

      const child = startPipelineProcess(cfgPath);
      let exited: string | null = null;
      child.once('exit', (code, sig) => (exited = `sluice run exited (code ${code}, signal ${sig}) during the faults; its stderr:\n${child.stderrText().slice(-6000)}`));
      const alive = () => assert.equal(exited, null, exited ?? '');
      /** waitUntil, but failing at once when the pipeline exited (waitUntil takes a throwing condition for "not yet"). */
      const until = (what: string, cond: () => Promise<boolean>, ms: number) =>
        waitUntil(what, async () => (exited ? true : cond()), ms).then(() => alive());
      const report: string[] = [];
      let streamingSince!: number;
      try {
        await until('the pipeline streaming', async () => {
          alive();
          const st = JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
          return st.pid === child.pid && st.source?.phase === 'stream';
        }, 120_000);
        streamingSince = Date.now();
        await until('the sink applying heartbeats', async () => samples.length > 0 && samples[samples.length - 1].lag < 3000, 120_000);
        await sleep(3000);

        const leader = controller();
        const plain = [1, 2, 3].find((n) => n !== leader)!;
        for (const [node, what] of [[plain, 'broker'], [controller(), 'active controller']] as const) {
          await fullyReplicated();
          alive();
          const errorsBefore = retries(child.stderrText()).length;
          const t0 = Date.now();
          kill9(node);
          await sleep(10_000);
          alive();
          const t1 = Date.now();
          startNode(node);
          const t2 = Date.now();
          // Caught up again: the sink's lag back under 3 s.
          await until(`the sink caught up after node ${node} (${what}) was killed`, async () => {
            alive();
            const s = samples[samples.length - 1];
            return s.at > t2 && s.lag < 3000;
          }, 180_000);
          const t3 = Date.now();
          const errs = retries(child.stderrText()).slice(errorsBefore);
          report.push(
            `node ${node} (${what}) killed: sink lag max ${maxLag(t0, t3)} ms; node down ${t1 - t0} ms, restart took ${t2 - t1} ms, caught up ${t3 - t0} ms after the kill; ${errs.length} retried failures` +
              errs.map((e) => `\n    ${e}`).join(''),
          );
        }
      } finally {
        running = false;
        sampling = false;
        await Promise.all([workload, sampler]);
        for (const r of report) console.log(r);
      }
      alive();

      await exec(`INSERT INTO hot VALUES (-1, 1, 'end marker')`);
      work.change('hot', 'c', -1);
      work.committed();
      const bigTopic = 'crash.public.big';
      const hotTopic = 'crash.public.hot';
      let recs: Awaited<ReturnType<typeof readAll>> = [];
      try {
        await until('the end marker in the topics', async () => (await readAll(logCfg, hotTopic)).some((r) => r.key?.id === -1), 180_000);
        let last = '';
        await until('the PostgreSQL sink equal to the source', async () => {
          for (const t of ['hot', 'big', 'beat']) {
            const q = t === 'beat' ? `SELECT count(*)::text || ':' || coalesce(sum(at), 0)::text AS s FROM beat` : TABLE_SUM(t);
            const a = (await exec(q)).rows[0].s;
            const b = (await target.client.query(q).catch(() => ({ rows: [{ s: 'no table' }] }))).rows[0].s;
            last = `${t}: source ${a}, sink ${b}`;
            if (a !== b) return false;
          }
          return true;
        }, 60_000).catch(async (e: Error) => {
          // Which rows differ, and what the topics hold of them: the log's fault or the sink's?
          recs = await readAll(logCfg, 'crash.');
          const rows = async (c: { query(q: string): Promise<{ rows: any[] }> }) => new Map((await c.query('SELECT id, v FROM hot')).rows.map((r) => [r.id as number, r.v as number]));
          const [src, dst] = [await rows(f.db.client), await rows(target.client)];
          const diff = [...new Set([...src.keys(), ...dst.keys()])].filter((id) => src.get(id) !== dst.get(id)).slice(0, 10);
          const detail = diff.map((id) => `hot ${id}: source v=${src.get(id)}, sink v=${dst.get(id)}, topic: ${recs.filter((r) => r.topic === hotTopic && r.key?.id === id).map((r) => `${r.partition}@${r.offset}:${r.value?.op ?? 'tombstone'}:${r.value?.after?.v ?? ''}`).join(' ')}`);
          throw new Error(`${e.message} (${last})\n${detail.join('\n')}\n${child.stderrText().slice(-3000)}`);
        });
      } finally {
        await stopProcess(child);
      }
      assert.ok(work.transactions.length > 100, `the workload committed only ${work.transactions.length} transactions`);

      recs = await readAll(logCfg, 'crash.');
      const reads = recs.filter((r) => r.topic === bigTopic && r.value?.op === 'r');
      assert.equal(new Set(reads.map((r) => r.key.id)).size, BIG, 'every big row read');
      assert.equal(reads.length, BIG, 'no big row read twice');
      const versions = async (t: string) => new Map((await exec(`SELECT id, v FROM ${t}`)).rows.map((r: any) => [r.id, r.v]));
      assertHistories(recs, bigTopic, await versions('big'), work, 'big', (id) => id >= 1 && id <= BIG);
      assertHistories(recs, hotTopic, await versions('hot'), work, 'hot', (id) => id >= 1 && id <= 200);
      const beats = recs.filter((r) => r.topic === 'crash.public.beat').map((r) => r.key.id);
      assert.equal(beats.length, beat, 'every heartbeat once in the topics');
      assert.equal(new Set(beats).size, beat, 'no heartbeat twice');
      assertTransactions(recs, 'crash.transaction', work, streamingSince, (t) => (t === 'big' ? bigTopic : hotTopic));
      console.log(`exactly once: ${work.transactions.length} transactions, ${beat} heartbeats, ${recs.length} records checked`);
    });
  });

  describe('started while every broker is down', () => {
    const PREFIX = `pd${randomBytes(3).toString('hex')}.`;
    const f = useDatabase(`CREATE TABLE hot (id int PRIMARY KEY, v int NOT NULL, note text); INSERT INTO hot SELECT g, 1, 'n' FROM generate_series(1, 50) g;`);

    // The runner retries opening a log that cannot be reached yet (src/engine/runner.ts).
    it('logs a retried LOG_KAFKA_UNREACHABLE naming the brokers, and proceeds once the cluster starts', async () => {
      const r = kafkaServer('cluster', 'stop');
      assert.equal(r.status, 0, r.stderr);
      const yaml = pipelineYaml('cold', f.db.name, f.tmp.dir).replace(/^log:\n(?: {2}.*\n)+/m, logYaml(PREFIX));
      const cfgPath = join(f.tmp.dir, 'pipeline.yaml');
      writeFileSync(cfgPath, yaml);
      const logCfg: LogConfig = parseConfig(yaml, 'test.yaml', process.env).log;
      const child = startPipelineProcess(cfgPath);
      try {
        // Each attempt waits up to log.connectTimeout for an answer: a second attempt can take a
        // while on a loaded machine. The run must neither exit nor stop retrying meanwhile.
        const lines = () => child.stderrText().split('\n').filter((l) => l.includes('LOG_KAFKA_UNREACHABLE'));
        await waitUntil('two attempts to open the log, each logged', async () => {
          assert.equal(child.exitCode, null, `sluice run exited (${child.exitCode}) while the brokers were down; it should retry. Its stderr:\n${child.stderrText().slice(-3000)}`);
          return lines().length >= 2;
        }, 60_000).catch((e: Error) => {
          throw new Error(`${e.message}; LOG_KAFKA_UNREACHABLE logged ${lines().length} times:\n${child.stderrText().slice(-3000)}`);
        });
        const unreachable = lines();
        for (const b of BROKERS) assert.ok(unreachable[0].includes(b), `the error names broker ${b}: ${unreachable[0]}`);
        console.log(`while down: ${unreachable.length} LOG_KAFKA_UNREACHABLE lines, e.g.\n    ${unreachable[0].slice(0, 400)}`);
        await f.db.client.query(`INSERT INTO hot VALUES (-1, 1, 'after the cluster starts')`);
        const t0 = Date.now();
        startCluster();
        const t1 = Date.now();
        await waitUntil('the rows and the change in the log', async () => {
          assert.equal(child.exitCode, null, `sluice run exited; its stderr:\n${child.stderrText().slice(-3000)}`);
          const recs = await readAll(logCfg, 'cold.public.hot');
          // The row inserted while the brokers were down is in the snapshot (read after the log opened).
          return recs.filter((x) => x.value?.op === 'r').length === 51 && recs.some((x) => x.key?.id === -1);
        }, 180_000);
        console.log(`cluster started in ${t1 - t0} ms; the pipeline had its snapshot and the change in the log ${Date.now() - t1} ms later`);
      } finally {
        await stopProcess(child);
      }
    });
  });
});

function* range(from: number, to: number): Iterable<number> {
  for (let i = from; i <= to; i++) yield i;
}
