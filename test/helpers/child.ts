import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
