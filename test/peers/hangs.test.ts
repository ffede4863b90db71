/**
 * Hangs and silence: servers that accept TCP but never answer (sources and sinks get a timeout
 * error after connectTimeout and are retried; SIGTERM still ends `sluice run` within seconds),
 * a DuckDB path and a log directory that cannot exist (a coded error at once, not "starting"
 * forever), and servers that stop answering mid-session (a statement or a stream past its
 * deadline gives up the connection, and the pipeline resumes with nothing lost or repeated).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { STOP_DEADLINE_MS } from '../../src/cli/run.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';
import { freezableProxy, silentServer } from '../robustness/tcp.ts';

const statusOf = (dir: string): any => JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8'));

/** Sends SIGTERM and resolves with the exit code and how long the exit took. */
async function terminate(child: ReturnType<typeof startPipelineProcess>): Promise<{ code: number | null; ms: number }> {
  const t = Date.now();
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const code = await exited;
  return { code, ms: Date.now() - t };
}

/** Waits until stderr matches `re` `times` times (the process must still run). */
async function stderrMatches(child: ReturnType<typeof startPipelineProcess>, re: RegExp, times = 1, timeoutMs = 60_000): Promise<void> {
  const g = new RegExp(re.source, 'g');
  await waitUntil(`${re} ×${times} in stderr`, async () => {
    if (child.exitCode !== null) throw new Error(`sluice run exited (${child.exitCode}): ${child.stderrText().slice(-2000)}`);
    return (child.stderrText().match(g)?.length ?? 0) >= times;
  }, timeoutMs);
}

describe('servers that accept TCP but never answer', () => {
  const f = useDatabase(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')`);
  let silent: Awaited<ReturnType<typeof silentServer>>;
  before(async () => (silent = await silentServer()));
  after(async () => silent?.close());

  it('a PostgreSQL or MySQL source: PG_TIMEOUT / MYSQL_TIMEOUT after connectTimeout, retried, and SIGTERM stops it at once', async () => {
    for (const [type, code] of [['postgres', 'PG_TIMEOUT'], ['mysql', 'MYSQL_TIMEOUT']] as const) {
      const cfg = join(f.tmp.dir, `${type}-silent.yaml`);
      writeFileSync(cfg, `name: silent_${type}\nsource:\n  type: ${type}\n  connection: { host: 127.0.0.1, port: ${silent.port}, user: x, database: d, connectTimeout: 1s }\nstate:\n  dir: ${join(f.tmp.dir, type, 'state')}\nlog:\n  dir: ${join(f.tmp.dir, type, 'log')}\n`);
      const child = startPipelineProcess(cfg);
      try {
        await stderrMatches(child, new RegExp(`source failed, retrying .*code=${code} .*did not complete a connection within 1 s`), 2);
        const { code: exit, ms } = await terminate(child);
        assert.equal(exit, 0, child.stderrText());
        assert.ok(ms < 5000, `stopped after ${ms} ms`);
      } finally {
        await stopProcess(child, 'SIGKILL');
      }
    }
  });

  it('SIGTERM ends sluice run within seconds while a connect hangs (connectTimeout far away)', async () => {
    const cfg = join(f.tmp.dir, 'hang.yaml');
    writeFileSync(cfg, `name: hang\nsource:\n  type: postgres\n  connection: { host: 127.0.0.1, port: ${silent.port}, user: x, database: d, connectTimeout: 10m }\nstate:\n  dir: ${join(f.tmp.dir, 'hang', 'state')}\nlog:\n  dir: ${join(f.tmp.dir, 'hang', 'log')}\n`);
    const before = silent.accepted();
    const child = startPipelineProcess(cfg);
    try {
      await waitUntil('the source to connect to the silent port', async () => silent.accepted() > before);
      await new Promise((r) => setTimeout(r, 500));
      const { code, ms } = await terminate(child);
      assert.ok(ms < STOP_DEADLINE_MS + 3000, `exited after ${ms} ms`);
      assert.equal(code, 1);
      assert.match(child.stderrText(), /did not stop within 10 s \(a server is not answering\): exiting; the next run resumes from the last durable checkpoint/);
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
  });

  it('sinks: PostgreSQL, MySQL and MongoDB targets that never answer are retried with SINK_CONNECTION_LOST; a DuckDB file under a directory that cannot exist fails its sink with SINK_TARGET_PATH; the source and a working sink go on', async () => {
    const target = await freshDatabase();
    const cfg = join(f.tmp.dir, 'sinks.yaml');
    writeFileSync(
      cfg,
      pipelineYaml('silent_sinks', f.db.name, join(f.tmp.dir, 'sinks'), '', `sinks:
  - name: pg
    type: postgres
    connection: { host: 127.0.0.1, port: ${silent.port}, user: x, database: d, connectTimeout: 1s }
  - name: my
    type: mysql
    connection: { host: 127.0.0.1, port: ${silent.port}, user: x, database: d, connectTimeout: 1s }
  - name: mongo
    type: mongodb
    connection: mongodb://127.0.0.1:${silent.port}/d?serverSelectionTimeoutMS=1500&connectTimeoutMS=1500
  - name: dk
    type: duckdb
    path: /proc/x/w.duckdb
  - name: ok
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }
`),
    );
    const child = startPipelineProcess(cfg);
    const dir = join(f.tmp.dir, 'sinks');
    try {
      await waitUntil(
        'every sink to report its state',
        async () => {
          if (child.exitCode !== null) throw new Error(child.stderrText());
          const s = statusOf(dir);
          const by = Object.fromEntries(s.sinks.map((x: any) => [x.name, x]));
          return by.pg.error && by.my.error && by.mongo.error && by.dk.state === 'failed' && by.ok.applied >= 2;
        },
        60_000,
      );
      const by = Object.fromEntries(statusOf(dir).sinks.map((x: any) => [x.name, x]));
      for (const [name, what] of [['pg', 'PostgreSQL'], ['my', 'MySQL/MariaDB']]) {
        assert.notEqual(by[name].state, 'failed', `${name} is retried`);
        assert.equal(by[name].error.code, 'SINK_CONNECTION_LOST', name);
        assert.match(by[name].error.message, new RegExp(`^${what.replace('/', '\\/')} at 127\\.0\\.0\\.1:${silent.port} did not complete a connection within 1 s`));
      }
      assert.notEqual(by.mongo.state, 'failed', 'mongo is retried');
      assert.match(by.mongo.error.message, /Server selection timed out after 1500 ms/);
      assert.equal(by.dk.error.code, 'SINK_TARGET_PATH');
      assert.match(by.dk.error.message, /cannot create the directory of DuckDB file \/proc\/x\/w\.duckdb: ENOENT/);
      assert.equal(statusOf(dir).source.phase, 'stream');
      assert.equal(Number((await target.client.query('SELECT count(*) FROM t')).rows[0].count), 2, 'the working sink applied the table');
      const { code, ms } = await terminate(child);
      assert.equal(code, 0, child.stderrText().slice(-2000));
      assert.ok(ms < 5000, `stopped after ${ms} ms`);
    } finally {
      await stopProcess(child, 'SIGKILL');
      await target.drop();
    }
  });

  it('a MongoDB target gives up finding its server after 10 s unless its URL says otherwise', async () => {
    const cfg = join(f.tmp.dir, 'mongo.yaml');
    writeFileSync(cfg, pipelineYaml('silent_mongo', f.db.name, join(f.tmp.dir, 'mongo'), 'snapshot: never', `sinks:\n  - name: mongo\n    type: mongodb\n    connection: mongodb://127.0.0.1:${silent.port}/d\n`));
    const child = startPipelineProcess(cfg);
    try {
      await waitUntil('the mongodb sink to report its error', async () => {
        if (child.exitCode !== null) throw new Error(child.stderrText());
        return statusOf(join(f.tmp.dir, 'mongo')).sinks[0].error !== null;
      });
      const s = statusOf(join(f.tmp.dir, 'mongo')).sinks[0];
      assert.notEqual(s.state, 'failed');
      assert.match(s.error.message, /Server selection timed out after 10000 ms/);
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
  });

  it('a log directory that cannot exist: LOG_DIR at once', async () => {
    const cfg = join(f.tmp.dir, 'logdir.yaml');
    writeFileSync(cfg, `name: logdir\nsource:\n  type: postgres\n  connection: { database: d }\nstate:\n  dir: ${join(f.tmp.dir, 'logdir')}\nlog:\n  dir: /proc/x/log\n`);
    const child = startPipelineProcess(cfg);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 1);
    assert.match(child.stderrText(), /error \[LOG_DIR\]: cannot create the log directory \/proc\/x\/log: ENOENT/);
  });
});

describe('servers that stop answering mid-session', () => {
  const f = useDatabase(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`);
  let toSource: Awaited<ReturnType<typeof freezableProxy>>;
  let toTarget: Awaited<ReturnType<typeof freezableProxy>>;
  before(async () => {
    toSource = await freezableProxy(PG_HOST, PG_PORT);
    toTarget = await freezableProxy(PG_HOST, PG_PORT);
  });
  after(async () => {
    await toSource?.close();
    await toTarget?.close();
  });

  it('a PostgreSQL sink and the PostgreSQL source (stream and statements): past statementTimeout the connection is given up (SINK_CONNECTION_LOST, PG_TIMEOUT), and once the servers answer again every change arrives exactly once', async () => {
    const target = await freshDatabase();
    const dir = join(f.tmp.dir, 'frozen');
    const cfg = join(f.tmp.dir, 'frozen.yaml');
    const through = (port: number, db: string) => `{ host: 127.0.0.1, port: ${port}, user: ${PG_USER}, database: ${db}, connectTimeout: 2s, statementTimeout: 3s }`;
    writeFileSync(
      cfg,
      pipelineYaml('frozen', f.db.name, dir, '', `sinks:\n  - name: w\n    type: postgres\n    connection: ${through(toTarget.port, target.name)}\n`)
        .replace(/ {2}connection:\n {4}host: .*\n {4}port: .*\n {4}user: .*\n {4}database: .*\n/, `  connection: ${through(toSource.port, f.db.name)}\n`)
        .replace('level: warn', 'level: info'),
    );
    const child = startPipelineProcess(cfg);
    const targetCount = async (where = 'true') => Number((await target.client.query(`SELECT count(*) FROM t WHERE ${where}`).catch(() => ({ rows: [{ count: -1 }] }))).rows[0].count);
    try {
      await waitUntil('the snapshot in the target', async () => (await targetCount()) === 100, 60_000);
      await stderrMatches(child, /streaming changes/);
      // The target stops answering while the source goes on: the sink's next statement times out.
      toTarget.freeze();
      await f.db.client.query(`INSERT INTO t SELECT g, 'w' || g FROM generate_series(101, 150) g`);
      await stderrMatches(child, /sink w failed, retrying .*code=SINK_CONNECTION_LOST .*did not answer a statement within 3 s/, 1, 30_000);
      await stderrMatches(child, /sink w failed, retrying .*code=SINK_CONNECTION_LOST .*did not complete a connection within 2 s/, 1, 30_000);
      // Then the source's server: the replication stream and the statements time out.
      toSource.freeze();
      await f.db.client.query(`UPDATE t SET v = 'u' || id WHERE id <= 10; DELETE FROM t WHERE id BETWEEN 11 AND 15`);
      await stderrMatches(child, /source failed, retrying .*code=PG_TIMEOUT/, 1, 30_000);
      toTarget.thaw();
      toSource.thaw();
      await waitUntil('the target to catch up', async () => (await targetCount()) === 145 && (await targetCount(`v LIKE 'u%'`)) === 10, 90_000);
      const { code } = await terminate(child);
      assert.equal(code, 0, child.stderrText().slice(-3000));
      const want = (await f.db.client.query(`SELECT id, v FROM t ORDER BY id`)).rows;
      assert.deepEqual((await target.client.query(`SELECT id, v FROM t ORDER BY id`)).rows, want);
      // The log: every change once (snapshot 100, then 50 inserts, 10 updates, 5 deletes).
      const events = (await readAll(join(dir, 'log'), 'frozen.')).filter((r) => r.value);
      assert.equal(events.length, 165, `events: ${events.map((e) => e.value.op).join('')}`);
      assert.equal(new Set(events.map((e) => `${e.value.op}:${e.value.after?.id ?? e.value.before?.id}:${e.value.source.lsn}`)).size, 165, 'no event twice');
    } finally {
      await stopProcess(child, 'SIGKILL');
      await target.drop();
    }
  });
});

describe('a MySQL binlog stream that goes silent', () => {
  const m = useMysqlDatabase('CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, "a")');
  let proxy: Awaited<ReturnType<typeof freezableProxy>>;
  before(async () => (proxy = await freezableProxy(MYSQL_HOST, MYSQL_PORT)));
  after(async () => proxy?.close());

  it('times out (MYSQL_TIMEOUT) after its missed heartbeats, resumes once the server answers, and loses nothing', async () => {
    const dir = m.tmp.dir;
    const cfg = join(dir, 'my.yaml');
    writeFileSync(cfg, mysqlPipelineYaml('mysilent', m.name, dir).replace(`port: ${MYSQL_PORT}`, `port: ${proxy.port}\n    connectTimeout: 2s\n    statementTimeout: 3s`).replace(`user: ${MYSQL_USER}`, `user: ${MYSQL_USER}`));
    const child = startPipelineProcess(cfg);
    try {
      await waitUntil('the snapshot in the log', async () => (await readAll(join(dir, 'log'), 'mysilent.')).filter((r) => r.value).length === 1, 60_000);
      await new Promise((r) => setTimeout(r, 1500));
      proxy.freeze();
      await m.q(`INSERT INTO t VALUES (2, 'b'), (3, 'c')`);
      await stderrMatches(child, /source failed, retrying .*code=MYSQL_TIMEOUT .*was silent for \d+ s although the server was asked for a heartbeat every 1 s/, 1, 30_000);
      proxy.thaw();
      await waitUntil('the new rows in the log', async () => (await readAll(join(dir, 'log'), 'mysilent.')).filter((r) => r.value).length === 3, 60_000);
      const { code } = await terminate(child);
      assert.equal(code, 0, child.stderrText().slice(-3000));
      const ids = (await readAll(join(dir, 'log'), 'mysilent.')).filter((r) => r.value).map((r) => r.value.after.id).sort();
      assert.deepEqual(ids, [1, 2, 3]);
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
  });
});
