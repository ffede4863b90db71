/**
 * The CouchDB source's checkpoint: per database, the update sequence of the last change in the log
 * (the `since` a restart reads from) and where its initial pass ends. It travels with every log
 * commit, so it names exactly the changes that commit holds.
 */
import { couchdbError } from './errors.ts';

export interface DatabaseState {
  /** `since` for the next request: the `seq` of the last change appended, as text (`0` before any). */
  seq: string;
  /** The database's `update_seq` (its leading number) at the first start: changes up to it are the initial pass (`r`). Null: no initial pass (`snapshot: never`). */
  until: number | null;
  /** The initial pass is over. */
  snapshotDone: boolean;
}

export interface CouchdbCheckpoint {
  databases: Record<string, DatabaseState>;
}

export function encodeCheckpoint(c: CouchdbCheckpoint): string {
  return JSON.stringify({ couchdb: 1, databases: c.databases });
}

export function decodeCheckpoint(text: string, resetHint: string): CouchdbCheckpoint {
  let o: any;
  try {
    o = JSON.parse(text);
  } catch {
    o = null;
  }
  if (!o || o.couchdb !== 1 || typeof o.databases !== 'object' || o.databases === null) {
    throw couchdbError('COUCHDB_CHECKPOINT', `the log holds a checkpoint the CouchDB source cannot read (${JSON.stringify(text.slice(0, 80))}): it was written by another source type, or is damaged. To start over, ${resetHint}`);
  }
  const databases: Record<string, DatabaseState> = {};
  for (const [db, s] of Object.entries(o.databases as Record<string, any>)) {
    databases[db] = { seq: String(s?.seq ?? '0'), until: typeof s?.until === 'number' ? s.until : null, snapshotDone: s?.snapshotDone === true };
  }
  return { databases };
}
