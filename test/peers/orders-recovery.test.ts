/**
 * Seed 001's failure-recovery tests: the orders example (examples/orders) with its parts in three
 * processes on a NATS JetStream log — the source (`--only source`), the processors
 * (`--only processors`) and the DuckDB sink (`--only sinks`) — while the order service writes to
 * MongoDB. Each part is killed with kill -9 mid-run and started again, then the log itself: the
 * test's own nats-server is killed with kill -9 and started again on its store. Afterwards DuckDB
 * holds each change once and every order as the MongoDB collection says.
 *
 * In the peers lane (node scripts/run-tests.mjs test/peers/orders-recovery): about a minute.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import { check } from '../../examples/orders/check.ts';
import { OrderService } from '../../examples/orders/data.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, freePort, tempDir, waitUntil } from '../helpers/pipeline.ts';
import type { LogConfig } from '../../src/config/types.ts';
import { parseConfig } from '../../src/config/index.ts';

const MONGO = 'mongodb://127.0.0.1:27018';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('examples/orders: source, processors, sinks and the log each killed mid-run', () => {
  const tmp = tempDir('sluice-orders-rec-');
  let client: MongoClient;
  let nats: ChildProcess | null = null;
  let natsPort = 0;
  const natsDir = join(tmp.dir, 'nats');

  async function startNats(): Promise<void> {
    nats = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', natsDir], { stdio: 'ignore' });
    await waitUntil('nats-server', async () => {
      const { connect } = await import('node:net');
      return new Promise<boolean>((r) => {
        const s = connect(natsPort, '127.0.0.1', () => {
          s.destroy();
          r(true);
        }).on('error', () => r(false));
      });
    });
  }

  before(async () => {
    execFileSync('bash', ['scripts/mongo-server.sh', 'start'], { env: { ...process.env, MONGO_PORT: '27018', MONGO_OPLOG: '1' }, stdio: 'inherit' });
    client = new MongoClient(`${MONGO}/?directConnection=true`);
    await client.connect();
    natsPort = await freePort();
    mkdirSync(natsDir, { recursive: true });
    await startNats();
  });
  after(async () => {
    await client?.close();
    nats?.kill('SIGKILL');
    tmp.remove();
  });

  it('each change once and each order as the collection says', async () => {
    const dbName = `orders_rec_${process.pid}`;
    const db = client.db(dbName);
    await db.dropDatabase();
    // The example's pipeline with its log on the test's NATS server; each part has its own state directory.
    const yaml = readFileSync('examples/orders/pipeline.yaml', 'utf8').replace(/^log:\n(?: {2}.*\n|\s*#.*\n)*/m, `log:\n  backend: nats\n  servers: ['nats://127.0.0.1:${natsPort}']\n  namespace: orders_rec\n  partitions: 1\n`);
    assert.match(yaml, /backend: nats/);
    const env = { ORDERS_MONGO: MONGO, ORDERS_DB: dbName, ORDERS_DIR: tmp.dir };
    const configs: Record<string, string> = {};
    for (const role of ['source', 'processors', 'sinks']) {
      const path = join(tmp.dir, `${role}.yaml`);
      writeFileSync(path, yaml.replace(/^state:\n {2}dir: .*$/m, `state:\n  dir: ${join(tmp.dir, `state-${role}`)}`));
      configs[role] = path;
    }
    const logCfg = parseConfig(readFileSync(configs.source, 'utf8'), 'x.yaml', { ...process.env, ...env }).log as LogConfig;
    const sourceTopic = `orders.${dbName}.order_events`;
    const uniqueTopic = `unique_changes.${sourceTopic}`;
    const start = (role: string) => startPipelineProcess(configs[role], ['--only', role], [], env);
    const procs: Record<string, ReturnType<typeof start>> = { source: start('source'), processors: start('processors'), sinks: start('sinks') };

    const svc = await OrderService.open(db, 11);
    let running = true;
    const workload = (async () => {
      while (running) {
        await svc.write(50);
        await sleep(100);
      }
    })();
    const progress = (topic: string) => countRecords(logCfg, topic).catch(() => 0);
    const killed: string[] = [];
    try {
      await waitUntil('unique changes in the log', async () => (await progress(uniqueTopic)) > 0, 60_000);
      for (const role of ['source', 'processors', 'sinks']) {
        await sleep(700 + Math.random() * 800);
        const before = await progress(role === 'source' ? sourceTopic : uniqueTopic);
        await stopProcess(procs[role], 'SIGKILL');
        killed.push(role);
        procs[role] = start(role);
        if (role !== 'sinks') await waitUntil(`progress after the ${role} restart`, async () => (await progress(role === 'source' ? sourceTopic : uniqueTopic)) > before, 60_000);
      }
      // The log: the NATS server killed mid-run and started again on its store.
      await sleep(1000);
      const before = await progress(uniqueTopic);
      nats!.kill('SIGKILL');
      await new Promise((r) => nats!.once('exit', r));
      killed.push('log');
      await sleep(1500);
      await startNats();
      await waitUntil('progress after the log came back', async () => (await progress(uniqueTopic)) > before, 90_000);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${Object.entries(procs).map(([r, p]) => `--- ${r}:\n${p.stderrText().slice(-1500)}`).join('\n')}`, { cause: e });
    } finally {
      running = false;
      await workload;
    }
    const total = await db.collection('order_events').countDocuments();
    await waitUntil(`all ${total} events in the log`, async () => (await progress(sourceTopic)) >= total, 120_000).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${await progress(sourceTopic)} there\n${procs.source.stderrText().slice(-3000)}`);
    });
    for (const role of ['source', 'processors', 'sinks']) {
      assert.equal(procs[role].exitCode, null, `the ${role} process is still running after the faults:\n${procs[role].stderrText().slice(-2000)}`);
      await stopProcess(procs[role]);
    }
    const drain = spawnSync(process.execPath, ['bin/sluice.js', 'run', configs.sinks, '--drain', '--only', 'processors,sinks'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(drain.status, 0, drain.stderr.slice(-3000));
    const r = await check(db, tmp.dir);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(killed, ['source', 'processors', 'sinks', 'log']);
    assert.ok(r.repeats > 20 && r.orders > 100, `a workload with repeats: ${JSON.stringify({ ...r, problems: undefined })}`);
    await db.dropDatabase();
  });
});
