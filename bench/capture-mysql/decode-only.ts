/**
 * bench/capture-mysql/decode-only: how fast the binlog client and decoder alone go (no change
 * events, no log). Writes N rows into a small-row and a mixed 11-column table (unless --from/--to
 * give an existing range), then over that binlog range measures:
 *   stream  — BinlogClient.next() from the server: socket, copy, queue, decode;
 *   decode  — the same events captured raw, decoded again in memory by BinlogDecoder.
 *
 *   node --import tsx bench/capture-mysql/decode-only.ts [--rows 200000] [--repeat 3]
 */
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { BinlogClient } from '../../src/sources/mysql/binlog/client.ts';
import { BinlogDecoder } from '../../src/sources/mysql/binlog/decoder.ts';
import { CharsetCatalog } from '../../src/sources/mysql/binlog/charsets.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, 'txn-rows': { type: 'string', default: '20000' }, repeat: { type: 'string', default: '3' } } });
const ROWS = Number(values.rows);
const TXN_ROWS = Number(values['txn-rows']);
const REPEAT = Number(values.repeat);
const DB = 'sluice_bench_decode';
const conn = { host: '127.0.0.1', port: 3306, user: 'root' };

const MIXED = `(id BIGINT PRIMARY KEY, customer_id INT NOT NULL, status ENUM('NEW','PAID','SHIPPED','DONE') NOT NULL,
      amount DECIMAL(15,2) NOT NULL, rate DOUBLE, note VARCHAR(200), created DATETIME(6) NOT NULL, updated TIMESTAMP(3) NULL,
      flag TINYINT(1) NOT NULL, code CHAR(8), doc TEXT)`;
const mixedRow = (seq: string): string => `${seq}, ${seq} % 1000, ELT(1 + ${seq} % 4, 'NEW','PAID','SHIPPED','DONE'), ${seq} * 1.25, ${seq} / 7,
      CONCAT('order note number ', ${seq}, ' for the benchmark'), '2024-01-15 10:30:00.123456' + INTERVAL ${seq} SECOND,
      '2024-01-15 10:30:00.123' + INTERVAL ${seq} SECOND, ${seq} % 2, LPAD(${seq}, 8, '0'), REPEAT('x', 40 + ${seq} % 40)`;

const TABLES: Record<string, { rows: number; ddl: string; insert: (from: number, to: number) => string }> = {
  small: {
    rows: ROWS,
    ddl: 'CREATE TABLE small (id INT PRIMARY KEY, v VARCHAR(32), n BIGINT)',
    insert: (a, b) => `INSERT INTO small SELECT seq, CONCAT('value-', seq), seq * 7 FROM seq_${a}_to_${b}`,
  },
  mixed: {
    rows: ROWS,
    ddl: `CREATE TABLE mixed ${MIXED}`,
    insert: (a, b) => `INSERT INTO mixed SELECT ${mixedRow('seq')} FROM seq_${a}_to_${b}`,
  },
  // One row per transaction, 500 autocommit statements per round trip.
  txn: {
    rows: TXN_ROWS,
    ddl: `CREATE TABLE txn ${MIXED}`,
    insert: (a, b) => Array.from({ length: b - a + 1 }, (_, i) => `INSERT INTO txn VALUES (${mixedRow(String(a + i))})`).join(';\n'),
  },
};

async function masterStatus(c: mysql.Connection): Promise<{ file: string; pos: number }> {
  const [rows] = await c.query('SHOW MASTER STATUS');
  const r = (rows as { File: string; Position: number }[])[0];
  return { file: r.File, pos: Number(r.Position) };
}

async function main(): Promise<void> {
  const c = await mysql.createConnection({ ...conn, multipleStatements: true });
  await c.query(`DROP DATABASE IF EXISTS ${DB}`);
  await c.query(`CREATE DATABASE ${DB}`);
  await c.query(`USE ${DB}`);
  await c.query('CREATE TABLE marker (v VARCHAR(64) PRIMARY KEY)');
  console.log(`decode-only: ${ROWS} rows in multi-row statements, ${TXN_ROWS} one-row transactions; ${REPEAT} in-memory passes`);
  for (const [name, t] of Object.entries(TABLES)) {
    await c.query(t.ddl);
    const start = await masterStatus(c);
    const step = name === 'txn' ? 500 : 5000;
    for (let a = 1; a <= t.rows; a += step) await c.query(t.insert(a, Math.min(t.rows, a + step - 1)));
    const marker = `end-${name}-${Date.now()}`;
    await c.query('INSERT INTO marker VALUES (?)', [marker]);

    // 1. From the server through BinlogClient.next().
    const t0 = performance.now();
    const client = await BinlogClient.connect({ ...conn, serverId: 700_000 + Math.floor(Math.random() * 1e5), start });
    let rows = 0;
    let bytes = 0;
    for (;;) {
      const ev = await client.next();
      if (!ev) throw new Error('stream ended');
      bytes += ev.header.eventSize;
      if (ev.type === 'rows' && ev.map.database === DB) {
        if (ev.map.table === 'marker' && ev.rows.some((r) => r.after?.[0] === marker)) break;
        if (ev.map.table === name) rows += ev.rows.length;
      }
    }
    const streamSec = (performance.now() - t0) / 1000;
    await client.close();

    // 2. Capture raw, then decode in memory.
    const raw: Buffer[] = [];
    const rc = await BinlogClient.connect({ ...conn, serverId: 700_000 + Math.floor(Math.random() * 1e5), start });
    for (;;) {
      const b = await rc.nextRaw();
      if (!b) throw new Error('stream ended');
      raw.push(b);
      if (b[4] === 23 && b.includes(Buffer.from(marker))) break;
    }
    await rc.close();
    let best = Infinity;
    let decoded = 0;
    for (let i = 0; i < REPEAT; i++) {
      const d = new BinlogDecoder({ checksum: true, mariadb: true, charsets: new CharsetCatalog() });
      decoded = 0;
      const s = performance.now();
      for (const b of raw) {
        const ev = d.decode(b);
        if (ev && ev.type === 'rows' && ev.map.table === name) decoded += ev.rows.length;
      }
      best = Math.min(best, (performance.now() - s) / 1000);
    }
    console.log(
      `${name.padEnd(6)} stream: ${rows} rows in ${streamSec.toFixed(2)} s = ${Math.round(rows / streamSec).toLocaleString('en')} rows/s (${(bytes / streamSec / 1e6).toFixed(1)} MB/s)` +
        ` | decode only: ${Math.round(decoded / best).toLocaleString('en')} rows/s (best of ${REPEAT})`,
    );
    if (rows !== t.rows || decoded !== t.rows) throw new Error(`expected ${t.rows} rows, streamed ${rows}, decoded ${decoded}`);
  }
  await c.query(`DROP DATABASE IF EXISTS ${DB}`);
  await c.end();
}

await main();
