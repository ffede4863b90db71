/**
 * bench/log-read: how fast a sink reads the embedded log, apart from any target, and what the
 * log's compression costs and saves.
 *
 * The log of bench/sink-apply (N creates then N updates of a 6-column table, Debezium JSON, 3
 * partitions) is written once per codec per round (uncompressed, LZ4, Brotli; alternating order):
 * the write rate and the bytes on disk of each. Then it is read to its end these ways, in
 * alternating order per round:
 *
 * - reference: the partitions' segment files of the default-codec log read in 1 MiB chunks (or a
 *   whole batch), each batch decompressed and walked record by record through the length
 *   prefixes: the floor of any reader of this format;
 * - `log.read`: the log's own read (batch checks, CRC, decompression, records decoded);
 * - the sink reader: `BatchReader.next` as a sink worker calls it (ops, schemas, the reduction to
 *   one change per key), with the default batch bounds, on the log of each codec.
 *
 *   node --import tsx bench/log-read/run.ts [--rows 500000] [--rounds 3]
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { schemaTopicOf } from '../../src/core/schemas.ts';
import { BATCH_HEADER, batchRecords, CODECS as ALL_CODECS, codecFor, DEFAULT_COMPRESSION, readBatchHeader, type Codec } from '../../src/log/embedded/format.ts';
import { orderFor, showSpread, spread, summarize } from '../common.ts';
import { fillLog, PREFIX, TOPIC } from '../sink-apply/workload.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '500000' }, rounds: { type: 'string', default: '3' } } });
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const RECORDS = 2 * ROWS;
const dir = join(tmpdir(), `sluice-bench-log-read-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
/** Every codec, the uncompressed log first (the pairs' base). */
const CODECS: Codec[] = ['none', ...ALL_CODECS.filter((c) => c !== 'none')];
/** What the default setting writes here. */
const DEFAULT_CODEC = codecFor(DEFAULT_COMPRESSION);
const logDirOf = (codec: Codec) => join(dir, `log-${codec}`);

function files(d: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...files(join(d, e.name)));
    else if (e.name.endsWith('.seg')) out.push(join(d, e.name));
  }
  return out;
}

async function seconds(fn: () => Promise<number>): Promise<number> {
  const t = process.hrtime.bigint();
  const n = await fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (n !== RECORDS) throw new Error(`read ${n} records, expected ${RECORDS}`);
  return s;
}

async function sinkReader(codec: Codec): Promise<number> {
  const log = await openLog(embeddedLogAt(logDirOf(codec)), { readOnly: true });
  const reader = new BatchReader(log, new SchemaStore(log, schemaTopicOf(PREFIX)));
  reader.addTopic(TOPIC, 3, undefined);
  let n = 0;
  for (;;) {
    const b = await reader.next({ maxRecords: 5000, maxBytes: 16 << 20, maxDelayMs: 0 }, 0);
    if (!b || b.records === 0) break;
    n += b.records;
    // As the sink task does once a batch is applied: its buffers may hold later batches.
    reader.release(b);
  }
  await log.close();
  return n;
}

const ways: Record<string, () => Promise<number>> = {
  async reference() {
    // Read in 1 MiB chunks (or a batch, when larger) into one reused buffer; a batch cut at a
    // chunk's end is read again with the next chunk.
    let buf = Buffer.allocUnsafe(1 << 20);
    let n = 0;
    for (const f of files(logDirOf(DEFAULT_CODEC)).filter((x) => x.includes(TOPIC))) {
      const fd = openSync(f, 'r');
      let at = 0;
      for (;;) {
        const got = readSync(fd, buf, 0, buf.length, at);
        if (got < BATCH_HEADER) break;
        let pos = 0;
        while (pos + BATCH_HEADER <= got) {
          const h = readBatchHeader(buf, pos)!;
          const end = pos + BATCH_HEADER + h.payloadLength;
          if (end > got) break;
          const records = batchRecords(h.codec, buf.subarray(pos + BATCH_HEADER, end));
          if (typeof records === 'string') throw new Error(`${f} at byte ${at + pos}: ${records}`);
          for (let p = 0; p < records.length; p += 4 + records.readUInt32BE(p)) n++;
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
    const log = await openLog(embeddedLogAt(logDirOf(DEFAULT_CODEC)), { readOnly: true });
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
  ...Object.fromEntries(CODECS.map((c) => [`sink reader (${c})`, () => sinkReader(c)])),
};

const names = Object.keys(ways);
const runs: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
const writes: Record<string, { perSec: number[]; bytes: number[] }> = Object.fromEntries(CODECS.map((c) => [c, { perSec: [], bytes: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const codec of orderFor(r, CODECS)) {
    rmSync(logDirOf(codec), { recursive: true, force: true });
    const t = process.hrtime.bigint();
    await fillLog(logDirOf(codec), ROWS, codec);
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    const bytes = files(logDirOf(codec)).filter((x) => x.includes(TOPIC)).reduce((n, f) => n + statSync(f).size, 0);
    writes[codec].perSec.push(RECORDS / s);
    writes[codec].bytes.push(bytes);
    process.stderr.write(`round ${r + 1}: wrote ${RECORDS} records with ${codec}: ${Math.round(RECORDS / s)} records/s (serializing included), ${(bytes / 1e6).toFixed(1)} MB\n`);
  }
  for (const name of orderFor(r, names)) {
    const s = await seconds(ways[name]);
    runs[name].push(RECORDS / s);
    process.stderr.write(`round ${r + 1}: ${name} ${Math.round(RECORDS / s)} records/s\n`);
  }
}
rmSync(dir, { recursive: true, force: true });

console.log(`\nlog-read: ${RECORDS} records (${ROWS} creates + ${ROWS} updates, 6 columns, 3 partitions) written to and read from the embedded log; ${ROUNDS} rounds in alternating order, median (min – max)\n`);
console.log('| log.compression | written records/s (serializing included) | bytes on disk | bytes per record |');
console.log('| --- | ---: | ---: | ---: |');
for (const c of CODECS) {
  const b = spread(writes[c].bytes).median;
  console.log(`| ${c} | ${showSpread(spread(writes[c].perSec))} | ${(b / 1e6).toFixed(1)} MB | ${(b / RECORDS).toFixed(0)} |`);
}
console.log('\n| reader | records/s | / reference |');
console.log('| --- | ---: | ---: |');
for (const name of names) {
  const ratio = runs[name].map((x, i) => x / runs.reference[i]);
  console.log(`| ${name} | ${showSpread(spread(runs[name]))} | ${showSpread(spread(ratio), 2)}× |`);
}
const readerName = `sink reader (${DEFAULT_CODEC})`;
for (const c of CODECS.filter((x) => x !== 'none')) {
  const pair = runs[`sink reader (${c})`].map((x, i) => x / runs['sink reader (none)'][i]);
  const sizeRatio = spread(writes.none.bytes).median / spread(writes[c].bytes).median;
  const writeRatio = writes[c].perSec.map((x, i) => x / writes.none.perSec[i]);
  console.log(`${c} against none: ${sizeRatio.toFixed(1)}× smaller; writes ${showSpread(spread(writeRatio), 2)}×, sink reader ${showSpread(spread(pair), 2)}× the speed (pair by pair).`);
}
console.log(`Target: the sink reader ≥ 1,000,000 records/s.`);
const reader = spread(runs[readerName]).median;
summarize([{ bench: 'log-read', what: `sink reader (${DEFAULT_CODEC}): records/s`, figure: reader, reference: { name: 'segment files walked', figure: spread(runs.reference).median }, target: '≥ 1,000,000 records/s', met: reader >= 1_000_000 }]);
process.exit(0);
