/** Error codes of the Redis sink (the codes every sink shares are in ../errors.ts). */
import { defineErrors } from '../../core/errors.ts';

export const REDIS_ERRORS = defineErrors('Redis sink', {
  REDIS_AUTH: { retriable: false, meaning: 'Redis refused the sink\'s credentials (`WRONGPASS`, `NOAUTH`) or the database index (`SELECT`); fix `connection` (the password is never shown)' },
  REDIS_WRONGTYPE: { retriable: false, meaning: 'a key the sink would write holds another Redis type (a list, a set, a hash where `format: json` writes strings, …): another program uses the key, or `format` changed; the message names the key and the record; nothing of the batch was written' },
  REDIS_NOT_OBJECT: { retriable: false, meaning: 'a record whose value is not a JSON object, which `format: hash` cannot lay out as hash fields; the message names the record (`format: json` stores any value)' },
  REDIS_KEY_TEMPLATE: { retriable: false, meaning: 'the `key` template names a field the record lacks or holds null (for deletes: a field that is not in the key or the row image before the delete); the message names the record and the field' },
  REDIS_CONFLICT: { retriable: true, meaning: 'another client changed a key of the batch (or the offsets) between the sink\'s checks and its MULTI/EXEC; nothing of the batch was written, and it is applied again' },
  REDIS_COMMAND_FAILED: { retriable: 'depends', meaning: 'Redis refused a command of the batch (out of memory under `maxmemory`, a read-only replica, …); with an error at queue time nothing was written (EXECABORT)' },
});
export const redisError = REDIS_ERRORS.error;
