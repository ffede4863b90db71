/**
 * The demo's closing check, at a quiet point (workload stopped, pipeline caught up):
 *  - the operational layer holds exactly MySQL's rows: same ids per table, same balances and
 *    transaction amounts to the cent;
 *  - each analytics collection equals a from-scratch recomputation from the operational layer
 *    (ignoring `computed_at`), i.e. the incremental maintenance drifted nowhere.
 */
import type { Connection } from 'mysql2/promise';
import type { Doc, DocumentStore } from '../../src/sinks/document/types.ts';
import { recomputeAll } from './analytics.ts';
import { formatScaled, toScaled } from './money.ts';
import { getPath, idOf, ODL_PATHS as P } from './odl.ts';

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

const TABLES = [
  ['customers', 'customer_id', null, null],
  ['accounts', 'account_id', 'balance', P.accounts.balance],
  ['transactions', 'transaction_id', 'amount', 'financial_info.amount'],
  ['agreements', 'agreement_id', 'current_balance', 'financial_info.current_balance'],
] as const;

/** Compares the operational layer with MySQL, table by table. */
export async function checkOdl(mysql: Connection, odl: DocumentStore): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  for (const [table, id, money, path] of TABLES) {
    const [rows] = (await mysql.query(`SELECT ${id} AS id${money ? `, ${money} AS m` : ''} FROM ${table}`)) as unknown as [{ id: number; m?: string }[]];
    const docs = await odl.find(table, {});
    const want = new Map(rows.map((r) => [String(r.id), money ? toScaled(r.m ?? null) : null]));
    const got = new Map(docs.map((d: Doc) => [String(idOf(d._id)), path ? toScaled(getPath(d, path) ?? null) : null]));
    const missing = [...want.keys()].filter((k) => !got.has(k));
    const extra = [...got.keys()].filter((k) => !want.has(k));
    const differ = [...want.keys()].filter((k) => got.has(k) && want.get(k) !== got.get(k));
    const sum = (m: Map<string, bigint | null>) => [...m.values()].reduce<bigint>((s, v) => s + (v ?? 0n), 0n);
    const fine = missing.length === 0 && extra.length === 0 && differ.length === 0;
    ok &&= fine;
    lines.push(
      `${fine ? '✔' : '✘'} ${table}: MySQL ${want.size} rows, ODL ${got.size} documents` +
        (money ? `, ${money} total ${formatScaled(sum(want))} vs ${formatScaled(sum(got))}` : '') +
        (fine ? '' : ` — missing ${missing.slice(0, 5).join(',') || 'none'}, extra ${extra.slice(0, 5).join(',') || 'none'}, different ${differ.slice(0, 5).join(',') || 'none'}`),
    );
  }
  return { ok, lines };
}

/** Compares each derived collection with a from-scratch recomputation. */
export async function checkAnalytics(odl: DocumentStore, analytics: DocumentStore): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  const fresh = await recomputeAll(odl);
  for (const [collection, want] of Object.entries(fresh)) {
    const got = new Map((await analytics.find(collection, {})).map((d) => [String(d._id), canonical(d)]));
    const differ: string[] = [];
    for (const d of want) if (got.get(String(d._id)) !== canonical(d)) differ.push(String(d._id));
    const extra = [...got.keys()].filter((k) => !want.some((d) => String(d._id) === k));
    const fine = differ.length === 0 && extra.length === 0;
    ok &&= fine;
    lines.push(`${fine ? '✔' : '✘'} ${collection}: ${got.size} documents kept incrementally, ${want.length} from scratch${fine ? ', identical' : ` — different ${differ.slice(0, 5).join(',') || 'none'}, extra ${extra.slice(0, 5).join(',') || 'none'}`}`);
  }
  return { ok, lines };
}

/** A document as comparable text: without computed_at, numbers and decimals by value, dates as ISO. */
function canonical(d: Doc): string {
  const norm = (v: unknown): unknown => {
    if (v === null || v === undefined) return null;
    if (v instanceof Date) return v.toISOString();
    if (Array.isArray(v)) return v.map(norm);
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number') return String(v);
    if (typeof v === 'object' && 'text' in (v as object) && Object.keys(v as object).length === 1) return String((v as { text: string }).text).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
    if (typeof v === 'object' && !Buffer.isBuffer(v)) {
      const o = v as Record<string, unknown>;
      return Object.fromEntries(Object.keys(o).filter((k) => k !== 'computed_at').sort().map((k) => [k, norm(o[k])]));
    }
    if (typeof v === 'string' && /^-?\d+\.\d+$/.test(v)) return v.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
    return v;
  };
  return JSON.stringify(norm(d));
}
