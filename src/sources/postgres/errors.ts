/** Error codes of the PostgreSQL source. */
import { defineErrors } from '../../core/errors.ts';

export const PG_ERRORS = defineErrors('PostgreSQL source', {
  PG_CONNECT: { retriable: 'depends', meaning: 'cannot connect, or the replication connection was refused (retriable while the server is down or starting)' },
  PG_WAL_LEVEL: { retriable: false, meaning: 'the server does not run with `wal_level=logical`' },
  PG_VERSION: { retriable: false, meaning: 'the server is older than PostgreSQL 10' },
  PG_SLOT_IN_USE: { retriable: true, maxRetries: 6, meaning: 'another process streams from the slot (retried for about 30 s: the holder may be this pipeline\'s previous connection, not yet gone)' },
  PG_SLOT_MISSING: { retriable: false, meaning: 'the slot vanished while the log holds a checkpoint: changes may be lost' },
  PG_SLOT_CONFLICT: { retriable: false, meaning: 'the slot belongs to another database' },
  PG_TABLE_MISSING: { retriable: false, meaning: '`source.tables` names a table the database does not have' },
  PG_PUBLICATION_MISSING: { retriable: false, meaning: 'the publication does not exist and `createPublication` is false' },
  PG_PUBLICATION_MISMATCH: { retriable: false, meaning: 'the publication publishes other tables than `source.tables`' },
  PG_PUBLICATION_CREATE: { retriable: false, meaning: 'the publication could not be created or altered (rights)' },
  PG_UNSUPPORTED_TYPE: { retriable: false, meaning: 'a captured column of a type Sluice cannot read (see the type mapping)' },
  PG_BINARY_UNSUPPORTED_TYPE: { retriable: false, meaning: 'with `binary: true`, a column type whose binary form Sluice cannot decode' },
  PG_BAD_VALUE: { retriable: false, meaning: 'a value the server sent that does not parse as its type, or that its change-event field cannot hold (a timestamp past 294247 AD); the message names table, column and value' },
  PG_PROTOCOL: { retriable: false, meaning: 'a malformed pgoutput message' },
  PG_STREAM: { retriable: true, meaning: 'the replication connection broke' },
  PG_STREAM_ENDED: { retriable: true, meaning: 'the server ended the replication stream (shutdown, slot dropped)' },
  PG_CHECKPOINT: { retriable: false, meaning: 'the log holds a checkpoint this source cannot read (written by another source type, or damaged)' },
  PG_TIMEOUT: { retriable: true, meaning: 'the server did not complete a connection, answer a statement or keep the replication stream alive in time (`connectTimeout`, `statementTimeout` of the connection): it is hung, unreachable or overloaded, or a lock is held that long' },
  PG_LOG_BEHIND_SLOT: { retriable: false, meaning: 'the replication slot was confirmed past the log\'s checkpoint: the log directory is an older copy (restored from a backup) and the changes in between are lost to it; put back the newest log or start over' },
  PG_SNAPSHOT_TRUNCATED: { retriable: false, meaning: 'a table was truncated while its interrupted snapshot waited to be resumed: its snapshot cannot be completed exactly' },
  PG_SIGNAL_TABLE: { retriable: false, meaning: 'the signal table (`source.signalTable`) is missing and could not be created (rights)' },
});
export const pgError = PG_ERRORS.error;
