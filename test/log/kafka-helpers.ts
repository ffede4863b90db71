/**
 * Helpers for the kafka log's tests: the broker they need (scripts/kafka-server.sh, 127.0.0.1:9092,
 * started by scripts/setup.sh; KAFKA_BROKERS overrides), configs of the kafka log isolated by a
 * topic prefix of their own, and removal of everything under a prefix.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { LogConfig } from '../../src/config/types.ts';
import { kafkaClient, loadKafkajs } from '../../src/log/kafka/client.ts';
import { logSpec } from '../../src/registry/index.ts';

export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const SCRIPT = fileURLToPath(new URL('../../scripts/kafka-server.sh', import.meta.url));

/** Fails (never skips) when no broker answers: the tests need the real thing. */
export async function requireKafka(): Promise<void> {
  const [host, port] = BROKERS[0].split(':');
  const up = await new Promise<boolean>((resolve) => {
    const s = connect({ host, port: Number(port) });
    s.setTimeout(2000);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
  assert.ok(up, `no Kafka broker on ${BROKERS[0]}: start it with bash scripts/kafka-server.sh start (scripts/setup.sh does, as CI runs it)`);
}

/** A topic prefix no other test case uses (the broker's data outlives runs). */
export function uniquePrefix(tag: string): string {
  return `t-${tag}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}.`;
}

/** The kafka log's config with its defaults, as `log:` in a pipeline would give it. */
export function kafkaConfig(overrides: Record<string, unknown>): LogConfig {
  const spec = logSpec('kafka');
  return { backend: 'kafka', ...spec.config.resolve({ brokers: BROKERS, ...overrides }, { root: { name: 'test' }, path: ['log'], fileName: '' }) } as LogConfig;
}

/** Deletes the topics and consumer groups named `<prefix>…`. */
export async function removePrefix(prefix: string): Promise<void> {
  const k = await loadKafkajs();
  const admin = kafkaClient(k, { brokers: BROKERS, clientId: 'sluice-test-cleanup', connectTimeoutMs: 5000, requestTimeoutMs: 30_000 }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length) await admin.deleteGroups(groups).catch(() => {});
  } finally {
    await admin.disconnect();
  }
}

/** Runs one of Kafka's own tool classes (scripts/kafka-server.sh tools …) and returns its stdout. */
export function kafkaTool(mainClass: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [SCRIPT, 'tools', mainClass, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err = (err + d).slice(-10_000)));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${mainClass} exited ${code}: ${err}`));
    });
  });
}

/**
 * What Kafka's ConsoleConsumer prints of a topic from its beginning, one `key<TAB>value` per
 * record, at `isolation`; it reads as consumer group `group` (name it under the test's prefix, so
 * removePrefix deletes it).
 */
export async function consoleConsume(topic: string, isolation: 'read_committed' | 'read_uncommitted', group: string): Promise<string[]> {
  const out = await kafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server', BROKERS[0],
    '--topic', topic,
    '--group', group,
    '--from-beginning',
    '--isolation-level', isolation,
    '--timeout-ms', '8000',
    '--formatter-property', 'print.key=true',
    '--formatter-property', 'key.separator=\t',
  ]);
  return out.split('\n').filter(Boolean);
}
