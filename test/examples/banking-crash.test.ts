/**
 * Seed 000's pipeline under fire: `sluice run examples/banking/pipeline.yaml` (MariaDB binlog →
 * MongoDB operational layer → analytics) is killed with SIGKILL again and again — the first time
 * during the snapshot — while the banking workload keeps writing to MariaDB. After a final run has
 * caught up, every ODL collection must hold exactly MySQL's rows, every mapped field equal to its
 * column, and all four analytics collections must equal what SQL over MySQL says: nothing lost,
 * nothing doubled, no derived document left stale by a batch replayed after a crash. The check is
 * then shown to fail on a tampered text, decimal and timestamp field and a stale analytics field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Decimal128, MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { openMongoStores } from '../../src/sinks/document/mongodb.ts';
import { bankingConnectionUrl, createSchema, generate, startWorkload } from '../../examples/banking/generate.ts';
import { formatScaled, toScaled } from '../../examples/banking/money.ts';
import { checkAnalytics, checkOdl } from '../../examples/banking/verify.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { tempDir, waitUntil } from '../helpers/pipeline.ts';

const KILLS = 6;
const MONGO = process.env.MONGO_URL_TEST ?? 'mongodb://127.0.0.1:27017';

describe('banking pipeline: kill -9 under a live workload', () => {
  it(`ODL equals MySQL and the analytics equal SQL over MySQL after ${KILLS} kills`, async () => {
    const tmp = tempDir();
    const conn = await mysql.createConnection({ uri: bankingConnectionUrl() });
    const mongo = new MongoClient(MONGO);
    await mongo.connect();
    try {
      await createSchema(conn, { reset: true });
      await generate(conn, { customers: 100, seed: 7 });
      for (const db of ['odl_crash1', 'odl_crash2']) await mongo.db(db).dropDatabase();
      // The example pipeline as shipped, with its own log and databases.
      const yaml = readFileSync('examples/banking/pipeline.yaml', 'utf8')
        .replace('dir: ./data/banking/log', `dir: ${join(tmp.dir, 'log')}`)
        .replace('database: odl_cluster1', 'database: odl_crash1')
        .replace('database: odl_cluster2', 'database: odl_crash2')
        .replace('module: ./analytics.ts', `module: ${join(process.cwd(), 'examples/banking/analytics.ts')}`)
        .replace(/^log:/m, 'batch:\n  maxRecords: 200\n  maxDelayMs: 5\nlog:');
      assert.ok(yaml.includes('odl_crash2') && yaml.includes(tmp.dir), 'the example pipeline changed shape: update this test');
      const cfgPath = join(tmp.dir, 'pipeline.yaml');
      writeFileSync(cfgPath, yaml);

      const workConn = await mysql.createConnection({ uri: bankingConnectionUrl() });
      const workload = await startWorkload(workConn, { ratePerSec: 40, seed: 7 });
      let child = startPipelineProcess(cfgPath);
      try {
        // The first kill lands during the snapshot or the first batches of documents.
        await new Promise((r) => setTimeout(r, 700));
        for (let i = 0; i < KILLS; i++) {
          await stopProcess(child, 'SIGKILL');
          child = startPipelineProcess(cfgPath);
          await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2500));
        }
      } finally {
        await workload.stop();
        await workConn.end();
      }
      assert.ok(workload.stats().total > 100, `the workload wrote only ${workload.stats().total} changes`);
      const stores = await openMongoStores({ url: MONGO, database: 'odl_crash1', derive: { url: MONGO, database: 'odl_crash2' } });
      try {
        let last: string[] = [];
        await waitUntil('the restarted pipeline caught up with MySQL', async () => {
          if (child.exitCode !== null) throw new Error(`pipeline died: ${child.stderrText()}`);
          const r = await checkOdl(conn, stores.data);
          last = r.lines;
          return r.ok;
        }, 120_000).catch((e) => assert.fail(`${e.message}\n${last.join('\n')}`));
        // Give the derived writes of the last batch a moment, then stop cleanly and compare.
        await new Promise((r) => setTimeout(r, 1000));
        await stopProcess(child);
        const odl = await checkOdl(conn, stores.data);
        assert.ok(odl.ok, odl.lines.join('\n'));
        const ana = await checkAnalytics(conn, stores.derived!);
        assert.ok(ana.ok, ana.lines.join('\n'));
        for (const c of ['account_metrics', 'transaction_patterns']) assert.match(ana.lines.join('\n'), new RegExp(`✔ ${c}: \\d+ documents kept incrementally`));

        // The check fails on a lost change of any mapped field, whatever its type, and on a stale analytics field.
        const odlDb = mongo.db('odl_crash1');
        await odlDb.collection('customers').updateOne({ _id: 3 as never }, { $set: { 'address.city': 'Nowhere' } });
        const account = (await odlDb.collection('accounts').findOne({ _id: 2 as never }))!;
        const cents = toScaled(String(account.financial_info.balance))! + 1n;
        await odlDb.collection('accounts').updateOne({ _id: 2 as never }, { $set: { 'financial_info.balance': Decimal128.fromString(formatScaled(cents)) } });
        await odlDb.collection('transactions').updateOne({ _id: 5 as never }, { $set: { 'metadata.updated_at': new Date(0) } });
        const tampered = await checkOdl(conn, stores.data);
        assert.equal(tampered.ok, false);
        for (const [t, field] of [['customers', 'address.city'], ['accounts', 'financial_info.balance'], ['transactions', 'metadata.updated_at']])
          assert.match(tampered.lines.join('\n'), new RegExp(`✘ ${t}: .*different: ${field.replace('.', '\\.')} ×1`), tampered.lines.join('\n'));
        const risk = (await mongo.db('odl_crash2').collection('customer_analytics').findOne({ _id: 4 as never }))!.risk_profile.default_risk;
        await mongo.db('odl_crash2').collection('customer_analytics').updateOne({ _id: 4 as never }, { $set: { 'risk_profile.default_risk': risk === 'LOW' ? 'HIGH' : 'LOW' } });
        const stale = await checkAnalytics(conn, stores.derived!);
        assert.equal(stale.ok, false);
        assert.match(stale.lines.join('\n'), /✘ customer_analytics: .*1 different \(4 risk_profile\.default_risk: MySQL says/, stale.lines.join('\n'));
      } finally {
        await stores.close();
      }
    } finally {
      await mongo.close();
      await conn.end();
      tmp.remove();
    }
  });
});
