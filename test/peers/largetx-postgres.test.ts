/**
 * A 1M-row single transaction goes through with bounded memory (protocol 1: written to the log
 * in pieces as it arrives; protocol 2 with streaming: spilled to disk until commit), and an
 * aborted streamed transaction leaves nothing in the log. Peak RSS is printed; the bound asserted
 * is far below what holding the transaction in memory would take (~1M × 400 bytes of events), and
 * the V8 heap is capped (see HEAP_CAP_MIB).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { peakRssMiB, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const RSS_BOUND_MIB = 300;
/**
 * The pipeline runs with a V8 heap capped well below the size of the transaction's events, so
 * holding the transaction in memory would crash it (peak RSS alone mostly shows how lazily V8
 * collects garbage).
 */
const HEAP_CAP_MIB = 160;

describe('large transactions', () => {
  const f = useDatabase(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric(12,2))`);

  for (const mode of [
    { name: 'protocol 1', extra: 'protocol: 1', rows: 1_000_000 },
    { name: 'protocol 2 streaming', extra: 'protocol: 2\nstreaming: true', rows: 300_000 },
  ]) {
    it(`${mode.name}: ${mode.rows} rows in one transaction, memory bounded`, async () => {
      const slug = mode.name.replace(/\W+/g, '_');
      const dir = join(f.tmp.dir, slug);
      const cfgPath = join(f.tmp.dir, `${slug}.yaml`);
      await f.db.client.query(`TRUNCATE items`);
      const slot = `slot_${slug}_${f.db.name.slice(-8)}`;
      writeFileSync(cfgPath, pipelineYaml(`big_${slug}`, f.db.name, dir, `${mode.extra}\nsnapshot: never\nslot: ${slot}\npublication: pub_${slug}\ntables: [public.items]`));
      // The walsender decoding for Sluice reads logical_decoding_work_mem from its own session,
      // which takes the database's settings: this makes the server stream (protocol 2) or spill
      // (protocol 1) the large transaction instead of sending it whole at commit.
      await f.db.client.query(`ALTER DATABASE ${f.db.name} SET logical_decoding_work_mem = '64kB'`);
      const child = startPipelineProcess(cfgPath, [], [`--max-old-space-size=${HEAP_CAP_MIB}`]);
      try {
        await waitUntil('slot active', async () => {
          if (child.exitCode !== null) throw new Error(`pipeline died: ${child.stderrText()}`);
          return (await f.db.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [`slot_${slug}_${f.db.name.slice(-8)}`])).rowCount === 1;
        });
        if (mode.extra.includes('streaming')) {
          await f.db.client.query(`BEGIN; INSERT INTO items SELECT g, 'aborted', 0, 0 FROM generate_series(-50000, -1) g; ROLLBACK`);
        }
        await f.db.client.query(`INSERT INTO items SELECT g, 'item ' || g, g % 100, g * 0.01 FROM generate_series(1, ${mode.rows}) g`);
        const topic = `big_${slug}.public.items`;
        await waitUntil(`${mode.rows} events in the log`, async () => {
          if (child.exitCode !== null) throw new Error(`pipeline died: ${child.stderrText()}`);
          return (await countRecords(join(dir, 'log'), topic)) >= mode.rows;
        }, 300_000);
        const rss = peakRssMiB(child.pid!);
        console.log(`# ${mode.name}: ${mode.rows} rows in one transaction, pipeline peak RSS ${rss.toFixed(0)} MiB with the V8 heap capped at ${HEAP_CAP_MIB} MiB`);
        assert.ok(rss < RSS_BOUND_MIB, `peak RSS ${rss.toFixed(0)} MiB exceeds ${RSS_BOUND_MIB} MiB: the transaction is being held in memory`);
        assert.equal(await countRecords(join(dir, 'log'), topic), mode.rows);
        if (mode.rows <= 300_000) {
          const recs = await readAll(join(dir, 'log'), topic);
          assert.equal(recs.filter((r) => r.value.after.name === 'aborted').length, 0, 'aborted transaction must not reach the log');
          assert.equal(new Set(recs.map((r) => r.key.id)).size, mode.rows);
        }
        // The server really did what the test is about: it streamed both transactions in progress
        // (protocol 2: the aborted one too, so Stream Abort was handled), or spilled the large one
        // to disk on its side (protocol 1: Sluice received it whole at commit).
        const stats = async () => (await f.db.client.query(`SELECT stream_txns::int AS stream, spill_txns::int AS spill FROM pg_stat_replication_slots WHERE slot_name = $1`, [slot])).rows[0] ?? { stream: 0, spill: 0 };
        if (mode.extra.includes('streaming')) await waitUntil('the server streamed both transactions in progress', async () => (await stats()).stream >= 2, 30_000);
        else await waitUntil('the server spilled the transaction (it exceeded logical_decoding_work_mem)', async () => (await stats()).spill >= 1, 30_000);
      } finally {
        await stopProcess(child);
        await f.db.client.query(`ALTER DATABASE ${f.db.name} RESET logical_decoding_work_mem`);
      }
    });
  }
});
