/**
 * Idempotency keys the gateway took within its window. The ids live in the log itself (each
 * record's value is the event, which holds its id), so what a restart must know is read back from
 * the topics' recent records: nothing is remembered that did not commit, and nothing that
 * committed is forgotten within the window. An id whose commit is still running maps to that
 * commit: a retry that arrives meanwhile waits for it and is then a duplicate (or, if the commit
 * failed, is written itself).
 */
import type { Log } from '../../log/types.ts';

export class IdWindow {
  /**
   * Per scope (topic), id → when it leaves the window (ms), or the commit carrying it while that
   * runs (true once durable, false if it failed). Insertion order is the order ids were taken, so
   * expiry and eviction look at the front only. One map entry per id, set when a request takes it
   * and updated in place when its commit ends: the map is most of the gateway's old-generation
   * memory, and every extra operation on it costs under load.
   */
  private readonly scopes = new Map<string, Map<string, number | Promise<boolean>>>();
  private lastExpiry = 0;
  size = 0;
  evicted = 0;
  constructor(
    private readonly windowMs: number,
    private readonly maxIds: number,
  ) {}

  private scope(scope: string): Map<string, number | Promise<boolean>> {
    let m = this.scopes.get(scope);
    if (!m) this.scopes.set(scope, (m = new Map()));
    return m;
  }

  /** What the window knows of an id: a duplicate, the commit that is taking it, or nothing. */
  lookup(scope: string, id: string, now = Date.now()): 'duplicate' | Promise<boolean> | null {
    if (now - this.lastExpiry >= 1000) this.expire(now);
    const v = this.scopes.get(scope)?.get(id);
    if (v === undefined) return null;
    if (typeof v === 'number') return v > now ? 'duplicate' : null;
    return v;
  }

  /** Marks an id as being taken by the commit `p` resolves for. */
  reserve(scope: string, id: string, p: Promise<boolean>): void {
    const m = this.scope(scope);
    if (!m.has(id)) this.size++;
    m.set(id, p);
    this.bound(m);
  }

  /** The commit of a reserved id ended: remembered until `ts` + window if it succeeded, forgotten if not. */
  settle(scope: string, id: string, p: Promise<boolean>, ok: boolean, ts: number): void {
    const m = this.scopes.get(scope);
    if (!m || m.get(id) !== p) return;
    if (ok) m.set(id, ts + this.windowMs);
    else {
      m.delete(id);
      this.size--;
    }
  }

  /** Remembers a committed id, taken at `ts` (ids read back at start). */
  add(scope: string, id: string, ts: number): void {
    const m = this.scope(scope);
    if (m.has(id)) m.delete(id);
    else this.size++;
    m.set(id, ts + this.windowMs);
    this.bound(m);
  }

  private bound(m: Map<string, number | Promise<boolean>>): void {
    while (this.size > this.maxIds) {
      const [k, v] = m.entries().next().value!;
      if (typeof v !== 'number') break; // never forget an id whose commit runs
      m.delete(k);
      this.size--;
      this.evicted++;
    }
  }

  private expire(now: number): void {
    this.lastExpiry = now;
    for (const m of this.scopes.values()) {
      for (const [k, v] of m) {
        if (typeof v !== 'number' || v > now) break;
        m.delete(k);
        this.size--;
      }
    }
  }

  /**
   * Reads back the ids of `topic`'s records within the window (`idOf` finds an event's id in its
   * value, as the routes writing the topic name it): per partition, steps back from the
   * end (4× further each time) until the records before are older than the window, then reads
   * forward. Returns the number of ids found.
   */
  async recover(log: Log, topic: string, scope: string, idOf: (value: unknown) => string | null, now = Date.now()): Promise<number> {
    if (!(await log.topicInfo(topic))) return 0;
    const cutoff = now - this.windowMs;
    const found: { id: string; ts: number }[] = [];
    for (const { partition, start, end } of await log.offsets(topic)) {
      let from = end;
      for (let step = 1024; from > start; step *= 4) {
        from = Math.max(start, end - step);
        const { records } = await log.read(topic, partition, from, 1);
        if (!records.length || records[0].timestamp < cutoff || end - from >= this.maxIds) break;
      }
      for (let at = from; at < end; ) {
        const { records, next } = await log.read(topic, partition, at, 4 << 20);
        for (const r of records) {
          if (r.timestamp < cutoff || !r.value) continue;
          let id: string | null = null;
          try {
            id = idOf(JSON.parse(r.value.toString('utf8')));
          } catch {
            // not JSON: not an event of the gateway's
          }
          if (id !== null) found.push({ id, ts: r.timestamp });
        }
        if (next <= at) break;
        at = next;
      }
    }
    // Oldest first, so the bound keeps the newest.
    found.sort((a, b) => a.ts - b.ts);
    this.lastExpiry = now;
    for (const f of found) this.add(scope, f.id, f.ts);
    return found.length;
  }
}
