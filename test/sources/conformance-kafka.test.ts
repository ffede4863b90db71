/**
 * The source kill -9 suite (conformance.ts) with Apache Kafka as the log: `sluice run` from
 * PostgreSQL into a real broker (scripts/kafka-server.sh, started by setup), killed with SIGKILL
 * during the snapshot and while streaming, 10 times. Every change must be in the topics exactly
 * once, as the suite checks against the workload's own record; Kafka's own console consumer,
 * reading read_committed, must see exactly the records the suite read through Sluice's backend;
 * and a PostgreSQL sink of the same pipeline, killed with it, reading the topics from Kafka, must
 * end equal to the source (row count and checksum by SQL on both sides).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, useDatabase, waitUntil, type ReadRecord } from '../helpers/pipeline.ts';
import { sourceConformance } from './conformance.ts';

const BROKER = '127.0.0.1:9092';
/** Topics of this run start with it: the broker is shared with other tests and keeps its data. */
const PREFIX = `kc${randomBytes(3).toString('hex')}.`;

/** The records of `topic` as Kafka's ConsoleConsumer prints them, read_committed: `key<TAB>value` lines. */
function consoleConsumer(topic: string): string[] {
  const r = spawnSync(
    'bash',
    ['scripts/kafka-server.sh', 'tools', 'org.apache.kafka.tools.consumer.ConsoleConsumer', '--bootstrap-server', BROKER, '--topic', topic, '--from-beginning', '--isolation-level', 'read_committed', '--formatter-property', 'print.key=true', '--formatter-property', 'key.separator=\t', '--timeout-ms', '8000'],
    { encoding: 'utf8', maxBuffer: 512 << 20 },
  );
  assert.ok(r.status === 0 || /Processed a total of/.test(r.stderr), `Kafka's ConsoleConsumer failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r.stdout.split('\n').filter((l) => l.includes('\t'));
}

/** The sink's target database. */
let target: Awaited<ReturnType<typeof freshDatabase>>;
/** Row count and an order-independent checksum of a table's (id, v). */
const TABLE_SUM = (t: string) => `SELECT count(*)::text || ':' || coalesce(sum(hashtext(id || ':' || v)::numeric), 0)::text AS s FROM ${t}`;

sourceConformance({
  name: 'PostgreSQL → Kafka',
  cycles: 10,
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
        `log:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\n  partitions: 3\n`,
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
  async verify(db, records: ReadRecord[]) {
    // What Kafka's own consumer reads of the hot table's topic is what the suite checked.
    const topic = db.topic('crash', 'hot');
    const ours = records.filter((r) => r.topic === topic).map((r) => `${JSON.stringify(r.key)}\t${r.value === null ? 'null' : JSON.stringify(r.value)}`);
    const theirs = consoleConsumer(PREFIX + topic).map((l) => {
      const [k, v] = l.split('\t');
      return `${JSON.stringify(JSON.parse(k))}\t${v === 'null' ? 'null' : JSON.stringify(JSON.parse(v))}`;
    });
    assert.ok(ours.length > 200, `the hot topic holds the workload's changes (${ours.length})`);
    assert.deepEqual([...theirs].sort(), [...ours].sort(), "Kafka's console consumer (read_committed) reads exactly the records Sluice's backend reads");

    // The sink, killed with the pipeline ten times, read its topics from Kafka: once it caught
    // up, its tables equal the source's.
    const want = async (t: string) => (await (db as unknown as { exec(sql: string): Promise<{ rows: { s: string }[] }> }).exec(TABLE_SUM(t))).rows[0].s;
    const child = startPipelineProcess(join(db.dir(), 'pipeline.yaml'));
    try {
      let last = '';
      await waitUntil('the PostgreSQL sink equal to the source', async () => {
        for (const t of ['hot', 'big']) {
          const [a, b] = [await want(t), (await target.client.query(TABLE_SUM(t)).catch(() => ({ rows: [{ s: 'no table' }] }))).rows[0].s];
          last = `${t}: source ${a}, sink ${b}`;
          if (a !== b) return false;
        }
        return true;
      }, 180_000).catch((e: Error) => {
        throw new Error(`${e.message} (${last})\n${child.stderrText().slice(-3000)}`);
      });
    } finally {
      await stopProcess(child);
    }
  },
});
