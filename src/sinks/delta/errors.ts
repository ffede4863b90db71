/** Error codes of the Delta Lake sink (the codes every sink shares are in ../errors.ts). */
import { defineErrors } from '../../core/errors.ts';

export const DELTA_ERRORS = defineErrors('Delta Lake sink', {
  DELTA_CONFLICT: { retriable: true, meaning: 'another writer committed the version of a Delta table this sink was committing (put-if-absent refused it); nothing of the batch is visible, the sink reads the table\'s log again and retries' },
  DELTA_LOG_UNREADABLE: { retriable: false, meaning: 'a Delta table\'s `_delta_log` is not one the sink can continue (a missing version, a line that is not JSON, a log starting at a checkpoint it does not read); the message names the file' },
  DELTA_TABLE_FOREIGN: { retriable: false, meaning: 'the directory a Delta table would go to holds a table whose columns or protocol the sink cannot append to (another writer\'s table, or a column whose type changed at the source); the message names table and column' },
  DELTA_RETENTION: { retriable: false, meaning: '`sluice lake vacuum` was asked to keep files for less than the table\'s retention (`delta.deletedFileRetentionDuration`, a week by default), which would break time travel within it and could delete a running writer\'s uncommitted files; the message says how to proceed' },
});
export const deltaError = DELTA_ERRORS.error;
