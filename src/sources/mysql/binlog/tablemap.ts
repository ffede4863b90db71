/**
 * TABLE_MAP_EVENT: the table a following rows event writes to, with each column's binlog type and
 * type metadata, and (binlog_row_metadata=FULL) the optional metadata: names, signedness,
 * character sets, ENUM/SET labels, geometry subtypes and the primary key. From it come the
 * public TableMap (columns built by ../types.ts exactly as the snapshot builds them) and the
 * per-column decoding plan rows.ts follows.
 */
import { SluiceError } from '../../../core/errors.ts';
import { buildColumn, MY, type ColumnSpec } from '../types.ts';
import type { CharsetCatalog, Charset } from './charsets.ts';
import type { TableMap } from './types.ts';
import { decodeLatin1, TEXT_BINARY, TEXT_LATIN1, TEXT_UTF8 } from './values.ts';
import { mysqlError } from '../errors.ts';

/** How rows.ts reads one column. */
export interface ColumnPlan {
  /** Decoding kind: the real type code (ENUM/SET rather than STRING; BLOB for every blob size; VARCHAR for VAR_STRING). */
  t: number;
  /** VARCHAR/STRING: bytes of the length prefix; BLOB/JSON/GEOMETRY: bytes of the length prefix; ENUM/SET: pack length; TIME2/DATETIME2/TIMESTAMP2: fsp; BIT: bits. */
  meta: number;
  /** NEWDECIMAL precision/scale. */
  precision: number;
  scale: number;
  unsigned: boolean;
  /** TEXT_* of values.ts for text-like columns. */
  text: number;
  decoder: TextDecoder | undefined;
  labels: string[] | null;
  /** BINARY(n): the binlog drops trailing zero bytes; the value is padded back to n. */
  pad: number;
  /** DATETIME(fsp > 3): microseconds rather than milliseconds. */
  micros: boolean;
}

export interface DecodedTableMap {
  map: TableMap;
  plan: ColumnPlan[];
  /** The TABLE_MAP body the map was built from: an identical body reuses the same objects. */
  raw: Buffer;
}

export const OPT = {
  SIGNEDNESS: 1, DEFAULT_CHARSET: 2, COLUMN_CHARSET: 3, COLUMN_NAME: 4, SET_STR_VALUE: 5, ENUM_STR_VALUE: 6, GEOMETRY_TYPE: 7,
  SIMPLE_PRIMARY_KEY: 8, PRIMARY_KEY_WITH_PREFIX: 9, ENUM_AND_SET_DEFAULT_CHARSET: 10, ENUM_AND_SET_COLUMN_CHARSET: 11,
} as const;

/** MySQL 9's VECTOR: known only to keep the metadata aligned; its values are not decoded. */
const MY_VECTOR = 242;

const GEOMETRY_NAMES = ['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection'];

/** A cursor over a byte range with MySQL's length-encoded integers. */
export class Cursor {
  constructor(readonly b: Buffer, public pos: number, readonly end: number, private readonly what: () => string) {}
  need(n: number): void {
    if (this.pos + n > this.end) throw this.corrupt('runs past its end');
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++];
  }
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    const n = first === 0xfc ? 2 : first === 0xfd ? 3 : first === 0xfe ? 8 : 0;
    if (n === 0) throw this.corrupt(`has a bad length prefix 0x${first.toString(16)}`);
    this.need(n);
    const v = n === 8 ? Number(this.b.readBigUInt64LE(this.pos)) : this.b.readUIntLE(this.pos, n);
    this.pos += n;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  corrupt(problem: string): SluiceError {
    return mysqlError('MYSQL_BINLOG_CORRUPT', `${this.what()} ${problem}. The binlog event is malformed: this is a bug or a server/protocol mismatch; report it with the server version.`);
  }
}

const isNumeric = (t: number, mariadb: boolean): boolean =>
  t === MY.TINY || t === MY.SHORT || t === MY.INT24 || t === MY.LONG || t === MY.LONGLONG || t === MY.NEWDECIMAL || t === MY.FLOAT || t === MY.DOUBLE ||
  // MariaDB's YEAR is a TINYINT underneath and takes a signedness bit; MySQL's does not.
  (mariadb && t === MY.YEAR);

const isCharacter = (t: number, mariadb: boolean): boolean =>
  t === MY.STRING || t === MY.VARCHAR || t === MY.VAR_STRING || t === MY.BLOB || (t >= MY.TINY_BLOB && t <= MY.LONG_BLOB) ||
  // MariaDB's geometry is a blob underneath and gets a (binary) collation entry.
  (mariadb && t === MY.GEOMETRY);

/** Reads a TABLE_MAP body (`pos`..`end`: after the common header, without checksum). */
export function decodeTableMap(b: Buffer, pos: number, end: number, idBytes: number, mariadb: boolean, charsets: CharsetCatalog, where: () => string): DecodedTableMap {
  const c = new Cursor(b, pos, end, () => `TABLE_MAP at ${where()}`);
  c.need(idBytes + 2);
  const tableId = b.readUIntLE(pos, idBytes);
  c.pos += idBytes + 2;
  const dbLen = c.u8();
  const database = c.bytes(dbLen).toString('utf8');
  c.pos++;
  const tblLen = c.u8();
  const table = c.bytes(tblLen).toString('utf8');
  c.pos++;
  const n = c.lenenc();
  const types = c.bytes(n);
  const metaLen = c.lenenc();
  const metaEnd = c.pos + metaLen;
  c.need(metaLen);
  // Per-column binlog metadata.
  const real = new Array<number>(n);
  const m1 = new Array<number>(n).fill(0);
  const m2 = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let t = types[i];
    switch (t) {
      case MY.FLOAT: case MY.DOUBLE: case MY.BLOB: case MY.TINY_BLOB: case MY.MEDIUM_BLOB: case MY.LONG_BLOB:
      case MY.GEOMETRY: case MY.JSON: case MY.TIME2: case MY.DATETIME2: case MY.TIMESTAMP2: case MY_VECTOR:
        m1[i] = c.u8();
        break;
      case MY.VARCHAR: case MY.VAR_STRING:
        c.need(2);
        m1[i] = b.readUInt16LE(c.pos);
        c.pos += 2;
        t = MY.VARCHAR;
        break;
      case MY.BIT: case MY.NEWDECIMAL:
        m1[i] = c.u8();
        m2[i] = c.u8();
        break;
      case MY.STRING: case MY.ENUM: case MY.SET: {
        const b0 = c.u8();
        const b1 = c.u8();
        // Lengths above 255 borrow two bits of the type byte (XORed in, so 0x30 means none).
        if ((b0 & 0x30) !== 0x30) {
          t = b0 | 0x30;
          m1[i] = b1 | (((b0 & 0x30) ^ 0x30) << 4);
        } else {
          t = b0;
          m1[i] = b1;
        }
        break;
      }
      case MY.DECIMAL: case MY.NEWDATE:
        throw mysqlError('MYSQL_UNSUPPORTED_TYPE', `table ${database}.${table} has a column of the pre-5.0 type ${t === MY.DECIMAL ? 'DECIMAL' : 'NEWDATE'} format; rebuild the table (ALTER TABLE … FORCE) so the server stores it in the current format`);
    }
    if (t >= MY.TINY_BLOB && t <= MY.LONG_BLOB) t = MY.BLOB;
    real[i] = t;
  }
  if (c.pos !== metaEnd) {
    // A type whose metadata Sluice does not know (MariaDB's pre-10.3 fractional-second TIME/
    // DATETIME/TIMESTAMP, MySQL's VECTOR, ...): the columns after it cannot be located.
    throw mysqlError(
      'MYSQL_UNSUPPORTED_TYPE',
      `table ${database}.${table} has a column type Sluice cannot read from the binlog (column types ${[...types].join(',')}; the type metadata is ${metaLen} bytes, not ${c.pos - metaEnd + metaLen}). If it has TIME/DATETIME/TIMESTAMP columns from an old server version, rebuild it in the current format (ALTER TABLE … FORCE); otherwise exclude it from source.tables.`,
    );
  }
  const nullBits = c.bytes((n + 7) >> 3);

  // Optional metadata.
  let names: string[] | null = null;
  let unsignedBits: Buffer | null = null;
  let charsetIds: number[] | null = null;
  let enumCharsetIds: number[] | null = null;
  let defaultCs: { def: number; except: Map<number, number> } | null = null;
  let enumDefaultCs: { def: number; except: Map<number, number> } | null = null;
  let setRaw: Buffer[][] | null = null;
  let enumRaw: Buffer[][] | null = null;
  let geoTypes: number[] | null = null;
  const keyIdx: number[] = [];
  const readDefault = (t: Cursor, stop: number): { def: number; except: Map<number, number> } => {
    const def = t.lenenc();
    const except = new Map<number, number>();
    while (t.pos < stop) {
      const idx = t.lenenc();
      except.set(idx, t.lenenc());
    }
    return { def, except };
  };
  const readStrLists = (t: Cursor, stop: number): Buffer[][] => {
    const out: Buffer[][] = [];
    while (t.pos < stop) {
      const count = t.lenenc();
      const list: Buffer[] = [];
      for (let k = 0; k < count; k++) list.push(t.bytes(t.lenenc()));
      out.push(list);
    }
    return out;
  };
  while (c.pos < end) {
    const type = c.u8();
    const len = c.lenenc();
    c.need(len);
    const stop = c.pos + len;
    const t = new Cursor(b, c.pos, stop, () => `TABLE_MAP optional metadata ${type} at ${where()}`);
    switch (type) {
      case OPT.SIGNEDNESS: unsignedBits = t.bytes(len); break;
      case OPT.DEFAULT_CHARSET: defaultCs = readDefault(t, stop); break;
      case OPT.COLUMN_CHARSET: charsetIds = []; while (t.pos < stop) charsetIds.push(t.lenenc()); break;
      case OPT.COLUMN_NAME: names = []; while (t.pos < stop) names.push(t.bytes(t.lenenc()).toString('utf8')); break;
      case OPT.SET_STR_VALUE: setRaw = readStrLists(t, stop); break;
      case OPT.ENUM_STR_VALUE: enumRaw = readStrLists(t, stop); break;
      case OPT.GEOMETRY_TYPE: geoTypes = []; while (t.pos < stop) geoTypes.push(t.lenenc()); break;
      case OPT.SIMPLE_PRIMARY_KEY: while (t.pos < stop) keyIdx.push(t.lenenc()); break;
      case OPT.PRIMARY_KEY_WITH_PREFIX: while (t.pos < stop) { keyIdx.push(t.lenenc()); t.lenenc(); } break;
      case OPT.ENUM_AND_SET_DEFAULT_CHARSET: enumDefaultCs = readDefault(t, stop); break;
      case OPT.ENUM_AND_SET_COLUMN_CHARSET: enumCharsetIds = []; while (t.pos < stop) enumCharsetIds.push(t.lenenc()); break;
      default: break; // newer metadata (column visibility, vector dimensions) is not needed
    }
    c.pos = stop;
  }
  if (!names || names.length !== n) {
    throw mysqlError(
      'MYSQL_ROW_METADATA',
      `the server writes table maps without column names (table ${database}.${table}): set binlog_row_metadata=FULL (MariaDB 10.5+/MySQL 8.0.1+) in the server configuration and restart it; rows logged before that cannot be decoded, so take a new snapshot afterwards (move the log directory away and run again).`,
    );
  }

  const keySet = new Set(keyIdx);
  const specs: ColumnSpec[] = [];
  const plan: ColumnPlan[] = [];
  let numericNo = 0;
  let charNo = 0;
  let enumSetNo = 0;
  let enumNo = 0;
  let setNo = 0;
  let geoNo = 0;
  for (let i = 0; i < n; i++) {
    const t = real[i];
    const where = `${database}.${table}.${names[i]}`;
    let unsigned = false;
    if (isNumeric(t, mariadb)) {
      // YEAR's bit (MariaDB) is always set and means nothing: YEAR has no signedness.
      if (unsignedBits && t !== MY.YEAR) unsigned = ((unsignedBits[numericNo >> 3] ?? 0) & (0x80 >> (numericNo & 7))) !== 0;
      numericNo++;
    }
    let cs: Charset | null = null;
    if (isCharacter(t, mariadb)) {
      const id = charsetIds ? charsetIds[charNo] : defaultCs ? (defaultCs.except.get(charNo) ?? defaultCs.def) : undefined;
      charNo++;
      if (id !== undefined && t !== MY.GEOMETRY) cs = charsets.get(id, where);
    } else if (t === MY.ENUM || t === MY.SET) {
      const id = enumCharsetIds ? enumCharsetIds[enumSetNo] : enumDefaultCs ? (enumDefaultCs.except.get(enumSetNo) ?? enumDefaultCs.def) : undefined;
      enumSetNo++;
      if (id !== undefined) cs = charsets.get(id, where);
    }
    const spec: ColumnSpec = { name: names[i], typeCode: t, unsigned, nullable: ((nullBits[i >> 3] >> (i & 7)) & 1) === 1, key: keySet.has(i) };
    const p: ColumnPlan = { t, meta: m1[i], precision: 0, scale: 0, unsigned, text: cs ? cs.kind : TEXT_UTF8, decoder: cs?.decoder, labels: null, pad: 0, micros: false };
    const labelsOf = (raw: Buffer[] | undefined): string[] => (raw ?? []).map((x) => decodeLabel(x, cs));
    switch (t) {
      case MY.NEWDECIMAL:
        spec.precision = p.precision = m1[i];
        spec.scale = p.scale = m2[i];
        break;
      case MY.TIME2: case MY.DATETIME2: case MY.TIMESTAMP2:
        spec.fsp = m1[i];
        p.micros = m1[i] > 3;
        break;
      case MY.TIME: case MY.DATETIME: case MY.TIMESTAMP:
        spec.fsp = 0;
        break;
      case MY.VARCHAR: case MY.STRING: {
        const maxBytes = m1[i];
        spec.charset = cs?.name ?? 'binary';
        spec.length = cs && cs.kind !== TEXT_BINARY ? Math.floor(maxBytes / cs.maxLen) : maxBytes;
        p.meta = maxBytes > 255 ? 2 : 1;
        if (t === MY.STRING && spec.charset === 'binary') p.pad = maxBytes;
        if (!cs) p.text = TEXT_BINARY;
        break;
      }
      case MY.BLOB:
        spec.blobBytes = m1[i];
        spec.charset = cs?.name ?? 'binary';
        if (!cs) p.text = TEXT_BINARY;
        break;
      case MY.ENUM:
        p.labels = spec.labels = labelsOf(enumRaw?.[enumNo++]);
        spec.charset = cs?.name ?? 'utf8mb4';
        break;
      case MY.SET:
        p.labels = spec.labels = labelsOf(setRaw?.[setNo++]);
        spec.charset = cs?.name ?? 'utf8mb4';
        break;
      case MY.BIT:
        // Metadata: bits beyond whole bytes, then whole bytes.
        spec.length = p.meta = m2[i] * 8 + m1[i];
        break;
      case MY.GEOMETRY: {
        const g = geoTypes?.[geoNo++] ?? 0;
        spec.geometry = g === 7 && !mariadb ? 'geomcollection' : (GEOMETRY_NAMES[g] ?? 'geometry');
        p.text = TEXT_BINARY;
        break;
      }
      case MY.JSON:
        p.text = TEXT_UTF8;
        break;
    }
    specs.push(spec);
    plan.push(p);
  }
  const columns = specs.map(buildColumn);
  const map: TableMap = { tableId: BigInt(tableId), database, table, columns, keyColumns: keyIdx.map((k) => names![k]).filter((x) => x !== undefined) };
  return { map, plan, raw: Buffer.from(b.subarray(pos, end)) };
}

function decodeLabel(raw: Buffer, cs: Charset | null): string {
  if (cs?.decoder) return cs.decoder.decode(raw);
  if (cs && cs.kind === TEXT_LATIN1) return decodeLatin1(raw, 0, raw.length);
  return raw.toString('utf8');
}
