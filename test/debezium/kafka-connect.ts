/**
 * Kafka Connect standalone (scripts/kafka-connect.sh: connect-runtime with Debezium's JDBC sink and
 * its PostgreSQL and MySQL connectors as plugins) against the machine's Kafka broker, for the interop
 * tests of this folder. Every worker gets its own REST port, offsets file and connector names, so
 * runs beside other tests on the shared broker do not meet.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BROKER = '127.0.0.1:9092';

const workers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of workers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Fetches the jars once (cached); a failure says what Maven said. */
export function prepareConnect(): void {
  execFileSync('bash', ['scripts/kafka-connect.sh', 'prepare'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function connectVersions(): string {
  return execFileSync('bash', ['scripts/kafka-connect.sh', 'versions'], { encoding: 'utf8' }).trim();
}

const props = (p: Record<string, string>) => Object.entries(p).map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`).join('\n') + '\n';

export interface Worker {
  child: ChildProcess;
  /** The worker's stderr (WARN and above), for failure messages. */
  output(): string;
  /** Resolves once the worker has exited; rejects when it exits before `stop`. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a standalone worker in `dir` with JsonConverter (schemas enabled) for keys and values and
 * the given connectors (name → properties); `worker` adds or overrides worker properties.
 */
export function startConnect(dir: string, connectors: Record<string, Record<string, string>>, worker: Record<string, string> = {}): Worker {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const workerFile = join(dir, 'worker.properties');
  writeFileSync(
    workerFile,
    props({
      'bootstrap.servers': BROKER,
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': 'true',
      'value.converter.schemas.enable': 'true',
      'offset.storage.file.filename': join(dir, 'connect.offsets'),
      'offset.flush.interval.ms': '500',
      listeners: `http://127.0.0.1:${port}`,
      ...worker,
    }),
  );
  const files = Object.entries(connectors).map(([name, p]) => {
    const f = join(dir, `${name}.properties`);
    writeFileSync(f, props({ name, ...p }));
    return f;
  });
  const child = spawn('bash', ['scripts/kafka-connect.sh', 'run', workerFile, ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
  workers.add(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d.toString();
    if (err.length > 400_000) err = err.slice(-200_000);
  });
  let stopping = false;
  const exited = new Promise<void>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      workers.delete(child);
      if (stopping) resolve();
      else reject(new Error(`Kafka Connect exited with ${code ?? signal}; its output:\n${err.slice(-6000)}`));
    });
  });
  exited.catch(() => {});
  return {
    child,
    output: () => err,
    exited,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.kill('SIGTERM');
      await exited.catch(() => {});
      clearTimeout(t);
    },
  };
}

/** Task failures the worker logged (ERROR lines with their first trace lines), for assertion messages. */
export function taskErrors(output: string): string {
  // Debezium 3.4's CloudEventsConverter fails to load against Kafka 4.4's JsonConverter while the
  // worker scans plugins (a converter nobody here uses): that noise is left out.
  const out: string[] = [];
  let take = false;
  for (const l of output.split('\n')) {
    if (/ ERROR /.test(l)) take = !/Failed to discover Converter/.test(l);
    else if (!/^(Caused by|\S+Exception|\S+Error)/.test(l)) continue;
    if (take) out.push(l);
  }
  return out.slice(0, 40).join('\n');
}
