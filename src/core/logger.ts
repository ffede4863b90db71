/**
 * Structured logging: human-readable lines or one JSON object per line (`logging.format: json`,
 * `--log-format json`), always to stderr so stdout stays for data (sluice tail). Passwords are
 * masked in every line (`redact`).
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

/** Passwords this process knows (from its config): masked wherever they would appear in a log line. */
const SECRETS = new Set<string>();
let secretForms: string[] = [];
const URL_CREDENTIALS = /([A-Za-z][A-Za-z0-9+.-]*:?\/\/?[^\s:@/"'`\\]*:)(?!password@)[^\s"'`\\]*@/g;

/** Registers a password (as written and as it appears percent-encoded or inside JSON) to be masked. */
export function addSecret(secret: string): void {
  if (secret.length < 3 || SECRETS.has(secret)) return;
  SECRETS.add(secret);
  const forms = new Set(secretForms);
  for (const s of SECRETS) for (const f of [s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)]) forms.add(f);
  secretForms = [...forms].sort((a, b) => b.length - a.length);
}

/**
 * Text with every registered password, and the password of any `scheme://user:password@` in it,
 * replaced by `***`: for log lines, error messages and status.
 */
export function redact(text: string): string {
  let out = text.includes('@') ? text.replace(URL_CREDENTIALS, '$1***@') : text;
  for (const f of secretForms) if (out.includes(f)) out = out.split(f).join('***');
  return out;
}
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(opts: { level?: Level; format?: 'text' | 'json'; stream?: NodeJS.WritableStream; fields?: Record<string, unknown> } = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const json = opts.format === 'json';
  const stream = opts.stream ?? process.stderr;
  const base = opts.fields ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    const all = { ...base, ...fields };
    if (json) {
      stream.write(redact(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...all }, replacer)) + '\n');
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => {
          const x = v instanceof Error ? errorText(v) : v;
          return `${k}=${typeof x === 'string' ? (/[\s"=]/.test(x) || x === '' ? JSON.stringify(x) : x) : JSON.stringify(x, replacer)}`;
        })
        .join(' ');
      stream.write(redact(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}`) + '\n');
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}

/** JSON for log fields: bigints as strings, Errors as {message, code, …} instead of `{}`. */
function replacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) {
    const e = v as Error & { code?: unknown; retriable?: unknown };
    return { name: e.name, message: e.message, ...(e.code !== undefined ? { code: e.code } : {}), ...(e.retriable !== undefined ? { retriable: e.retriable } : {}) };
  }
  return v;
}

function errorText(e: Error): string {
  const code = (e as { code?: unknown }).code;
  return code !== undefined ? `[${String(code)}] ${e.message}` : e.message;
}
