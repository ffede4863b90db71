/**
 * `COPY (<query>) TO STDOUT` over a pg.Client, read as rows of text values: what the snapshot reads
 * tables with. The server streams the rows without waiting for a fetch per batch, and each row comes
 * as one CopyData message in COPY's text format (columns separated by tabs, `\N` for NULL,
 * backslash escapes), whose values are the same text a query's result would carry (the types'
 * output functions), so they decode the same way.
 *
 * Flow control: rows are parsed as they arrive and queued; past a bound the socket is paused until
 * the reader has taken them. Stopping early cancels the COPY on the server (a cancel request on a
 * connection of its own) and drains what is still under way.
 */
import pg from 'pg';

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const N = 0x4e;

/** One COPY text field's value, `\`-escapes undone, as a string (bytes decoded as UTF-8). */
function unescapeField(b: Buffer, start: number, end: number): string {
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c !== BACKSLASH || i + 1 >= end) {
      out[o++] = c;
      continue;
    }
    const e = b[++i];
    switch (e) {
      case 0x62: out[o++] = 0x08; break; // \b
      case 0x66: out[o++] = 0x0c; break; // \f
      case 0x6e: out[o++] = NEWLINE; break; // \n
      case 0x72: out[o++] = 0x0d; break; // \r
      case 0x74: out[o++] = TAB; break; // \t
      case 0x76: out[o++] = 0x0b; break; // \v
      case 0x78: {
        // \xHH: one or two hex digits
        let v = 0;
        let k = 0;
        while (k < 2 && i + 1 < end && isHex(b[i + 1])) {
          v = v * 16 + hexVal(b[++i]);
          k++;
        }
        if (k === 0) out[o++] = e;
        else out[o++] = v;
        break;
      }
      default:
        if (e >= 0x30 && e <= 0x37) {
          // \ooo: one to three octal digits
          let v = e - 0x30;
          for (let k = 1; k < 3 && i + 1 < end && b[i + 1] >= 0x30 && b[i + 1] <= 0x37; k++) v = v * 8 + (b[++i] - 0x30);
          out[o++] = v & 0xff;
        } else out[o++] = e; // \\ and any other character stand for themselves
    }
  }
  return out.toString('utf8', 0, o);
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const hexVal = (c: number) => (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10);

/** One row of COPY text (with or without its newline) as its column values; null for `\N`. */
export function parseCopyTextRow(b: Buffer, columns: number): (string | null)[] {
  const out: (string | null)[] = new Array(columns);
  let end = b.length;
  if (end > 0 && b[end - 1] === NEWLINE) end--;
  let col = 0;
  for (let start = 0; start <= end; ) {
    let escaped = false;
    let p = start;
    while (p < end && b[p] !== TAB) {
      if (b[p] === BACKSLASH) {
        escaped = true;
        p++; // an escaped tab or backslash is part of the field
      }
      p++;
    }
    if (p > end) p = end;
    if (col >= columns) throw new Error(`COPY row has more than the ${columns} columns expected`);
    if (p - start === 2 && b[start] === BACKSLASH && b[start + 1] === N) out[col++] = null;
    else out[col++] = escaped ? unescapeField(b, start, p) : b.toString('utf8', start, p);
    start = p + 1;
  }
  if (col !== columns) throw new Error(`COPY row has ${col} columns, ${columns} expected`);
  return out;
}

interface PgConnection {
  query(text: string): void;
  stream: { pause(): void; resume(): void };
}

/** The query object pg.Client runs: it sends the COPY and takes its CopyData messages. */
class CopyOut {
  callback?: (err: Error | null) => void;
  private rows: (string | null)[][] = [];
  private done = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;
  private paused = false;
  private connection: PgConnection | null = null;
  /** Rows are dropped as they come (the reader stopped early). */
  discard = false;

  constructor(
    readonly text: string,
    private readonly columns: number,
    /** Rows queued before the socket is paused. */
    private readonly highRows: number,
  ) {}

  submit(connection: PgConnection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    if (this.discard || this.error) return;
    try {
      this.rows.push(parseCopyTextRow(msg.chunk, this.columns));
    } catch (e) {
      this.error = e as Error;
    }
    if (this.rows.length >= this.highRows && !this.paused) {
      this.paused = true;
      this.connection?.stream.pause();
    }
    this.notify();
  }

  handleError(e: Error): void {
    this.error ??= e;
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.resume();
    this.callback?.(null);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection?.stream.resume();
  }

  /** The rows queued so far (waiting for some), or null at the end. */
  async take(): Promise<(string | null)[][] | null> {
    for (;;) {
      if (this.rows.length > 0) {
        const out = this.rows;
        this.rows = [];
        this.resume();
        return out;
      }
      if (this.error) throw this.error;
      if (this.done) return null;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  get isDone(): boolean {
    return this.done;
  }

  /** Drops what is queued and lets the socket flow (the reader stopped early). */
  release(): void {
    this.rows = [];
    this.resume();
  }

  /** Waits until the server has ended the COPY (ReadyForQuery). */
  async ended(): Promise<Error | null> {
    while (!this.done) await new Promise<void>((r) => (this.wake = r));
    return this.error;
  }

  handleCopyOutResponse(): void {}
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handleCopyInResponse(): void {}
}

/**
 * Reads `COPY (<query>) TO STDOUT` (or `COPY <table> (<cols>) TO STDOUT`: `copy` is the statement
 * between `COPY` and `TO STDOUT`) as batches of rows of `columns` text values. Breaking out of the
 * loop early cancels the COPY on the server; the client is usable again when the generator returns.
 * At most about `highRows` rows are held in memory (the socket is paused past them).
 */
export async function* copyRows(client: pg.Client, copy: string, columns: number, highRows = 10_000): AsyncGenerator<(string | null)[][]> {
  const q = new CopyOut(`COPY ${copy} TO STDOUT`, columns, highRows);
  client.query(q as unknown as pg.QueryConfig);
  let complete = false;
  try {
    for (let rows; (rows = await q.take()) !== null; ) yield rows;
    complete = true;
  } finally {
    if (!complete) await stopEarly(client, q);
  }
}

/** The reader left before the end: drop the rest, cancel the COPY, wait until the server ends it. */
async function stopEarly(client: pg.Client, q: CopyOut): Promise<void> {
  q.discard = true;
  q.release();
  if (!q.isDone) await cancel(client);
  const e = await q.ended();
  // The cancel's own error is expected; any other one is not.
  if (e && (e as { code?: string }).code !== '57014') throw e;
}

/** Sends PostgreSQL's cancel request for what `client` runs now, on a connection of its own. */
async function cancel(client: pg.Client): Promise<void> {
  const c = client as unknown as { processID: number | null; secretKey: number | null; host: string; port: number };
  if (c.processID === null) return;
  const { Connection } = pg as unknown as { Connection: new () => { connect(port: number | string, host?: string): void; cancel(pid: number, key: number): void; on(ev: string, f: (...a: unknown[]) => void): void } };
  const con = new Connection();
  const socket = (con as unknown as { stream?: { on(ev: string, f: () => void): void; destroy(): void } }).stream;
  await new Promise<void>((resolve) => {
    // A server that never answers: the socket is let go after 5 s (the COPY's own end is awaited next).
    const timer = setTimeout(() => done(), 5000);
    const done = () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve();
    };
    con.on('connect', () => con.cancel(c.processID!, c.secretKey!));
    // The server closes the connection once it has passed the cancel on.
    con.on('end', done);
    con.on('error', done);
    socket?.on('close', done);
    if (c.host && c.host.startsWith('/')) con.connect(`${c.host}/.s.PGSQL.${c.port}`);
    else con.connect(c.port, c.host);
  });
}
