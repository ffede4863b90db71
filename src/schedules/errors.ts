/** The error codes of scheduled pulls (`schedules:`): each names what to change. */
import { defineErrors } from '../core/errors.ts';

export const SCHEDULE_ERRORS = defineErrors('Schedules', {
  SCHEDULE_CRON: { retriable: false, meaning: 'a schedule\'s `cron` is not a cron expression Sluice reads (5 fields, or 6 with seconds first, or `@hourly`…), or it never fires; the message points at the field and says what is allowed' },
  SCHEDULE_HTTP: { retriable: 'depends', meaning: 'the API answered with an HTTP error status; 408, 429 and 5xx are retried with backoff (`retries`), other 4xx are not: check the URL, the method and the auth header (its value is never printed)' },
  SCHEDULE_TIMEOUT: { retriable: true, meaning: 'the API did not send its whole answer within `request.timeoutMs`; retried with backoff, then the run fails: raise the timeout or ask for smaller pages' },
  SCHEDULE_NETWORK: { retriable: true, meaning: 'the API could not be reached (refused connection, DNS, reset); retried with backoff, then the run fails' },
  SCHEDULE_BAD_RESPONSE: { retriable: false, meaning: 'the API\'s answer is not what the schedule expects: not JSON, no list at `request.records`, or a pagination cursor/page that is not usable; nothing of the run is written' },
  SCHEDULE_LIMIT: { retriable: false, meaning: 'a run went past a bound: more than `maxRecords` records, more than `request.pagination.maxPages` pages while the API still names a next one, or a response larger than `request.maxResponseBytes`; raise the bound or narrow the request' },
  SCHEDULE_TRANSFORM: { retriable: false, meaning: 'a schedule\'s transform (an expression or its module) failed on a record, or a record lacks its `key` field; nothing of the run is written' },
  SCHEDULE_MODULE: { retriable: false, meaning: 'a schedule\'s `transform.module` cannot be loaded or exports no such function' },
  SCHEDULE_DRIFT: { retriable: false, meaning: 'a `reconcile` schedule found keys that differ between the source and a sink (or could not compare a table); the run is recorded `failed` with a summary per sink × table and the full report is in `<state.dir>/reconcile/history.jsonl`: run `sluice reconcile --repair` to re-emit the keys' },
  SCHEDULE_SNAPSHOT: { retriable: false, meaning: 'a `snapshot` schedule\'s incremental snapshot did not read every table: one was refused (no primary key, not captured: the message says why) or stopped, or it did not end within `snapshot.waitMs` (it goes on in the source); the steps after it are skipped for that fire time' },
  SCHEDULE_UNKNOWN: { retriable: false, meaning: '`sluice schedules run` names a schedule the pipeline does not have; the message lists those it has' },
});
export const scheduleError = SCHEDULE_ERRORS.error;
