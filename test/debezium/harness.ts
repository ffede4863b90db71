/**
 * Debezium itself as the independent truth for Sluice's events: scripts/debezium.sh fetches
 * Debezium's connectors (debezium-embedded) and compiles scripts/java/DebeziumPeer.java, which runs
 * a connector against the machine's database and writes every record through Kafka Connect's
 * JsonConverter, with schemas enabled and disabled. Sluice runs on the same database beside it
 * (its own slot / replica id), and the test compares the two event by event, byte for byte, once
 * each side's documented, deliberate differences are masked (see `Difference`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';

/** One record as Debezium's connector produced it and the JsonConverter wrote it. */
export interface PeerRecord {
  topic: string;
  /** JsonConverter with schemas.enable=true. */
  key: string | null;
  value: string | null;
  /** JsonConverter with schemas.enable=false. */
  keyPlain: string | null;
  valuePlain: string | null;
}

/** One record of Sluice's log, as bytes (text). */
export interface LogRecord {
  topic: string;
  key: string | null;
  value: string | null;
}

const peers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of peers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

let classpath: string | null = null;
/** Fetches (once, cached) and compiles the peer; returns the Java class path. */
export function debeziumClasspath(): string {
  classpath ??= execFileSync('bash', ['scripts/debezium.sh', 'classpath'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  return classpath;
}

export function debeziumVersion(): string {
  return execFileSync('bash', ['scripts/debezium.sh', 'version'], { encoding: 'utf8' }).trim();
}

export interface Peer {
  /** Resolves when the peer has written a record of the stop topic and exited; rejects on failure. */
  done: Promise<void>;
  records(): PeerRecord[];
  stop(): void;
}

/** Starts Debezium's connector with `props`; it runs until it writes a record of `stopTopic`. */
export function startDebezium(out: string, stopTopic: string, props: Record<string, string>, timeoutSec = Number(process.env.SLUICE_DBZ_TIMEOUT ?? 240)): Peer {
  const args = ['-Xmx512m', '-cp', debeziumClasspath(), 'DebeziumPeer', out, stopTopic, String(timeoutSec), ...Object.entries(props).map(([k, v]) => `${k}=${v}`)];
  const child = spawn('java', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  peers.add(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      peers.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`Debezium peer exited with ${code ?? signal}; its output:\n${err.slice(-6000)}`));
    });
  });
  done.catch(() => {});
  return {
    done,
    records: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as PeerRecord) : []),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Every record of the log's topics under `prefix` (but `__schemas`), as text, in offset order per topic (one partition). */
export async function readLog(logDir: string, prefix: string): Promise<LogRecord[]> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    const out: LogRecord[] = [];
    for (const t of await log.listTopics()) {
      if (!t.name.startsWith(prefix) || t.name.endsWith('.__schemas')) continue;
      for (const p of await log.offsets(t.name)) {
        let off = p.start;
        while (off < p.end) {
          const { records, next } = await log.read(t.name, p.partition, off, 4 << 20);
          for (const r of records) out.push({ topic: t.name, key: r.key ? r.key.toString('utf8') : null, value: r.value ? r.value.toString('utf8') : null });
          off = next;
        }
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/**
 * A difference between Sluice's and Debezium's bytes kept on purpose: `why` says why (the same
 * list is in docs/events.md). `debezium` and `sluice` rewrite the event text of each side to a
 * common form; a rewrite matches only what it names, so anything else that differs still fails.
 */
export interface Difference {
  why: string;
  debezium?: (s: string) => string;
  sluice?: (s: string) => string;
}

export const both = (re: RegExp, to: string) => (s: string) => s.replace(re, to);

/** The differences both sources keep; `floats` names the float/double columns of the test tables (a regex alternation). */
export function commonDifferences(floats: string): Difference[] {
  const integral = new RegExp(`"(${floats})":(-?\\d+)\\.0([,}])`, 'g');
  return [
    {
      why: "source.version is Sluice's version, not Debezium's",
      debezium: both(/"source":\{"version":"[^"]*"/g, '"source":{"version":"V"'),
      sluice: both(/"source":\{"version":"[^"]*"/g, '"source":{"version":"V"'),
    },
    {
      why: 'the envelope ts_ms/ts_us/ts_ns say when each connector processed the event',
      debezium: both(/"op":"(.)","ts_ms":\d+,"ts_us":\d+,"ts_ns":\d+/g, '"op":"$1","ts_ms":T,"ts_us":T,"ts_ns":T'),
      sluice: both(/"op":"(.)","ts_ms":\d+,"ts_us":\d+,"ts_ns":\d+/g, '"op":"$1","ts_ms":T,"ts_us":T,"ts_ns":T'),
    },
    {
      why: 'a float or double with an integral value is written as JavaScript writes the number (2), Jackson as Java does (2.0): the same number to every JSON reader',
      debezium: both(integral, '"$1":$2$3'),
    },
    {
      why: "a null in a column that has a default is null in Sluice's events (what the row holds); Kafka Connect's JsonConverter writes the default in its place (replace.null.with.default, true unless configured)",
      sluice: both(/"optd":null/g, '"optd":"od"'),
    },
  ];
}

function apply(s: string | null, diffs: Difference[], side: 'debezium' | 'sluice'): string | null {
  if (s === null) return null;
  for (const d of diffs) {
    const f = d[side];
    if (f) s = f(s);
  }
  return s;
}

/**
 * Compares per topic, in order: Debezium's records (`plain`: the schemaless variant) against Sluice's,
 * after the deliberate differences. Topics only one side has fail too.
 */
export function compareEvents(peer: PeerRecord[], sluice: LogRecord[], diffs: Difference[], plain: boolean): { compared: number } {
  const byTopic = (recs: { topic: string }[]) => [...new Set(recs.map((r) => r.topic))].sort();
  assert.deepEqual(byTopic(sluice), byTopic(peer), 'the same topics');
  let compared = 0;
  for (const topic of byTopic(peer)) {
    const d = peer.filter((r) => r.topic === topic).map((r) => ({ key: plain ? r.keyPlain : r.key, value: plain ? r.valuePlain : r.value }));
    const s = sluice.filter((r) => r.topic === topic);
    const dt = d.map((r) => `${apply(r.key, diffs, 'debezium')}\n${apply(r.value, diffs, 'debezium')}`);
    const st = s.map((r) => `${apply(r.key, diffs, 'sluice')}\n${apply(r.value, diffs, 'sluice')}`);
    for (let i = 0; i < Math.max(dt.length, st.length); i++) {
      assert.equal(st[i], dt[i], `${topic} record ${i} (${plain ? 'schemas disabled' : 'schemas enabled'}): Sluice (actual) vs Debezium (expected)`);
      compared++;
    }
  }
  return { compared };
}
