/**
 * Sluice's side of bench/capture-kafka in a process of its own: runs the pipeline of the given
 * config (log.backend: kafka) until `records` records are committed to Kafka (Kafka transactions),
 * writes `done` on stdout the moment the last one is committed (the parent times to that line),
 * then stops and prints its own figures as JSON.
 *
 *   node --import tsx bench/capture-kafka/drain-child.ts <pipeline.yaml> <records>
 */
import { loadConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';

const [path, records] = process.argv.slice(2);
const want = Number(records);
const cfg = await loadConfig(path);
const loadedRssMiB = process.memoryUsage().rss / 1048576;
let committed = 0;
const ac = new AbortController();
const s0 = process.hrtime.bigint();
let end = s0;
let cpuAtEnd = process.cpuUsage();
await runPipeline(cfg, {
  signal: ac.signal,
  onCommit: ({ records: n }) => {
    committed += n;
    if (committed >= want && !ac.signal.aborted) {
      end = process.hrtime.bigint();
      cpuAtEnd = process.cpuUsage();
      process.stdout.write('done\n');
      ac.abort();
    }
  },
});
process.stdout.write(JSON.stringify({ seconds: Number(end - s0) / 1e9, committed, peakRssMiB: process.resourceUsage().maxRSS / 1024, loadedRssMiB, userS: cpuAtEnd.user / 1e6, sysS: cpuAtEnd.system / 1e6 }) + '\n');
