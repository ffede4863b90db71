/** The kafka log backend's spec: topics, transactions and consumer groups on an Apache Kafka cluster. */
import { boolean, duration, integer, list, object, oneOf, size, string, type Infer } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';
import { loadDriver } from '../../core/drivers.ts';
import { defineLog } from '../../registry/spec.ts';
import { LOG_ERRORS } from '../errors.ts';

const config = object({
  brokers: list(string({ minLength: 1 }), { minItems: 1, description: 'Bootstrap brokers, `host:port`.' }).default(['127.0.0.1:9092']),
  clientId: string({ description: 'Client id the brokers see (quotas, logs).' }).default((ctx) => `sluice-${pipelineName(ctx) || 'log'}`, '`sluice-<name>`'),
  topicPrefix: string({ pattern: '^[A-Za-z0-9._-]*$', description: 'Put before every topic, transactional id and consumer group this log uses, so several Sluice logs share one cluster without seeing each other. Topic names (with the prefix) are at most 249 characters.' }).default('', 'none'),
  checkpointTopic: string({ pattern: '^[A-Za-z0-9._-]+$', description: 'The compacted topic (under `topicPrefix`) holding each producer\'s last committed checkpoint, written in the same transaction as its records.' }).default('__sluice_checkpoints'),
  partitions: integer({ min: 1, max: 10000, description: 'Partitions of the topics the pipeline creates (existing topics keep theirs).' }).default(3),
  replicationFactor: integer({ min: 1, max: 32, description: 'Replicas of the topics Sluice creates.' }).optional("the brokers' `default.replication.factor`"),
  retentionMs: duration({ description: 'Delete records older than this (topic `retention.ms`).' }).optional('keep forever'),
  retentionBytes: size({ description: 'Delete the oldest records while a partition is larger than this (topic `retention.bytes`).' }).optional('no limit'),
  maxMessageBytes: size({ description: 'The largest record batch the topics Sluice creates accept (topic `max.message.bytes`); a larger record fails its commit with LOG_RECORD_TOO_LARGE.' }).default(8 << 20, '`8MiB`'),
  transactionTimeout: duration({ description: 'How long a commit may stay open before the broker aborts it (capped by the brokers\' `transaction.max.timeout.ms`, 15 minutes by default). A writer that dies mid-commit holds back read_committed readers of its partitions this long, unless it is restarted sooner.' }).default(60_000, '`60s`'),
  connectTimeout: duration({ description: 'How long connecting to a broker (TCP, TLS, SASL) may take.' }).default(10_000, '`10s`'),
  requestTimeout: duration({ description: 'How long one request may go unanswered.' }).default(30_000, '`30s`'),
  groupSessionTimeout: duration({ description: "How long a sink worker of a consumer group (`sluice run --only sinks` on several machines) may go without a heartbeat before the group gives its partitions to the others (Kafka's session.timeout.ms; within the brokers' group.min/max.session.timeout.ms)." }).default(10_000, '`10s`'),
  groupRebalanceTimeout: duration({ description: 'How long a rebalance waits for every member to finish the batch it is applying and rejoin; a member slower than this is dropped from the group.' }).default(60_000, '`60s`'),
  ssl: object({
    enabled: boolean({ description: 'Connect with TLS.' }).default(false),
    ca: string({ type: 'path', description: 'PEM file of the certificate authorities to trust.' }).optional('the system CAs'),
    rejectUnauthorized: boolean({ description: 'Refuse brokers whose certificate does not verify.' }).default(true),
  }, { description: 'TLS to the brokers.' }).optional('plain TCP'),
  sasl: object({
    mechanism: oneOf(['plain', 'scram-sha-256', 'scram-sha-512'] as const, { description: 'SASL mechanism.' }),
    username: string(),
    password: string({ description: 'Use ${VAR} rather than writing it into the file.' }),
  }, { description: 'SASL authentication (the password is masked in every message and log line).' }).optional('none'),
});

/** The kafka log's settings, defaults filled in. */
export type KafkaLogSettings = Infer<typeof config>;
export type KafkaLogConfig = { backend: 'kafka' } & KafkaLogSettings;

export const kafkaLog = defineLog({
  kind: 'log',
  type: 'kafka',
  title: 'Kafka log',
  docs: 'log.md',
  config,
  errors: [LOG_ERRORS],
  describe: (c) => `log kafka ${c.brokers.join(',')}${c.topicPrefix ? ` topics ${c.topicPrefix}*` : ''}`,
  resetHint: (c) => `delete this pipeline's topics${c.topicPrefix ? ` (those named ${c.topicPrefix}*)` : ''} and its checkpoints in ${c.topicPrefix}${c.checkpointTopic}, or set log.topicPrefix to a new prefix`,
  topicDefaults: (c) => ({ partitions: c.partitions, retentionMs: c.retentionMs, retentionBytes: c.retentionBytes }),
  async open(c, o) {
    const { openKafkaLog } = await loadDriver('kafkajs', 'the kafka log', async () => {
      await import('kafkajs');
      return import('./index.ts');
    });
    return openKafkaLog(c, { readOnly: o.readOnly ?? false, defaultPartitions: o.defaultPartitions ?? c.partitions });
  },
});
