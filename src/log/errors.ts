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
  LOG_COMPACTION_UNSUPPORTED: { retriable: false, meaning: 'a compacted topic on a backend that cannot compact yet' },
  LOG_OFFSET_OUT_OF_RANGE: { retriable: false, meaning: 'the offset was removed by retention; the message names the earliest still there' },
  LOG_CORRUPT: { retriable: false, meaning: 'a checksum mismatch, or committed data missing on disk' },
  LOG_PRODUCER_BUSY: { retriable: false, meaning: 'a transactional producer of that id is open already' },
  LOG_PRODUCER_CLOSED: { retriable: false, meaning: 'a write through a producer that was closed' },
  LOG_PARTITION_BUSY: { retriable: false, meaning: 'another producer has uncommitted records in the partition' },
  LOG_COMMIT_TOO_LARGE: { retriable: false, meaning: 'one commit exceeds what the backend can hold atomically (its maximum commit size)' },
});
export const logError = LOG_ERRORS.error;
