/** Measuring helpers shared by the benchmarks. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineConfig } from '../src/config/types.ts';
import { runPipeline } from '../src/engine/runner.ts';

/** Total size of the files below `dir`. */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

/** Polls a process's peak resident set (Linux VmHWM) until `stop()` or its exit; MiB. */
export async function peakRssOf(pid: number, stop: () => boolean): Promise<number> {
  let peak = 0;
  while (!stop()) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return peak;
}

/** Runs the pipeline until `records` records are durable in its log; the seconds that took. */
export async function drainSeconds(cfg: PipelineConfig, records: number): Promise<number> {
  let committed = 0;
  const ac = new AbortController();
  const s0 = process.hrtime.bigint();
  let end = s0;
  await runPipeline(cfg, {
    signal: ac.signal,
    onCommit: ({ records: n }) => {
      committed += n;
      if (committed >= records && !ac.signal.aborted) {
        end = process.hrtime.bigint();
        ac.abort();
      }
    },
  });
  return Number(end - s0) / 1e9;
}
