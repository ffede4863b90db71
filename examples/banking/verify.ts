/**
 * The demo's closing check, at a quiet point (workload stopped, pipeline caught up). Every
 * expectation comes from MySQL, never from the documents under test:
 *  - the operational layer holds exactly MySQL's rows, and every field a template in
 *    pipeline.yaml maps from a column (`$column`) equals that column, compared by the column's
 *    type: DECIMAL to its scale, DATE as the day, DATETIME as the wall-clock time, TIMESTAMP as
 *    the instant, text and ENUM labels as written;
 *  - each analytics collection equals what SQL over MySQL says it should hold: the rules of
 *    rules.ts (also in README.md) written a second time, as aggregate queries, so a rule the
 *    incremental code gets wrong, or a document it left stale, shows as a difference;
 *  - every end-to-end lag probe was seen: a probe still pending or expired is a change that did
 *    not become visible.
 */
import { readFileSync } from 'node:fs';
import type { Connection } from 'mysql2/promise';
import { parse } from 'yaml';
import { Decimal, type Doc, type DocumentStore } from '../../src/sinks/document/types.ts';
import type { LagSnapshot } from './lag.ts';
import { formatScaled, toScaled } from './money.ts';

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

const PIPELINE = new URL('./pipeline.yaml', import.meta.url);

interface Mapped {
  /** Dotted path in the document. */
  path: string;
  column: string;
}

interface CollectionMapping {
  database: string;
  table: string;
  collection: string;
  fields: Mapped[];
}

/** The `$column` leaves of each collection's template in pipeline.yaml. */
export function mappedFields(yamlText = readFileSync(PIPELINE, 'utf8')): CollectionMapping[] {
  const cfg = parse(yamlText) as { sinks: { collections?: { table: string; collection: string; document: Record<string, unknown> }[] }[] };
  const out: CollectionMapping[] = [];
  for (const sink of cfg.sinks) {
    for (const c of sink.collections ?? []) {
      const fields: Mapped[] = [];
      const walk = (node: unknown, prefix: string) => {
        if (typeof node === 'string' && node.startsWith('$') && !node.startsWith('$$')) fields.push({ path: prefix, column: node.slice(1) });
        else if (node && typeof node === 'object' && !Array.isArray(node)) for (const [k, v] of Object.entries(node)) walk(v, prefix ? `${prefix}.${k}` : k);
      };
      walk(c.document, '');
      const dot = c.table.lastIndexOf('.');
      out.push({ database: dot < 0 ? 'banking' : c.table.slice(0, dot), table: c.table.slice(dot + 1), collection: c.collection, fields });
    }
  }
  return out;
}

type Kind = 'decimal' | 'date' | 'datetime' | 'timestamp' | 'integer' | 'text';

interface ColumnInfo {
  kind: Kind;
  scale: number;
}

async function columnsOf(mysql: Connection, database: string, table: string): Promise<{ columns: Map<string, ColumnInfo>; key: string }> {
  const [rows] = (await mysql.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, NUMERIC_SCALE AS scale, COLUMN_KEY AS k
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
    [database, table],
  )) as unknown as [{ name: string; type: string; scale: number | null; k: string }[]];
  const columns = new Map<string, ColumnInfo>();
  let key = '';
  for (const r of rows) {
    const t = r.type.toLowerCase();
    const kind: Kind =
      t === 'decimal' ? 'decimal' : t === 'date' ? 'date' : t === 'datetime' ? 'datetime' : t === 'timestamp' ? 'timestamp' : /int$/.test(t) ? 'integer' : 'text';
    columns.set(r.name, { kind, scale: Number(r.scale ?? 0) });
    if (r.k === 'PRI') key = r.name;
  }
  if (!key) throw new Error(`${database}.${table} has no primary key, or does not exist`);
  return { columns, key };
}

/** SQL giving a column as the comparable text `expect()` uses. */
function selectAs(column: string, info: ColumnInfo): string {
  const c = `\`${column}\``;
  switch (info.kind) {
    case 'decimal':
    case 'integer':
      return `CAST(${c} AS CHAR)`;
    case 'date':
      return `DATE_FORMAT(${c}, '%Y-%m-%d')`;
    // DATETIME is wall-clock time without a zone: the document holds it as that time in UTC.
    case 'datetime':
      return `DATE_FORMAT(${c}, '%Y-%m-%dT%H:%i:%s.%f')`;
    // TIMESTAMP is an instant: compared as epoch milliseconds, whatever the session's time zone.
    case 'timestamp':
      return `CAST(ROUND(UNIX_TIMESTAMP(${c}) * 1000) AS CHAR)`;
    default:
      return c;
  }
}

/** A document value as the same comparable text, or null; `undefined` when the field is absent. */
function docAs(v: unknown, info: ColumnInfo): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  switch (info.kind) {
    case 'decimal': {
      const s = toScaled(v, info.scale);
      return s === null ? `unreadable ${JSON.stringify(v)}` : formatScaled(s, info.scale);
    }
    case 'integer':
      return typeof v === 'object' ? `unreadable ${JSON.stringify(v)}` : String(v);
    case 'date':
    case 'datetime':
    case 'timestamp': {
      const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;
      if (!d || Number.isNaN(d.getTime())) return `unreadable ${JSON.stringify(v)}`;
      if (info.kind === 'timestamp') return String(d.getTime());
      const iso = d.toISOString();
      return info.kind === 'date' ? iso.slice(0, 10) : iso.slice(0, 23);
    }
    default:
      return v instanceof Decimal ? v.text : typeof v === 'string' ? v : String(v);
  }
}

function sqlAs(v: unknown, info: ColumnInfo): string | null {
  if (v === null || v === undefined) return null;
  const s = String(v);
  if (info.kind === 'decimal') return formatScaled(toScaled(s, info.scale)!, info.scale);
  if (info.kind === 'datetime') return s.slice(0, 23);
  return s;
}

function getPath(doc: Doc | undefined, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || cur instanceof Date) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const show = (v: string | null | undefined) => (v === undefined ? 'absent' : v === null ? 'null' : JSON.stringify(v));

/** Compares the operational layer with MySQL: the same rows, and every mapped field equal to its column. */
export async function checkOdl(mysql: Connection, odl: DocumentStore, mappings = mappedFields()): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  for (const m of mappings) {
    const { columns, key } = await columnsOf(mysql, m.database, m.table);
    for (const f of m.fields) if (!columns.has(f.column)) throw new Error(`pipeline.yaml maps ${m.collection}.${f.path} from $${f.column}, which ${m.database}.${m.table} does not have`);
    const [rows] = (await mysql.query(
      `SELECT CAST(\`${key}\` AS CHAR) AS _key, ${m.fields.map((f, i) => `${selectAs(f.column, columns.get(f.column)!)} AS f${i}`).join(', ')} FROM \`${m.database}\`.\`${m.table}\``,
    )) as unknown as [Record<string, unknown>[]];
    const docs = new Map((await odl.find(m.collection, {})).map((d) => [String(d._id), d]));
    const missing: string[] = [];
    const differ: string[] = [];
    const byField = new Map<string, number>();
    for (const row of rows) {
      const id = String(row._key);
      const doc = docs.get(id);
      if (!doc) {
        missing.push(id);
        continue;
      }
      m.fields.forEach((f, i) => {
        const info = columns.get(f.column)!;
        const want = sqlAs(row[`f${i}`], info);
        const got = docAs(getPath(doc, f.path), info);
        if (want !== got) {
          byField.set(f.path, (byField.get(f.path) ?? 0) + 1);
          if (differ.length < 5) differ.push(`${id}.${f.path}: MySQL ${show(want)}, ODL ${show(got)}`);
        }
      });
    }
    const keys = new Set(rows.map((r) => String(r._key)));
    const extra = [...docs.keys()].filter((k) => !keys.has(k));
    const fine = missing.length === 0 && extra.length === 0 && byField.size === 0;
    ok &&= fine;
    const wrong = [...byField].map(([p, n]) => `${p} ×${n}`).join(', ');
    lines.push(
      `${fine ? '✔' : '✘'} ${m.collection}: MySQL ${rows.length} rows, ODL ${docs.size} documents, ${m.fields.length} mapped fields ${fine ? 'equal in every row' : 'compared'}` +
        (fine ? '' : ` — missing ${missing.slice(0, 5).join(',') || 'none'}, extra ${extra.slice(0, 5).join(',') || 'none'}${wrong ? `, different: ${wrong} (e.g. ${differ.join('; ')})` : ''}`),
    );
  }
  return { ok, lines };
}

// ---------------------------------------------------------------------------------------------
// The analytics, from MySQL with SQL. Dates leave MySQL as text and become instants here the way
// the pipeline defines them (DATE at midnight UTC, DATETIME as UTC wall-clock time).

const ACTIVE_OR_NULL = (c: string) => `COALESCE(${c}, '') <> 'CLOSED'`;

/** transaction_pattern from `n` effective transactions and the mean and deviation of their gaps. */
const PATTERN_SQL = `CASE WHEN n = 0 THEN 'INACTIVE' WHEN n < 3 THEN 'SPORADIC' WHEN mean_gap = 0 THEN 'BURSTY'
            WHEN sd_gap / mean_gap <= 0.75 THEN 'REGULAR' WHEN sd_gap / mean_gap <= 1.5 THEN 'IRREGULAR' ELSE 'BURSTY' END`;

/** One row per customer with everything customer_analytics holds. */
const CUSTOMER_ANALYTICS_SQL = (db: string) => `
WITH acct AS (
  SELECT customer_id,
         SUM(${ACTIVE_OR_NULL('account_status')}) AS open_n,
         SUM(IF(${ACTIVE_OR_NULL('account_status')}, COALESCE(balance, 0), 0)) AS open_balance,
         SUM(IF(${ACTIVE_OR_NULL('account_status')} AND account_type IN ('CHECKING', 'SAVINGS'), COALESCE(balance, 0), 0)) AS liquid,
         SUM(IF(${ACTIVE_OR_NULL('account_status')} AND account_type = 'CREDIT' AND credit_limit > 0, GREATEST(-COALESCE(balance, 0), 0), 0)) AS owed,
         SUM(IF(${ACTIVE_OR_NULL('account_status')} AND account_type = 'CREDIT' AND credit_limit > 0, credit_limit, 0)) AS credit_limit,
         MAX(COALESCE(account_status = 'FROZEN', 0)) AS frozen,
         GROUP_CONCAT(DISTINCT IF(${ACTIVE_OR_NULL('account_status')}, account_type, NULL)
                      ORDER BY FIELD(account_type, 'CHECKING', 'SAVINGS', 'CREDIT', 'LOAN') SEPARATOR ',') AS types
    FROM ${db}.accounts GROUP BY customer_id),
eff AS (
  SELECT a.customer_id, t.transaction_date,
         TIMESTAMPDIFF(MICROSECOND,
                       LAG(t.transaction_date) OVER (PARTITION BY a.customer_id ORDER BY t.transaction_date, t.transaction_id),
                       t.transaction_date) AS gap
    FROM ${db}.transactions t JOIN ${db}.accounts a ON a.account_id = t.account_id
   WHERE t.status IN ('COMPLETED', 'PENDING')),
tx AS (
  SELECT customer_id, COUNT(*) AS n, COUNT(DISTINCT DATE_FORMAT(transaction_date, '%Y-%m')) AS months,
         MAX(transaction_date) AS last_at, AVG(gap) AS mean_gap, STDDEV_POP(gap) AS sd_gap
    FROM eff GROUP BY customer_id),
agr AS (
  SELECT customer_id, SUM(status = 'COMPLETED') AS completed, SUM(status = 'DEFAULT') AS defaulted,
         SUM(IF(status = 'ACTIVE', COALESCE(payment_amount, 0) * CASE payment_frequency WHEN 'QUARTERLY' THEN 4 WHEN 'ANNUALLY' THEN 1 ELSE 12 END, 0)) AS obligation12
    FROM ${db}.agreements GROUP BY customer_id),
f AS (
  SELECT c.customer_id, c.first_name, c.last_name, c.email, c.city, c.state, c.customer_status AS status,
         COALESCE(acct.open_n, 0) AS open_n, COALESCE(acct.open_balance, 0) AS open_balance, acct.types,
         COALESCE(acct.liquid, 0) AS liquid, COALESCE(acct.owed, 0) AS owed, COALESCE(acct.credit_limit, 0) AS credit_limit,
         COALESCE(acct.frozen, 0) AS frozen, COALESCE(tx.n, 0) AS n, tx.months, tx.last_at, tx.mean_gap, tx.sd_gap,
         COALESCE(agr.completed, 0) AS completed, COALESCE(agr.defaulted, 0) AS defaulted, COALESCE(agr.obligation12, 0) AS obligation12
    FROM ${db}.customers c LEFT JOIN acct ON acct.customer_id = c.customer_id
         LEFT JOIN tx ON tx.customer_id = c.customer_id LEFT JOIN agr ON agr.customer_id = c.customer_id),
s AS (
  SELECT f.*,
         600 + CASE WHEN liquid >= 25000 THEN 120 WHEN liquid >= 10000 THEN 90 WHEN liquid >= 2500 THEN 60 WHEN liquid >= 0 THEN 30 ELSE 0 END
             + CASE WHEN credit_limit = 0 THEN 30 WHEN owed * 10 < credit_limit * 3 THEN 60 WHEN owed * 10 < credit_limit * 7 THEN 20 ELSE -40 END
             + LEAST(completed, 3) * 20 - defaulted * 150 - frozen * 80 - IF(COALESCE(status = 'SUSPENDED', 0), 100, 0) AS score
    FROM f)
SELECT customer_id,
       CONCAT_WS(' ', NULLIF(first_name, ''), NULLIF(last_name, '')) AS name, email,
       NULLIF(CONCAT_WS(', ', NULLIF(city, ''), NULLIF(state, '')), '') AS location, CAST(status AS CHAR) AS status,
       open_n, CAST(open_balance AS CHAR) AS total_balance, types,
       CAST(IF(n = 0, 0, ROUND(n / months, 1)) AS CHAR) AS avg_monthly,
       DATE_FORMAT(last_at, '%Y-%m-%dT%H:%i:%s.%f') AS last_at,
       CASE WHEN score >= 760 THEN 'EXCELLENT' WHEN score >= 700 THEN 'GOOD' WHEN score >= 640 THEN 'FAIR' WHEN score >= 580 THEN 'POOR' ELSE 'VERY_POOR' END AS band,
       CASE WHEN defaulted > 0 THEN 'HIGH'
            WHEN obligation12 > 0 AND liquid * 12 < obligation12 THEN 'HIGH'
            WHEN obligation12 > 0 AND liquid * 12 < obligation12 * 3 THEN 'MEDIUM'
            WHEN frozen THEN 'MEDIUM'
            WHEN COALESCE(status = 'SUSPENDED', 0) THEN 'MEDIUM'
            WHEN credit_limit > 0 AND owed * 10 >= credit_limit * 7 THEN 'MEDIUM'
            ELSE 'LOW' END AS risk,
       ${PATTERN_SQL} AS pattern
  FROM s ORDER BY customer_id`;

/** One row per agreement, with its customer, for customer_agreement_profiles. */
const AGREEMENTS_SQL = (db: string) => `
SELECT g.customer_id, CONCAT_WS(' ', NULLIF(c.first_name, ''), NULLIF(c.last_name, '')) AS name, c.email, c.phone,
       NULLIF(CONCAT_WS(', ', NULLIF(c.city, ''), NULLIF(c.state, '')), '') AS location, CAST(c.customer_status AS CHAR) AS customer_status,
       g.agreement_id, g.agreement_number, CAST(g.agreement_type AS CHAR) AS agreement_type, CAST(g.status AS CHAR) AS status, g.account_id,
       CAST(g.principal_amount AS CHAR) AS principal_amount, CAST(g.current_balance AS CHAR) AS current_balance,
       CAST(g.interest_rate AS CHAR) AS interest_rate, g.term_months, CAST(g.payment_amount AS CHAR) AS payment_amount,
       CAST(g.payment_frequency AS CHAR) AS payment_frequency,
       CAST(ROUND(g.payment_amount * CASE g.payment_frequency WHEN 'QUARTERLY' THEN 4 WHEN 'ANNUALLY' THEN 1 ELSE 12 END / 12, 2) AS CHAR) AS monthly_payment,
       DATE_FORMAT(g.start_date, '%Y-%m-%d') AS start_date, DATE_FORMAT(g.end_date, '%Y-%m-%d') AS end_date
  FROM ${db}.agreements g JOIN ${db}.customers c ON c.customer_id = g.customer_id
 ORDER BY g.customer_id, g.agreement_id`;

const PROFILE_TOTALS_SQL = (db: string) => `
SELECT customer_id, COUNT(*) AS total, SUM(status = 'ACTIVE') AS active, SUM(status = 'COMPLETED') AS completed,
       SUM(status = 'DEFAULT') AS defaulted, SUM(status = 'CANCELLED') AS cancelled,
       CAST(COALESCE(SUM(principal_amount), 0) AS CHAR) AS total_principal,
       CAST(COALESCE(SUM(current_balance), 0) AS CHAR) AS total_current_balance,
       CAST(ROUND(SUM(IF(status = 'ACTIVE', COALESCE(payment_amount, 0) * CASE payment_frequency WHEN 'QUARTERLY' THEN 4 WHEN 'ANNUALLY' THEN 1 ELSE 12 END, 0)) / 12, 2) AS CHAR) AS total_monthly_payment
  FROM ${db}.agreements GROUP BY customer_id`;

const ISO = `'%Y-%m-%dT%H:%i:%s.%f'`;
/** The days of account_metrics.last_30_days (rules.ts RECENT_DAYS, written again here). */
const RECENT_DAYS = 30;

/** A transaction `t` of account `a` adds to the balance: deposits, transfers in, payments into CREDIT/LOAN. */
const CREDIT_SQL = `(t.transaction_type IN ('DEPOSIT', 'TRANSFER_IN') OR (t.transaction_type = 'PAYMENT' AND a.account_type IN ('CREDIT', 'LOAN')))`;

/** total ÷ n to cents, rounded half away from zero, in integer cents (no decimal division before the rounding); NULL when n is. */
const MEAN_SQL = (total: string, n: string) =>
  `CAST(CAST(SIGN(${total}) * ((ABS(CAST(${total} * 100 AS SIGNED)) * 2 + ${n}) DIV (2 * ${n})) / 100 AS DECIMAL(20, 2)) AS CHAR)`;

/** One row per account with everything account_metrics holds. */
const ACCOUNT_METRICS_SQL = (db: string) => `
WITH eff AS (
  SELECT t.account_id, t.transaction_date, t.amount, ${CREDIT_SQL} AS credit
    FROM ${db}.transactions t JOIN ${db}.accounts a ON a.account_id = t.account_id
   WHERE t.status IN ('COMPLETED', 'PENDING')),
tx AS (
  SELECT account_id, COUNT(*) AS n, SUM(amount) AS total, SUM(IF(credit, amount, 0)) AS credits, SUM(IF(credit, 0, amount)) AS debits,
         MAX(amount) AS largest, MIN(transaction_date) AS first_at, MAX(transaction_date) AS last_at
    FROM eff GROUP BY account_id),
recent AS (
  SELECT e.account_id, COUNT(*) AS n, SUM(IF(e.credit, e.amount, 0)) AS credits, SUM(IF(e.credit, 0, e.amount)) AS debits
    FROM eff e JOIN tx ON tx.account_id = e.account_id
   WHERE e.transaction_date > tx.last_at - INTERVAL ${RECENT_DAYS} DAY
   GROUP BY e.account_id),
st AS (
  SELECT account_id, SUM(status = 'COMPLETED') AS completed, SUM(status = 'PENDING') AS pending,
         SUM(status = 'FAILED') AS failed, SUM(status = 'REVERSED') AS reversed
    FROM ${db}.transactions GROUP BY account_id)
SELECT a.account_id, a.customer_id, a.account_number, CAST(a.account_type AS CHAR) AS account_type, a.currency,
       CAST(a.account_status AS CHAR) AS status, CAST(a.balance AS CHAR) AS balance, CAST(a.credit_limit AS CHAR) AS credit_limit,
       COALESCE(tx.n, 0) AS n, CAST(COALESCE(tx.credits, 0) AS CHAR) AS credits, CAST(COALESCE(tx.debits, 0) AS CHAR) AS debits,
       CAST(COALESCE(tx.credits, 0) - COALESCE(tx.debits, 0) AS CHAR) AS net,
       ${MEAN_SQL('tx.total', 'tx.n')} AS avg_amount, CAST(tx.largest AS CHAR) AS largest,
       DATE_FORMAT(tx.first_at, ${ISO}) AS first_at, DATE_FORMAT(tx.last_at, ${ISO}) AS last_at,
       DATE_FORMAT(tx.last_at - INTERVAL ${RECENT_DAYS} DAY, ${ISO}) AS from_at,
       COALESCE(recent.n, 0) AS r_n, CAST(COALESCE(recent.credits, 0) AS CHAR) AS r_credits, CAST(COALESCE(recent.debits, 0) AS CHAR) AS r_debits,
       CAST(COALESCE(recent.credits, 0) - COALESCE(recent.debits, 0) AS CHAR) AS r_net,
       COALESCE(st.completed, 0) AS completed, COALESCE(st.pending, 0) AS pending, COALESCE(st.failed, 0) AS failed, COALESCE(st.reversed, 0) AS reversed
  FROM ${db}.accounts a LEFT JOIN tx ON tx.account_id = a.account_id LEFT JOIN recent ON recent.account_id = a.account_id
       LEFT JOIN st ON st.account_id = a.account_id
 ORDER BY a.account_id`;

/** A customer's effective transactions, amounts also in integer cents (c), with the gap since the previous one. */
const CUSTOMER_EFF_SQL = (db: string) => `
  SELECT a.customer_id, t.transaction_id, t.account_id, t.transaction_type, t.amount, t.transaction_date,
         CAST(t.amount * 100 AS DECIMAL(20, 0)) AS c,
         TIMESTAMPDIFF(MICROSECOND,
                       LAG(t.transaction_date) OVER (PARTITION BY a.customer_id ORDER BY t.transaction_date, t.transaction_id),
                       t.transaction_date) AS gap
    FROM ${db}.transactions t JOIN ${db}.accounts a ON a.account_id = t.account_id
   WHERE t.status IN ('COMPLETED', 'PENDING')`;

const CUSTOMER_AGG_SQL = `
  SELECT customer_id, COUNT(*) AS n, SUM(amount) AS total, SUM(c) AS s, SUM(c * c) AS q,
         MIN(transaction_date) AS first_at, MAX(transaction_date) AS last_at, AVG(gap) AS mean_gap, STDDEV_POP(gap) AS sd_gap
    FROM eff GROUP BY customer_id`;

/** One row per customer: transaction_patterns' totals and label. */
const PATTERNS_SQL = (db: string) => `
WITH eff AS (${CUSTOMER_EFF_SQL(db)}), agg AS (${CUSTOMER_AGG_SQL}),
f AS (SELECT c.customer_id, COALESCE(agg.n, 0) AS n, agg.total, agg.first_at, agg.last_at, agg.mean_gap, agg.sd_gap
        FROM ${db}.customers c LEFT JOIN agg ON agg.customer_id = c.customer_id)
SELECT customer_id, n, CAST(COALESCE(total, 0) AS CHAR) AS total, ${MEAN_SQL('total', 'n')} AS avg_amount,
       DATE_FORMAT(first_at, ${ISO}) AS first_at, DATE_FORMAT(last_at, ${ISO}) AS last_at, ${PATTERN_SQL} AS pattern
  FROM f ORDER BY customer_id`;

/** transaction_patterns' distributions, one row per customer, dimension and value, ranked by count (ties: the smaller value). */
const PATTERN_COUNTS_SQL = (db: string) => `
WITH eff AS (${CUSTOMER_EFF_SQL(db)}),
d AS (
  SELECT customer_id, 'type' AS dim, transaction_type + 0 AS k, CAST(transaction_type AS CHAR) AS label, COUNT(*) AS n, SUM(amount) AS amount
    FROM eff WHERE transaction_type IS NOT NULL GROUP BY customer_id, transaction_type
  UNION ALL
  SELECT customer_id, 'hour', HOUR(transaction_date), NULL, COUNT(*), NULL FROM eff GROUP BY customer_id, HOUR(transaction_date)
  UNION ALL
  SELECT customer_id, 'weekday', WEEKDAY(transaction_date), NULL, COUNT(*), NULL FROM eff GROUP BY customer_id, WEEKDAY(transaction_date))
SELECT customer_id, dim, k, label, n, CAST(amount AS CHAR) AS amount,
       ROW_NUMBER() OVER (PARTITION BY customer_id, dim ORDER BY n DESC, k) AS rnk
  FROM d`;

/** Effective transactions above their customer's mean + 3σ, decided in integer cents: n·c − S > 0 and (n·c − S)² > 9(n·Q − S²). */
const ANOMALIES_SQL = (db: string) => `
WITH eff AS (${CUSTOMER_EFF_SQL(db)}), agg AS (${CUSTOMER_AGG_SQL})
SELECT e.customer_id, e.transaction_id, e.account_id, CAST(e.transaction_type AS CHAR) AS transaction_type, CAST(e.amount AS CHAR) AS amount,
       DATE_FORMAT(e.transaction_date, ${ISO}) AS at
  FROM eff e JOIN agg g ON g.customer_id = e.customer_id
 WHERE g.n * e.c - g.s > 0 AND (g.n * e.c - g.s) * (g.n * e.c - g.s) > 9 * (g.n * g.q - g.s * g.s)
 ORDER BY e.customer_id, e.transaction_date, e.transaction_id`;

const TYPES = ['DEPOSIT', 'WITHDRAWAL', 'TRANSFER_IN', 'TRANSFER_OUT', 'PAYMENT', 'FEE'];
const DAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'];

type Row = Record<string, unknown>;
const utc = (text: unknown, time = false): Date | null => (text == null ? null : new Date(`${String(text).slice(0, time ? 23 : 10)}${time ? '' : 'T00:00:00.000'}Z`));
const int = (v: unknown): number | null => (v == null ? null : Number(v));

async function rowsOf(mysql: Connection, sql: string): Promise<Row[]> {
  return ((await mysql.query(sql)) as unknown as [Row[]])[0];
}

/** Every analytics collection (customer_analytics, customer_agreement_profiles, account_metrics, transaction_patterns) as SQL over MySQL says it should be, by `_id`. */
export async function expectedAnalytics(mysql: Connection, database = 'banking'): Promise<Record<string, Map<string, Doc>>> {
  const analytics = new Map<string, Doc>();
  for (const r of await rowsOf(mysql, CUSTOMER_ANALYTICS_SQL(`\`${database}\``))) {
    const id = int(r.customer_id)!;
    analytics.set(String(id), {
      _id: id,
      customer_id: id,
      profile: { name: r.name as string, email: r.email as string, location: r.location as string | null, status: r.status as string | null },
      financial_summary: {
        total_accounts: int(r.open_n)!,
        total_balance: String(r.total_balance),
        account_types: r.types ? String(r.types).split(',') : [],
        avg_monthly_transactions: String(r.avg_monthly),
        last_transaction_date: utc(r.last_at, true),
      },
      risk_profile: { credit_score_band: r.band as string, default_risk: r.risk as string, transaction_pattern: r.pattern as string },
    });
  }
  const profiles = new Map<string, Doc>();
  for (const r of await rowsOf(mysql, AGREEMENTS_SQL(`\`${database}\``))) {
    const id = int(r.customer_id)!;
    let p = profiles.get(String(id));
    if (!p) {
      p = {
        _id: id,
        customer_id: id,
        customer: { name: r.name as string, email: r.email as string, phone: r.phone as string | null, location: r.location as string | null, status: r.customer_status as string | null },
        agreements: [],
      };
      profiles.set(String(id), p);
    }
    (p.agreements as Doc[]).push({
      agreement_id: int(r.agreement_id),
      agreement_number: r.agreement_number as string,
      agreement_type: r.agreement_type as string | null,
      status: r.status as string | null,
      account_id: int(r.account_id),
      principal_amount: r.principal_amount as string | null,
      current_balance: r.current_balance as string | null,
      interest_rate: r.interest_rate as string | null,
      term_months: int(r.term_months),
      payment_amount: r.payment_amount as string | null,
      payment_frequency: r.payment_frequency as string | null,
      monthly_payment: r.monthly_payment as string | null,
      start_date: utc(r.start_date),
      end_date: utc(r.end_date),
    });
  }
  for (const r of await rowsOf(mysql, PROFILE_TOTALS_SQL(`\`${database}\``))) {
    const p = profiles.get(String(int(r.customer_id)));
    if (!p) continue;
    p.summary = { total: int(r.total)!, active: int(r.active)!, completed: int(r.completed)!, defaulted: int(r.defaulted)!, cancelled: int(r.cancelled)! };
    p.financial_metrics = {
      total_principal: String(r.total_principal),
      total_current_balance: String(r.total_current_balance),
      total_monthly_payment: String(r.total_monthly_payment ?? '0'),
    };
  }

  const metrics = new Map<string, Doc>();
  for (const r of await rowsOf(mysql, ACCOUNT_METRICS_SQL(`\`${database}\``))) {
    const id = int(r.account_id)!;
    metrics.set(String(id), {
      _id: id,
      account_id: id,
      customer_id: int(r.customer_id),
      account_number: r.account_number as string,
      account_type: r.account_type as string | null,
      currency: r.currency as string | null,
      status: r.status as string | null,
      balance: r.balance as string | null,
      credit_limit: r.credit_limit as string | null,
      transaction_count: int(r.n)!,
      total_credits: String(r.credits),
      total_debits: String(r.debits),
      net_flow: String(r.net),
      avg_transaction_amount: r.avg_amount as string | null,
      largest_transaction: r.largest as string | null,
      first_transaction_date: utc(r.first_at, true),
      last_transaction_date: utc(r.last_at, true),
      last_30_days: {
        from: utc(r.from_at, true),
        to: utc(r.last_at, true),
        transaction_count: int(r.r_n)!,
        total_credits: String(r.r_credits),
        total_debits: String(r.r_debits),
        net_flow: String(r.r_net),
      },
      transactions_by_status: { COMPLETED: int(r.completed)!, PENDING: int(r.pending)!, FAILED: int(r.failed)!, REVERSED: int(r.reversed)! },
    });
  }

  const patterns = new Map<string, Doc>();
  for (const r of await rowsOf(mysql, PATTERNS_SQL(`\`${database}\``))) {
    const id = int(r.customer_id)!;
    patterns.set(String(id), {
      _id: id,
      customer_id: id,
      pattern: r.pattern as string,
      transaction_count: int(r.n)!,
      total_amount: String(r.total),
      avg_amount: r.avg_amount as string | null,
      first_transaction_date: utc(r.first_at, true),
      last_transaction_date: utc(r.last_at, true),
      by_type: Object.fromEntries(TYPES.map((t) => [t, { count: 0, amount: '0' }])),
      by_hour: Array.from({ length: 24 }, () => 0),
      by_weekday: Object.fromEntries(DAYS.map((d) => [d, 0])),
      peak_hour: null,
      peak_weekday: null,
      anomalies: { count: 0, transactions: [] },
    });
  }
  for (const r of await rowsOf(mysql, PATTERN_COUNTS_SQL(`\`${database}\``))) {
    const p = patterns.get(String(int(r.customer_id)));
    if (!p) continue;
    const k = int(r.k)!;
    const n = int(r.n)!;
    if (r.dim === 'type') (p.by_type as Doc)[String(r.label)] = { count: n, amount: String(r.amount) };
    else if (r.dim === 'hour') {
      (p.by_hour as number[])[k] = n;
      if (int(r.rnk) === 1) p.peak_hour = k;
    } else {
      (p.by_weekday as Doc)[DAYS[k]] = n;
      if (int(r.rnk) === 1) p.peak_weekday = DAYS[k];
    }
  }
  for (const r of await rowsOf(mysql, ANOMALIES_SQL(`\`${database}\``))) {
    const a = patterns.get(String(int(r.customer_id)))?.anomalies as { count: number; transactions: Doc[] } | undefined;
    if (!a) continue;
    a.count++;
    a.transactions.push({ transaction_id: int(r.transaction_id), account_id: int(r.account_id), transaction_type: r.transaction_type as string | null, amount: String(r.amount), transaction_date: utc(r.at, true) });
  }
  return { customer_analytics: analytics, customer_agreement_profiles: profiles, account_metrics: metrics, transaction_patterns: patterns };
}

/** Compares each derived collection with what SQL over MySQL says it should hold. */
export async function checkAnalytics(mysql: Connection, analytics: DocumentStore, database = 'banking'): Promise<CheckResult> {
  const lines: string[] = [];
  let ok = true;
  for (const [collection, want] of Object.entries(await expectedAnalytics(mysql, database))) {
    const got = new Map((await analytics.find(collection, {})).map((d) => [String(d._id), d]));
    const differ: string[] = [];
    for (const [id, d] of want) {
      const g = got.get(id);
      const where = g ? firstDifference(canonical(d), canonical(g), '') : 'missing';
      if (where !== null) differ.push(`${id} ${where}`);
    }
    const extra = [...got.keys()].filter((k) => !want.has(k));
    const fine = differ.length === 0 && extra.length === 0;
    ok &&= fine;
    lines.push(
      `${fine ? '✔' : '✘'} ${collection}: ${got.size} documents kept incrementally, ${want.size} by SQL over MySQL${fine ? ', identical' : ` — ${differ.length} different (${differ.slice(0, 5).join('; ') || 'none'}), extra ${extra.slice(0, 5).join(',') || 'none'}`}`,
    );
  }
  return { ok, lines };
}

/** The lag probes: every change the workload committed became visible, none still pending or given up on. */
export function checkLag(s: Pick<LagSnapshot, 'pending' | 'expired'>): CheckResult {
  const ok = s.pending === 0 && s.expired === 0;
  return {
    ok,
    lines: [ok ? '✔ lag probes: every probed commit became visible' : `✘ lag probes: ${s.pending} still pending, ${s.expired} expired (never seen in time): the pipeline fell behind or lost changes`],
  };
}

/**
 * A value as comparable data: `computed_at` left out, exact decimals and numbers as trimmed
 * decimal text (2.50 = 2.5), dates and ISO date text as the ISO instant.
 */
function canonical(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return trimDecimal(String(v));
  if (v instanceof Decimal) return trimDecimal(v.text);
  if (typeof v === 'string') {
    if (/^-?\d+(\.\d+)?$/.test(v)) return trimDecimal(v);
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v) && !Number.isNaN(Date.parse(v))) return new Date(v).toISOString();
    return v;
  }
  if (typeof v === 'object' && !Buffer.isBuffer(v)) {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).filter((k) => k !== 'computed_at').sort().map((k) => [k, canonical(o[k])]));
  }
  return v;
}

function trimDecimal(s: string): string {
  const t = s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  return t === '-0' ? '0' : t;
}

/** The first path where two canonical values differ, with both values; null when equal. */
function firstDifference(want: unknown, got: unknown, path: string): string | null {
  if (JSON.stringify(want) === JSON.stringify(got)) return null;
  if (want && got && typeof want === 'object' && typeof got === 'object' && Array.isArray(want) === Array.isArray(got)) {
    const w = want as Record<string, unknown>;
    const g = got as Record<string, unknown>;
    for (const k of new Set([...Object.keys(w), ...Object.keys(g)])) {
      const d = firstDifference(w[k], g[k], Array.isArray(want) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  return `${path || '(document)'}: MySQL says ${JSON.stringify(want)}, stored ${JSON.stringify(got)}`;
}
