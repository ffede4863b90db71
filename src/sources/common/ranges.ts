/**
 * What a source's checkpoint says of each table's snapshot, and the stream filter that follows
 * from it. A table is read in key order and committed to the log chunk by chunk; if the pipeline
 * stops in the middle of a table, the next run reads the rest of it at a newer point of the source's
 * history. So a table's snapshot is a list of key ranges, each read at its own point `at`:
 *
 *   ranges: [{ to: K1, at: P0 }, { to: K2, at: N1 }, { to: null, at: N2 }]
 *
 * means keys up to K1 were read at P0, keys in (K1, K2] at N1, the rest at N2. A change to the table
 * that committed before the point its key's range was read at is already in the snapshot, and the
 * stream leaves it out; any later change is streamed. A truncate that falls between two ranges'
 * points cannot be placed (some of the rows it removed are in the log, some of the rows read after
 * it too) and stops the pipeline with a coded error asking for a new snapshot.
 */
import type { Row } from '../../core/event.ts';
import { decodeKey, encodeKey } from './keys.ts';

/** The last key a range holds: as the stream compares it, and as the database reads it back. */
export interface KeyBound {
  /** Decoded as events carry it. */
  key: Row;
  /** The key columns as the snapshot query returned them (text, or bytes for binary columns), for `WHERE key > …`. */
  raw: (string | Buffer | null)[];
}

export interface Range<P> {
  /** The last key of the range; null: every key above the previous range. */
  to: KeyBound | null;
  /** The source position the range was read at. */
  at: P;
}

export interface TableSnapshot<P> {
  /** `partial` while the table's read is under way (or was interrupted). */
  status: 'done' | 'partial';
  /** Rows of the table in the log. */
  rows: number;
  ranges: Range<P>[];
}

/** Where a resumed read continues: after the last key in the log, or from the start. */
export function resumeAfter<P>(t: TableSnapshot<P> | undefined): KeyBound | null {
  const last = t?.ranges[t.ranges.length - 1];
  return last?.to ?? null;
}

// ---------- checkpoint JSON ----------

type RawJson = string | null | { b: string };

export function encodeTableSnapshot<P>(t: TableSnapshot<P>, pos: (p: P) => unknown): unknown {
  return {
    status: t.status,
    rows: t.rows,
    ranges: t.ranges.map((r) => ({ to: r.to && { key: encodeKey(r.to.key), raw: r.to.raw.map((x): RawJson => (Buffer.isBuffer(x) ? { b: x.toString('base64') } : x)) }, at: pos(r.at) })),
  };
}

/** Reads a table's state; `legacyAt` reads the single point of checkpoints written before ranges (`skipBefore`). */
export function decodeTableSnapshot<P>(o: any, pos: (v: any) => P): TableSnapshot<P> {
  if (!Array.isArray(o.ranges)) return { status: 'done', rows: Number(o.rows ?? 0), ranges: [{ to: null, at: pos(o.skipBefore) }] };
  return {
    status: o.status === 'partial' ? 'partial' : 'done',
    rows: Number(o.rows ?? 0),
    ranges: o.ranges.map((r: any) => ({ to: r.to && { key: decodeKey(r.to.key), raw: r.to.raw.map((x: RawJson) => (x !== null && typeof x === 'object' ? Buffer.from(x.b, 'base64') : x)) }, at: pos(r.at) })),
  };
}

// ---------- the stream filter ----------

export type Coverage = 'covered' | 'streamed' | 'split';

/** Decides, for a change streamed after the snapshot, whether the snapshot already holds it. */
export class SnapshotFilter<P> {
  private readonly latest: P;

  constructor(
    private readonly ranges: Range<P>[],
    /** Orders source positions. */
    private readonly comparePos: (a: P, b: P) => number,
    /** Orders keys as the snapshot read them (needed only when a table has several ranges). */
    private readonly compareKeys: ((a: Row, b: Row) => number) | null,
  ) {
    this.latest = ranges.reduce((m, r) => (comparePos(r.at, m) > 0 ? r.at : m), ranges[0].at);
  }

  /** The newest point any range was read at: changes after it are all streamed. */
  get until(): P {
    return this.latest;
  }

  /** A row change committed at `pos` to the row with `key`. */
  covers(pos: P, key: Row | null): boolean {
    if (this.comparePos(pos, this.latest) >= 0) return false;
    if (this.ranges.length === 1) return this.comparePos(pos, this.ranges[0].at) < 0;
    // (Only keyed tables are read in several ranges.)
    if (key === null || !this.compareKeys) return this.comparePos(pos, this.earliest()) < 0;
    const cmp = this.compareKeys;
    const r = this.ranges.find((x) => x.to === null || cmp(key, x.to.key) <= 0) ?? this.ranges[this.ranges.length - 1];
    return this.comparePos(pos, r.at) < 0;
  }

  /** A truncate committed at `pos`: before every range's read, after all of them, or between. */
  truncate(pos: P): Coverage {
    if (this.comparePos(pos, this.earliest()) < 0) return 'covered';
    if (this.comparePos(pos, this.latest) >= 0) return 'streamed';
    return 'split';
  }

  private earliest(): P {
    return this.ranges.reduce((m, r) => (this.comparePos(r.at, m) < 0 ? r.at : m), this.ranges[0].at);
  }
}
