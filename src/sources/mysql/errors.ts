/** Error codes of the MySQL/MariaDB source. */
import { defineErrors } from '../../core/errors.ts';

export const MYSQL_ERRORS = defineErrors('MySQL/MariaDB source', {
  MYSQL_CONNECT: { retriable: 'depends', meaning: 'cannot connect to the source (retriable while the server is down)' },
  MYSQL_BINLOG_CONFIG: { retriable: false, meaning: 'the server does not write a usable binlog (`log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL`, `binlog_row_metadata=FULL`); each wrong setting is named' },
  MYSQL_ROW_METADATA: { retriable: false, meaning: 'a table map without column names (binlog_row_metadata is not FULL)' },
  MYSQL_TABLE_MISSING: { retriable: false, meaning: '`source.tables` names a table the server does not have' },
  MYSQL_BINLOG_GONE: { retriable: false, meaning: 'the binlog file the checkpoint resumes from was purged: take a new snapshot (move log.dir away)' },
  MYSQL_BINLOG_CORRUPT: { retriable: false, meaning: 'an event failed its CRC32 check or could not be decoded; names file and position' },
  MYSQL_BINLOG_UNSUPPORTED: { retriable: false, meaning: 'a binlog Sluice cannot decode and must not skip: compressed or encrypted binlogs, MySQL partial JSON updates, MariaDB\'s pre-5.6 temporal formats (the message says what to change)' },
  MYSQL_UNSUPPORTED_TYPE: { retriable: false, meaning: 'a captured column of a type the decoder does not know (see the type mapping); exclude the table or change the column' },
  MYSQL_UNSUPPORTED_CHARSET: { retriable: false, meaning: 'a captured column in a character set the decoder does not know (see the type mapping); exclude the table or change the column' },
  MYSQL_TABLE_MAP_MISSING: { retriable: false, meaning: 'a rows event without its table map (a damaged or truncated binlog)' },
  MYSQL_GTID_SET: { retriable: false, meaning: 'a GTID set the client cannot encode for the server (e.g. MySQL 8.3 tagged GTIDs)' },
  MYSQL_ROW_IMAGE: { retriable: false, meaning: 'a captured row was logged without all its columns (a session with `binlog_row_image=MINIMAL/NOBLOB`): fix the clients, re-snapshot' },
  MYSQL_STATEMENT_FORMAT: { retriable: false, meaning: 'DML on a captured table was logged as a statement (a session with `binlog_format=STATEMENT/MIXED`): fix the clients, re-snapshot' },
  MYSQL_XA_ROLLBACK: { retriable: false, meaning: 'an XA transaction was rolled back after its prepared changes to captured tables reached the log: re-snapshot those tables' },
  MYSQL_BINLOG_INCIDENT: { retriable: false, meaning: 'the server wrote an INCIDENT event (changes may be missing from the binlog): check its error log, re-snapshot' },
  MYSQL_CONNECTION_LOST: { retriable: true, meaning: 'the binlog connection broke; the pipeline resumes from its last durable checkpoint' },
  MYSQL_SNAPSHOT_TRUNCATED: { retriable: false, meaning: 'a table was truncated while its interrupted snapshot waited to be resumed: its snapshot cannot be completed exactly' },
  MYSQL_TIMEOUT: { retriable: true, meaning: 'the server did not complete a connection, answer a statement or keep the binlog stream alive in time (`connectTimeout`, `statementTimeout` of the connection, heartbeats): it is hung, unreachable or overloaded, or a lock is held that long' },
  MYSQL_DATABASE_MISSING: { retriable: false, meaning: 'the database `source.connection` names does not exist (or the user cannot see it)' },
  MYSQL_CHECKPOINT: { retriable: false, meaning: 'the log holds a checkpoint this source cannot read (written by another source type, or damaged)' },
  MYSQL_SIGNAL_TABLE: { retriable: false, meaning: 'the signal table (`source.signalTable`) is missing and could not be created (rights), or names no database' },
});
export const mysqlError = MYSQL_ERRORS.error;
