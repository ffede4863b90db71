/**
 * Table names as both sources write and read them: the topic a table's events go to, the table as
 * a checkpoint names it, and the `tables` entries of a source's config.
 *
 * Topics (docs/topics.md). A change topic is `<topicPrefix>.<schema>.<table>`, each name escaped
 * so that any name the database accepts gives a topic name a log backend accepts (Kafka's letters,
 * digits, `.`, `_`, `-`, at most 249) and the topic gives the names back:
 *
 * - letters A–Z and a–z, digits and `_` stay as they are, so ordinary names give Debezium's own
 *   topic names (`shop.public.order_items`);
 * - every other character — space, `.`, `"`, `-`, non-ASCII letters — becomes `-` followed by two
 *   lowercase hex digits for each byte of its UTF-8 encoding, as percent-encoding does with `%`:
 *   `Order Items` → `Order-20Items`, `dot.ted` → `dot-2eted`, `Größe` → `Gr-c3-b6-c3-9fe`.
 *
 * Since a `-` always starts an escape, the mapping is reversible (`tableOfTopic`). A topic that
 * would exceed 249 characters is cut and ends in `--` and 16 hex digits of a hash of the two names
 * (`--` never occurs otherwise); such a topic is not reversible, but its events and the schema
 * topic carry the exact names.
 */
import { createHash } from 'node:crypto';

/** Kafka's topic length limit, which every log backend keeps. */
export const MAX_TOPIC_LENGTH = 249;

const PLAIN = /^[A-Za-z0-9_]*$/;
const PLAIN_CHAR = /[A-Za-z0-9_]/;

/** One name (schema, database or table) as it appears in a topic. */
export function topicPart(name: string): string {
  if (PLAIN.test(name)) return name;
  let out = '';
  for (const ch of name) {
    if (PLAIN_CHAR.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '-' + (b < 16 ? '0' : '') + b.toString(16);
  }
  return out;
}

/** The name a topic part stands for; null when the part is not one `topicPart` writes. */
export function fromTopicPart(part: string): string | null {
  if (PLAIN.test(part)) return part;
  const bytes: number[] = [];
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === '-') {
      const hex = part.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (PLAIN_CHAR.test(c)) bytes.push(c.charCodeAt(0));
    else return null;
  }
  const name = Buffer.from(bytes).toString('utf8');
  return topicPart(name) === part ? name : null;
}

/** The change topic of `schema.table` (MySQL: `database.table`). */
export function tableTopic(prefix: string, schema: string, table: string): string {
  const full = `${prefix}.${topicPart(schema)}.${topicPart(table)}`;
  if (full.length <= MAX_TOPIC_LENGTH) return full;
  const hash = createHash('sha256').update(`${schema}\u0000${table}`).digest('hex').slice(0, 16);
  let cut = MAX_TOPIC_LENGTH - hash.length - 2;
  // Never end inside an escape: a cut `-4` would read as the start of one.
  const dash = full.lastIndexOf('-', cut - 1);
  if (dash >= cut - 2) cut = dash;
  return `${full.slice(0, cut)}--${hash}`;
}

/** The schema and table a change topic of `prefix` stands for; null for other topics and cut ones. */
export function tableOfTopic(prefix: string, topic: string): { schema: string; table: string } | null {
  if (!topic.startsWith(prefix + '.')) return null;
  const rest = topic.slice(prefix.length + 1);
  const dot = rest.indexOf('.');
  if (dot < 0 || rest.indexOf('.', dot + 1) >= 0) return null;
  const schema = fromTopicPart(rest.slice(0, dot));
  const table = fromTopicPart(rest.slice(dot + 1));
  return schema === null || table === null ? null : { schema, table };
}

// ---------- names in checkpoints and messages ----------

const BARE = /^[^."]+$/;

/**
 * `schema.table` as a checkpoint keys a table's snapshot state and messages name it: each name as
 * it is, or double-quoted (`""` for a `"`) when it holds a `.` or `"`, so no two tables share a key.
 * Ordinary names give the keys earlier versions wrote.
 */
export function tableKey(schema: string, table: string): string {
  return `${quoteName(schema)}.${quoteName(table)}`;
}

function quoteName(name: string): string {
  return BARE.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

// ---------- `tables` entries ----------

export interface TableName {
  /** The schema (MySQL: database); null when the entry names only the table. */
  schema: string | null;
  table: string;
}

/**
 * Reads a `tables` entry: `schema.table` or `table`. A name holding a `.` or starting with a quote
 * is written in double quotes, a `"` inside doubled: `public."Order Items"`, `public."dot.ted"`,
 * `"my.schema"."Quote""d;Table"`. `quotes` are the quote characters accepted (MySQL also takes its
 * backticks, `` `dot.ted` ``). Everything after the first `.` outside quotes is the table, so a
 * table name with a dot may also be written bare after its schema (`public.dot.ted`). Null when
 * the entry cannot be read (an unterminated quote, an empty name).
 */
export function parseTableName(entry: string, quotes = '"'): TableName | null {
  const first = readPart(entry, 0, quotes, true);
  if (!first) return null;
  if (first.end === entry.length) return first.name === '' ? null : { schema: null, table: first.name };
  if (entry[first.end] !== '.') return null;
  const second = readPart(entry, first.end + 1, quotes, false);
  if (!second || second.end !== entry.length || first.name === '' || second.name === '') return null;
  return { schema: first.name, table: second.name };
}

/** A name from `start`: quoted, or bare up to the next `.` (`stopAtDot`) or the end. */
function readPart(s: string, start: number, quotes: string, stopAtDot: boolean): { name: string; end: number } | null {
  const q = s[start];
  if (q !== undefined && quotes.includes(q)) {
    let name = '';
    let i = start + 1;
    for (;;) {
      const j = s.indexOf(q, i);
      if (j < 0) return null;
      name += s.slice(i, j);
      if (s[j + 1] === q) {
        name += q;
        i = j + 2;
      } else return { name, end: j + 1 };
    }
  }
  const dot = stopAtDot ? s.indexOf('.', start) : -1;
  const end = dot < 0 ? s.length : dot;
  return { name: s.slice(start, end), end };
}
