/**
 * The PostgreSQL sink's bulk path: change envelopes turned into rows of `COPY … FROM STDIN` text
 * straight from their bytes, and the COPY sub-protocol spoken over a pg.Client.
 *
 * The rows carry each column as the text `json_to_recordset(…) AS (col text)` would give for the
 * same `after` value (a string unescaped, a number or boolean as written, a nested value as its
 * JSON text, JSON null as NULL), so the SQL that casts and converts the staged text is the one the
 * sink always used. JSON's string escapes and COPY's text escapes are nearly the same alphabet, so
 * a value is copied byte by byte with a few escapes rewritten, without decoding UTF-8.
 */
import type pg from 'pg';
import type { Row } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { writeValue } from '../../core/serde/json.ts';
import { pgZonedText } from '../sql/values.ts';
import type { ByteSink } from '../../core/bytes.ts';

const AFTER = Buffer.from('"after":');
const SOURCE = Buffer.from(',"source":{');
const TS = Buffer.from('"ts_ms":');

const YEAR_ZERO = Buffer.from('0000-');
const zonedRewrite = (v: unknown): string => pgZonedText(String(v));

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const TAB = 0x09;
const NEWLINE = 0x0a;
const HEX = '0123456789abcdef';


/**
 * How a row of one schema version is laid out in the staging table: the `after` fields by name
 * (their column index), which of them need their value rewritten in JavaScript (arrays as
 * PostgreSQL array literals), and whether the op and commit time follow as two more columns.
 */
export interface CopyLayout {
  /** Column names in staging order (data columns only). */
  names: string[];
  /** Per data column: a function turning its parsed JSON value into the staged text, or null. */
  rewrite: (((v: unknown) => string) | null)[];
  /**
   * Per data column: a timestamptz, whose ISO text (as sources write it) is staged in PostgreSQL's
   * spelling when its year is signed or zero (values.ts pgZonedText); other values pass as they are.
   */
  zoned: boolean[];
  meta: boolean;
}

/** Per layout, the precomputed byte forms of the `"name":` keys, for the fast in-order match. */
interface CompiledLayout {
  keys: Buffer[];
  index: Map<string, number>;
}

const compiled = new WeakMap<CopyLayout, CompiledLayout>();

function compile(l: CopyLayout): CompiledLayout {
  let c = compiled.get(l);
  if (!c) {
    c = { keys: l.names.map((n) => Buffer.from(JSON.stringify(n) + ':')), index: new Map(l.names.map((n, i) => [n, i])) };
    compiled.set(l, c);
  }
  return c;
}

/** Whether `b` holds `k` at `p`. */
function startsAt(b: Buffer, p: number, k: Buffer): boolean {
  if (p + k.length > b.length) return false;
  for (let j = 0; j < k.length; j++) if (b[p + j] !== k[j]) return false;
  return true;
}

/** Past JSON whitespace from `p`. */
function ws(b: Buffer, p: number): number {
  while (p < b.length && (b[p] === 0x20 || b[p] === TAB || b[p] === NEWLINE || b[p] === 0x0d)) p++;
  return p;
}

/** Where a JSON value starting at `p` ends (exclusive). */
function valueEnd(b: Buffer, p: number): number {
  const c = b[p];
  if (c === QUOTE) return stringEnd(b, p);
  if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
    let depth = 0;
    for (let i = p; i < b.length; i++) {
      const x = b[i];
      if (x === QUOTE) i = stringEnd(b, i) - 1;
      else if (x === 0x7b || x === 0x5b) depth++;
      else if (x === 0x7d || x === 0x5d) {
        if (--depth === 0) return i + 1;
      }
    }
    throw new Error('unterminated JSON value');
  }
  let i = p;
  while (i < b.length) {
    const x = b[i];
    if (x === 0x2c /* , */ || x === 0x7d /* } */ || x === 0x5d /* ] */ || x === 0x20 || x === TAB || x === NEWLINE || x === 0x0d) break;
    i++;
  }
  return i;
}

/** The end (past the closing quote) of the JSON string opening at `p`. */
function stringEnd(b: Buffer, p: number): number {
  let i = p + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, i);
    if (q < 0) throw new Error('unterminated JSON string');
    // Escaped when preceded by an odd number of backslashes.
    let k = q - 1;
    while (k >= p + 1 && b[k] === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** Writes the JSON string at [p, end) (quotes included) as COPY text: escapes rewritten, UTF-8 kept. */
function copyString(out: ByteSink, b: Buffer, p: number, end: number): void {
  let i = p + 1;
  const last = end - 1;
  out.ensure(last - i);
  while (i < last) {
    const bs = b.indexOf(BACKSLASH, i);
    const stop = bs < 0 || bs >= last ? last : bs;
    if (stop > i) out.bytes(b, i, stop);
    if (stop === last) return;
    const e = b[bs + 1];
    i = bs + 2;
    switch (e) {
      case 0x22: // \"
        out.byte(QUOTE);
        break;
      case 0x2f: // \/
        out.byte(0x2f);
        break;
      case 0x5c: // \\ — COPY's own escape for a backslash
      case 0x62: // \b
      case 0x66: // \f
      case 0x6e: // \n
      case 0x72: // \r
      case 0x74: // \t
        out.byte(BACKSLASH);
        out.byte(e);
        break;
      case 0x75: {
        // \uXXXX, with a surrogate pair as one code point
        let cp = parseInt(b.toString('latin1', i, i + 4), 16);
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && b[i] === BACKSLASH && b[i + 1] === 0x75) {
          const lo = parseInt(b.toString('latin1', i + 2, i + 6), 16);
          if (lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
        }
        if (cp < 0x20 || cp === 0x7f) {
          out.byte(BACKSLASH);
          out.byte(0x78); // \xHH
          out.byte(HEX.charCodeAt(cp >> 4));
          out.byte(HEX.charCodeAt(cp & 15));
        } else if (cp === BACKSLASH) {
          out.byte(BACKSLASH);
          out.byte(BACKSLASH);
        } else out.text(String.fromCodePoint(cp));
        break;
      }
      default:
        throw new Error(`bad JSON escape \\${String.fromCharCode(e)}`);
    }
  }
}

/** Writes text (a rewritten value, a nested JSON value) as COPY text. */
function copyText(out: ByteSink, s: string): void {
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j < s.length) {
      const c = s.charCodeAt(j);
      if (c === BACKSLASH || c === TAB || c === NEWLINE || c === 0x0d) break;
      j++;
    }
    if (j > i) out.text(s.slice(i, j));
    if (j === s.length) return;
    const c = s.charCodeAt(j);
    out.byte(BACKSLASH);
    out.byte(c === BACKSLASH ? BACKSLASH : c === TAB ? 0x74 : c === NEWLINE ? 0x6e : 0x72);
    i = j + 1;
  }
}

/** Writes the JSON value at [p, end) as the text json_to_recordset gives a `text` column. */
function copyValue(out: ByteSink, b: Buffer, p: number, end: number, rewrite: ((v: unknown) => string) | null): void {
  const c = b[p];
  if (c === 0x6e /* null */) {
    out.byte(BACKSLASH);
    out.byte(0x4e);
    return;
  }
  if (rewrite) {
    copyText(out, rewrite(parseJson(b.toString('utf8', p, end))));
    return;
  }
  if (c === QUOTE) copyString(out, b, p, end);
  else if (c === 0x7b || c === 0x5b) {
    // A nested value stays JSON text: only its backslashes need COPY's escape (JSON has no raw control characters).
    let i = p;
    for (;;) {
      const bs = b.indexOf(BACKSLASH, i);
      const stop = bs < 0 || bs >= end ? end : bs;
      out.bytes(b, i, stop);
      if (stop === end) break;
      out.byte(BACKSLASH);
      out.byte(BACKSLASH);
      i = bs + 1;
    }
  } else out.bytes(b, p, end);
}

/** Where the envelope's `after` object starts, or -1 (then the caller re-lays the envelope out). */
function afterStart(v: Buffer): number {
  const a = v.indexOf(AFTER);
  if (a < 0) return -1;
  let p = a + AFTER.length;
  while (v[p] === 0x20) p++;
  return p;
}

/** The source block's ts_ms as ASCII bytes' range, or null. */
function sourceTsRange(v: Buffer): [number, number] | null {
  const b = v.lastIndexOf(SOURCE);
  const at = b < 0 ? -1 : v.indexOf(TS, b);
  if (at < 0) return null;
  const s = at + TS.length;
  let e = s;
  while (e < v.length && v[e] >= 0x30 && v[e] <= 0x39) e++;
  return e > s ? [s, e] : null;
}

/**
 * Appends one change as a COPY text row: its `after` fields in the layout's order (absent ones
 * NULL), then, with `meta`, its op and commit time.
 */
export function copyRow(out: ByteSink, bytes: Buffer, op: string, layout: CopyLayout, cells: Int32Array): void {
  const lc = compile(layout);
  let v = bytes;
  let p = afterStart(v);
  if (p < 0 || (v[p] !== 0x7b && v[p] !== 0x6e)) {
    // Not laid out as Sluice writes envelopes: parse it and write its `after` again.
    const after = ((parseJson(v.toString('utf8')) as { after?: Row }).after ?? null) as Row | null;
    v = Buffer.from(`{"after":${writeValue(after)}}`);
    p = afterStart(v);
  }
  const n = layout.names.length;
  // cells[2i], cells[2i+1]: where column i's value is in `v` (-1: absent).
  cells.fill(-1, 0, 2 * n);
  if (v[p] === 0x7b) {
    let i = ws(v, p + 1);
    let expect = 0;
    while (v[i] !== 0x7d) {
      if (v[i] === 0x2c) i = ws(v, i + 1);
      // The key: the next column's, as Sluice writes them, else looked up by name.
      let col: number;
      const k = expect < n ? lc.keys[expect] : null;
      if (k && startsAt(v, i, k)) {
        col = expect;
        i += k.length;
      } else {
        const ke = stringEnd(v, i);
        col = lc.index.get(JSON.parse(v.toString('utf8', i, ke)) as string) ?? -1;
        i = ws(v, ke);
        if (v[i] !== 0x3a) throw new Error('a JSON object without ":" after a key');
        i++;
      }
      i = ws(v, i);
      const e = valueEnd(v, i);
      if (col >= 0) {
        cells[2 * col] = i;
        cells[2 * col + 1] = e;
        expect = col + 1;
      }
      i = ws(v, e);
      if (i >= v.length) throw new Error('unterminated JSON object');
    }
  }
  for (let c = 0; c < n; c++) {
    if (c) out.byte(TAB);
    const s = cells[2 * c];
    if (s < 0) {
      out.byte(BACKSLASH);
      out.byte(0x4e);
    } else {
      // A signed or zero ISO year ('+10000-…', '-0044-…', '0000-…'; not '-infinity') is rare: rewritten in JavaScript.
      const f = v[s + 1];
      const rewrite = layout.zoned[c] && v[s] === QUOTE && (f === 0x2b || (f === 0x2d && v[s + 2] !== 0x69) || (f === 0x30 && startsAt(v, s + 1, YEAR_ZERO))) ? zonedRewrite : layout.rewrite[c];
      copyValue(out, v, s, cells[2 * c + 1], rewrite);
    }
  }
  if (layout.meta) {
    out.byte(TAB);
    out.ascii(op);
    out.byte(TAB);
    const ts = sourceTsRange(bytes);
    if (ts) out.bytes(bytes, ts[0], ts[1]);
    else out.ascii('\\N');
  }
  out.byte(NEWLINE);
}

// ---------- the COPY sub-protocol over pg.Client ----------

interface PgConnection {
  /** The socket (pg's Connection writes every message to it). */
  stream?: { writable: boolean; write(b: Buffer): boolean };
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(msg: string): void;
}

const CHUNK = 1 << 18;

/**
 * `COPY … FROM STDIN` of `data` as a query pg.Client queues like any other: it sends the rows when
 * the server asks for them (CopyInResponse), and settles on ReadyForQuery.
 */
class CopyIn {
  callback?: (err: Error | null) => void;
  private finished = false;
  readonly done: Promise<void>;
  private settle!: (e: Error | null) => void;

  constructor(
    private readonly text: string,
    private readonly data: Buffer,
  ) {
    this.done = new Promise<void>((resolve, reject) => (this.settle = (e) => (e ? reject(e) : resolve())));
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: PgConnection): void {
    // CopyData messages ('d', length, bytes) written to the socket as a header and a view of the
    // rows: pg's own sendCopyFromChunk copies every chunk into a new buffer first. The rows' buffer
    // is reused only after the server's ReadyForQuery, when the socket has written it all.
    const stream = connection.stream;
    for (let i = 0; i < this.data.length; i += CHUNK) {
      const chunk = this.data.subarray(i, Math.min(i + CHUNK, this.data.length));
      if (!stream?.writable) {
        connection.sendCopyFromChunk(chunk);
        continue;
      }
      const head = Buffer.allocUnsafe(5);
      head[0] = 0x64;
      head.writeInt32BE(chunk.length + 4, 1);
      stream.write(head);
      stream.write(chunk);
    }
    connection.endCopyFrom();
  }

  handleCommandComplete(): void {}

  // pg's client drops a query at its ErrorResponse (the ReadyForQuery after it is not passed on).
  handleError(e: Error): void {
    this.finish(e);
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  private finish(e: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(e);
    this.settle(e);
  }

  // A COPY answers none of these; pg's client calls them only on a protocol error.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY <target> FROM STDIN` with `data` (COPY text rows). */
export function copyIn(client: pg.Client, target: string, data: Buffer): Promise<void> {
  const q = new CopyIn(`COPY ${target} FROM STDIN`, data);
  client.query(q as unknown as pg.QueryConfig);
  return q.done;
}
