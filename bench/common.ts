/**
 * Measuring helpers shared by the benchmarks: the pipeline drained in a process of its own (so its
 * peak memory is the pipeline's, not the benchmark's), rounds in alternating order, and figures
 * reported as the median with the spread of all rounds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
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

/** Runs the pipeline once until its first commit (a source records its starting position), in this process. */
export async function startOnce(cfg: PipelineConfig): Promise<void> {
  const ac = new AbortController();
  await runPipeline(cfg, { signal: ac.signal, onCommit: () => ac.abort() });
}

export interface Drained {
  seconds: number;
  /** Peak resident set of the pipeline's process over its whole life, MiB. */
  peakRssMiB: number;
  /** Its resident set once the code was loaded, before the pipeline started, MiB. */
  loadedRssMiB: number;
}

let compiled = false;

/**
 * A benchmark child (`drain-child.ts`, `sink-apply/child.ts`) compiled to JavaScript
 * (bench/tsconfig.child.json, into bench/out/js), once per benchmark process; returns the path of
 * `rel`'s compiled file. The child then runs as an installed package does, without tsx, whose
 * loader holds ~30–40 MiB of the process that are not the pipeline's.
 */
export function compiledChild(rel: string): string {
  if (!compiled) {
    const tsc = new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [tsc, '-p', new URL('./tsconfig.child.json', import.meta.url).pathname], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`compiling the benchmark children failed (tsc exit ${r.status})`);
    // The sources read their version from the package root, as in an installed package.
    copyFileSync(new URL('../package.json', import.meta.url), new URL('./out/js/package.json', import.meta.url));
    compiled = true;
  }
  return new URL(`./out/js/bench/${rel.replace(/\.ts$/, '.js')}`, import.meta.url).pathname;
}

/**
 * Drains `records` records with the pipeline of `configPath` in a child process of its own, as an
 * installed `sluice run` would run it (Node on the compiled JavaScript), and returns the time from
 * the pipeline's start to its last needed commit and the child's peak RSS.
 */
export function drainInChild(configPath: string, records: number): Promise<Drained> {
  return childResult<Drained>('drain-child.ts', [configPath, String(records)], "the pipeline's drain");
}

/** Runs the compiled benchmark child `rel` with `args` and returns the JSON it prints on stdout. */
export async function childResult<T>(rel: string, args: string[], what: string, nodeArgs: string[] = []): Promise<T> {
  const child = spawn(process.execPath, [...nodeArgs, compiledChild(rel), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`${what} exited ${code}`);
  return JSON.parse(out) as T;
}

/** Writes a pipeline config for a child to read; returns its path. */
export function writeConfig(dir: string, yaml: string): string {
  const path = join(dir, 'pipeline.yaml');
  writeFileSync(path, yaml);
  return path;
}

/** The order of the tools in round `r`: as given in even rounds, reversed in odd ones. */
export function orderFor<T>(r: number, tools: T[]): T[] {
  return r % 2 === 0 ? [...tools] : [...tools].reverse();
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1] };
}

/** `median (min – max)` with `digits` decimals and thousands separators. */
export function showSpread(x: Spread, digits = 0): string {
  const f = (v: number) => v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${f(x.median)} (${f(x.min)} – ${f(x.max)})`;
}

/** One line of `npm run bench:all`'s table: a benchmark's figure beside its same-run reference and its target. */
export interface SummaryRow {
  bench: string;
  /** What was measured, e.g. `small: changes/s`. */
  what: string;
  figure: number;
  /** The same-run reference's figure and name (absent where the target is absolute). */
  reference?: { name: string; figure: number };
  /** The figure's target, as the issue states it, e.g. `≥ 1.1× reference`. */
  target: string;
  met: boolean;
}

/**
 * Hands a benchmark's results to `bench/all.ts` (which sets SLUICE_BENCH_SUMMARY to a file): one
 * JSON line per row. Without it, nothing happens.
 */
export function summarize(rows: SummaryRow[]): void {
  const file = process.env.SLUICE_BENCH_SUMMARY;
  if (!file) return;
  appendFileSync(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
}

/**
 * The options of a benchmark sized in rows: `--rows`, `--workload`, `--rounds`, with its own
 * defaults, and `--compression` (the pipeline log's `log.compression`; see `logCompressionYaml`).
 */
export function sizeOptions(defaults: { rows: string; workload: string; rounds?: string }): { rows: number; workload: string; rounds: number; compression: string | undefined } {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: defaults.rows }, workload: { type: 'string', default: defaults.workload }, rounds: { type: 'string', default: defaults.rounds ?? '3' }, compression: { type: 'string' } } });
  return { rows: Number(values.rows), workload: values.workload!, rounds: Number(values.rounds), compression: values.compression };
}

/** The `compression:` line of a pipeline's `log:` section for `--compression`, or nothing. */
export function logCompressionYaml(compression: string | undefined): string {
  return compression ? `  compression: ${compression}\n` : '';
}

/** The local PostgreSQL server the benchmarks use (trust authentication). */
export const PG_CONN = { host: '127.0.0.1', port: 5432, user: 'postgres' };

/** A connected client of the local PostgreSQL server to `database`. */
export async function pgClient(database: string): Promise<pg.Client> {
  const c = new pg.Client({ ...PG_CONN, database });
  await c.connect();
  return c;
}

/** Runs a reference tool to its end, its output thrown away: the seconds it took and its peak RSS (MiB). */
export async function timedChild(cmd: string, args: string[]): Promise<{ seconds: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  let done = false;
  const rssP = peakRssOf(child.pid!, () => done);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  done = true;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`${cmd} exited ${code}`);
  return { seconds, rss: await rssP };
}
