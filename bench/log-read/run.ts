/**
 * bench/log-read: how fast a sink reads the embedded log, apart from any target.
 *
 * The log of bench/sink-apply (N creates then N updates of a 6-column table, Debezium JSON, 3
 * partitions) is read to its end three ways, in alternating order per round:
 *
 * - reference: the partitions' segment files read in 1 MiB chunks (or a whole batch) and walked
 *   record by record through their length prefixes: the floor of any reader of this format;
 * - `log.read`: the log's own read (batch checks, CRC, records decoded);
 * - the sink reader: `BatchReader.next` as a sink worker calls it (ops, schemas, the reduction to
 *   one change per key), with the default batch bounds.
 *
 *   node --import tsx bench/log-read/run.ts [--rows 500000] [--rounds 3]
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { schemaTopicOf } from '../../src/core/schemas.ts';
import { BATCH_HEADER } from '../../src/log/embedded/format.ts';
import { orderFor, showSpread, spread, summarize } from '../common.ts';
import { fillLog, PREFIX, TOPIC } from '../sink-apply/workload.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '500000' }, rounds: { type: 'string', default: '3' } } });
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const RECORDS = 2 * ROWS;
const dir = join(tmpdir(), `sluice-bench-log-read-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const logDir = join(dir, 'log');
process.stderr.write(`filling the log with ${ROWS} creates + ${ROWS} updates…\n`);
await fillLog(logDir, ROWS);

function files(d: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...files(join(d, e.name)));
    else if (e.name.endsWith('.seg')) out.push(join(d, e.name));
  }
  return out;
}

const segmentFiles = files(logDir).filter((f) => f.includes(TOPIC));
if (segmentFiles.length === 0) throw new Error(`no segment files of ${TOPIC} under ${logDir}`);

async function seconds(fn: () => Promise<number>): Promise<number> {
  const t = process.hrtime.bigint();
  const n = await fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (n !== RECORDS) throw new Error(`read ${n} records, expected ${RECORDS}`);
  return s;
}

const ways: Record<string, () => Promise<number>> = {
  async reference() {
    // Read in 1 MiB chunks (or a batch, when larger) into one reused buffer; a batch cut at a
    // chunk's end is read again with the next chunk.
    let buf = Buffer.allocUnsafe(1 << 20);
    let n = 0;
    for (const f of segmentFiles) {
      const fd = openSync(f, 'r');
      let at = 0;
      for (;;) {
        const got = readSync(fd, buf, 0, buf.length, at);
        if (got < BATCH_HEADER) break;
        let pos = 0;
        while (pos + BATCH_HEADER <= got) {
          const end = pos + BATCH_HEADER + buf.readUInt32BE(pos + 4);
          if (end > got) break;
          for (let p = pos + BATCH_HEADER; p < end; p += 4 + buf.readUInt32BE(p)) n++;
          pos = end;
        }
        if (pos === 0) {
          // A batch larger than the buffer: read it whole.
          buf = Buffer.allocUnsafe(BATCH_HEADER + buf.readUInt32BE(4));
          continue;
        }
        at += pos;
      }
      closeSync(fd);
    }
    return n;
  },
  async 'log.read'() {
    const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
    let n = 0;
    for (let p = 0; p < 3; p++) {
      let at = 0;
      for (;;) {
        const r = await log.read(TOPIC, p, at, 1 << 20);
        if (r.records.length === 0) break;
        n += r.records.length;
        at = r.next;
      }
    }
    await log.close();
    return n;
  },
  async 'sink reader'() {
    const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
    const reader = new BatchReader(log, new SchemaStore(log, schemaTopicOf(PREFIX)));
    reader.addTopic(TOPIC, 3, undefined);
    let n = 0;
    for (;;) {
      const b = await reader.next({ maxRecords: 5000, maxBytes: 16 << 20, maxDelayMs: 0 }, 0);
      if (!b || b.records === 0) break;
      n += b.records;
    }
    await log.close();
    return n;
  },
};

const names = Object.keys(ways);
const runs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const name of orderFor(r, names)) {
    const s = await seconds(ways[name]);
    runs[name].push(RECORDS / s);
    process.stderr.write(`round ${r + 1}: ${name} ${Math.round(RECORDS / s)} records/s\n`);
  }
}
rmSync(dir, { recursive: true, force: true });

console.log(`\nlog-read: ${RECORDS} records (${ROWS} creates + ${ROWS} updates, 6 columns, 3 partitions) read from the embedded log; ${ROUNDS} rounds in alternating order, median (min – max)\n`);
console.log('| reader | records/s | / reference |');
console.log('| --- | ---: | ---: |');
for (const name of names) {
  const ratio = runs[name].map((x, i) => x / runs.reference[i]);
  console.log(`| ${name} | ${showSpread(spread(runs[name]))} | ${showSpread(spread(ratio), 2)}× |`);
}
console.log(`\nTarget: the sink reader ≥ 1,000,000 records/s.`);
const reader = spread(runs['sink reader']).median;
summarize([{ bench: 'log-read', what: 'sink reader: records/s', figure: reader, reference: { name: 'segment files walked', figure: spread(runs.reference).median }, target: '≥ 1,000,000 records/s', met: reader >= 1_000_000 }]);
process.exit(0);
