/** The NATS JetStream log backend's spec: topics as JetStream streams on NATS servers (2.9 or later). */
import { duration, integer, list, object, size, string, type Infer } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';
import { loadDriver } from '../../core/drivers.ts';
import { defineLog } from '../../registry/spec.ts';
import { LOG_ERRORS } from '../errors.ts';
import { NAMESPACE_RE } from './names.ts';

const config = object({
  servers: list(string({ pattern: '^(nats|tls)://', description: 'A server URL, nats://host:port.' }), { minItems: 1, description: 'NATS servers to connect to (any of them; the client finds the rest of a cluster).' }).default(['nats://127.0.0.1:4222']),
  namespace: string({ pattern: NAMESPACE_RE.source, description: 'Prefix of every stream, subject and KV bucket of this log, so that several logs share one NATS account.' }).default((ctx) => `sluice_${pipelineName(ctx).replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64), '`sluice_<name>`'),
  partitions: integer({ min: 1, max: 4096, description: 'Partitions of the topics the pipeline creates (existing topics keep theirs); one JetStream stream each.' }).default(3),
  replicas: integer({ min: 1, max: 5, description: 'JetStream replicas of each stream and of the KV bucket (1 on a single server; 3 in a cluster).' }).default(1),
  retentionMs: duration({ description: 'Delete records older than this (the last committed record of a partition stays).' }).optional('keep forever'),
  retentionBytes: size({ description: 'Delete the oldest records while a partition is larger than this (the stream\'s max_bytes).' }).optional('no limit'),
  maxCommitBytes: size({ description: 'The largest commit: a producer holds a commit\'s records in memory until it commits them.' }).default(64 << 20, '`64MiB`'),
  commitTimeout: duration({ description: 'A commit left unfinished this long (its writer died or hangs) is aborted by another writer, so readers of its partitions go on.' }).default(120_000, '`2m`'),
  connectTimeout: duration({ description: 'How long connecting to a server may take.' }).default(10_000, '`10s`'),
  requestTimeout: duration({ description: 'How long a JetStream request or publish may go unanswered.' }).default(30_000, '`30s`'),
  user: string({ description: 'User name, for servers with user/password authentication.' }).optional(),
  password: string({ description: 'Password of `user`. Use ${VAR} rather than writing it into the file.' }).optional(),
  token: string({ description: 'Authentication token. Use ${VAR}.' }).optional(),
  credentials: string({ type: 'path', description: 'A .creds file (JWT and NKey seed) for servers with decentralized authentication.' }).optional(),
});

export type NatsLogConfig = { backend: 'nats' } & Infer<typeof config>;

export const natsLog = defineLog({
  kind: 'log',
  type: 'nats',
  title: 'NATS JetStream log',
  docs: 'log.md',
  config,
  errors: [LOG_ERRORS],
  describe: (c) => `log nats ${c.namespace} on ${c.servers.map((s) => s.replace(/\/\/[^@/]*@/, '//')).join(', ')}`,
  resetHint: (c) => `delete the log's JetStream streams and KV bucket (namespace ${c.namespace}: streams ${c.namespace}_*, bucket sluice-${c.namespace}), or set another log.namespace`,
  topicDefaults: (c) => ({ partitions: c.partitions, retentionMs: c.retentionMs, retentionBytes: c.retentionBytes }),
  async open(c, o) {
    const nats = await loadDriver('nats', 'the nats log backend', () => import('nats'));
    const { openNatsLog } = await import('./index.ts');
    return openNatsLog(nats, {
      servers: c.servers,
      namespace: c.namespace,
      replicas: c.replicas,
      defaultPartitions: o.defaultPartitions ?? c.partitions,
      maxCommitBytes: c.maxCommitBytes,
      commitTimeoutMs: c.commitTimeout,
      connectTimeoutMs: c.connectTimeout,
      requestTimeoutMs: c.requestTimeout,
      user: c.user,
      password: c.password,
      token: c.token,
      credentials: c.credentials,
      readOnly: o.readOnly,
    });
  },
});
