/**
 * A small Redis client speaking RESP2 over one TCP (or TLS) connection, with pipelining: every
 * command written is answered in order, so a batch of commands goes out in one write and its
 * replies are matched to it by position. It knows nothing of Sluice: failures are plain errors
 * with a `code` (a socket's, or `ETIMEDOUT` for a deadline), and the replies Redis sends as errors
 * are `RedisReplyError`s. Nothing it throws names the password.
 *
 * Replies: simple and bulk strings are JS strings (UTF-8), integers numbers, a null bulk or array
 * `null`, arrays arrays, and an error reply a RedisReplyError (thrown by `call`, kept in place by
 * `pipeline` and inside arrays such as EXEC's).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export type Arg = string | number | Buffer;
export type Reply = string | number | null | RedisReplyError | Reply[];

/** An error reply of the server (`-WRONGTYPE …`): `prefix` is its first word. */
export class RedisReplyError extends Error {
  readonly prefix: string;
  constructor(message: string) {
    super(message);
    this.name = 'RedisReplyError';
    this.prefix = /^[A-Z]+/.exec(message)?.[0] ?? 'ERR';
  }
}

/** The connection failed or was lost (`code`: the socket's error code, `ETIMEDOUT`, or `ECLOSED`). */
export class RedisConnectionError extends Error {
  constructor(
    message: string,
    readonly code: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
    this.name = 'RedisConnectionError';
  }
}

export interface RespOptions {
  host: string;
  port: number;
  user?: string;
  password?: string;
  db?: number;
  tls?: boolean;
  /** How long connecting (TCP, TLS, AUTH, SELECT) may take. */
  connectTimeoutMs: number;
  /** How long a command (or a pipeline) may go unanswered before the connection is given up. */
  commandTimeoutMs: number;
}

const CRLF = Buffer.from('\r\n');

/** The RESP encoding of one command (an array of bulk strings). */
export function encodeCommand(args: readonly Arg[], out: Buffer[] = []): Buffer[] {
  out.push(Buffer.from(`*${args.length}\r\n`));
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
    out.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return out;
}

/** Marks "the buffer ends inside this reply": parse again when more bytes have come. */
const INCOMPLETE = Symbol('incomplete');

/**
 * Parses one reply at `pos`; returns it and where the next one starts, or INCOMPLETE. Throws on
 * bytes that are not RESP (the connection is then unusable).
 */
export function parseReply(buf: Buffer, pos: number): { value: Reply; next: number } | typeof INCOMPLETE {
  if (pos >= buf.length) return INCOMPLETE;
  const eol = buf.indexOf(CRLF, pos);
  if (eol < 0) return INCOMPLETE;
  const type = buf[pos];
  const line = buf.toString('utf8', pos + 1, eol);
  switch (type) {
    case 0x2b: // +
      return { value: line, next: eol + 2 };
    case 0x2d: // -
      return { value: new RedisReplyError(line), next: eol + 2 };
    case 0x3a: // :
      return { value: Number(line), next: eol + 2 };
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return { value: null, next: eol + 2 };
      const end = eol + 2 + len;
      if (end + 2 > buf.length) return INCOMPLETE;
      return { value: buf.toString('utf8', eol + 2, end), next: end + 2 };
    }
    case 0x2a: {
      // *
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      const items: Reply[] = new Array(n);
      let at = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, at);
        if (r === INCOMPLETE) return INCOMPLETE;
        items[i] = r.value;
        at = r.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`the server sent bytes that are not RESP (0x${type.toString(16)} at a reply's start): is this port a Redis server?`);
  }
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  private failure: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly o: RespOptions,
  ) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e: NodeJS.ErrnoException) => this.fail(new RedisConnectionError(`connection to ${this.where} failed (${e.code ?? e.message})`, e.code ?? 'ECONNRESET', { cause: e })));
    socket.on('close', () => this.fail(new RedisConnectionError(`${this.where} closed the connection`, 'ECLOSED')));
  }

  get where(): string {
    return `${this.o.host}:${this.o.port}`;
  }

  /** Whether the connection is gone (a lost connection, a deadline, or close()). */
  get broken(): Error | null {
    return this.failure;
  }

  /** Connects, authenticates and selects the database, within `connectTimeoutMs`. */
  static async connect(o: RespOptions): Promise<RespClient> {
    const where = `${o.host}:${o.port}`;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = o.tls ? tlsConnect({ host: o.host, port: o.port, servername: o.host }) : netConnect({ host: o.host, port: o.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new RedisConnectionError(`${where} did not accept a connection within ${o.connectTimeoutMs / 1000} s`, 'ETIMEDOUT'));
      }, o.connectTimeoutMs);
      const onError = (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new RedisConnectionError(`cannot connect to ${where} (${e.code ?? e.message})`, e.code ?? 'ECONNREFUSED', { cause: e }));
      };
      s.once('error', onError);
      s.once(o.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        s.setNoDelay(true);
        s.setKeepAlive(true, 10_000);
        resolve(s);
      });
    });
    const c = new RespClient(socket, o);
    try {
      const hello: Arg[][] = [];
      if (o.password !== undefined) hello.push(o.user ? ['AUTH', o.user, o.password] : ['AUTH', o.password]);
      if (o.db) hello.push(['SELECT', o.db]);
      hello.push(['PING']);
      const replies = await c.pipeline(hello, o.connectTimeoutMs);
      const bad = replies.find((r) => r instanceof RedisReplyError);
      if (bad) throw bad;
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /** Sends one command; an error reply rejects. */
  async call(...args: Arg[]): Promise<Reply> {
    const [r] = await this.pipeline([args]);
    if (r instanceof RedisReplyError) throw r;
    return r;
  }

  /**
   * Sends the commands in one write and resolves with every reply in order (error replies in
   * place). Rejects when the connection fails or the replies take longer than the deadline (the
   * connection is then given up: replies after it could not be matched).
   */
  pipeline(cmds: readonly (readonly Arg[])[], timeoutMs = this.o.commandTimeoutMs): Promise<Reply[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (cmds.length === 0) return Promise.resolve([]);
    const parts: Buffer[] = [];
    for (const c of cmds) encodeCommand(c, parts);
    const replies = cmds.map(
      () =>
        new Promise<Reply>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    this.socket.write(Buffer.concat(parts));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new RedisConnectionError(`${this.where} did not answer within ${timeoutMs / 1000} s (the server is hung or overloaded); the connection was given up`, 'ETIMEDOUT');
        this.fail(e);
        reject(e);
      }, timeoutMs);
    });
    return Promise.race([Promise.all(replies), deadline]).finally(() => clearTimeout(timer));
  }

  /** Closes the connection; commands in flight fail. */
  close(): void {
    this.fail(new RedisConnectionError(`the connection to ${this.where} was closed`, 'ECLOSED'));
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let pos = 0;
    try {
      while (this.pending.length) {
        const r = parseReply(this.buf, pos);
        if (r === INCOMPLETE) break;
        pos = r.next;
        this.pending.shift()!.resolve(r.value);
      }
    } catch (e) {
      this.fail(new RedisConnectionError(`${this.where}: ${(e as Error).message}`, 'EPROTO', { cause: e }));
      this.socket.destroy();
      return;
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
