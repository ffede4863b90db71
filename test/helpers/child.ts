import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { waitUntil } from './pipeline.ts';

/** Pipelines started by this test process: none may outlive it, whatever way a test ends. */
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts `sluice run <cfg>` in a child process; stderr is kept for failure messages. */
export function startPipelineProcess(cfgPath: string, args: string[] = [], nodeArgs: string[] = [], env?: Record<string, string>): ChildProcess & { stderrText: () => string } {
  const child = spawn(process.execPath, [...nodeArgs, 'bin/sluice.js', 'run', cfgPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: env ? { ...process.env, ...env } : undefined });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d.toString();
    if (err.length > 8_000_000) err = err.slice(-4_000_000);
  });
  return Object.assign(child, { stderrText: () => err });
}

/** Peak resident set size of a live process, in MiB (Linux VmHWM). */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Stops the process with `signal` and waits for it to exit. A process that has not exited 30 s
 * after a SIGTERM is killed (a hung pipeline must fail its test, not hang it).
 */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const t = signal === 'SIGKILL' ? null : setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  if (t) clearTimeout(t);
}

type PipelineChild = ReturnType<typeof startPipelineProcess>;

/**
 * The crash loop of the kill -9 tests: waits until `progress()` is above zero, then `kills` times
 * waits a random 0.3–1.2 s, kill -9s the pipeline process, starts it again with `start` and waits
 * until `progress()` has moved past where it was at the kill (so the next kill lands while the
 * pipeline works). Resolves with the live process and the kills done; on a failure, kills the
 * process and rejects with its last stderr. `onRestart` sees each new process once it made progress.
 */
export async function killRepeatedly(
  first: PipelineChild,
  start: () => PipelineChild,
  o: { kills: number; progress: () => Promise<number>; what: string; onRestart?: (child: PipelineChild) => void },
): Promise<{ child: PipelineChild; kills: number }> {
  let child = first;
  let kills = 0;
  try {
    await waitUntil(`${o.what} (before the first kill)`, async () => (await o.progress()) > 0);
    for (let i = 0; i < o.kills; i++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 900));
      const before = await o.progress().catch(() => 0);
      await stopProcess(child, 'SIGKILL');
      kills++;
      child = start();
      await waitUntil(`${o.what} after restart ${kills}`, async () => (await o.progress()) > before);
      o.onRestart?.(child);
    }
  } catch (e) {
    await stopProcess(child, 'SIGKILL');
    throw new Error(`${(e as Error).message}\n${child.stderrText().slice(-3000)}`, { cause: e });
  }
  return { child, kills };
}

/** Runs `sluice <args>` in a child process without blocking this one (a pipeline or workload may run in it meanwhile). */
export function runSluice(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['bin/sluice.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d) => (stdout += d));
    c.stderr!.on('data', (d) => (stderr += d));
    c.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
