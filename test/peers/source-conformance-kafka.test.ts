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
import type { ReadRecord } from '../helpers/pipeline.ts';
import { sourceConformance } from '../sources/conformance.ts';
import { postgresSuiteDatabase, sinkEqualsSource } from '../sources/postgres-harness.ts';

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

sourceConformance({
  name: 'PostgreSQL → Kafka',
  cycles: 10,
  database: (big) => postgresSuiteDatabase(big, `backend: kafka\nbrokers: ['${BROKER}']\ntopicPrefix: '${PREFIX}'\npartitions: 3`),
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

    // The sink, killed with the pipeline ten times, read its topics from Kafka.
    await sinkEqualsSource(db, 180_000);
  },
});
