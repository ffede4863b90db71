/**
 * Documents as text, and back. The MongoDB source writes each document as MongoDB Extended JSON v2
 * in its relaxed form (what Debezium's MongoDB connector puts in `before`/`after`), without loss:
 * 64-bit integers beyond 2^53 are written `{"$numberLong":"…"}` (a plain number there would be
 * rounded by readers that parse numbers as doubles), doubles keep a `.0` so they stay doubles, and the types
 * JSON has no word for are wrapped (`$oid`, `$date`, `$numberDecimal`, `$binary`, `$timestamp`,
 * `$regularExpression`, `$minKey`/`$maxKey`, `$numberDouble` for NaN and infinities).
 * The reverse, for processors, is core/serde/documents.ts.
 */
import { writeString } from '../../core/serde/json.ts';

type Bson = { _bsontype?: string; [k: string]: any };

function double(v: number): string {
  if (!Number.isFinite(v)) return `{"$numberDouble":"${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'}"}`;
  if (Object.is(v, -0)) return '-0.0';
  const t = String(v);
  return Number.isInteger(v) && !t.includes('e') ? t + '.0' : t;
}

/**
 * A 64-bit integer: a plain number where every JSON reader reads it exactly (|v| ≤ 2^53), else
 * `{"$numberLong":"…"}` (readers that parse numbers as doubles would round it).
 */
function long(text: string): string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? text : `{"$numberLong":"${text}"}`;
}

const MAX_ISO_MS = 253402300799999; // 9999-12-31T23:59:59.999Z

function date(ms: number): string {
  if (Number.isNaN(ms)) return '{"$date":{"$numberLong":"0"}}';
  return ms >= 0 && ms <= MAX_ISO_MS ? `{"$date":"${new Date(ms).toISOString()}"}` : `{"$date":{"$numberLong":"${Math.trunc(ms)}"}}`;
}

/** One BSON value (as the driver decodes it with `promoteValues: false`) as relaxed Extended JSON. */
export function toExtendedJson(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return '{"$undefined":true}';
  switch (typeof v) {
    case 'string':
      return writeString(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      return Number.isInteger(v) && Math.abs(v) <= 2147483647 && !Object.is(v, -0) ? String(v) : double(v);
    case 'bigint':
      return long(v.toString());
    case 'object':
      break;
    default:
      return writeString(String(v));
  }
  if (Array.isArray(v)) return '[' + v.map(toExtendedJson).join(',') + ']';
  if (v instanceof Date) return date(v.getTime());
  if (Buffer.isBuffer(v)) return `{"$binary":{"base64":"${v.toString('base64')}","subType":"00"}}`;
  const b = v as Bson;
  switch (b._bsontype) {
    case 'Int32':
      return String(b.value);
    case 'Double':
      return double(b.value);
    case 'Long':
      return long(b.toString());
    case 'Decimal128':
      return `{"$numberDecimal":"${b.toString()}"}`;
    case 'ObjectId':
      return `{"$oid":"${b.toHexString()}"}`;
    case 'Binary': {
      const buf: Buffer = Buffer.from(b.buffer.subarray(0, b.position ?? b.buffer.length));
      return `{"$binary":{"base64":"${buf.toString('base64')}","subType":"${Number(b.sub_type).toString(16).padStart(2, '0')}"}}`;
    }
    case 'Timestamp':
      return `{"$timestamp":{"t":${b.high >>> 0},"i":${b.low >>> 0}}}`;
    case 'BSONRegExp':
      return `{"$regularExpression":{"pattern":${writeString(b.pattern)},"options":${writeString(b.options)}}}`;
    case 'MinKey':
      return '{"$minKey":1}';
    case 'MaxKey':
      return '{"$maxKey":1}';
    case 'Code':
      return b.scope ? `{"$code":${writeString(String(b.code))},"$scope":${toExtendedJson(b.scope)}}` : `{"$code":${writeString(String(b.code))}}`;
    case 'BSONSymbol':
      return `{"$symbol":${writeString(String(b.value))}}`;
    case 'DBRef':
      return `{"$ref":${writeString(b.collection)},"$id":${toExtendedJson(b.oid)}${b.db ? `,"$db":${writeString(b.db)}` : ''}}`;
    default:
      break;
  }
  if (v instanceof RegExp) return `{"$regularExpression":{"pattern":${writeString(v.source)},"options":${writeString(v.flags)}}}`;
  let out = '{';
  let first = true;
  for (const k of Object.keys(v as object)) {
    const x = (v as Record<string, unknown>)[k];
    if (x === undefined) continue;
    out += (first ? '' : ',') + writeString(k) + ':' + toExtendedJson(x);
    first = false;
  }
  return out + '}';
}

/**
 * The key Debezium's MongoDB connector writes for a document id: a string id as itself, any other
 * id as its Extended JSON (`{"$oid":"…"}`, `42`, `{"a":1}`).
 */
export function documentIdText(id: unknown): string {
  if (typeof id === 'string') return id;
  return toExtendedJson(id);
}
