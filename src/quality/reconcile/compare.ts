/**
 * The scan of one table: the source read in key order, `chunk` rows at a time (keyset pagination,
 * one autocommit statement per chunk: no snapshot or lock held between them), and for each chunk
 * the target's rows of the same key range. Each side's range gets a row count and an
 * order-independent checksum (the sum of 53-bit per-row hashes); where they differ, the keys of
 * the range are told apart from the per-row hashes both reads already hold, so a differing range
 * comes down to its keys without being read again (bisecting would re-read it). The keys found are
 * candidates: the re-check (recheck.ts) decides which are drift and which were in flight.
 * A target that cannot be read by key range (documents: their `_id` order is not the source's key
 * order) is read by each chunk's keys instead, and walked once for keys the source lacks when it
 * holds more rows than it matched.
 */
import { canon, HashSum, rowHash, type Family } from './canon.ts';
import { keyCompare, keyEquals, type Engine } from './engines.ts';
import type { Column, SourceTable } from './source.ts';
import type { TargetReader } from './targets.ts';

export interface ScanResult {
  sourceRows: number;
  targetRows: number;
  ranges: number;
  differingRanges: number;
  /** Candidate keys (canonical key values), by `JSON.stringify(key)`. */
  candidates: Map<string, string[]>;
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

const KEY_SPELLING: Partial<Record<Family, RegExp>> = {
  int: /^-?\d+$/,
  decimal: /^-?\d+(\.\d+)?$/,
  uuid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  date: /^\d{4,}-\d\d-\d\d$/,
};

/** Whether every value of `key` can be a value of its column (a target row keyed `abc` for an integer key cannot be in the source: it is not asked for). */
export const keyFits = (st: SourceTable, key: readonly string[]): boolean => st.keys.every((k, i) => !KEY_SPELLING[k.family] || KEY_SPELLING[k.family]!.test(key[i]));

/** Source rows of `keys` (canonical key values), by key id: at most 200 keys a statement. */
export async function readSourceKeys(src: Engine, st: SourceTable, all: string[][]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const nk = st.keys.length;
  const keys = all.filter((k) => keyFits(st, k));
  for (let i = 0; i < keys.length; i += 200) {
    const cond = `(${keys.slice(i, i + 200).map((k) => `(${keyEquals(src, st.keys, k)})`).join(' OR ')})`;
    for (const r of await src.rows(`SELECT ${selectList(src, st.columns)} FROM ${st.sql} WHERE ${cond}`)) {
      const row = canonRow(st.columns, r);
      out.set(keyId(row.slice(0, nk)), row);
    }
  }
  return out;
}

/** ` WHERE …` of `extra` conditions, and `NOT deleted` where the target keeps soft-deleted rows. */
export function targetWhere(e: Engine, columns: Set<string>, softDelete: string | null, extra: string[]): string {
  const w = [...extra];
  if (softDelete && columns.has(softDelete)) w.push(e.notDeleted(e.qi(softDelete)));
  return w.length ? ` WHERE ${w.join(' AND ')}` : '';
}

export async function scanTable(src: Engine, st: SourceTable, t: TargetReader, o: { chunk: number; onChunk?: (rows: number) => void }): Promise<ScanResult> {
  const nk = st.keys.length;
  const srcSelect = `SELECT ${selectList(src, st.columns)} FROM ${st.sql}`;
  const order = ` ORDER BY ${st.keys.map((k) => src.qi(k.col)).join(', ')} LIMIT ${o.chunk}`;
  const adjust = t.fromSource;
  const readSource = async (after: string[] | null) => {
    const rows = (await src.rows(srcSelect + (after ? ` WHERE ${keyCompare(src, st.keys, after, '>')}` : '') + order)).map((r) => canonRow(st.columns, r));
    return adjust ? rows.map(adjust) : rows;
  };
  const res: ScanResult = { sourceRows: 0, targetRows: 0, ranges: 0, differingRanges: 0, candidates: new Map() };
  /** Keys of the target's rows a key-read target matched to source rows. */
  let matched = 0;
  // A range: a source page, and its target rows (by key range, or for a key-read target by the
  // page's keys), whose read starts as soon as the page is in.
  const rangeAfter = (lo: string[] | null) =>
    readSource(lo).then((page) => {
      const last = page.length < o.chunk;
      const hi = last ? null : page[page.length - 1].slice(0, nk);
      const target = t.range ? t.range(lo, hi) : t.byKeys(page.map((r) => r.slice(0, nk))).then((m) => [...m.values()]);
      target.catch(() => {}); // awaited below; a failure is not unhandled meanwhile
      return { page, hi, last, target };
    });
  let cur = rangeAfter(null);
  for (;;) {
    const { page, hi, last, target } = await cur;
    // The next page is read (and then its target rows) while this range's target rows are, and
    // while this range is hashed: both databases and this process work at once.
    if (!last) {
      cur = rangeAfter(hi);
      cur.catch(() => {});
    }
    const trows = await target;
    res.ranges++;
    res.sourceRows += page.length;
    res.targetRows += trows.length;
    matched += trows.length;
    const sh = new Array<number>(page.length);
    const ssum = new HashSum();
    for (let i = 0; i < page.length; i++) ssum.add((sh[i] = rowHash(page[i])));
    const th = new Array<number>(trows.length);
    const tsum = new HashSum();
    for (let i = 0; i < trows.length; i++) tsum.add((th[i] = rowHash(trows[i])));
    // Keys are told apart only in a range that differs (most agree: no per-row map for them).
    if (page.length !== trows.length || !ssum.equals(tsum)) {
      res.differingRanges++;
      const sm = new Map<string, number>();
      page.forEach((r, i) => sm.set(keyId(r.slice(0, nk)), sh[i]));
      const tm = new Map<string, { h: number; key: string[] }>();
      trows.forEach((r, i) => tm.set(keyId(r.slice(0, nk)), { h: th[i], key: r.slice(0, nk) }));
      for (const r of page) {
        const id = keyId(r.slice(0, nk));
        if (tm.get(id)?.h !== sm.get(id)) res.candidates.set(id, r.slice(0, nk));
      }
      for (const [id, x] of tm) if (!sm.has(id)) res.candidates.set(id, x.key);
    }
    o.onChunk?.(page.length);
    if (last) break;
  }
  // A key-read target holding more rows than it matched has rows the source lacks (or rows written
  // since their chunk was read): its keys are walked, and those the source does not have are
  // candidates for the re-check.
  if (!t.range && t.count && t.eachKey) {
    const total = await t.count();
    res.targetRows = total;
    if (total !== matched) {
      await t.eachKey(async (keys) => {
        const have = await readSourceKeys(src, st, keys);
        for (const k of keys) if (!have.has(keyId(k))) res.candidates.set(keyId(k), k);
      });
    }
  }
  return res;
}
