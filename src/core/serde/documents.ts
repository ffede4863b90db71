/**
 * Documents written by the MongoDB source (`shape: debezium`: `before`/`after` as MongoDB Extended
 * JSON text) read back as plain rows, so that processors' expressions read `after.total` of a
 * document as of a table row. Wrapped values are simplified: an ObjectId becomes its hex text, a
 * date its ISO text, a decimal its digits, binary a Buffer, a 64-bit integer beyond 2^53 a bigint;
 * the rest (timestamps, regular expressions, min/max keys) stay as their Extended JSON objects.
 */
import type { Row, Value } from '../event.ts';
import { parseJson } from './parse.ts';

/** A wrapped Extended JSON value simplified to a plain one (see the module comment). */
function simplify(v: Value): Value {
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = simplify(v[i]);
    return v;
  }
  const o = v as Record<string, Value>;
  const keys = Object.keys(o);
  if (keys.length >= 1 && keys[0].startsWith('$')) {
    const k = keys[0];
    const x = o[k];
    switch (k) {
      case '$oid':
      case '$numberDecimal':
      case '$symbol':
        return x;
      case '$numberDouble':
        return Number(x);
      case '$numberLong':
        return BigInt(x as string);
      case '$numberInt':
        return Number(x);
      case '$date':
        if (typeof x === 'string') return x;
        if (x && typeof x === 'object' && '$numberLong' in (x as object)) {
          const ms = Number((x as Record<string, Value>).$numberLong);
          return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
        }
        return typeof x === 'number' ? new Date(x).toISOString() : x;
      case '$binary':
        return x && typeof x === 'object' ? Buffer.from(String((x as Record<string, Value>).base64), 'base64') : x;
      case '$timestamp':
      case '$regularExpression':
      case '$minKey':
      case '$maxKey':
      case '$undefined':
        return v;
      default:
        break;
    }
  }
  for (const k of keys) o[k] = simplify(o[k]);
  return o;
}

/** A document's Extended JSON text as a plain row (see the module comment); null stays null. */
export function documentRow(text: string | null): Row | null {
  if (text === null) return null;
  const v = parseJson(text);
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) return null;
  return simplify(v) as Row;
}

/**
 * An envelope of the MongoDB source's Debezium shape with its documents as rows (in place); any
 * other value is returned as it is.
 */
export function openDocuments<T>(env: T): T {
  if (env === null || typeof env !== 'object') return env;
  const e = env as { before?: unknown; after?: unknown; source?: { connector?: unknown } };
  if (e.source?.connector !== 'mongodb' || (typeof e.after !== 'string' && typeof e.before !== 'string')) return env;
  if (typeof e.before === 'string') e.before = documentRow(e.before);
  if (typeof e.after === 'string') e.after = documentRow(e.after);
  return env;
}
