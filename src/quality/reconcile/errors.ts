/** The error codes of `sluice reconcile` (and of reconcile schedules and the repair action): each names what to do. */
import { defineErrors } from '../../core/errors.ts';

export const RECONCILE_ERRORS = defineErrors('Reconcile', {
  RECONCILE_SOURCE: { retriable: false, meaning: 'the pipeline has no source reconcile can read (it compares PostgreSQL and MySQL/MariaDB sources), or the source cannot say its position (a MySQL server with the binary log off)' },
  RECONCILE_SINK_UNKNOWN: { retriable: false, meaning: '`--sink` (or a reconcile schedule\'s `sinks`) names a sink the pipeline does not have; the message lists those it has' },
  RECONCILE_TABLE_UNKNOWN: { retriable: false, meaning: '`--table` names a table the source does not capture (not in its publication or `tables`); that table\'s result says so and the others are compared' },
  RECONCILE_TARGET_UNREADABLE: { retriable: true, meaning: 'a target could not be opened or read (a server down, a lake table\'s files unreadable, a collection refused); that sink × table is reported `ERROR` with the cause and the others are compared: run again once it is reachable' },
  RECONCILE_TARGET_LOCKED: { retriable: true, meaning: 'a DuckDB target file is open in another process (the running pipeline): DuckDB lets one process open a file, so reconcile it inside the pipeline (a reconcile schedule, `POST /api/actions/reconcile`) or with the pipeline stopped' },
  RECONCILE_READ: { retriable: true, meaning: 'reading the source or a target failed part-way through a table\'s comparison (a connection lost, a statement timed out); that sink × table is reported `ERROR` with the cause: run again' },
  RECONCILE_REPAIR_REQUEST: { retriable: false, meaning: 'a repair request is malformed: a table not named `schema.table`, a key without one of the table\'s primary-key columns, a table without a primary key, or a body that is not `{"tables": [{"table", "keys"}]}`' },
  RECONCILE_REPAIR_UNREACHABLE: { retriable: false, meaning: '`--repair` while the pipeline runs goes to its server, and there is none to ask (no `server:`, or `server.port: 0`), or it refused: add `server:` with a fixed port, or stop the pipeline and repair into the log' },
});
export const reconcileError = RECONCILE_ERRORS.error;
