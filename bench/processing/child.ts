/**
 * One processor of bench/processing in a process of its own, so its peak RSS is the processor's:
 * the product's processor task (reading, transforming, state changelog, commits), as `sluice run`
 * runs it, over the pre-filled log at `logDir`, until it has committed everything its inputs hold.
 * Prints the seconds, its peak RSS and its RSS once loaded, as JSON on stdout.
 *
 *   node bench/out/js/bench/processing/child.js <window|join> <logDir> [disk <stateDir> <memoryKeys> | parallel <n>]
 *
 * `disk`: the state on disk (`state.store: disk`) with `memoryKeys` cached; `parallel`: the
 * window over `n` worker threads (`parallelism: n`).
 */
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Registry } from '../../src/core/metrics.ts';
import { ProcessorTask } from '../../src/engine/processor-task.ts';
import { planTopology } from '../../src/engine/topology.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { processorSpec } from '../../src/registry/index.ts';

const [mode, logDir, variant, ...opts] = process.argv.slice(2);

/** The benchmark's jobs, as a user writes them. */
export const JOBS: Record<string, string> = {
  window: `  - name: agg
    type: window
    inputs: [topic:events]
    groupBy: {k: k}
    timestamp: ts
    window: {type: tumbling, size: 1m}
    watermark: 5s
    aggregates: {n: count(), sum: sum(v), max: max(v)}
`,
  join: `  - name: enriched
    type: join
    inputs: [topic:events]
    table: [topic:customers]
    on: k
    tableKey: k
    as: customer
`,
};

if (mode) {
  const extra = variant === 'disk' ? `    state: {store: disk, dir: ${opts[0]}, memoryKeys: ${opts[1]}}\n` : variant === 'parallel' ? `    parallelism: ${opts[0]}\n` : '';
  const job = JOBS[mode] + extra;
  const cfg = parseConfig(`name: bench\nlog: {dir: ${logDir}, partitions: 1}\nprocessors:\n${job}`, 'bench.yaml', process.env);
  const topology = planTopology(cfg);
  const p = cfg.processors[0];
  const log = await openLog(embeddedLogAt(logDir), {});
  const logger = createLogger({ level: 'warn' });
  const reader = topology.processors.get(p.name)!;
  const task = new ProcessorTask({
    spec: processorSpec(p.type),
    cfg: p,
    pipeline: cfg.name,
    log,
    reader,
    context: { pipeline: cfg.name, logger, tableOf: () => ({ schema: '', table: '' }), isSide: reader.side },
    topicDefaults: { partitions: 1 },
    schemaTopic: 'bench.__schemas',
    batch: cfg.batch,
    logger,
    registry: new Registry(),
  });
  const loadedRssMiB = process.memoryUsage().rss / 1048576;
  const ac = new AbortController();
  const t = process.hrtime.bigint();
  const running = task.run(ac.signal);
  await task.caughtUp();
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  ac.abort();
  await running;
  await log.close();
  if (task.state === 'failed') {
    process.stderr.write(`the ${mode} processor failed: ${task.lastError?.message}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ seconds, processed: task.processed, written: task.written, peakRssMiB: process.resourceUsage().maxRSS / 1024, loadedRssMiB }));
  process.exit(0);
}
