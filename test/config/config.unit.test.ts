import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { MysqlSourceConfig, PipelineConfig, PostgresSourceConfig } from '../../src/config/types.ts';

const pgsrc = (c: PipelineConfig): PostgresSourceConfig => c.source as PostgresSourceConfig;
/** The embedded log's settings of a config (the default backend). */
const embedded = (c: PipelineConfig) => {
  assert.equal(c.log.backend, 'embedded');
  return c.log as Extract<PipelineConfig['log'], { backend: 'embedded' }>;
};

const bad = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(yaml, 'p.yaml', env);
  } catch (e) {
    return (e as Error & { code: string }).code + '\n' + (e as Error).message;
  }
  throw new Error('expected the config to be rejected');
};

describe('pipeline config', () => {
  it('fills every default from a minimal config', () => {
    const c = parseConfig('name: shop\nsource:\n  type: postgres\n  connection:\n    database: shop\n', 'p.yaml', {});
    assert.deepEqual(pgsrc(c).connection, { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'shop' });
    assert.equal(pgsrc(c).slot, 'sluice_shop');
    assert.equal(pgsrc(c).publication, 'sluice_shop');
    assert.equal(pgsrc(c).topicPrefix, 'shop');
    assert.equal(pgsrc(c).protocol, 1);
    assert.equal(pgsrc(c).snapshot, 'initial');
    assert.deepEqual(pgsrc(c).tables, []);
    assert.equal(embedded(c).dir, './data/shop/log');
    assert.equal(c.log.partitions, 3);
    assert.deepEqual(c.batch, { maxRecords: 5000, maxBytes: 4 << 20, maxDelayMs: 20 });
    assert.equal(c.serialization.schemas, false);
    assert.equal(c.server, undefined);
  });

  it('accepts a URL connection, env interpolation with defaults, sizes and durations', () => {
    const c = parseConfig(
      'name: a-b.c\nsource:\n  type: postgres\n  connection: postgres://u:${PW}@db.local:6543/${DB:-app}\n  heartbeatIntervalMs: 2s\nlog:\n  segmentBytes: 8MiB\n  dir: $${literal}\n',
      'p.yaml',
      { PW: 's3cr:t' },
    );
    assert.deepEqual(pgsrc(c).connection, { host: 'db.local', port: 6543, user: 'u', password: 's3cr:t', database: 'app' });
    assert.equal(pgsrc(c).heartbeatIntervalMs, 2000);
    assert.equal(embedded(c).segmentBytes, 8 << 20);
    assert.equal(embedded(c).dir, '${literal}');
    assert.equal(pgsrc(c).slot, 'sluice_a_b_c');
  });

  it('names the line, column and key of each problem, sorted by line', () => {
    const msg = bad('name: shop\nsorce: 1\nsource:\n  type: postgres\n  connection: {database: x}\n  protocol: 3\n  snapshot: sometimes\nlog:\n  partitions: "two"\n');
    assert.match(msg, /^CONFIG_INVALID\n/);
    const lines = msg.split('\n').slice(2).map((l) => l.trim());
    assert.equal(lines[0], "p.yaml:2:1: sorce: unknown key (did you mean 'source'?); allowed: name, source, ingest, log, batch, processors, sinks, schedules, alerts, serialization, maxQueueBytes, state, server, logging");
    assert.equal(lines[1], 'p.yaml:6:13: source.protocol: must be 1 or 2 (got 3)');
    assert.equal(lines[2], 'p.yaml:7:13: source.snapshot: must be one of "initial", "never" or "initial_only" (got "sometimes")');
    assert.equal(lines[3], 'p.yaml:9:15: log.partitions: must be an integer (got "two")');
    assert.equal(lines.length, 4);
    assert.match(msg, /invalid config \(4 problems\):/);
  });

  it('reports a missing environment variable and bad units with their line', () => {
    assert.match(
      bad('name: x\nsource:\n  type: postgres\n  connection:\n    database: d\n    password: ${NOPE}\n'),
      /\n {2}p\.yaml:6:15: source\.connection\.password: environment variable NOPE is not set \(set it, or write \$\{NOPE:-default\} for a default\)$/,
    );
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: {database: d}\nbatch:\n  maxBytes: 12 parsecs\n'), /p\.yaml:6:13: batch\.maxBytes: must be a size such as 1048576 or "64MiB" \(got "12 parsecs"\)/);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: mysql://x\n'), /p\.yaml:4:15: source\.connection: must be a URL postgres:\/\/user:password@host:port\/database/);
  });

  it('reports YAML syntax errors and missing keys', () => {
    assert.match(bad('name: x\nsource: [unclosed\n'), /p\.yaml:\d+:\d+: YAML syntax/);
    assert.match(bad('name: x\n\tsource: 1\n'), /\n {2}p\.yaml:2:1: YAML syntax: Tabs are not allowed as indentation$/);
    assert.match(bad('name: x\nsource:\n  type: "postgres\n'), /\n {2}p\.yaml:4:1: YAML syntax: Missing closing "quote$/);
    assert.match(bad('name: x\nname: y\nsource: {}\n'), /\n {2}p\.yaml:2:1: YAML syntax: Map keys must be unique$/);
    assert.match(bad('name: x\n'), /p\.yaml:1:1: the pipeline has neither a source nor processors or sinks: it would do nothing; add a `source`/);
  });

  it('reads interpolated numbers and booleans where the schema wants them; an empty ${VAR} is a value', () => {
    const c = parseConfig(
      'name: x\nsource:\n  type: postgres\n  connection:\n    database: d\n    port: "${PGPORT:-5433}"\n    password: ${PW}\n    user: ${U:-app}\n  streaming: ${STREAM}\n  protocol: ${PROTO}\n',
      'p.yaml',
      { PW: '', U: '', STREAM: 'true', PROTO: '2' },
    );
    assert.deepEqual(pgsrc(c).connection, { host: '127.0.0.1', port: 5433, user: 'app', password: '', database: 'd' });
    assert.equal(pgsrc(c).streaming, true);
    assert.equal(pgsrc(c).protocol, 2);
    // A literal quoted number stays what the user wrote, and is reported.
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: {database: d, port: "5432"}\n'), /p\.yaml:4:35: source\.connection\.port: must be an integer \(got "5432"\)/);
    // An interpolated password that looks like a number stays a string.
    assert.equal((parseConfig('name: x\nsource:\n  type: postgres\n  connection: {database: d, password: "${PW}"}\n', 'p.yaml', { PW: '1234' }).source!.connection as { password?: string }).password, '1234');
  });

  it('points into a connection mapping and at unparseable URLs without echoing the password', () => {
    assert.match(
      bad('name: x\nsource:\n  type: postgres\n  connection:\n    database: d\n    hots: db\n    port: 5432x\n'),
      /\n {2}p\.yaml:6:5: source\.connection\.hots: unknown key \(did you mean 'host'\?\); allowed: host, port, user, password, database, connectTimeout, statementTimeout\n {2}p\.yaml:7:11: source\.connection\.port: must be an integer \(got "5432x"\)$/,
    );
    const m = bad('name: x\nsource:\n  type: postgres\n  connection: postgres://u:hunter2@db:99999/shop\n');
    assert.match(m, /p\.yaml:4:15: source\.connection: not a valid URL \(got "postgres:\/\/u:\*\*\*@db:99999\/shop"\)/);
    assert.doesNotMatch(m, /hunter2/);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: postgres://u@db:5432\n'), /p\.yaml:4:15: source\.connection: the URL names no database: write postgres:\/\/u@db:5432\/<database>/);
  });

  it('suggests near misses of nested keys and explains types', () => {
    const m = bad('name: x\nsource:\n  type: postgres\n  connection: {database: d}\n  tabels: [a.b]\nbatch:\n  maxRecord: 10\nlogging: {level: loud}\nserver: {port: 99999}\nsource2: 1\n');
    const lines = m.split('\n').slice(2).map((l) => l.trim());
    assert.deepEqual(lines, [
      "p.yaml:5:3: source.tabels: unknown key (did you mean 'tables'?); allowed: type, connection, slot, publication, createPublication, tables, snapshot, snapshotFetchSize, heartbeatIntervalMs, retentionCheckIntervalMs, topicPrefix, transactionMetadata, signalTable, incrementalChunkSize, protocol, streaming, binary, intervalHandling, statusIntervalMs, heartbeatActionQuery, skippedOperations",
      "p.yaml:7:3: batch.maxRecord: unknown key (did you mean 'maxRecords'?); allowed: maxRecords, maxBytes, maxDelayMs",
      'p.yaml:8:18: logging.level: must be one of "debug", "info", "warn" or "error" (got "loud")',
      'p.yaml:9:16: server.port: must be <= 65535 (got 99999)',
      "p.yaml:10:1: source2: unknown key (did you mean 'source'?); allowed: name, source, ingest, log, batch, processors, sinks, schedules, alerts, serialization, maxQueueBytes, state, server, logging",
    ]);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: {database: d}\n  snapshot: inital\n'), /p\.yaml:5:13: source\.snapshot: must be one of "initial", "never" or "initial_only" \(got "inital"; did you mean "initial"\?\)/);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: {database: d}\n  tables: public.a\n'), /p\.yaml:5:11: source\.tables: must be a list \(got "public\.a"\)/);
    assert.match(bad('name: my pipeline\nsource:\n  type: postgres\n  connection: {database: d}\n'), /p\.yaml:1:7: name: "my pipeline" is not allowed here \(letters, digits, _ \. -\)/);
  });

  it('converts every size and duration unit, and keeps all defaults of the type', () => {
    const c = parseConfig(
      'name: Shop-EU.1\nsource:\n  type: postgres\n  connection: {database: d}\n  statusIntervalMs: 500ms\n  heartbeatIntervalMs: 0\nlog:\n  retentionMs: 7d\n  retentionBytes: 1.5GiB\nbatch: {maxBytes: 1KB, maxDelayMs: 2m}\nmaxQueueBytes: 100\nserver: {}\n',
      'p.yaml',
      {},
    );
    assert.equal(pgsrc(c).statusIntervalMs, 500);
    assert.equal(pgsrc(c).heartbeatIntervalMs, 0);
    assert.equal(c.log.retentionMs, 7 * 86_400_000);
    assert.equal(c.log.retentionBytes, 1.5 * 2 ** 30);
    assert.deepEqual(c.batch, { maxRecords: 5000, maxBytes: 1000, maxDelayMs: 120_000 });
    assert.equal(c.maxQueueBytes, 100);
    assert.deepEqual(c.server, { host: '127.0.0.1', port: 8080 });
    assert.equal(pgsrc(c).slot, 'sluice_shop_eu_1');
    assert.equal(pgsrc(c).topicPrefix, 'Shop-EU.1');
    assert.deepEqual(
      { ...c.source, connection: undefined },
      {
        type: 'postgres',
        connection: undefined,
        slot: 'sluice_shop_eu_1',
        publication: 'sluice_shop_eu_1',
        tables: [],
        protocol: 1,
        streaming: false,
        binary: false,
        snapshot: 'initial',
        snapshotFetchSize: 10000,
        heartbeatIntervalMs: 0,
        retentionCheckIntervalMs: 10_000,
        statusIntervalMs: 500,
        intervalHandling: 'string',
        heartbeatActionQuery: '',
        skippedOperations: ['t'],
        topicPrefix: 'Shop-EU.1',
        transactionMetadata: false,
        signalTable: '',
        incrementalChunkSize: 4096,
        createPublication: true,
      },
    );
    assert.deepEqual(c.logging, { level: 'info', format: 'text' });
    assert.equal(embedded(c).segmentBytes, 64 * 2 ** 20);
  });

  it('loadConfig reads a file and names it in errors; exportJsonSchema describes every key', async () => {
    const { loadConfig, exportJsonSchema } = await import('../../src/config/index.ts');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    try {
      const f = join(dir, 'pipeline.yaml');
      writeFileSync(f, 'name: x\nsource:\n  type: postgres\n  connection:\n    database: ${DB}\n');
      assert.equal(((await loadConfig(f, { DB: 'shop' })).source!.connection as { database?: string }).database, 'shop');
      await assert.rejects(loadConfig(f, {}), (e: Error & { code: string }) => e.code === 'CONFIG_INVALID' && e.message.includes(`${f}:5:15: source.connection.database: environment variable DB is not set`));
      await assert.rejects(loadConfig(join(dir, 'missing.yaml')), /cannot read config .*missing\.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const schema = exportJsonSchema() as { properties: Record<string, unknown>; additionalProperties: boolean };
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(Object.keys(schema.properties), ['name', 'source', 'ingest', 'log', 'batch', 'processors', 'sinks', 'schedules', 'alerts', 'serialization', 'maxQueueBytes', 'state', 'server', 'logging']);
  });

  it('sinks: defaults per type, errors at the sink key with its line, duplicate names refused', () => {
    const c = parseConfig(
      'name: shop\nsource: {type: postgres, connection: {database: shop}}\nsinks:\n  - {name: pg, type: postgres, connection: "postgres://u@h:5433/dw"}\n  - {name: my, type: mysql, connection: "mysql://root@db/shop", deletes: soft}\n  - {name: dk, type: duckdb, path: w.duckdb, batch: {maxDelayMs: 1s}}\n',
      'p.yaml',
      {},
    );
    assert.deepEqual(c.sinks.map((s) => [s.name, s.type, 'tableName' in s ? s.tableName : undefined, 'deletes' in s ? s.deletes : undefined, s.batch.maxDelayMs]), [
      ['pg', 'postgres', '{table}', 'hard', 20],
      ['my', 'mysql', '{table}', 'soft', 20],
      ['dk', 'duckdb', '{table}', 'hard', 1000],
    ]);
    assert.deepEqual(c.sinks[0].type === 'postgres' && [c.sinks[0].connection.port, c.sinks[0].connection.database, c.sinks[0].schema], [5433, 'dw', 'public']);
    assert.deepEqual(c.sinks[1].type === 'mysql' && [c.sinks[1].connection.port, c.sinks[1].connection.user, c.sinks[1].connection.database], [3306, 'root', 'shop']);
    assert.equal(c.sinks[2].type === 'duckdb' && c.sinks[2].changeTableName, '{table}_changes');
    const msg = bad('name: shop\nsource: {type: postgres, connection: {database: shop}}\nsinks:\n  - name: dk\n    type: duckdb\n    pth: w.duckdb\n  - name: my\n    type: mysql\n    connection: {database: x}\n    deletes: sof\n');
    assert.match(msg, /p\.yaml:4:5: sinks\.0: missing required key 'path'/);
    assert.match(msg, /p\.yaml:6:5: sinks\.0\.pth: unknown key \(did you mean 'path'\?\)/);
    assert.match(msg, /p\.yaml:10:14: sinks\.1\.deletes: must be "hard" or "soft" \(got "sof"; did you mean "soft"\?\)/);
    assert.match(bad('name: s\nsource: {type: postgres, connection: {database: s}}\nsinks:\n  - name: m\n    type: mysql\n    connection: mysql://root:secret@db:3306\n'), /p\.yaml:6:17: sinks\.0\.connection: the URL names no database: write mysql:\/\/root:\*\*\*@db:3306\/<database>/);
    const dup = bad('name: shop\nsource: {type: postgres, connection: {database: shop}}\nsinks:\n  - {name: a, type: duckdb, path: x}\n  - {name: a, type: duckdb, path: y}\n');
    assert.match(dup, /p\.yaml:5:\d+: sinks\.1\.name: another sink is already named "a"/);
  });

  it('a pipeline without a source runs sinks over named topics; a sink without topics there is refused at its line', () => {
    const ok = parseConfig("name: apply\nlog: { backend: kafka }\nsinks:\n  - name: pg\n    type: postgres\n    topics: ['dbserver1.inventory.*']\n    connection: { database: t }\n", 'p.yaml', {});
    assert.equal(ok.source, undefined);
    assert.deepEqual(ok.sinks[0].topics, ['dbserver1.inventory.*']);
    const msg = bad('name: apply\nsinks:\n  - name: pg\n    type: postgres\n    connection: { database: t }\n');
    assert.match(msg, /^CONFIG_INVALID/);
    assert.match(msg, /p\.yaml:3:\d+: sinks\.0: sink "pg" reads the source's change topics by default, but the pipeline has no source: list the topics it applies/);
    assert.match(bad('name: idle\n'), /neither a source nor processors or sinks/);
  });

  it('mysql source: defaults, a URL without a database, and errors that name its own keys', () => {
    const c = parseConfig('name: bank\nsource:\n  type: mysql\n  connection: mysql://repl:${PW}@db:3307\n  tables: [banking.customers]\n', 'p.yaml', { PW: 'p@ss' });
    assert.equal(c.source?.type, 'mysql');
    const s = c.source as MysqlSourceConfig;
    assert.deepEqual(s.connection, { host: 'db', port: 3307, user: 'repl', password: 'p@ss', database: undefined });
    assert.equal(s.gtid, 'auto');
    assert.deepEqual(s.skippedOperations, ['t'], "truncates skipped, as Debezium's skipped.operations default");
    assert.equal(s.mariadbConnector, 'mariadb');
    assert.equal(s.snapshot, 'initial');
    assert.equal(s.topicPrefix, 'bank');
    assert.ok(s.serverId >= 5400 && s.serverId < 6400, `server id ${s.serverId}`);
    assert.equal((parseConfig('name: bank\nsource:\n  type: mysql\n  connection: {database: x}\n', 'p.yaml', {}).source as MysqlSourceConfig).serverId, s.serverId, 'the server id is stable per pipeline name');
    const lines = bad('name: b\nsource:\n  type: mysql\n  connection: mysql://root@h/db\n  slot: s1\n  gtid: of\n  serverId: 0\n').split('\n').slice(2).map((l) => l.trim());
    assert.deepEqual(lines, [
      "p.yaml:5:3: source.slot: unknown key; allowed: type, connection, tables, snapshot, snapshotFetchSize, heartbeatIntervalMs, retentionCheckIntervalMs, topicPrefix, transactionMetadata, signalTable, incrementalChunkSize, serverId, skippedOperations, mariadbConnector, gtid",
      'p.yaml:6:9: source.gtid: must be "auto" or "off" (got "of"; did you mean "off"?)',
      'p.yaml:7:13: source.serverId: must be >= 1 (got 0)',
    ]);
    assert.match(bad('name: b\nsource:\n  type: mysql\n  connection: postgres://x/db\n'), /p\.yaml:4:15: source\.connection: must be a URL mysql:\/\/user:password@host:port\[\/database\]/);
  });
});
