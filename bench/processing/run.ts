/**
 * bench/processing: events/s through Sluice's processors from a pre-filled log, beside DuckDB
 * computing the same job over the same events, and Apache Flink running it in a local MiniCluster
 * (bench/processing/flink), in the same run, alternating order, with the spread over rounds and
 * each one's peak RSS.
 *
 * - window: a keyed 1-minute tumbling aggregation (count, sum, max) over `--events` events of
 *   `--keys` keys, event time with a 5 s watermark (the events are at most 2 s out of order, so
 *   none is late). Sluice's closed windows must equal DuckDB's GROUP BY and Flink's windows.
 * - join: the same events enriched with the current row of a 100k-row table read from its topic
 *   (stream–table join), beside DuckDB's LEFT JOIN of the two files.
 *
 * The log holds one partition per topic (a processor is one task); each Sluice round runs on a
 * fresh copy of it. Target (issue 13): ≥ 300k events/s for the aggregation on this 2-core machine.
 *
 *   node --import tsx bench/processing/run.ts [--events 2000000] [--keys 100000] [--rounds 3] [--no-flink] [--keep] [--heap-mib N] [--parallelism N]
 *
 * Each Sluice job runs twice per round: with its state in memory (`sluice`) and on disk with a
 * fifth of the keys cached (`sluice-disk`); the window a third time over `--parallelism` worker
 * threads (`sluice-par`; default one per core, at least 2). `--heap-mib N` then runs each once more with the JS
 * heap capped at N MiB, to show which state fits.
 */
import { spawn } from 'node:child_process';
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { childResult, orderFor, peakRssOf, showSpread, spread, summarize } from '../common.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '2000000' }, keys: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' }, 'no-flink': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false }, 'heap-mib': { type: 'string' }, parallelism: { type: 'string', default: String(Math.max(2, availableParallelism())) } } });
const EVENTS = Number(values.events);
const KEYS = Number(values.keys);
const ROUNDS = Number(values.rounds);
const BASE = 1_800_000_000_000;
/** Events per minute of event time: five per key, so each window of a key holds a few. */
const PER_MINUTE = KEYS * 5;
const dir = join(tmpdir(), `sluice-bench-processing-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const baseLog = join(dir, 'log');
const flinkScript = new URL('./flink/run.sh', import.meta.url).pathname;
const withFlink = !values['no-flink'] && existsSync(flinkScript);

/** The events (log topic `events`, one partition, and events.jsonl) and the table (topic `customers`, customers.jsonl). */
async function fill(): Promise<void> {
  let x = 42;
  // A 32-bit LCG in exact integer arithmetic (Math.imul), so the sequence does not collapse.
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  const log = await openLog(embeddedLogAt(baseLog), {});
  await log.ensureTopic('events', { partitions: 1 });
  await log.ensureTopic('customers', { partitions: 1 });
  const { producer } = await log.openProducer('bench-fill');
  const file = createWriteStream(join(dir, 'events.jsonl'));
  const table = createWriteStream(join(dir, 'customers.jsonl'));
  for (let i = 0; i < KEYS; i++) {
    const row = JSON.stringify({ k: `k${i}`, name: `customer ${i}`, tier: ['basic', 'silver', 'gold'][i % 3] });
    producer.append('customers', { key: JSON.stringify(`k${i}`), value: row, timestamp: BASE }, 0);
    table.write(row + '\n');
    if (producer.pendingRecords >= 5000) await producer.commit('');
  }
  await producer.commit('');
  for (let i = 0; i < EVENTS; i++) {
    const k = `k${Math.floor(rnd() * KEYS)}`;
    const ts = BASE + Math.floor((i * 60_000) / PER_MINUTE) - Math.floor(rnd() * 2000);
    const line = `{"k":"${k}","v":${Math.round(rnd() * 100_000) / 100},"ts":${ts}}`;
    producer.append('events', { key: `"${k}"`, value: line, timestamp: ts }, 0);
    if (!file.write(line + '\n')) await new Promise<void>((r) => file.once('drain', () => r()));
    if (producer.pendingRecords >= 5000) await producer.commit('');
  }
  await producer.commit('');
  await producer.close();
  await log.close();
  await Promise.all([new Promise<void>((r) => file.end(() => r())), new Promise<void>((r) => table.end(() => r()))]);
}

interface Run {
  seconds: number;
  rss: number;
}

/** Entries cached in memory with the state on disk (`sluice-disk`): a fifth of the keys. */
const MEMORY_KEYS = Math.ceil(KEYS / 5);
/** Worker threads of the parallel window (`sluice-par`): one per core of this machine, and at least 2. */
const PARALLELISM = Number(values.parallelism);

/** `parallel`: the window over PARALLELISM worker threads, state in memory. */
async function sluice(mode: string, round: number, store: 'memory' | 'disk' | 'parallel' = 'memory', nodeArgs: string[] = []): Promise<Run> {
  const logDir = join(dir, `log-${mode}-${round}-${store}`);
  rmSync(logDir, { recursive: true, force: true });
  cpSync(baseLog, logDir, { recursive: true });
  const args = store === 'disk' ? [mode, logDir, 'disk', join(dir, 'state'), String(MEMORY_KEYS)] : store === 'parallel' ? [mode, logDir, 'parallel', String(PARALLELISM)] : [mode, logDir];
  const r = await childResult<{ seconds: number; processed: number; peakRssMiB: number }>('processing/child.ts', args, `the ${mode} processor (${store === 'parallel' ? `${PARALLELISM} threads` : `state in ${store}`})`, nodeArgs);
  const want = mode === 'join' ? EVENTS + KEYS : EVENTS;
  if (r.processed !== want) throw new Error(`the ${mode} processor took ${r.processed} records, not ${want}`);
  if (round === 0 && mode === 'window') checkWindows(await sluiceWindows(logDir), { memory: 'Sluice', disk: 'Sluice (state on disk)', parallel: `Sluice (${PARALLELISM} threads)` }[store]);
  rmSync(logDir, { recursive: true, force: true });
  return { seconds: r.seconds, rss: r.peakRssMiB };
}

async function duckdb(mode: string, round: number): Promise<Run> {
  const file = join(dir, `duckdb-${mode}.json`);
  const r = await childResult<{ seconds: number; peakRssMiB: number }>('processing/duckdb-child.ts', [mode, dir, round === 0 ? file : ''], `DuckDB's ${mode}`);
  return { seconds: r.seconds, rss: r.peakRssMiB };
}

/** Flink's run time of the job (its own figure), and the JVM's peak RSS. */
async function flink(round: number): Promise<Run> {
  const out = join(dir, `flink-${round}.jsonl`);
  const child = spawn('bash', [flinkScript, join(dir, 'events.jsonl'), out, '--parallelism', '2', '--size-ms', '60000', '--delay-ms', '5000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  let done = false;
  // The JVM is the script's child: follow the process tree's largest resident set.
  const rss = peakRssOf(child.pid!, () => done);
  const jvmRss = (async () => {
    let peak = 0;
    while (!done) {
      for (const pid of childPids(child.pid!)) {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
          if (m) peak = Math.max(peak, Number(m[1]) / 1024);
        } catch {
          /* gone */
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return peak;
  })();
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  done = true;
  if (code !== 0) throw new Error(`Flink's job exited ${code}`);
  const m = /FLINK_RESULT (\{.*\})/.exec(text);
  if (!m) throw new Error(`Flink's job printed no FLINK_RESULT line:\n${text.slice(-2000)}`);
  // net_ms: the job's run time as Flink reports it, without the ~2.4 s of starting and stopping the local cluster.
  const res = JSON.parse(m[1]) as { events: number; ms: number; net_ms: number };
  if (res.events !== EVENTS) throw new Error(`Flink read ${res.events} events, not ${EVENTS}`);
  if (round === 0) checkWindows(flinkWindows(out), 'Flink');
  rmSync(out, { force: true });
  return { seconds: res.net_ms / 1000, rss: Math.max(await rss, await jvmRss) };
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)) out.push(c, ...childPids(c));
  } catch {
    /* gone */
  }
  return out;
}

type Win = [string, number, number, number, number];

async function sluiceWindows(logDir: string): Promise<Win[]> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  const out: Win[] = [];
  for (const { partition, end } of await log.offsets('agg')) {
    let at = 0;
    while (at < end) {
      const r = await log.read('agg', partition, at, 8 << 20);
      for (const rec of r.records) {
        const v = JSON.parse(rec.value!.toString());
        out.push([v.k, Date.parse(v.window_start), v.n, v.sum, v.max]);
      }
      at = r.next;
    }
  }
  await log.close();
  return out;
}

function flinkWindows(file: string): Win[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const all = lines.map((l) => JSON.parse(l) as { k: string; window_start: number; window_end: number; n: number; sum: number; max: number });
  // Flink closes every window at the end of its input; Sluice only those behind the watermark.
  const maxEnd = all.reduce((m, w) => Math.max(m, w.window_end), -Infinity);
  return all.filter((w) => w.window_end < maxEnd).map((w) => [w.k, w.window_start, w.n, w.sum, w.max]);
}

let reference: Map<string, Win> | null = null;

/** Checks windows against DuckDB's GROUP BY of the same events. */
function checkWindows(got: Win[], who = 'Sluice'): void {
  if (!reference) reference = new Map((JSON.parse(readFileSync(join(dir, 'duckdb-window.json'), 'utf8')) as Win[]).map((w) => [`${w[0]}|${w[1]}`, w]));
  const seen = new Set<string>();
  for (const w of got) {
    const id = `${w[0]}|${w[1]}`;
    const r = reference.get(id);
    if (!r && who === 'Flink') continue; // a window Flink closed at its end of input and DuckDB's watermark leaves open
    if (!r) throw new Error(`${who} emitted window ${id}, which DuckDB's GROUP BY has not closed`);
    if (seen.has(id)) throw new Error(`${who} emitted window ${id} twice`);
    seen.add(id);
    if (w[2] !== r[2] || w[4] !== r[4] || Math.abs(w[3] - r[3]) > 1e-6 * Math.max(1, Math.abs(r[3]))) throw new Error(`${who}'s window ${id} is ${JSON.stringify(w)}, DuckDB says ${JSON.stringify(r)}`);
  }
  if (seen.size !== reference.size) throw new Error(`${who} emitted ${seen.size} of DuckDB's ${reference.size} closed windows`);
  console.log(`  ${who}'s ${seen.size} closed windows equal DuckDB's GROUP BY`);
}

const t0 = Date.now();
await fill();
console.log(`filled: ${EVENTS.toLocaleString('en-US')} events of ${KEYS.toLocaleString('en-US')} keys, ${KEYS.toLocaleString('en-US')} table rows (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

const results: { job: string; tool: string; perSec: number; rss: number }[] = [];
for (const job of ['window', 'join']) {
  const tools: Record<string, (r: number) => Promise<Run>> = { duckdb: (r) => duckdb(job, r), sluice: (r) => sluice(job, r), 'sluice-disk': (r) => sluice(job, r, 'disk') };
  if (job === 'window') tools['sluice-par'] = (r) => sluice(job, r, 'parallel');
  if (job === 'window' && withFlink) tools.flink = (r) => flink(r);
  for (let r = 0; r < ROUNDS; r++) {
    // DuckDB first in round 0: its result is the truth the others are checked against.
    for (const tool of r === 0 ? Object.keys(tools) : orderFor(r, Object.keys(tools))) {
      const run = await tools[tool](r);
      const perSec = (job === 'join' ? EVENTS + KEYS : EVENTS) / run.seconds;
      results.push({ job, tool, perSec, rss: run.rss });
      console.log(`  ${job} round ${r + 1} ${tool}: ${Math.round(perSec).toLocaleString('en-US')} events/s, peak RSS ${run.rss.toFixed(0)} MiB`);
    }
  }
}

console.log(`\nbench/processing: ${EVENTS.toLocaleString('en-US')} events, ${KEYS.toLocaleString('en-US')} keys, ${ROUNDS} rounds; median (min – max)`);
const rows = [];
for (const job of ['window', 'join']) {
  const of = (tool: string) => results.filter((x) => x.job === job && x.tool === tool);
  for (const tool of ['sluice', 'sluice-disk', 'sluice-par', 'duckdb', 'flink']) {
    const xs = of(tool);
    if (!xs.length) continue;
    console.log(`${job.padEnd(7)} ${tool.padEnd(11)} ${showSpread(spread(xs.map((x) => x.perSec))).padStart(36)} events/s   peak RSS ${showSpread(spread(xs.map((x) => x.rss)))} MiB`);
  }
  const s = spread(of('sluice').map((x) => x.perSec)).median;
  const d = spread(of('duckdb').map((x) => x.perSec)).median;
  const f = of('flink').length ? spread(of('flink').map((x) => x.perSec)).median : null;
  const sd = spread(of('sluice-disk').map((x) => x.perSec)).median;
  console.log(`${job}: sluice / duckdb = ${(s / d).toFixed(2)}×${f ? `, sluice / flink = ${(s / f).toFixed(2)}×` : ''}, state on disk (${MEMORY_KEYS.toLocaleString('en-US')} entries cached) / in memory = ${(sd / s).toFixed(2)}×`);
  if (job === 'window') {
    const p = spread(of('sluice-par').map((x) => x.perSec)).median;
    console.log(`window: ${PARALLELISM} threads (parallelism: ${PARALLELISM}) / one = ${(p / s).toFixed(2)}×${f ? `, ${PARALLELISM} threads / flink = ${(p / f).toFixed(2)}×` : ''}`);
    rows.push({ bench: 'processing', what: 'window: events/s', figure: s, reference: f ? { name: 'Flink', figure: f } : { name: 'DuckDB', figure: d }, target: '≥ 300k events/s', met: s >= 300_000 });
    rows.push({ bench: 'processing', what: `window, ${PARALLELISM} threads: events/s`, figure: p, reference: f ? { name: 'Flink', figure: f } : { name: 'DuckDB', figure: d }, target: '≥ 300k events/s', met: p >= 300_000 });
  }
  else rows.push({ bench: 'processing', what: 'join: events/s', figure: s, reference: { name: 'DuckDB', figure: d }, target: '(none)', met: true });
}
summarize(rows);

// With --heap-mib: each job once more in each store with the JS heap capped, to show which fit.
if (values['heap-mib']) {
  const cap = [`--max-old-space-size=${values['heap-mib']}`];
  console.log(`\nheap capped at ${values['heap-mib']} MiB (--max-old-space-size):`);
  for (const job of ['window', 'join']) {
    for (const store of ['memory', 'disk'] as const) {
      try {
        const run = await sluice(job, 1, store, cap);
        console.log(`${job.padEnd(7)} state in ${store.padEnd(6)}: completed, ${Math.round((job === 'join' ? EVENTS + KEYS : EVENTS) / run.seconds).toLocaleString('en-US')} events/s, peak RSS ${run.rss.toFixed(0)} MiB`);
      } catch (e) {
        console.log(`${job.padEnd(7)} state in ${store.padEnd(6)}: failed (${(e as Error).message}; out of heap)`);
      }
    }
  }
}
if (values.keep) console.log(`kept ${dir} (the filled log in log/, the events in events.jsonl)`);
else rmSync(dir, { recursive: true, force: true });
