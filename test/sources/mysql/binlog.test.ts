/**
 * The binlog client and decoder against the machine's real MariaDB (ROW binlog with
 * binlog_row_metadata=FULL, set up by scripts/setup.sh): every supported type at its limits,
 * decoded from the binlog AND read back through the snapshot path (textValue), which must agree
 * with each other and with the literal expected value. Also GTID starts, rotation, ALTER TABLE
 * between rows, a 50k-row event under a small queue bound, corruption and the error codes; and
 * the MySQL-only formats (binary JSON, ROWS v2) from hand-built bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { BinlogClient } from '../../../src/sources/mysql/binlog/client.ts';
import { readDecimal } from '../../../src/sources/mysql/binlog/decimal.ts';
import { BinlogDecoder } from '../../../src/sources/mysql/binlog/decoder.ts';
import { jsonBinaryToText } from '../../../src/sources/mysql/binlog/json.ts';
import type { BinlogColumn, BinlogEvent, FilePosition, StartPosition } from '../../../src/sources/mysql/binlog/types.ts';
import { crc32 } from '../../../src/core/crc32.ts';
import type { Value } from '../../../src/core/event.ts';
import { columnFromInformationSchema, selectExpression, textValue } from '../../../src/sources/mysql/types.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../../helpers/targets.ts';

const DB = 'sluice_binlog_test';
const CONN = { host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER };
const serverId = (): number => 100_000 + Math.floor(Math.random() * 1_000_000);

type RowsEvent = Extract<BinlogEvent, { type: 'rows' }>;

const TABLE = `CREATE TABLE all_types (
  id INT NOT NULL PRIMARY KEY,
  c_tiny TINYINT, c_tiny_u TINYINT UNSIGNED, c_bool TINYINT(1),
  c_small SMALLINT, c_small_u SMALLINT UNSIGNED,
  c_medium MEDIUMINT, c_medium_u MEDIUMINT UNSIGNED,
  c_int INT, c_int_u INT UNSIGNED,
  c_big BIGINT, c_big_u BIGINT UNSIGNED,
  c_float FLOAT, c_double DOUBLE,
  c_dec DECIMAL(15,2), c_dec_big DECIMAL(65,30), c_dec_u DECIMAL(10,4) UNSIGNED,
  c_date DATE, c_dt0 DATETIME, c_dt3 DATETIME(3), c_dt6 DATETIME(6),
  c_ts TIMESTAMP NULL DEFAULT NULL, c_ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  c_time TIME, c_time6 TIME(6), c_year YEAR,
  c_char CHAR(10), c_varchar VARCHAR(100), c_tinytext TINYTEXT, c_text TEXT, c_mediumtext MEDIUMTEXT, c_longtext LONGTEXT,
  c_latin1 VARCHAR(20) CHARACTER SET latin1, c_char_latin1 CHAR(5) CHARACTER SET latin1,
  c_binary BINARY(4), c_varbinary VARBINARY(10), c_tinyblob TINYBLOB, c_blob BLOB, c_longblob LONGBLOB,
  c_enum ENUM('ACTIVE','INACTIVE','it''s'), c_set SET('a','b','c'),
  c_bit1 BIT(1), c_bit10 BIT(10), c_bit64 BIT(64),
  c_json JSON, c_geom GEOMETRY, c_point POINT
) CHARACTER SET utf8mb4`;

const COLS = [
  'id', 'c_tiny', 'c_tiny_u', 'c_bool', 'c_small', 'c_small_u', 'c_medium', 'c_medium_u', 'c_int', 'c_int_u', 'c_big', 'c_big_u', 'c_float', 'c_double',
  'c_dec', 'c_dec_big', 'c_dec_u', 'c_date', 'c_dt0', 'c_dt3', 'c_dt6', 'c_ts', 'c_ts6', 'c_time', 'c_time6', 'c_year',
  'c_char', 'c_varchar', 'c_tinytext', 'c_text', 'c_mediumtext', 'c_longtext', 'c_latin1', 'c_char_latin1',
  'c_binary', 'c_varbinary', 'c_tinyblob', 'c_blob', 'c_longblob', 'c_enum', 'c_set', 'c_bit1', 'c_bit10', 'c_bit64', 'c_json', 'c_geom', 'c_point',
];

// Row literals as SQL, in COLS order.
const SQL_ROWS = [
  `(1, 127, 255, 1, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615, 3.14, 3.141592653589793,
    2500.75, 12345678901234567890123456789012345.123456789012345678901234567890, 0.0001,
    '2024-02-29', '9999-12-31 23:59:59', '2024-01-15 10:30:00.123', '2024-01-15 10:30:00.123456',
    '2024-01-15 10:30:00', '2038-01-19 03:14:07.999999', '838:59:59', '-838:59:59.000000', 2155,
    'héllo ✓', 'unicode ✓ 😀 emoji', 'tiny 😀', 'text with "quotes" and \\\\ and 😀', REPEAT('m', 300), REPEAT('ü', 70000), 'café €‰', 'naïf',
    x'0001', x'00ff00', x'00', x'00010200', REPEAT(x'00ff', 40000), 'INACTIVE', 'a,c', b'1', b'1000000001', x'8000000000000001',
    '{"a": [1, 2.5, "x"], "b": null}', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-1.5 0)'))`,
  `(2, -128, 0, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, -1.5e-10, -1.7976931348623157e308,
    -0.01, -0.000000000000000000000000000001, 999999.9999,
    '1969-12-31', '1000-01-01 00:00:00', '1969-12-31 23:59:59.999', '1969-12-31 23:59:59.999999',
    '1970-01-01 00:00:01', '1970-01-01 00:00:01.000001', '-00:00:01', '-00:00:00.500000', 1901,
    '', '', '', '', '', '', '', '',
    x'', x'', x'', x'00', x'', 'it''s', '', b'0', b'0', 0,
    '[]', ST_GeomFromText('POINT(0 0)'), ST_GeomFromText('POINT(0 0)'))`,
  `(3${', NULL'.repeat(COLS.length - 1)})`,
  // Zero values a permissive sql_mode accepts; 'nope' is no ENUM label, stored as '' (index 0).
  `(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00.000', '0000-00-00 00:00:00',
    '0000-00-00 00:00:00', '0000-00-00 00:00:00', '00:00:00', '00:00:00', 0,
    ' ', 'x', 'x', 'x', 'x', 'x', 'x', 'x', x'00000000', x'00', x'00', x'00', x'00', 'nope', 'a,b,c', b'1', b'1111111111', x'ffffffffffffffff',
    '{}', NULL, NULL)`,
];

const pointWkb = (x: number, y: number): Buffer => {
  const b = Buffer.alloc(25);
  b.writeUInt32LE(0, 0); // SRID
  b[4] = 1; // little-endian WKB
  b.writeUInt32LE(1, 5); // Point
  b.writeDoubleLE(x, 9);
  b.writeDoubleLE(y, 17);
  return b;
};
const bytes = (...x: number[]): Buffer => Buffer.from(x);
const UTC = Date.UTC;

/** The exact Value every column of each row must decode to, from both paths. */
const EXPECTED: Record<number, Record<string, Value>> = {
  1: {
    id: 1, c_tiny: 127, c_tiny_u: 255, c_bool: 1, c_small: 32767, c_small_u: 65535, c_medium: 8388607, c_medium_u: 16777215, c_int: 2147483647, c_int_u: 4294967295,
    c_big: 9223372036854775807n, c_big_u: 18446744073709551615n, c_float: 3.14, c_double: 3.141592653589793,
    c_dec: '2500.75', c_dec_big: '12345678901234567890123456789012345.123456789012345678901234567890', c_dec_u: '0.0001',
    c_date: 19782, c_dt0: UTC(9999, 11, 31, 23, 59, 59), c_dt3: UTC(2024, 0, 15, 10, 30, 0, 123), c_dt6: UTC(2024, 0, 15, 10, 30, 0) * 1000 + 123456,
    c_ts: '2024-01-15T10:30:00Z', c_ts6: '2038-01-19T03:14:07.999999Z', c_time: 3020399000000, c_time6: -3020399000000, c_year: 2155,
    c_char: 'héllo ✓', c_varchar: 'unicode ✓ 😀 emoji', c_tinytext: 'tiny 😀', c_text: 'text with "quotes" and \\ and 😀', c_mediumtext: 'm'.repeat(300), c_longtext: 'ü'.repeat(70000),
    c_latin1: 'café €‰', c_char_latin1: 'naïf',
    c_binary: bytes(0, 1, 0, 0), c_varbinary: bytes(0, 255, 0), c_tinyblob: bytes(0), c_blob: bytes(0, 1, 2, 0), c_longblob: Buffer.from('00ff'.repeat(40000), 'hex'),
    c_enum: 'INACTIVE', c_set: 'a,c', c_bit1: true, c_bit10: bytes(0x01, 0x02), c_bit64: bytes(1, 0, 0, 0, 0, 0, 0, 0x80),
    c_json: '{"a": [1, 2.5, "x"], "b": null}', c_geom: pointWkb(1, 2), c_point: pointWkb(-1.5, 0),
  },
  2: {
    id: 2, c_tiny: -128, c_tiny_u: 0, c_bool: 0, c_small: -32768, c_small_u: 0, c_medium: -8388608, c_medium_u: 0, c_int: -2147483648, c_int_u: 0,
    c_big: -9223372036854775808n, c_big_u: 0n, c_float: -1.5e-10, c_double: -1.7976931348623157e308,
    c_dec: '-0.01', c_dec_big: '-0.000000000000000000000000000001', c_dec_u: '999999.9999',
    c_date: -1, c_dt0: UTC(1000, 0, 1), c_dt3: -1, c_dt6: -1,
    c_ts: '1970-01-01T00:00:01Z', c_ts6: '1970-01-01T00:00:01.000001Z', c_time: -1_000_000, c_time6: -500_000, c_year: 1901,
    c_char: '', c_varchar: '', c_tinytext: '', c_text: '', c_mediumtext: '', c_longtext: '', c_latin1: '', c_char_latin1: '',
    c_binary: bytes(0, 0, 0, 0), c_varbinary: bytes(), c_tinyblob: bytes(), c_blob: bytes(0), c_longblob: bytes(),
    c_enum: "it's", c_set: '', c_bit1: false, c_bit10: bytes(0, 0), c_bit64: Buffer.alloc(8),
    c_json: '[]', c_geom: pointWkb(0, 0), c_point: pointWkb(0, 0),
  },
  3: Object.fromEntries(COLS.map((c) => [c, c === 'id' ? 3 : null])),
  4: {
    id: 4, c_tiny: 0, c_tiny_u: 0, c_bool: 0, c_small: 0, c_small_u: 0, c_medium: 0, c_medium_u: 0, c_int: 0, c_int_u: 0, c_big: 0n, c_big_u: 0n, c_float: 0, c_double: 0,
    c_dec: '0.00', c_dec_big: '0.000000000000000000000000000000', c_dec_u: '0.0000',
    c_date: null, c_dt0: null, c_dt3: null, c_dt6: null, c_ts: null, c_ts6: null, c_time: 0, c_time6: 0, c_year: 0,
    c_char: '', c_varchar: 'x', c_tinytext: 'x', c_text: 'x', c_mediumtext: 'x', c_longtext: 'x', c_latin1: 'x', c_char_latin1: 'x',
    c_binary: bytes(0, 0, 0, 0), c_varbinary: bytes(0), c_tinyblob: bytes(0), c_blob: bytes(0), c_longblob: bytes(0),
    c_enum: '', c_set: 'a,b,c', c_bit1: true, c_bit10: bytes(0xff, 0x03), c_bit64: Buffer.alloc(8, 0xff),
    c_json: '{}', c_geom: null, c_point: null,
  },
};
// The update changes these columns of row 1.
const UPDATE_SQL = `UPDATE all_types SET c_varchar = 'updated ✓', c_dec = -12.5, c_ts6 = '2024-06-01 00:00:00.5', c_set = NULL WHERE id = 1`;
const UPDATED_1 = { ...EXPECTED[1], c_varchar: 'updated ✓', c_dec: '-12.50', c_ts6: '2024-06-01T00:00:00.500000Z', c_set: null };

async function admin(): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ ...CONN, multipleStatements: false }).catch((e: Error) => {
    throw new Error(`MariaDB is not reachable at ${MYSQL_HOST}:${MYSQL_PORT} as ${MYSQL_USER} (${e.message}). Start it and run: bash scripts/setup.sh`, { cause: e });
  });
  await c.query("SET time_zone = '+00:00'");
  return c;
}

async function masterStatus(c: mysql.Connection): Promise<FilePosition> {
  const [rows] = await c.query('SHOW MASTER STATUS');
  const r = (rows as { File: string; Position: number }[])[0];
  assert.ok(r, 'SHOW MASTER STATUS is empty: the binlog is off; run bash scripts/setup.sh');
  return { file: r.File, pos: Number(r.Position) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

/**
 * Ends a test's changes with a unique row in `marker`: readers stop at it. (Positions cannot tell
 * the end: other tests share the server, and events Sluice skips carry positions too.)
 */
async function mark(c: mysql.Connection): Promise<string> {
  const v = `m${Date.now()}${Math.random().toString(36).slice(2)}`;
  await c.query(`INSERT INTO ${DB}.marker VALUES (?)`, [v]);
  return v;
}
const isMarker = (ev: BinlogEvent, v: string): boolean => ev.type === 'rows' && ev.map.database === DB && ev.map.table === 'marker' && ev.rows.some((r) => r.after?.[0] === v);

/** Every event from `start` until the marker row `until`. */
async function stream(start: StartPosition, until: string, extra: Partial<Parameters<typeof BinlogClient.connect>[0]> = {}): Promise<BinlogEvent[]> {
  const c = await BinlogClient.connect({ ...CONN, serverId: serverId(), start, ...extra });
  const out: BinlogEvent[] = [];
  try {
    for (;;) {
      const ev = await withTimeout(c.next(), 30_000, `binlog events up to the marker ${until}`);
      assert.ok(ev, 'the stream ended early');
      out.push(ev);
      if (isMarker(ev, until)) break;
    }
  } finally {
    await c.close();
  }
  return out;
}

/** Raw event bytes from `start` until the marker row `until`, with the file each one is in. */
async function streamRaw(start: FilePosition, until: string): Promise<{ file: string; raw: Buffer }[]> {
  const c = await BinlogClient.connect({ ...CONN, serverId: serverId(), start });
  const out: { file: string; raw: Buffer }[] = [];
  let file = start.file;
  try {
    for (;;) {
      const raw = await withTimeout(c.nextRaw(), 30_000, 'raw binlog events');
      assert.ok(raw);
      out.push({ file, raw });
      if (raw[4] === 4) file = raw.toString('utf8', 27, raw.length - 4); // ROTATE (checksummed)
      if (raw[4] === 23 && raw.includes(Buffer.from(until))) break;
    }
  } finally {
    await c.close();
  }
  return out;
}

const rowsOf = (events: BinlogEvent[], table: string): RowsEvent[] => events.filter((e): e is RowsEvent => e.type === 'rows' && e.map.database === DB && e.map.table === table);
/** all_types' rows events with consecutive events of one kind merged (a big insert spans several). */
const changes = (evs: BinlogEvent[]): RowsEvent[] =>
  rowsOf(evs, 'all_types').reduce<RowsEvent[]>((out, e) => {
    const last = out[out.length - 1];
    if (last && last.kind === e.kind && last.map === e.map) out[out.length - 1] = { ...last, rows: [...last.rows, ...e.rows] };
    else out.push(e);
    return out;
  }, []);
const asObject = (cols: BinlogColumn[], values: Value[]): Record<string, Value> => Object.fromEntries(cols.map((c, i) => [c.name, values[i]]));

/** Rows as the snapshot reads them (snapshot.ts's typeCast), converted with textValue. */
async function snapshotRows(c: mysql.Connection, table: string): Promise<{ cols: BinlogColumn[]; rows: Record<string, Value>[] }> {
  const [info] = await c.query(
    `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, ORDINAL_POSITION
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [DB, table],
  );
  const cols = (info as never[]).map((r) => columnFromInformationSchema(r));
  const [data] = await c.query({
    sql: `SELECT ${cols.map((x) => selectExpression(x, '`' + x.name + '`')).join(', ')} FROM \`${DB}\`.\`${table}\` ORDER BY id`,
    rowsAsArray: true,
    typeCast: ((field: { charsetNr?: number; buffer(): Buffer | null; string(): string | null }) => (field.charsetNr === 63 ? field.buffer() : field.string())) as never,
  });
  return { cols, rows: (data as (string | Buffer | null)[][]).map((r) => asObject(cols, r.map((v, i) => textValue(cols[i], v)))) };
}

describe('MySQL/MariaDB binlog client and decoder', () => {
  let c: mysql.Connection;
  let start: FilePosition;
  let startGtid: string;
  let end: string;
  let snapInserted: Awaited<ReturnType<typeof snapshotRows>>;
  let snapUpdated: Awaited<ReturnType<typeof snapshotRows>>;
  let events: BinlogEvent[];

  before(async () => {
    c = await admin();
    const [v] = await c.query('SELECT @@log_bin AS b, @@binlog_format AS f, @@binlog_row_metadata AS m');
    const vars = (v as { b: number; f: string; m: string }[])[0];
    assert.deepEqual([Number(vars.b), vars.f, vars.m], [1, 'ROW', 'FULL'], 'MariaDB must write a ROW binlog with binlog_row_metadata=FULL: run bash scripts/setup.sh');
    await c.query(`DROP DATABASE IF EXISTS ${DB}`);
    await c.query(`CREATE DATABASE ${DB} CHARACTER SET utf8mb4`);
    await c.query(`USE ${DB}`);
    await c.query(TABLE);
    await c.query('CREATE TABLE marker (v VARCHAR(64) PRIMARY KEY)');
    await mark(c); // so the GTID position is not empty
    start = await masterStatus(c);
    const [g] = await c.query('SELECT @@gtid_binlog_pos AS g');
    startGtid = String((g as { g: string }[])[0].g);
    await c.query("SET SESSION sql_mode = ''");
    await c.query(`INSERT INTO all_types (${COLS.join(', ')}) VALUES ${SQL_ROWS.join(',\n')}`);
    snapInserted = await snapshotRows(c, 'all_types');
    await c.query(UPDATE_SQL);
    snapUpdated = await snapshotRows(c, 'all_types');
    await c.query('DELETE FROM all_types WHERE id = 2');
    end = await mark(c);
    events = await stream(start, end);
  });

  after(async () => {
    await c?.end().catch(() => {});
  });

  it('decodes every type at its limits from the binlog to the expected values', () => {
    const rows = changes(events);
    assert.deepEqual(rows.map((r) => r.kind), ['write', 'update', 'delete'], 'the insert (its rows in one or more events), one update and one delete');
    const cols = rows[0].map.columns;
    assert.deepEqual(cols.map((x) => x.name), COLS);
    assert.deepEqual(rows[0].map.keyColumns, ['id']);
    const written = rows[0].rows.map((r) => asObject(cols, r.after!));
    assert.equal(written.length, 4);
    for (const w of written) {
      const exp = EXPECTED[w.id as number];
      for (const name of COLS) assert.deepStrictEqual(w[name], exp[name], `row ${w.id} column ${name}`);
    }
    assert.equal(rows[0].rows[0].before, null);
    const upd = rows[1].rows[0];
    assert.deepStrictEqual(asObject(cols, upd.before!), EXPECTED[1]);
    assert.deepStrictEqual(asObject(cols, upd.after!), UPDATED_1);
    assert.equal(rows[2].rows[0].after, null);
    assert.deepStrictEqual(asObject(cols, rows[2].rows[0].before!), EXPECTED[2]);
  });

  it('gives the same values as the snapshot path (textValue of the rows read back)', () => {
    const rows = changes(events);
    const cols = rows[0].map.columns;
    // As Debezium's: a TIMESTAMP read by the snapshot drops its fraction's trailing zeros, the
    // binlog's has the column's fsp digits (test/debezium/mysql.test.ts compares with Debezium).
    const asSnapshot = (o: Record<string, unknown>): Record<string, unknown> => ({ ...o, c_ts6: typeof o.c_ts6 === 'string' ? o.c_ts6.replace(/\.?0+Z$/, 'Z') : o.c_ts6 });
    const written = rows[0].rows.map((r) => asSnapshot(asObject(cols, r.after!)));
    assert.equal(snapInserted.rows.length, 4);
    for (let i = 0; i < 4; i++) {
      for (const name of COLS) assert.deepStrictEqual(snapInserted.rows[i][name], written[i][name], `row ${written[i].id} column ${name}: snapshot vs binlog`);
    }
    const updated = snapUpdated.rows.find((r) => r.id === 1)!;
    assert.deepStrictEqual(updated, asSnapshot(asObject(cols, rows[1].rows[0].after!)));
  });

  it('builds the same columns (type names, schemas) from the table map as from information_schema', () => {
    const fromBinlog = rowsOf(events, 'all_types')[0].map.columns;
    const fromInfo = snapInserted.cols;
    for (let i = 0; i < COLS.length; i++) assert.deepStrictEqual(fromBinlog[i], fromInfo[i], `column ${COLS[i]}`);
    const byName = Object.fromEntries(fromBinlog.map((x) => [x.name, x]));
    const names = Object.fromEntries(fromBinlog.map((x) => [x.name, x.typeName]));
    assert.deepEqual(
      [names.c_dec, names.c_varchar, names.c_int_u, names.c_enum, names.c_dt6, names.c_ts, names.c_bit10, names.c_bool, names.c_big_u, names.c_json, names.c_binary, names.c_char, names.c_point, names.c_dec_u],
      ['decimal(15,2)', 'varchar(100)', 'int unsigned', "enum('ACTIVE','INACTIVE','it''s')", 'datetime(6)', 'timestamp', 'bit(10)', 'tinyint', 'bigint unsigned', 'longtext', 'binary(4)', 'char(10)', 'point', 'decimal(10,4) unsigned'],
    );
    assert.deepEqual(byName.id.schema, { type: 'int32', optional: false });
    assert.equal(byName.id.key, true);
    assert.deepEqual(byName.c_tiny.schema, { type: 'int16', optional: true });
    assert.deepEqual(byName.c_small_u.schema, { type: 'int32', optional: true });
    assert.deepEqual(byName.c_int_u.schema, { type: 'int64', optional: true });
    assert.deepEqual(byName.c_big_u.schema, { type: 'int64', optional: true });
    assert.deepEqual(byName.c_float.schema, { type: 'float', optional: true });
    assert.deepEqual(byName.c_dec.schema, { type: 'string', optional: true });
    assert.deepEqual(byName.c_date.schema, { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1 });
    assert.deepEqual(byName.c_dt3.schema, { type: 'int64', optional: true, name: 'io.debezium.time.Timestamp', version: 1 });
    assert.deepEqual(byName.c_dt6.schema, { type: 'int64', optional: true, name: 'io.debezium.time.MicroTimestamp', version: 1 });
    assert.deepEqual(byName.c_ts6.schema, { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1 });
    assert.deepEqual(byName.c_time6.schema, { type: 'int64', optional: true, name: 'io.debezium.time.MicroTime', version: 1 });
    assert.deepEqual(byName.c_year.schema, { type: 'int32', optional: true, name: 'io.debezium.time.Year', version: 1 });
    assert.deepEqual(byName.c_enum.schema, { type: 'string', optional: true, name: 'io.debezium.data.Enum', version: 1, parameters: { allowed: "ACTIVE,INACTIVE,it's" } });
    assert.deepEqual(byName.c_set.schema, { type: 'string', optional: true, name: 'io.debezium.data.EnumSet', version: 1, parameters: { allowed: 'a,b,c' } });
    assert.deepEqual(byName.c_bit1.schema, { type: 'boolean', optional: true });
    assert.deepEqual(byName.c_bit10.schema, { type: 'bytes', optional: true, name: 'io.debezium.data.Bits', version: 1, parameters: { length: '10' } });
    assert.deepEqual(byName.c_blob.schema, { type: 'bytes', optional: true });
    assert.deepEqual(byName.c_latin1.schema, { type: 'string', optional: true });
    assert.equal(byName.c_latin1.charset, 'latin1');
    assert.equal(byName.c_varbinary.charset, 'binary');
  });

  it('reports transaction structure: GTID, table map, rows, XID with positions', () => {
    const i = events.findIndex((e) => e.type === 'rows' && e.map.table === 'all_types');
    const before = events.slice(0, i).reverse();
    const gtid = before.find((e) => e.type === 'gtid');
    assert.ok(gtid && gtid.type === 'gtid' && /^\d+-1-\d+$/.test(gtid.gtid) && !gtid.standalone);
    const tm = before.find((e) => e.type === 'tablemap');
    assert.ok(tm && tm.type === 'tablemap' && tm.map.table === 'all_types');
    const xid = events.slice(i).find((e) => e.type === 'xid');
    assert.ok(xid && xid.type === 'xid' && typeof xid.xid === 'bigint');
    assert.ok(events[0].type === 'rotate' && events[0].file === start.file);
    assert.ok(events.some((e) => e.type === 'format' && e.checksum === true && /MariaDB/.test(e.serverVersion)));
    const r = events[i];
    assert.ok(r.header.nextPos > start.pos && r.header.eventSize > 0 && r.header.serverId === 1 && r.header.timestamp > 1.6e9);
    assert.ok(r.type === 'rows' && r.bytes > 0);
  });

  it('starting from a GTID gives the same events', async () => {
    const viaGtid = await stream({ gtidSet: startGtid }, end);
    const strip = (rs: RowsEvent[]): unknown => rs.map((r) => ({ kind: r.kind, rows: r.rows, header: r.header }));
    assert.deepStrictEqual(strip(rowsOf(viaGtid, 'all_types')), strip(rowsOf(events, 'all_types')));
  });

  it('follows FLUSH BINARY LOGS into the next file', async () => {
    await c.query(`USE ${DB}`);
    await c.query('CREATE TABLE rot (id INT PRIMARY KEY, v VARCHAR(10))');
    const from = await masterStatus(c);
    await c.query("INSERT INTO rot VALUES (1, 'before')");
    await c.query('FLUSH BINARY LOGS');
    await c.query("INSERT INTO rot VALUES (2, 'after')");
    const to = await masterStatus(c);
    assert.notEqual(to.file, from.file);
    const evs = await stream(from, await mark(c));
    const rotates = evs.filter((e) => e.type === 'rotate').map((e) => (e.type === 'rotate' ? e.file : ''));
    assert.ok(rotates.includes(to.file), `a rotate to ${to.file} (saw ${rotates.join(', ')})`);
    assert.deepEqual(rowsOf(evs, 'rot').map((r) => r.rows[0].after), [[1, 'before'], [2, 'after']]);
  });

  it('decodes rows before and after ALTER TABLE ADD COLUMN with their own columns', async () => {
    await c.query(`USE ${DB}`);
    await c.query('CREATE TABLE alt (id INT PRIMARY KEY, a VARCHAR(10))');
    const from = await masterStatus(c);
    await c.query("INSERT INTO alt VALUES (1, 'x')");
    await c.query('ALTER TABLE alt ADD COLUMN b INT NOT NULL DEFAULT 7, ADD COLUMN c DECIMAL(6,3)');
    await c.query("INSERT INTO alt VALUES (2, 'y', 8, -1.5)");
    const evs = await stream(from, await mark(c), { annotateRows: true });
    const rs = rowsOf(evs, 'alt');
    assert.ok(evs.some((e) => e.type === 'annotate' && e.query === "INSERT INTO alt VALUES (2, 'y', 8, -1.5)"), 'ANNOTATE_ROWS events when asked');
    assert.deepEqual(rs.map((r) => r.map.columns.map((x) => `${x.name} ${x.typeName}`)), [['id int', 'a varchar(10)'], ['id int', 'a varchar(10)', 'b int', 'c decimal(6,3)']]);
    assert.deepEqual(rs.map((r) => r.rows[0].after), [[1, 'x'], [2, 'y', 8, '-1.500']]);
    assert.equal(rs[1].map.columns[2].nullable, false);
  });

  it('decodes only the tables asked for', async () => {
    const evs = await stream(start, end, { tables: (d, t) => d === DB && t === 'marker' });
    assert.equal(rowsOf(evs, 'all_types').length, 0);
    assert.ok(!evs.some((e) => e.type === 'tablemap' && e.map.table !== 'marker'), 'no table map of other tables');
    assert.ok(evs.some((e) => e.type === 'xid'), 'transaction events still come');
  });

  it('decodes a 50k-row event completely with the socket paused under a small queue bound', async () => {
    await c.query(`USE ${DB}`);
    await c.query('CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(50), n BIGINT)');
    const from = await masterStatus(c);
    await c.query("INSERT INTO big SELECT seq, CONCAT('row-', seq), seq * 1000 FROM seq_1_to_50000");
    const to = await mark(c);
    const bound = 64 * 1024;
    const client = await BinlogClient.connect({ ...CONN, serverId: serverId(), start: from, maxQueueBytes: bound });
    try {
      // Let the server fill the queue before anything is consumed.
      await new Promise((r) => setTimeout(r, 500));
      let maxBuffered = client.bufferedBytes;
      let count = 0;
      let sum = 0;
      for (;;) {
        const ev = await withTimeout(client.next(), 30_000, 'the 50k rows');
        assert.ok(ev);
        maxBuffered = Math.max(maxBuffered, client.bufferedBytes);
        if (ev.type === 'rows' && ev.map.database === DB && ev.map.table === 'big') {
          for (const r of ev.rows) {
            const [id, v, n] = r.after!;
            assert.equal(v, `row-${id}`);
            assert.equal(n, BigInt(id as number) * 1000n);
            count++;
            sum += id as number;
          }
        }
        if (isMarker(ev, to)) break;
      }
      assert.equal(count, 50_000);
      assert.equal(sum, (50_000 * 50_001) / 2);
      assert.ok(client.pauses > 0, 'the socket was paused');
      assert.ok(maxBuffered <= bound + 256 * 1024, `queue stayed near its bound (max ${maxBuffered} bytes)`);
    } finally {
      await client.close();
    }
  });

  it('verifies each event checksum: a flipped byte is MYSQL_BINLOG_CORRUPT naming file and position', async () => {
    const raws = await streamRaw(start, end);
    const map = raws.findIndex((r) => r.raw[4] === 19 && r.raw.includes(Buffer.from('all_types')));
    const idx = raws.findIndex((r, i) => i > map && r.raw[4] === 23);
    assert.ok(map > 0 && idx > map, 'the WRITE_ROWS event of all_types was captured');
    // The untouched stream decodes.
    const ok = new BinlogDecoder({ checksum: true });
    for (const r of raws) ok.decode(r.raw);
    const dec = new BinlogDecoder({ checksum: true });
    for (const r of raws.slice(0, idx)) dec.decode(r.raw);
    const bad = Buffer.from(raws[idx].raw);
    bad[Math.floor(bad.length / 2)] ^= 0x10;
    const pos = bad.readUInt32LE(13) - bad.length;
    assert.throws(() => dec.decode(bad), (e: Error & { code?: string }) => e.code === 'MYSQL_BINLOG_CORRUPT' && e.message.includes(`${raws[idx].file}:${pos}`) && /CRC32/.test(e.message));
  });

  it('reports a purged start position as MYSQL_BINLOG_GONE (not retriable)', async () => {
    const gone = (e: Error & { code?: string; retriable?: boolean }): boolean => e.code === 'MYSQL_BINLOG_GONE' && e.retriable === false && /purged/.test(e.message) && /new snapshot/.test(e.message);
    await assert.rejects(BinlogClient.connect({ ...CONN, serverId: serverId(), start: { file: 'mariadb-bin.999999', pos: 4 } }), gone);
    await assert.rejects(BinlogClient.connect({ ...CONN, serverId: serverId(), start: { gtidSet: '0-1-999999999' } }), gone);
  });

  it('a killed connection makes next() reject with retriable MYSQL_CONNECTION_LOST', async () => {
    const client = await BinlogClient.connect({ ...CONN, serverId: serverId(), start: await masterStatus(c) });
    try {
      // Drain what is there, then kill the dump thread while next() waits.
      const pending = (async () => {
        for (;;) await client.next();
      })().then(
        () => null,
        (e: Error & { code?: string; retriable?: boolean; cause?: unknown }) => e,
      );
      await new Promise((r) => setTimeout(r, 200));
      await c.query(`KILL ${client.threadId}`);
      const e = await withTimeout(pending, 10_000, 'the connection loss');
      assert.ok(e, 'next() rejected');
      assert.equal(e.code, 'MYSQL_CONNECTION_LOST');
      assert.equal(e.retriable, true);
      assert.ok(e.cause !== undefined, 'the error keeps its cause');
    } finally {
      await client.close();
    }
  });

  it('sends heartbeats when asked', async () => {
    const client = await BinlogClient.connect({ ...CONN, serverId: serverId(), start: await masterStatus(c), heartbeatMs: 50 });
    try {
      for (;;) {
        const ev = await withTimeout(client.next(), 10_000, 'a heartbeat event');
        if (ev?.type === 'heartbeat') {
          assert.match(ev.file, /^mariadb-bin\.\d+$/);
          break;
        }
      }
    } finally {
      await client.close();
    }
  });

  it('close() makes a waiting next() return null', async () => {
    const client = await BinlogClient.connect({ ...CONN, serverId: serverId(), start: await masterStatus(c) });
    const drain = (async () => {
      for (;;) if ((await client.next()) === null) return 'closed';
    })();
    await new Promise((r) => setTimeout(r, 100));
    await client.close();
    assert.equal(await withTimeout(drain, 5000, 'next() after close'), 'closed');
  });
});

// ---- Hand-built events: formats MariaDB does not write (ROWS v2, binary JSON) and missing metadata.

function event(type: number, body: Buffer, nextPos = 1000): Buffer {
  const size = 19 + body.length + 4;
  const b = Buffer.alloc(size);
  b.writeUInt32LE(1_700_000_000, 0);
  b[4] = type;
  b.writeUInt32LE(1, 5);
  b.writeUInt32LE(size, 9);
  b.writeUInt32LE(nextPos, 13);
  body.copy(b, 19);
  b.writeUInt32LE(crc32(b, 0, size - 4) >>> 0, size - 4);
  return b;
}

const tlv = (type: number, value: Buffer): Buffer => Buffer.concat([bytes(type, value.length), value]);
const lstr = (s: string): Buffer => Buffer.concat([bytes(Buffer.byteLength(s)), Buffer.from(s)]);

/** TABLE_MAP for `d`.`t` (id INT UNSIGNED PRIMARY KEY, doc JSON, amount DECIMAL(14,4)) as MySQL 8 writes it. */
function tableMap(withNames: boolean): Buffer {
  const optional = Buffer.concat([
    tlv(1, bytes(0b1000_0000)), // id unsigned, amount signed
    ...(withNames ? [tlv(4, Buffer.concat([lstr('id'), lstr('doc'), lstr('amount')]))] : []),
    tlv(8, bytes(0)),
  ]);
  return event(19, Buffer.concat([
    bytes(42, 0, 0, 0, 0, 0, 1, 0), // table id 42, flags
    bytes(1), Buffer.from('d'), bytes(0), bytes(1), Buffer.from('t'), bytes(0),
    bytes(3, 3, 245, 246), // 3 columns: LONG, JSON, NEWDECIMAL
    bytes(3, 4, 14, 4), // metadata: JSON length bytes 4; DECIMAL precision 14, scale 4
    bytes(0b110), // doc and amount nullable
    optional,
  ]));
}

describe('binlog decoder on hand-built events', () => {
  it('requires column names in table maps (binlog_row_metadata=FULL)', () => {
    const d = new BinlogDecoder({ checksum: true, mariadb: false, file: 'binlog.000007' });
    assert.throws(() => d.decode(tableMap(false)), (e: Error & { code?: string }) => e.code === 'MYSQL_ROW_METADATA' && /binlog_row_metadata=FULL/.test(e.message) && e.message.includes('d.t'));
  });

  it('decodes WRITE_ROWS v2 with extra data, binary JSON and DECIMAL', () => {
    const d = new BinlogDecoder({ checksum: true, mariadb: false, file: 'binlog.000007' });
    const tm = d.decode(tableMap(true));
    assert.ok(tm?.type === 'tablemap');
    assert.deepEqual(tm.map.columns.map((x) => [x.name, x.typeName, x.schema.name ?? x.schema.type]), [['id', 'int unsigned', 'int64'], ['doc', 'json', 'io.debezium.data.Json'], ['amount', 'decimal(14,4)', 'string']]);
    const json = bytes(0x04, 0x01); // true
    const row = Buffer.concat([
      bytes(0b000), // no nulls
      bytes(0xff, 0xff, 0xff, 0xff), // 4294967295
      bytes(json.length, 0, 0, 0), json,
      bytes(0x81, 0x0d, 0xfb, 0x38, 0xd2, 0x04, 0xd2), // 1234567890.1234
    ]);
    const row2 = Buffer.concat([bytes(0b110), bytes(7, 0, 0, 0)]);
    const body = Buffer.concat([
      bytes(42, 0, 0, 0, 0, 0, 1, 0), // table id, flags
      bytes(5, 0), bytes(0xaa, 0xbb, 0xcc), // v2 extra data: length 5 counts itself
      bytes(3), bytes(0b111), // 3 columns, all present
      row, row2,
    ]);
    const ev = d.decode(event(30, body));
    assert.ok(ev?.type === 'rows' && ev.kind === 'write');
    assert.deepStrictEqual(ev.rows, [{ before: null, after: [4294967295, 'true', '1234567890.1234'] }, { before: null, after: [7, null, null] }]);
  });

  it('marks partial row images (binlog_row_image=MINIMAL) and decodes the columns present', () => {
    const d = new BinlogDecoder({ checksum: true, mariadb: false });
    d.decode(tableMap(true));
    const body = Buffer.concat([
      bytes(42, 0, 0, 0, 0, 0, 1, 0),
      bytes(3), bytes(0b001), bytes(0b100), // before image: id; after image: amount
      bytes(0), bytes(9, 0, 0, 0), // before: id 9
      bytes(0), bytes(0x7e, 0xf2, 0x04, 0xc7, 0x2d, 0xfb, 0x2d), // after: -1234567890.1234
    ]);
    const ev = d.decode(event(24, body));
    assert.ok(ev?.type === 'rows' && ev.kind === 'update');
    assert.deepStrictEqual(ev.rows, [{ before: [9, null, null], after: [null, null, '-1234567890.1234'] }]);
    assert.deepStrictEqual(ev.present, { before: [true, false, false], after: [false, false, true] });
  });

  it('skips unknown event types and reads MySQL GTID events', () => {
    const d = new BinlogDecoder({ checksum: true, mariadb: false });
    assert.equal(d.decode(event(99, bytes(1, 2, 3))), null);
    const uuid = Buffer.from('3e11fa4771ca11e19e33c80aa9429562', 'hex');
    const gtid = Buffer.concat([bytes(1), uuid, Buffer.from([23, 0, 0, 0, 0, 0, 0, 0]), bytes(2), Buffer.alloc(16)]);
    const ev = d.decode(event(33, gtid));
    assert.ok(ev?.type === 'gtid');
    assert.equal(ev.gtid, '3e11fa47-71ca-11e1-9e33-c80aa9429562:23');
  });
});

describe('binary JSON (MySQL) to text', () => {
  const j = (...x: number[]): string => {
    const b = Buffer.from(x);
    return jsonBinaryToText(b, 0, b.length);
  };
  it('scalars', () => {
    assert.equal(j(0x04, 0x00), 'null');
    assert.equal(j(0x04, 0x01), 'true');
    assert.equal(j(0x04, 0x02), 'false');
    assert.equal(j(0x05, 0xff, 0xff), '-1');
    assert.equal(j(0x06, 0xff, 0xff), '65535');
    assert.equal(j(0x07, 0x00, 0x00, 0x00, 0x80), '-2147483648');
    assert.equal(j(0x08, 0xff, 0xff, 0xff, 0xff), '4294967295');
    assert.equal(j(0x09, 0, 0, 0, 0, 0, 0, 0, 0x80), '-9223372036854775808');
    assert.equal(j(0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), '18446744073709551615');
    assert.equal(j(0x0b, 0, 0, 0, 0, 0, 0, 0x08, 0x40), '3.0');
    assert.equal(j(0x0b, ...Buffer.from(new Float64Array([0.1]).buffer)), '0.1');
    assert.equal(j(0x0c, 0x03, 0x61, 0x22, 0x0a), '"a\\"\\n"');
    assert.equal(jsonBinaryToText(Buffer.alloc(0), 0, 0), 'null');
  });
  it('long strings use a multi-byte length', () => {
    const s = 'é'.repeat(100); // 200 bytes: length 0xc8 0x01
    const b = Buffer.concat([bytes(0x0c, 0xc8, 0x01), Buffer.from(s)]);
    assert.equal(jsonBinaryToText(b, 0, b.length), JSON.stringify(s));
  });
  it('small object with an inlined and an offset value', () => {
    // {"a": 1, "bb": "x"}: count 2, size 23, key entries (18,1) (19,2), value entries (int16 1) (string @21), keys, "x"
    assert.equal(j(0x00, 2, 0, 23, 0, 18, 0, 1, 0, 19, 0, 2, 0, 0x05, 1, 0, 0x0c, 21, 0, 0x61, 0x62, 0x62, 0x01, 0x78), '{"a": 1, "bb": "x"}');
  });
  it('small array with a double, a literal and a string', () => {
    const dbl = [...Buffer.from(new Float64Array([1.5]).buffer)];
    assert.equal(j(0x02, 4, 0, 27, 0, 0x04, 1, 0, 0x0b, 16, 0, 0x04, 0, 0, 0x0c, 24, 0, ...dbl, 0x02, 0xc3, 0xa9), '[true, 1.5, null, "é"]');
    assert.equal(j(0x02, 0, 0, 4, 0), '[]');
    assert.equal(j(0x00, 0, 0, 4, 0), '{}');
  });
  it('large object holding a nested small array', () => {
    assert.equal(j(0x01, 1, 0, 0, 0, 27, 0, 0, 0, 19, 0, 0, 0, 1, 0, 0x02, 20, 0, 0, 0, 0x6b, 1, 0, 7, 0, 0x05, 1, 0), '{"k": [1]}');
  });
  it('opaque DECIMAL and DATETIME', () => {
    assert.equal(j(0x0f, 246, 4, 4, 2, 0x8c, 0x22), '12.34');
    const ymd = ((2015n * 13n + 1n) << 5n) | 15n;
    const hms = (23n << 12n) | (24n << 6n) | 25n;
    const packed = ((ymd << 17n) | hms) << 24n | 500000n;
    const v = Buffer.alloc(8);
    v.writeBigInt64LE(packed);
    assert.equal(j(0x0f, 12, 8, ...v), '"2015-01-15 23:24:25.500000"');
    assert.equal(j(0x0f, 10, 8, ...v), '"2015-01-15"');
  });
  it('rejects offsets outside the document', () => {
    assert.throws(() => j(0x02, 1, 0, 7, 0, 0x0b, 200, 0), (e: Error & { code?: string }) => e.code === 'MYSQL_BINLOG_CORRUPT');
  });
});

describe('binary DECIMAL', () => {
  it('decodes the MySQL documentation vectors exactly', () => {
    assert.equal(readDecimal(bytes(0x81, 0x0d, 0xfb, 0x38, 0xd2, 0x04, 0xd2), 0, 14, 4), '1234567890.1234');
    assert.equal(readDecimal(bytes(0x7e, 0xf2, 0x04, 0xc7, 0x2d, 0xfb, 0x2d), 0, 14, 4), '-1234567890.1234');
    assert.equal(readDecimal(bytes(0x80, 0x00, 0x00), 0, 5, 5), '0.00000');
    assert.equal(readDecimal(bytes(0x80, 0x30, 0x39), 0, 5, 0), '12345');
    assert.equal(readDecimal(bytes(0x7f, 0xcf, 0xc6), 0, 5, 0), '-12345');
  });
});
