/**
 * Fidelity from a MariaDB source: MySQL's types at their edges (harness.ts), through snapshot and
 * binlog, into PostgreSQL, MariaDB and DuckDB, each value exact or refused with a coded error that
 * names it.
 */
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers/pipeline.ts';
import { useMysqlDatabase } from '../helpers/mysql.ts';
import { freshTargets, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, type Targets } from '../helpers/targets.ts';
import { runFidelity, type Case, type SourceDb } from './harness.ts';

export const MYSQL_CASES: Case[] = [
  {
    name: 'dt6',
    type: 'datetime(6)',
    canon: 'timestamp',
    values: [
      { sql: `'9999-12-31 23:59:59.999999'` },
      { sql: `'2262-04-11 23:47:16.854775'` },
      { sql: `'2255-06-05 23:47:34.740993'` },
      { sql: `'1000-01-01 00:00:00'` },
      { sql: `'0001-01-01 00:00:00'` },
      { sql: `'1970-01-01 00:00:00.000001'` },
      { sql: `'1969-12-31 23:59:59.999999'` },
    ],
  },
  { name: 'dt3', type: 'datetime(3)', canon: 'timestamp', values: [{ sql: `'9999-12-31 23:59:59.999'` }, { sql: `'0001-01-01 00:00:00.001'` }] },
  { name: 'dt0', type: 'datetime', canon: 'timestamp', values: [{ sql: `'9999-12-31 23:59:59'` }, { sql: `'1000-01-01 00:00:00'` }] },
  { name: 'date', type: 'date', canon: 'date', values: [{ sql: `'9999-12-31'` }, { sql: `'0001-01-01'` }, { sql: `'1000-01-01'` }, { sql: `'1969-12-31'` }] },
  { name: 'ts6', type: 'timestamp(6) NULL', canon: 'timestamptz', values: [{ sql: `'1970-01-01 00:00:01'` }, { sql: `'2038-01-19 03:14:07.999999'` }] },
  { name: 'time6', type: 'time(6)', canon: 'duration', values: [{ sql: `'838:59:59.999999'` }, { sql: `'-838:59:59.999999'` }, { sql: `'00:00:00'` }, { sql: `'24:00:00'` }, { sql: `'-00:00:00.000001'` }] },
  { name: 'year', type: 'year', canon: 'int', values: [{ sql: `1901` }, { sql: `2155` }, { sql: `0` }] },
  { name: 'tiny', type: 'tinyint', canon: 'int', values: [{ sql: `-128` }, { sql: `127` }] },
  { name: 'utiny', type: 'tinyint unsigned', canon: 'int', values: [{ sql: `255` }] },
  { name: 'usmall', type: 'smallint unsigned', canon: 'int', values: [{ sql: `65535` }] },
  { name: 'medium', type: 'mediumint', canon: 'int', values: [{ sql: `-8388608` }, { sql: `8388607` }] },
  { name: 'uint', type: 'int unsigned', canon: 'int', values: [{ sql: `4294967295` }] },
  { name: 'big', type: 'bigint', canon: 'int', values: [{ sql: `9223372036854775807` }, { sql: `-9223372036854775808` }] },
  { name: 'ubig', type: 'bigint unsigned', canon: 'decimal', values: [{ sql: `18446744073709551615` }, { sql: `0` }] },
  {
    name: 'dec65',
    type: 'decimal(65,30)',
    canon: 'decimal',
    values: [{ sql: `99999999999999999999999999999999999.999999999999999999999999999999` }, { sql: `-0.000000000000000000000000000001` }, { sql: `0` }],
  },
  { name: 'dec', type: 'decimal(15,2)', canon: 'decimal', values: [{ sql: `2500.75` }, { sql: `-0.01` }] },
  { name: 'float', type: 'float', canon: 'float4', values: [{ sql: `3.40282e38` }, { sql: `-1.17549e-38` }, { sql: `3.14` }] },
  { name: 'double', type: 'double', canon: 'float8', values: [{ sql: `1.7976931348623157e308` }, { sql: `-2.2250738585072014e-308` }, { sql: `0.1` }] },
  { name: 'varchar', type: 'varchar(100)', canon: 'text', values: [{ sql: `'emoji 🙂 and ü'` }, { sql: `''` }, { sql: `'quote '' " \\\\ back'` }] },
  { name: 'text', type: 'longtext', canon: 'text', values: [{ sql: `'line1\\nline2\\ttab'` }] },
  { name: 'latin1', type: 'varchar(20) CHARACTER SET latin1', canon: 'text', values: [{ sql: `'€ café'` }] },
  { name: 'char', type: 'char(4)', canon: 'char', values: [{ sql: `'ab'` }] },
  { name: 'binary', type: 'binary(4)', canon: 'bytes', values: [{ sql: `X'00ff'` }] },
  { name: 'blob', type: 'blob', canon: 'bytes', values: [{ sql: `X'00ff10'` }, { sql: `X''` }] },
  { name: 'enum', type: `enum('a','b c','it''s')`, canon: 'text', values: [{ sql: `'b c'` }, { sql: `'it''s'` }] },
  { name: 'set', type: `set('a','b','c')`, canon: 'text', values: [{ sql: `'a,c'` }, { sql: `''` }] },
  { name: 'bit1', type: 'bit(1)', canon: 'bool', values: [{ sql: `b'1'` }, { sql: `b'0'` }] },
  { name: 'bit64', type: 'bit(64)', canon: { bits: 64, order: 'lsb' }, values: [{ sql: `b'1000000000000000000000000000000000000000000000000000000000000001'` }, { sql: `b'0'` }] },
  { name: 'json', type: 'json', canon: 'json', values: [{ sql: `'{"a": [1, 2.5], "b": "x", "big": 12345678901234567890123}'` }] },
];

describe('fidelity: MariaDB source → every sink', () => {
  const f = useMysqlDatabase();
  let tmp: ReturnType<typeof tempDir>;
  let targets: Targets;
  before(async () => {
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
  });
  after(async () => {
    await targets?.drop();
    tmp?.remove();
  });

  it('every edge value arrives exactly, or stops the sink that cannot hold it with a coded error naming it', async () => {
    const source: SourceDb = {
      kind: 'mysql',
      schema: f.name,
      exec: async (sql) => void (await f.conn.query(sql)),
      rows: async (sql) => (await f.conn.query({ sql, rowsAsArray: true }))[0] as unknown[][],
      quote: (n) => '`' + n.replace(/`/g, '``') + '`',
      sourceYaml: (tables) => `  type: mysql
  connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${f.name} }
  tables: [${tables.map((t) => `${f.name}.${t}`).join(', ')}]
  heartbeatIntervalMs: 500
`,
    };
    await runFidelity({ source, targets, dir: tmp.dir, cases: MYSQL_CASES });
  });
});
