/**
 * Dedupe: a record passes unchanged when its id is new, and is dropped when the id was seen within
 * `within`. Each id is a state entry holding its time; once the clock (the largest time seen, or
 * the wall clock) is `within` past it, the entry goes, so the state holds the ids of one `within`.
 * A repeat older than that passes (it cannot be told from a new record any more); a record with
 * no id (null) passes too.
 *
 * Expiry is a timer per id in the state store, at the second its id expires (on disk with
 * `state.store: disk`, so the ids of a long `within` need not fit in memory).
 */
import type { KeyedState, RecordTransform } from '../../registry/spec.ts';
import { outputTopic } from '../common.ts';
import { compileExpr } from '../expr/index.ts';
import { evaluate, eventTime, scopeOf } from '../exprs.ts';
import type { DedupeProcessorConfig } from './spec.ts';

const META = 'meta';

export function dedupeTransform(c: DedupeProcessorConfig): RecordTransform {
  const what = `processor ${c.name}`;
  const id = compileExpr(c.id);
  const ts = c.timestamp ? compileExpr(c.timestamp) : null;
  let state: KeyedState;
  let clock = -Infinity;
  let saved = -Infinity;
  /** An id seen at `t` expires once the clock is past `t + within`: its timer is at the next whole second from then. */
  const remember = (s: KeyedState, key: string, t: number) => s.timer(Math.ceil((t + c.within + 1) / 1000) * 1000, key);

  return {
    open(s) {
      state = s;
      clock = s.get<{ clock: number }>(META)?.clock ?? -Infinity;
      saved = clock;
      for (const [k, v] of s.entries()) if (k !== META) remember(s, k, v as number);
    },

    apply(rec) {
      if (rec.value === null) return [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: null, headers: rec.headers }];
      const scope = scopeOf(rec);
      let t = Date.now();
      if (c.time === 'event') {
        if (!ts) t = rec.timestamp;
        else t = eventTime(ts, scope, what, 'timestamp');
      }
      const v = evaluate(id, scope, `${what} (id)`);
      const out = [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: rec.value, headers: rec.headers }];
      if (t > clock) clock = t;
      if (v === null || v === undefined) return out;
      const k = 'id\u0000' + (typeof v === 'string' ? v : JSON.stringify(typeof v === 'bigint' ? String(v) : v));
      const seen = state.get<number>(k);
      if (seen !== undefined && seen + c.within >= clock) return [];
      state.put(k, t);
      remember(state, k, t);
      return out;
    },

    tick(now) {
      if (c.time === 'processing' && now > clock) clock = now;
      if (clock !== saved) {
        state.put(META, { clock });
        saved = clock;
      }
      // A timer at or before the clock: its id is expired unless seen again since (then a later timer holds it).
      for (const k of state.due(clock)) {
        const seen = state.get<number>(k);
        if (seen !== undefined && seen + c.within < clock) state.delete(k);
      }
      return [];
    },
  };
}
