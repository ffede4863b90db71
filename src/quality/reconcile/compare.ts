/**
 * The scan of one table: the source read in key order, `chunk` rows at a time (keyset pagination,
 * one autocommit statement per chunk: no snapshot or lock held between them), and for each chunk
 * the target's rows of the same key range. Each side's range gets a row count and an
 * order-independent checksum (the sum of 53-bit per-row hashes); where they differ, the keys of
 * the range are told apart from the per-row hashes both reads already hold, so a differing range
 * comes down to its keys without being read again (bisecting would re-read it). The keys found are
 * candidates: the re-check (recheck.ts) decides which are drift and which were in flight.
 */
import { canon, HashSum, rowHash } from './canon.ts';
import { keyCompare, type Engine } from './engines.ts';
import type { Column, SourceTable } from './source.ts';
import type { Target } from './targets.ts';

export interface ScanResult {
  sourceRows: number;
  targetRows: number;
  ranges: number;
  differingRanges: number;
  /** Candidate keys (canonical key values), by `JSON.stringify(key)`. */
  candidates: Map<string, string[]>;
}

export interface TargetShape {
  engine: Engine;
  target: Target;
  /** The target's column names. */
  columns: Set<string>;
}

/** SELECT list reading `cols` as text on `e`; a column the target lacks reads as NULL. */
export function selectList(e: Engine, cols: Column[], has?: Set<string>): string {
  // Aliased: PostgreSQL's ORDER BY would otherwise sort by the text output of the same name.
  return cols.map((c, i) => `${has && !has.has(c.col) ? 'NULL' : e.text(e.qi(c.col), c.family)} AS c${i}`).join(', ');
}

/** The canonical values of a row read as text. */
export function canonRow(cols: Column[], row: unknown[]): string[] {
  return cols.map((c, i) => canon(c.family, row[i]));
}

export const keyId = (key: readonly string[]): string => JSON.stringify(key);

export function targetWhere(t: TargetShape, extra: string[]): string {
  const w = [...extra];
  if (t.target.softDelete && t.columns.has(t.target.softDelete)) w.push(t.engine.notDeleted(t.engine.qi(t.target.softDelete)));
  return w.length ? ` WHERE ${w.join(' AND ')}` : '';
}

export async function scanTable(src: Engine, st: SourceTable, t: TargetShape, o: { chunk: number; onChunk?: (rows: number) => void }): Promise<ScanResult> {
  const nk = st.keys.length;
  const srcSelect = `SELECT ${selectList(src, st.columns)} FROM ${st.sql}`;
  const order = ` ORDER BY ${st.keys.map((k) => src.qi(k.col)).join(', ')} LIMIT ${o.chunk}`;
  const readSource = async (after: string[] | null) => (await src.rows(srcSelect + (after ? ` WHERE ${keyCompare(src, st.keys, after, '>')}` : '') + order)).map((r) => canonRow(st.columns, r));
  const tgtSelect = `SELECT ${selectList(t.engine, st.columns, t.columns)} FROM ${t.target.sql(t.engine)}`;
  const readTarget = async (lo: string[] | null, hi: string[] | null) => {
    const w: string[] = [];
    if (lo) w.push(keyCompare(t.engine, st.keys, lo, '>'));
    if (hi) w.push(keyCompare(t.engine, st.keys, hi, '<='));
    return (await t.engine.rows(tgtSelect + targetWhere(t, w))).map((r) => canonRow(st.columns, r));
  };
  const res: ScanResult = { sourceRows: 0, targetRows: 0, ranges: 0, differingRanges: 0, candidates: new Map() };
  let lo: string[] | null = null;
  let page = await readSource(null);
  for (;;) {
    const last = page.length < o.chunk;
    const hi = last ? null : page[page.length - 1].slice(0, nk);
    // The next source chunk is read while this range's target rows are.
    const [next, trows] = await Promise.all([last ? Promise.resolve(null) : readSource(hi), readTarget(lo, hi)]);
    res.ranges++;
    res.sourceRows += page.length;
    res.targetRows += trows.length;
    const sm = new Map<string, number>();
    const ssum = new HashSum();
    for (const r of page) {
      const h = rowHash(r);
      ssum.add(h);
      sm.set(keyId(r.slice(0, nk)), h);
    }
    const tsum = new HashSum();
    const tm = new Map<string, { h: number; key: string[] }>();
    for (const r of trows) {
      const h = rowHash(r);
      tsum.add(h);
      tm.set(keyId(r.slice(0, nk)), { h, key: r.slice(0, nk) });
    }
    if (page.length !== trows.length || !ssum.equals(tsum)) {
      res.differingRanges++;
      for (const r of page) {
        const id = keyId(r.slice(0, nk));
        if (tm.get(id)?.h !== sm.get(id)) res.candidates.set(id, r.slice(0, nk));
      }
      for (const [id, x] of tm) if (!sm.has(id)) res.candidates.set(id, x.key);
    }
    o.onChunk?.(page.length);
    if (last) break;
    lo = hi;
    page = next!;
  }
  return res;
}
