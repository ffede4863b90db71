/**
 * The source kill -9 suite (test/sources/conformance.ts) with NATS JetStream as the log: `sluice
 * run` from PostgreSQL into the machine's nats-server, killed with SIGKILL during the snapshot and
 * while streaming. Every change must be in the topics exactly once, as the suite checks against the
 * workload's own record; and a PostgreSQL sink of the same pipeline, killed with it, reading its
 * topics from NATS and storing its offsets in its target, must end equal to the source (row count
 * and checksum by SQL on both sides): the source → sink path is exactly once on this backend.
 */
import { after, before } from 'node:test';
import { postgresSuiteDatabase, sinkEqualsSource } from '../sources/postgres-harness.ts';
import { sourceConformance } from '../sources/conformance.ts';
import { NATS_URL, removeNamespace, requireNats, uniqueNamespace } from '../log/nats-helpers.ts';

const NAMESPACE = uniqueNamespace('pipe');

before(requireNats);
after(() => removeNamespace(NAMESPACE));

sourceConformance({
  name: 'PostgreSQL → NATS JetStream',
  cycles: Number(process.env.SLUICE_CRASH_CYCLES ?? 6),
  database: (big) => postgresSuiteDatabase(big, `backend: nats\nservers: ['${NATS_URL}']\nnamespace: ${NAMESPACE}\npartitions: 3`),
  // The sink, killed with the pipeline at every cycle, read its topics from NATS.
  verify: (db) => sinkEqualsSource(db, 300_000),
});
