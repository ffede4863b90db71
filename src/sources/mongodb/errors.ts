/** Error codes of the MongoDB source. */
import { defineErrors } from '../../core/errors.ts';

export const MONGODB_ERRORS = defineErrors('MongoDB source', {
  MONGODB_CONNECT: { retriable: 'depends', meaning: 'cannot connect to the server or authenticate (retriable while the server is down)' },
  MONGODB_NO_CHANGE_STREAMS: { retriable: false, meaning: 'the server does not answer change streams: a standalone mongod (run it as a one-member replica set) or a user without the `changeStream` and `find` privileges' },
  MONGODB_COLLECTION_MISSING: { retriable: false, meaning: 'nothing to capture: `source.collections` is empty and `source.connection` names no database (`sluice validate` says the same at the line)' },
  MONGODB_RESUME_TOKEN_LOST: { retriable: false, meaning: "the stored resume token is no longer in the server's oplog (the pipeline was stopped longer than the oplog's window): take a new snapshot" },
  MONGODB_STREAM: { retriable: true, meaning: 'the change stream failed with a resumable error (a primary stepped down, the connection broke); the pipeline resumes from its last durable checkpoint' },
  MONGODB_TIMEOUT: { retriable: true, meaning: 'the server did not answer within `socketTimeoutMs` (hung, unreachable or overloaded); the source restarts from its last durable checkpoint' },
  MONGODB_CHECKPOINT: { retriable: false, meaning: 'the log holds a checkpoint this source cannot read (written by another source type, or damaged)' },
});
export const mongoError = MONGODB_ERRORS.error;
