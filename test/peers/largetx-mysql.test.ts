/**
 * A 1M-row single MariaDB transaction goes through the MySQL source with bounded memory: the
 * binlog client pauses the socket when its queue is full, and the source commits the transaction
 * to the log in pieces (the checkpoint's skip count covers the part already written). The V8 heap
 * is capped far below the size of the transaction's events, so holding it would crash the process.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { peakRssMiB, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';
import { countRecords, readAll, waitUntil } from '../helpers/pipeline.ts';

const ROWS = 1_000_000;
const RSS_BOUND_MIB = 300;
const HEAP_CAP_MIB = 160;

describe('mysql source: large transactions', () => {
  const f = useMysqlDatabase(`CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT, price DECIMAL(12,2))`);

  it(`${ROWS} rows in one transaction, memory bounded, each exactly once`, async () => {
    const cfgPath = join(f.tmp.dir, 'big.yaml');
    writeFileSync(cfgPath, mysqlPipelineYaml('bigm', f.name, f.tmp.dir, `tables: [${f.name}.items]\nsnapshot: never\ntransactionMetadata: true`));
    const child = startPipelineProcess(cfgPath, [], [`--max-old-space-size=${HEAP_CAP_MIB}`]);
    const logDir = join(f.tmp.dir, 'log');
    const topic = `bigm.${f.name}.items`;
    try {
      await waitUntil('the pipeline streaming', async () => {
        if (child.exitCode !== null) throw new Error(`pipeline died: ${child.stderrText()}`);
        const { readFileSync, existsSync } = await import('node:fs');
        return existsSync(join(f.tmp.dir, 'state', 'status.json')) && JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8')).source?.phase === 'stream';
      });
      await f.q(`INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 100, seq * 0.01 FROM seq_1_to_${ROWS}`);
      await waitUntil(`${ROWS} events in the log`, async () => {
        if (child.exitCode !== null) throw new Error(`pipeline died: ${child.stderrText()}`);
        return (await countRecords(logDir, topic)) >= ROWS;
      }, 300_000);
      const rss = peakRssMiB(child.pid!);
      console.log(`# ${ROWS} rows in one MariaDB transaction: pipeline peak RSS ${rss.toFixed(0)} MiB with the V8 heap capped at ${HEAP_CAP_MIB} MiB`);
      assert.ok(rss < RSS_BOUND_MIB, `peak RSS ${rss.toFixed(0)} MiB exceeds ${RSS_BOUND_MIB} MiB: the transaction is being held in memory`);
    } finally {
      await stopProcess(child);
    }
    assert.equal(await countRecords(logDir, topic), ROWS);
    const recs = await readAll(logDir, topic);
    assert.equal(new Set(recs.map((r) => r.key.id)).size, ROWS, 'every row exactly once');
    const last = recs.find((r) => r.key.id === ROWS)!;
    assert.deepEqual(last.value.after, { id: ROWS, name: `item ${ROWS}`, qty: 0, price: '10000.00' });
    // One transaction: one id on every event, and the END record counts them all.
    const tx = await readAll(logDir, 'bigm.transaction');
    assert.deepEqual(tx.map((r) => r.value.status), ['BEGIN', 'END']);
    assert.equal(tx[1].value.event_count, ROWS);
  });
});
