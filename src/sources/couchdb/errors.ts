/** Error codes of the CouchDB source. */
import { defineErrors } from '../../core/errors.ts';

export const COUCHDB_ERRORS = defineErrors('CouchDB source', {
  COUCHDB_CONNECT: { retriable: 'depends', meaning: 'cannot reach the CouchDB server (refused, reset, unknown host: retried while it is down; a TLS failure is not retried)' },
  COUCHDB_AUTH: { retriable: false, meaning: 'the server refused the user and password of `source.connection` (HTTP 401), or the user may not read a captured database (HTTP 403)' },
  COUCHDB_DATABASE_MISSING: { retriable: false, meaning: 'a database of `source.databases` does not exist on the server (HTTP 404)' },
  COUCHDB_TIMEOUT: { retriable: true, meaning: 'the server did not answer, or sent nothing (not even a heartbeat) on the changes feed, within the time allowed: it is hung or unreachable; the pipeline resumes from its last durable checkpoint' },
  COUCHDB_FEED: { retriable: 'depends', meaning: 'the server answered the changes feed with an error status or a body that is not a changes feed (5xx answers are retried), or one response outgrew the source\'s queue bound (lower `limit`)' },
  COUCHDB_CHECKPOINT: { retriable: false, meaning: 'the log holds a checkpoint this source cannot read (written by another source type, or damaged)' },
});
export const couchdbError = COUCHDB_ERRORS.error;
