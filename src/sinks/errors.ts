/** Error codes every sink shares (the worker, the batch reader, the SQL layer). */
import { defineErrors } from '../core/errors.ts';

export const SINK_ERRORS = defineErrors('Sinks', {
  SINK_SCHEMA_INCOMPATIBLE: { retriable: false, meaning: 'a source column now holds values the target column\'s type cannot take; the message gives the `ALTER TABLE` to run' },
  SINK_SCHEMA_CHANGED: { retriable: false, meaning: 'a new source column with `schemaEvolution: none`' },
  SINK_NO_KEY: { retriable: false, meaning: 'an update/delete of a table without a primary key, or a target table without a key matching the source\'s' },
  SINK_REJECTED: { retriable: false, meaning: 'the target refused the batch (a constraint, a value out of range, …); nothing of the batch was applied' },
  SINK_UNSUPPORTED_TYPE: { retriable: false, meaning: 'a column kind a table sink cannot hold (exclude the table with the sink\'s `tables`)' },
  SINK_VALUE_UNREPRESENTABLE: { retriable: false, meaning: 'a value the target cannot hold exactly (a date or time outside its range, infinity, NaN, more digits or array dimensions than its column keeps); the message names table, column and value and what to do; nothing of the batch was applied' },
  SINK_OFFSETS_AHEAD: { retriable: false, meaning: 'the target has applied more of a partition than the log holds: the log was recreated' },
  SINK_OFFSET_OUT_OF_RANGE: { retriable: false, meaning: 'retention removed log records the sink had not applied yet' },
  SINK_SCHEMA_MISSING: { retriable: false, meaning: 'a record names a schema the log\'s schema topic does not hold (a log not written by `sluice run`)' },
  SINK_TOPIC_PARTITIONS: { retriable: false, meaning: 'a topic the sink reads gained partitions while in use: keys now go to other partitions than their earlier changes, which could then be applied out of order' },
  SINK_FENCED: { retriable: true, meaning: "another worker of the sink's consumer group applied a partition while this one was stalled or out of the group; its batch is not applied and it joins the group again" },
  SINK_BAD_RECORD: { retriable: false, meaning: 'a record that is not a change event (point the sink at change topics only)' },
  SINK_TARGET_PATH: { retriable: false, meaning: 'the sink\'s target file cannot be created or opened at its path (a directory that cannot exist, no permission, a read-only file system); the message names the path and the reason' },
  SINK_TARGET_BUSY: { retriable: true, meaning: 'the target is locked by another process (a DuckDB file open elsewhere)' },
  SINK_CONNECTION_LOST: { retriable: true, meaning: 'the target dropped the sink\'s connection; it reconnects and resumes' },
});
export const sinkError = SINK_ERRORS.error;
