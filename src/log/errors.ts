/** Error codes of the log, whatever the backend. */
import { defineErrors } from '../core/errors.ts';

export const LOG_ERRORS = defineErrors('Log', {
  LOG_LOCKED: { retriable: false, meaning: 'another process has the log open for writing (stop it, or give this pipeline its own log)' },
  LOG_DIR: { retriable: false, meaning: 'the log directory cannot be created (a path that cannot exist, no permission, a read-only file system); the message names the reason' },
  LOG_MISSING: { retriable: false, meaning: 'there is no log at that path or address' },
  LOG_READ_ONLY: { retriable: false, meaning: 'a write through a log handle opened read-only' },
  LOG_TOPIC_MISSING: { retriable: false, meaning: 'no topic of that name' },
  LOG_TOPIC_EXISTS: { retriable: false, meaning: 'the topic exists already' },
  LOG_PARTITION_MISSING: { retriable: false, meaning: 'the topic has no partition of that number' },
  LOG_TOPIC_NAME: { retriable: false, meaning: 'a topic name the backend cannot hold' },
  LOG_TOPIC_CONFIG: { retriable: false, meaning: 'invalid topic settings (partitions, retention)' },
  LOG_OFFSET_OUT_OF_RANGE: { retriable: false, meaning: 'the offset was removed by retention; the message names the earliest still there' },
  LOG_CODEC_UNAVAILABLE: { retriable: false, meaning: 'the compression codec log.compression names (or that batches already in the log use) cannot be loaded on this platform; the message says what to install or set' },
  LOG_CORRUPT: { retriable: false, meaning: 'a checksum mismatch, or committed data missing on disk' },
  LOG_PRODUCER_BUSY: { retriable: false, meaning: 'a transactional producer of that id is open already' },
  LOG_PRODUCER_CLOSED: { retriable: false, meaning: 'a write through a producer that was closed' },
  LOG_PARTITION_BUSY: { retriable: false, meaning: 'another producer has uncommitted records in the partition' },
  LOG_COMMIT_TOO_LARGE: { retriable: false, meaning: 'one commit exceeds what the backend can hold atomically (its maximum commit size)' },
  LOG_PRODUCER_FENCED: { retriable: false, meaning: 'another producer opened with the same id took over (Kafka fenced this one); its uncommitted records are dropped and it is closed' },
  LOG_RECORD_TOO_LARGE: { retriable: false, meaning: 'a single record is larger than the topic accepts (Kafka: the topic\'s max.message.bytes)' },
  // Kafka backend (src/log/kafka/).
  LOG_KAFKA_UNREACHABLE: { retriable: true, meaning: 'no Kafka broker can be reached (connection refused, unknown host, no answer within log.connectTimeout); the message names the brokers' },
  LOG_KAFKA_AUTH: { retriable: false, meaning: 'the Kafka brokers refused the configured credentials or permissions (log.sasl, log.ssl, ACLs)' },
  LOG_KAFKA_ERROR: { retriable: 'depends', meaning: 'a Kafka broker answered with an error; the message carries it, and whether a retry can help follows what Kafka says' },
  // NATS JetStream backend (src/log/nats/).
  LOG_NATS_UNREACHABLE: { retriable: true, meaning: 'the NATS servers cannot be reached (connection refused, unknown host, no answer within log.connectTimeout) or the connection was lost; the message names the servers' },
  LOG_NATS_TIMEOUT: { retriable: true, meaning: 'a JetStream request or publish got no answer within log.requestTimeout (a server overloaded, restarting, or a stream without quorum)' },
  LOG_NATS_AUTH: { retriable: false, meaning: 'the NATS server refused the configured credentials, or a permission the log needs (its subjects, $JS.API, $KV)' },
  LOG_NATS_NO_JETSTREAM: { retriable: false, meaning: 'the NATS server (or the account) runs without JetStream, or is older than 2.9' },
  LOG_NATS_ERROR: { retriable: 'depends', meaning: 'JetStream refused a request (out of storage, a stream configured differently, …); the message carries the server\'s words, and whether a retry can help follows them' },
});
export const logError = LOG_ERRORS.error;
