/**
 * Secrets never shown: a pipeline whose config holds a database password (in a connection mapping
 * and inside connection URLs), a gateway token and a schedule's API key (header and query) prints
 * none of them anywhere an operator looks: its log on stderr (text and JSON), status.json, GET
 * /status, /health and /metrics, `sluice status` (text and --json), `sluice validate`, `sluice
 * schedules run` failing against an API that refuses (whose error once named the whole URL), the
 * run's entry in the history topic and `sluice schedules history`, and the errors of connections
 * that fail (a sink and a source at a port nobody listens on). PostgreSQL here trusts local connections, so any
 * password connects.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freePort, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const PASSWORD = 'Secr3t-Pa55';
const TOKEN = 'Tok3n-Secr3t-0123456789';
const HEADER = 'H3ader-Secr3t-99';
const QUERY = 'Qu3ry-Secr3t-77';
const SECRETS = [PASSWORD, encodeURIComponent(PASSWORD), TOKEN, HEADER, QUERY];

const sluice = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, all: `${r.stdout}\n${r.stderr}` };
};

/** Fails naming where a secret showed and the text around it. */
function assertNoSecret(where: string, text: string): void {
  for (const s of SECRETS) {
    const i = text.indexOf(s);
    assert.equal(i, -1, `${where} shows a secret: …${text.slice(Math.max(0, i - 200), i + 100)}…`);
  }
}

describe('secrets never shown', () => {
  const f = useDatabase(`
    CREATE TABLE orders (id int PRIMARY KEY, note text);
    INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 20) g;
  `);

  const configYaml = (o: { name: string; sourcePort: number; serverPort: number; gatewayPort: number; targetDb: string; dir: string }) => `name: ${o.name}
source:
  type: postgres
  connection:
    host: ${PG_HOST}
    port: ${o.sourcePort}
    user: ${PG_USER}
    password: ${PASSWORD}
    database: ${f.db.name}
  slot: ${o.name}_${f.db.name.slice(-8).toLowerCase().replace(/[^a-z0-9_]/g, '_')}
  heartbeatIntervalMs: 500
  statusIntervalMs: 500
state:
  dir: ${join(o.dir, 'state')}
log:
  dir: ${join(o.dir, 'log')}
  partitions: 1
logging:
  level: debug
server:
  host: 127.0.0.1
  port: ${o.serverPort}
batch:
  maxDelayMs: 5
sinks:
  - name: replica
    type: postgres
    connection: postgres://${PG_USER}:${PASSWORD}@${PG_HOST}:${PG_PORT}/${o.targetDb}
  - name: away
    type: postgres
    connection: postgres://${PG_USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:1/${o.targetDb}
ingest:
  host: 127.0.0.1
  port: ${o.gatewayPort}
  credentials:
    - {name: app, token: ${TOKEN}}
  routes:
    - {path: /events, topic: ${o.name}_events, key: user, allow: [app]}
schedules:
  - name: pull
    cron: "0 0 1 1 *"
    request:
      url: http://sched:${PASSWORD}@127.0.0.1:1/items?api_key=${QUERY}
      headers:
        Authorization: Bearer ${HEADER}
      timeoutMs: 2s
    retries: { attempts: 1 }
    topic: ${o.name}_pulled
`;

  it('not in logs, status, /status, the CLI or connection errors', async () => {
    const target = await freshDatabase();
    try {
      const ports = { serverPort: await freePort(), gatewayPort: await freePort() };
      const cfgPath = join(f.tmp.dir, 'sec.yaml');
      writeFileSync(cfgPath, configYaml({ name: 'sec', sourcePort: PG_PORT, ...ports, targetDb: target.name, dir: f.tmp.dir }));

      const validate = sluice('validate', cfgPath);
      assert.equal(validate.code, 0, validate.all);
      assertNoSecret('sluice validate', validate.all);

      for (const format of ['json', 'text']) {
        const child = startPipelineProcess(cfgPath, ['--log-format', format]);
        const base = `http://127.0.0.1:${ports.serverPort}`;
        try {
          await waitUntil('the replica has the rows and the away sink failed', async () => {
            const n = await target.client.query('SELECT count(*)::int AS n FROM public.orders').then((r) => r.rows[0].n, () => 0);
            const st = JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
            // This run's status (the file of the run before stays until the new one writes).
            return n === 20 && st.pid === child.pid && st.sinks?.some((s: any) => s.name === 'away' && s.error) && (await fetch(`${base}/health`)).status > 0;
          }, 20_000).catch((e) => {
            throw new Error(`${e.message}\n${child.stderrText().slice(-3000)}`);
          });
          const sent = await fetch(`http://127.0.0.1:${ports.gatewayPort}/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"user":"u1"}' });
          assert.equal(sent.status, 200, await sent.text());
          const refused = await fetch(`http://127.0.0.1:${ports.gatewayPort}/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}x`, 'content-type': 'application/json' }, body: '{"user":"u1"}' });
          assert.equal(refused.status, 401);
          assertNoSecret('a refused request', await refused.text());
          for (const path of ['/status', '/health', '/metrics']) assertNoSecret(`GET ${path}`, await (await fetch(base + path)).text());
          assertNoSecret('status.json', readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
          for (const args of [[], ['--json']]) {
            const st = sluice('status', '--config', cfgPath, ...args);
            assert.equal(st.code, 0, st.all);
            assert.match(st.out, /away/, 'the failed sink is shown');
            assertNoSecret(`sluice status ${args.join(' ')}`, st.all);
          }
        } catch (e) {
          throw new Error(`${(e as Error).message}\n${child.stderrText().slice(-4000)}`, { cause: e });
        } finally {
          await stopProcess(child);
        }
        const log = child.stderrText();
        assert.match(log, /cannot connect to PostgreSQL at 127\.0\.0\.1:1|ECONNREFUSED/, 'the away sink logged its failure');
        if (format === 'json') for (const line of log.trim().split('\n')) JSON.parse(line);
        assertNoSecret(`the ${format} log`, log);
        assertNoSecret('status.json after the stop', readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
      }

      // A schedule run against an API that refuses: its error names the URL without password or
      // key, on the terminal, in the history topic and in `sluice schedules history`.
      const pulled = sluice('schedules', 'run', cfgPath, 'pull');
      assert.notEqual(pulled.code, 0, 'nothing listens on port 1');
      assert.match(pulled.all, /SCHEDULE_NETWORK\] GET http:\/\/127\.0\.0\.1:1\/items\?…/, pulled.all);
      assertNoSecret('sluice schedules run', pulled.all);
      const stored = await readAll(join(f.tmp.dir, 'log'), 'sec.schedules');
      assert.ok(stored.some((r) => r.value?.error?.code === 'SCHEDULE_NETWORK'), 'the failed run is recorded');
      assertNoSecret('the history topic', JSON.stringify(stored));
      for (const args of [[], ['--json']]) {
        const h = sluice('schedules', 'history', cfgPath, ...args);
        assert.equal(h.code, 0, h.all);
        assert.match(h.out, /SCHEDULE_NETWORK/);
        assertNoSecret(`sluice schedules history ${args.join(' ')}`, h.all);
      }

      // A source at a port nobody listens on: `sluice status --config` asks the server, `sluice run` retries.
      const awayPath = join(f.tmp.dir, 'away.yaml');
      writeFileSync(awayPath, configYaml({ name: 'sec', sourcePort: 1, ...ports, targetDb: target.name, dir: f.tmp.dir }).replace(/^sinks:[\s\S]*$/m, ''));
      for (const args of [[], ['--json']]) {
        const st = sluice('status', '--config', awayPath, ...args);
        assert.match(st.all, /cannot connect to PostgreSQL at 127\.0\.0\.1:1/, st.all);
        assertNoSecret(`sluice status ${args.join(' ')} (source away)`, st.all);
      }
      const urlPath = join(f.tmp.dir, 'away-url.yaml');
      writeFileSync(urlPath, readFileSync(awayPath, 'utf8').replace(/connection:\n( {4}.*\n)+/, `connection: postgresql://${PG_USER}:${PASSWORD}@127.0.0.1:1/${f.db.name}?sslmode=disable\n`));
      const run = startPipelineProcess(urlPath, ['--log-format', 'text']);
      try {
        await waitUntil('the source logged that it cannot connect', async () => /cannot connect|ECONNREFUSED/.test(run.stderrText()), 15_000);
      } finally {
        await stopProcess(run);
      }
      assertNoSecret('sluice run with the source away', run.stderrText());
      assert.ok(existsSync(join(f.tmp.dir, 'state', 'status.json')));
      assertNoSecret('status.json with the source away', readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
    } finally {
      await target.drop();
    }
  });
});
