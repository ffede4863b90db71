/**
 * The re-check of candidate keys while changes keep flowing. A key the scan found different may
 * only be in flight: changed in the source after its chunk was read from the target, or before and
 * not applied yet. So each round reads the keys from the source, notes the source's position, waits
 * until the pipeline's source has passed that position and the sink has applied everything the log
 * held then (status.json in the state dir: the source's position, each sink's applied offsets; the
 * log's end offsets), then reads the target, then the source again. A key whose target row equals
 * either source read is consistent; only keys that differ in every round are drift. When the
 * pipeline is not running there is nothing in flight: one round, no wait.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Log } from '../../log/types.ts';
import { statusFile } from '../../engine/status.ts';
import { keyFits, keyId, readSourceKeys } from './compare.ts';
import type { SourceReader, SourceTable } from './source.ts';
import type { TargetReader } from './targets.ts';

export type DriftKind = 'missing' | 'extra' | 'differs';

export interface KeyDrift {
  /** Key column → value (canonical text). */
  key: Record<string, string>;
  kind: DriftKind;
  /** For `differs`: the columns whose values differ, with both values. */
  columns?: { column: string; source: string; target: string }[];
  /** An extra row whose key no source row can have (`abc` for an integer key): `--repair` cannot re-emit it; delete it from the target by hand. */
  notASourceKey?: true;
}

/** The pipeline's status.json, when the pipeline is running (written in the last 10 s). */
export function runningStatus(stateDir: string | null): Record<string, any> | null {
  if (!stateDir || !existsSync(statusFile(stateDir))) return null;
  try {
    const s = JSON.parse(readFileSync(statusFile(stateDir), 'utf8'));
    const fresh = Date.now() - Date.parse(s.updatedAt) < 10_000;
    return fresh && (s.state === 'running' || s.state === 'starting') ? s : null;
  } catch {
    return null;
  }
}

export interface CatchUp {
  stateDir: string;
  /** Opens the log to read its end offsets (the CLI opens it read-only; inside `sluice run` the runner's own). */
  log: () => Promise<{ log: Log; close: boolean }>;
  timeoutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the pipeline's source is past `pos` and sink `sink` has applied `topic` up to the
 * log's end as of then. False when it did not within the timeout (or the pipeline stopped).
 */
export async function waitCaughtUp(c: CatchUp, src: SourceReader, pos: string, sink: string, topic: string): Promise<boolean> {
  const deadline = Date.now() + c.timeoutMs;
  let ends: Map<number, number> | null = null;
  while (Date.now() < deadline) {
    const s = runningStatus(c.stateDir);
    if (!s) return false;
    if (!ends) {
      if (src.reached(s.source, pos)) {
        const { log, close } = await c.log();
        try {
          ends = (await log.topicInfo(topic)) ? new Map((await log.offsets(topic)).map((p) => [p.partition, p.end])) : new Map();
        } finally {
          if (close) await log.close();
        }
      }
    }
    if (ends) {
      const sk = (s.sinks ?? []).find((x: any) => x.name === sink);
      if (!sk) return false;
      const offs = sk.offsets ?? {};
      if ([...ends].every(([p, end]) => end === 0 || (offs[`${topic}/${p}`] ?? 0) >= end)) return true;
    }
    await sleep(200);
  }
  return false;
}

const same = (a: string[] | undefined, b: string[] | undefined) => (a === undefined ? b === undefined : b !== undefined && a.every((v, i) => v === b[i]));

export function classify(st: SourceTable, key: string[], s: string[] | undefined, t: string[] | undefined): KeyDrift {
  const k = Object.fromEntries(st.keys.map((c, i) => [c.col, key[i]]));
  if (s && !t) return { key: k, kind: 'missing' };
  if (!s && t) return keyFits(st, key) ? { key: k, kind: 'extra' } : { key: k, kind: 'extra', notASourceKey: true };
  const columns = st.columns.map((c, i) => ({ column: c.col, source: s![i], target: t![i] })).filter((x) => x.source !== x.target);
  return { key: k, kind: 'differs', columns };
}

export interface RecheckResult {
  drift: KeyDrift[];
  /** Whether every wait saw the pipeline catch up (false: not running, or it timed out). */
  caughtUp: boolean;
  rounds: number;
}

export async function recheck(o: { src: SourceReader; st: SourceTable; t: TargetReader; sink: string; keys: string[][]; topic: string; catchUp: CatchUp | null; rounds?: number }): Promise<RecheckResult> {
  let keys = o.keys;
  let caughtUp = o.catchUp !== null;
  let rounds = 0;
  let last = new Map<string, { s?: string[]; t?: string[] }>();
  const maxRounds = o.catchUp ? (o.rounds ?? 2) : 1;
  while (keys.length && rounds < maxRounds) {
    rounds++;
    const readSource = async () => {
      const m = await readSourceKeys(o.src.engine, o.st, keys);
      if (o.t.fromSource) for (const [k, row] of m) m.set(k, o.t.fromSource(row));
      return m;
    };
    const s1 = await readSource();
    if (o.catchUp && runningStatus(o.catchUp.stateDir)) {
      const pos = await o.src.position();
      if (!(await waitCaughtUp(o.catchUp, o.src, pos, o.sink, o.topic))) caughtUp = false;
    } else caughtUp = false;
    await o.t.refresh?.();
    const t = await o.t.byKeys(keys);
    const s2 = o.catchUp ? await readSource() : s1;
    last = new Map();
    const still: string[][] = [];
    for (const k of keys) {
      const id = keyId(k);
      const tr = t.get(id);
      if (same(s1.get(id), tr) || same(s2.get(id), tr)) continue;
      still.push(k);
      last.set(id, { s: s2.get(id), t: tr });
    }
    keys = still;
    if (!caughtUp) break;
  }
  return { drift: keys.map((k) => classify(o.st, k, last.get(keyId(k))!.s, last.get(keyId(k))!.t)), caughtUp, rounds };
}
