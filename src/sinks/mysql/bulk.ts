/**
 * The MySQL sink's bulk path: a group of upserts travels as tab-separated text (made in memory,
 * no file) through `LOAD DATA LOCAL INFILE` into a session-local staging table with the target's
 * column types, then one `INSERT … SELECT … ON DUPLICATE KEY UPDATE` moves it into the target,
 * inside the batch's transaction.
 *
 * The values are those `mysqlValue` gives the INSERT path, written as text the server reads the
 * same way; where it would not (a number into a text column, a column type the sink does not know,
 * anything but text, numbers and bytes) the group takes the INSERT path instead (`NotBulk`). The
 * server reports what a LOCAL load could not store exactly as warnings, not errors (it cannot stop
 * the client mid-file): the sink then applies the group again with INSERT statements, which refuse
 * it as before.
 */
import type { TargetColumn } from '../sql/columns.ts';
import type { Family } from '../sql/dialect.ts';

/** The text format of a load: tab between fields, newline after a row, `\` escapes, `\N` is NULL. */
export const LOAD_FORMAT = `CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'`;

/** Server errors that mean LOAD DATA LOCAL is switched off (MariaDB 4166, MySQL 3948, older servers 1148). */
export const LOCAL_INFILE_OFF = [4166, 3948, 1148];

/** A value or column the text of a load would not carry exactly as an INSERT does: the group takes the INSERT path. */
export class NotBulk extends Error {}

/**
 * How a column's values travel: `text` (strings only: a number would be spelled differently than
 * the server spells it), `num` (numbers and digit strings into a numeric column), `hex` (bytes as
 * hex into a LONGBLOB staging column, `UNHEX` on the way to the target).
 */
export type Carry = 'text' | 'num' | 'hex';

export interface StagingColumn {
  /** The target (and staging) column. */
  name: string;
  /** The staging column's type. */
  type: string;
  carry: Carry;
}

/**
 * How a value of `kind` goes into a target column of family `f`: the pairs whose text the server
 * reads exactly as the INSERT path's literal. Anything else: null.
 */
function carryOf(col: TargetColumn, f: Family): Carry | null {
  const k = col.kind;
  switch (k.k) {
    case 'bool':
      return f.family === 'bool' || f.family === 'int' ? 'num' : null;
    case 'int':
      return f.family === 'int' || f.family === 'decimal' ? 'num' : null;
    case 'float':
      return f.family === 'float' ? 'num' : null;
    case 'decimal':
      return f.family === 'decimal' ? 'num' : null;
    case 'interval_us':
      if (k.clock) return f.family === 'time_us' ? 'text' : null;
      return f.family === 'int' ? 'num' : null;
    case 'bytes':
      return f.family === 'bytes' ? 'hex' : null;
    case 'date':
    case 'time_us':
      return f.family === k.k ? 'text' : null;
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return f.family === 'timestamp' ? 'text' : null;
    case 'string':
    case 'uuid':
    case 'timetz':
    case 'interval':
    case 'json':
    case 'array':
      return f.family === 'string' ? 'text' : null;
  }
}

/**
 * The staging columns of a load of `cols` into a table whose columns are `current` (name → type as
 * the catalog prints it), or null when a column cannot travel as text (see `carryOf`).
 */
export function stagingColumns(cols: TargetColumn[], current: ReadonlyMap<string, string>, family: (type: string) => Family): StagingColumn[] | null {
  const out: StagingColumn[] = [];
  for (const col of cols) {
    const type = current.get(col.name);
    if (type === undefined) return null;
    const carry = carryOf(col, family(type));
    if (!carry) return null;
    out.push({ name: col.name, type: carry === 'hex' ? 'LONGBLOB' : type, carry });
  }
  return out;
}

const SPECIAL = /[\\\t\n\0]/;
const SPECIALS = /[\\\t\n\0]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\0': '\\0' };
const escapeOne = (c: string) => ESCAPES[c];

/** Text as a field of the load: `\`, tab, newline and NUL escaped. */
export function fieldText(s: string): string {
  return SPECIAL.test(s) ? s.replace(SPECIALS, escapeOne) : s;
}

/**
 * A value as `mysqlValue` gives it (what mysql2 would send), as a field of the load; `NotBulk`
 * when the field would not read back as that value.
 */
export function field(carry: Carry, x: unknown): string {
  if (x === null) return '\\N';
  switch (carry) {
    case 'text':
      if (typeof x === 'string') return fieldText(x);
      break;
    case 'num':
      // mysql2 writes a number as `'' + n`; a string (a decimal, a 64-bit integer) is text.
      if (typeof x === 'number') return '' + x;
      if (typeof x === 'string') return fieldText(x);
      break;
    case 'hex':
      if (Buffer.isBuffer(x)) return x.toString('hex');
      break;
  }
  throw new NotBulk();
}

/** A staging table of the session: a TEMPORARY table with the columns of one load. */
export interface Stage {
  /** As SQL names it. */
  name: string;
  cols: StagingColumn[];
  /** It may hold rows (a load ran since it was last emptied). */
  dirty: boolean;
  /** The TRUNCATE sent after the batch's commit, while it runs. */
  emptying: Promise<void> | null;
}

/** The staging tables of one target table and column set: one per chunk of a group, loaded in turn. */
interface Slots {
  tables: Stage[];
  /** The batch that last used them. */
  used: number;
}

/** Column sets whose staging tables a session keeps at most (the least recently used beyond that are dropped). */
const KEEP = 16;

/**
 * The session's staging tables, per target table and column set (a new schema version gets its
 * own), several of them so that a group's rows load in chunks, each into a table of its own while
 * the server moves the chunk before. TEMPORARY tables: private to the connection, gone with it,
 * and created, dropped, loaded and emptied with DELETE without committing the open transaction in
 * MariaDB (10.11, checked) — but TRUNCATE commits. So a table is emptied with TRUNCATE outside any
 * transaction: after the commit of the batch that loaded it (`emptyLoaded`), or before the next
 * batch's transaction when that did not happen; with DELETE inside the transaction when it held a
 * few rows, or when one batch loads it twice.
 */
export class StagingTables {
  private readonly slots = new Map<string, Slots>();
  private made = 0;
  private batch = 0;

  /**
   * @param options the table options of every staging table (engine, character set)
   * @param qi quotes an identifier
   */
  constructor(
    private readonly options: string,
    private readonly qi: (name: string) => string,
  ) {}

  /** Starts a batch: the tables it readies are kept from being dropped until the next. */
  startBatch(): void {
    this.batch++;
  }

  /**
   * `n` empty staging tables for loads of `cols` into `target`, created or emptied; outside the
   * batch's transaction (TRUNCATE commits).
   */
  async ready(run: (sql: string) => Promise<void>, target: string, cols: StagingColumn[], n: number): Promise<Stage[]> {
    const key = `${target}\u0000${cols.map((c) => `${c.name} ${c.type}`).join('\u0000')}`;
    let slots = this.slots.get(key);
    if (slots) {
      this.slots.delete(key); // set again below: the map's order is the order of use
    } else {
      for (const [k, old] of this.slots) {
        if (this.slots.size < KEEP) break;
        if (old.used === this.batch) continue;
        for (const t of old.tables) await run(`DROP TEMPORARY TABLE IF EXISTS ${t.name}`);
        this.slots.delete(k);
      }
      slots = { tables: [], used: this.batch };
    }
    slots.used = this.batch;
    this.slots.set(key, slots);
    const tables = slots.tables;
    for (let i = 0; i < n; i++) {
      if (i === tables.length) {
        const name = this.qi(`__sluice_staging_${++this.made}`);
        await run(`CREATE TEMPORARY TABLE ${name} (${cols.map((c) => `${this.qi(c.name)} ${c.type} NULL`).join(', ')})${this.options}`);
        tables.push({ name, cols, dirty: false, emptying: null });
        continue;
      }
      const t = tables[i];
      if (t.emptying) await t.emptying;
      t.emptying = null;
      if (t.dirty) {
        await run(`TRUNCATE TABLE ${t.name}`);
        t.dirty = false;
      }
    }
    return tables.slice(0, n);
  }

  /**
   * Empties the tables a batch loaded, once its transaction is over (TRUNCATE commits): sent
   * without waiting, so that the server does it while the sink turns to the next batch, whose
   * `ready` waits for it (a table a failed TRUNCATE left with rows is emptied there).
   */
  emptyLoaded(run: (sql: string) => Promise<void>): void {
    for (const slots of this.slots.values()) {
      for (const t of slots.tables) {
        if (!t.dirty || t.emptying) continue;
        t.emptying = run(`TRUNCATE TABLE ${t.name}`).then(
          () => void (t.dirty = false),
          () => {},
        );
      }
    }
  }

  /** Forgets every table (the connection that held them is gone). */
  clear(): void {
    this.slots.clear();
  }
}

/**
 * The bytes of a load, written into buffers handed to the driver in pieces of at most `piece`
 * bytes (each a protocol packet: under max_allowed_packet). A row may span pieces: the server
 * reads the load as one stream.
 */
export class LoadWriter {
  readonly pieces: Buffer[] = [];
  private buf: Buffer;
  private pos = 0;
  /** Bytes written into earlier buffers. */
  private before = 0;

  /** @param first the size of the first buffer (a small load needs less than a piece) */
  constructor(
    private readonly piece: number,
    first = piece,
  ) {
    this.buf = Buffer.allocUnsafe(first);
  }

  /** Bytes written so far. */
  get size(): number {
    return this.before + this.pos;
  }

  byte(c: number): void {
    if (this.pos === this.buf.length) this.room(1);
    this.buf[this.pos++] = c;
  }

  /** `src[s, e)` as it is. */
  copy(src: Buffer, s: number, e: number): void {
    const n = e - s;
    if (this.buf.length - this.pos < n) this.room(n);
    if (n < 32) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = s; i < e; i++) buf[p++] = src[i];
      this.pos = p;
    } else {
      src.copy(this.buf, this.pos, s, e);
      this.pos += n;
    }
  }

  /** Text as UTF-8 (already a field: see `field`). */
  text(s: string): void {
    if (this.buf.length - this.pos < s.length * 3) this.room(s.length * 3);
    this.pos += this.buf.write(s, this.pos);
  }

  /** The rest of the current buffer, and a new one with room for `n` bytes. */
  private room(n: number): void {
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  /** Hands over what is written. */
  flush(): void {
    if (this.pos === 0) return;
    const used = this.buf.subarray(0, this.pos);
    for (let o = 0; o < used.length; o += this.piece) this.pieces.push(used.subarray(o, o + this.piece));
    this.before += this.pos;
    // Writing goes on in what is left of this buffer, or in a new one.
    const rest = this.buf.subarray(this.pos);
    this.buf = rest.length >= 4096 ? rest : Buffer.allocUnsafe(this.piece);
    this.pos = 0;
  }
}
