/**
 * `npm run demo`'s banking run, as a newcomer starts it (minus setup.sh, which `npm test` ran):
 * mock data into MariaDB, the binlog pipeline into MongoDB (mongo-java-server) and the analytics,
 * the live workload and the dashboard for 15 s, then its own check: every lag probe seen, the
 * operational layer equal to MySQL field for field, the four analytics collections equal to SQL over
 * MySQL (account_metrics and transaction_patterns included). The
 * dashboard must answer while it runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';

describe('banking demo', () => {
  it('runs end to end and passes its own check', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/banking/demo.ts', '--seconds', '15', '--port', '0', '--rate', '10'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let page = '';
    let api = '';
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = /dashboard on (http:\/\/\S+)/.exec(out);
      if (m && !page) {
        page = 'pending';
        void (async () => {
          await new Promise((r) => setTimeout(r, 5000));
          page = await (await fetch(m[1])).text();
          const links = [...page.matchAll(/fetch\(['"`]([^'"`]+)['"`]/g)].map((x) => x[1]);
          api = links.length ? await (await fetch(new URL(links[0], m[1]))).text() : '';
        })().catch((e) => (page = `error: ${e.message}`));
      }
    });
    child.stderr.on('data', (d) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    const plain = out.replace(new RegExp(String.fromCharCode(27) + '\\[[0-9;]*m', 'g'), '');
    assert.equal(code, 0, plain);
    assert.match(plain, /banking database: 100 customers, \d+ accounts, \d+ transactions, \d+ agreements/);
    for (const t of ['customers', 'accounts', 'transactions', 'agreements']) assert.match(plain, new RegExp(`✔ ${t}: MySQL (\\d+) rows, ODL \\1 documents, \\d+ mapped fields equal in every row`), plain);
    assert.match(plain, /✔ customer_analytics: 100 documents kept incrementally, 100 by SQL over MySQL, identical/);
    assert.match(plain, /✔ customer_agreement_profiles: (\d+) documents kept incrementally, \1 by SQL over MySQL, identical/);
    assert.match(plain, /✔ account_metrics: (\d+) documents kept incrementally, \1 by SQL over MySQL, identical/);
    assert.match(plain, /✔ transaction_patterns: 100 documents kept incrementally, 100 by SQL over MySQL, identical/);
    assert.match(plain, /✔ lag probes: every probed commit became visible/);
    assert.match(plain, /check passed/);
    const lag = /ODL p50 (\d+) ms/.exec(plain);
    assert.ok(lag, `no lag figure in: ${plain}`);
    assert.match(page, /<html/i, `the dashboard page: ${page.slice(0, 200)}`);
    assert.ok(api.length > 0 && JSON.parse(api), 'the dashboard JSON endpoint answers');
  });
});
