/**
 * Dedupe: a record passes unchanged when its id is new, and is dropped when the id was seen within
 * `within`. Each id is a state entry holding its time; once the clock (the largest time seen, or
 * the wall clock) is `within` past it, the entry goes, so the state holds the ids of one `within`.
 * A repeat older than that passes (it cannot be told from a new record any more); a record with
 * no id (null) passes too.
 */
import type { KeyedState, RecordTransform, StateRef } from '../../registry/spec.ts';
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
  /** Ids by the second they expire in. */
  let expiring = new Map<number, StateRef[]>();
  const remember = (ref: StateRef) => {
    const sec = Math.floor(((ref.v as number) + c.within) / 1000);
    const at = expiring.get(sec);
    if (at) at.push(ref);
    else expiring.set(sec, [ref]);
  };

  return {
    open(s) {
      state = s;
      clock = s.get<{ clock: number }>(META)?.clock ?? -Infinity;
      saved = clock;
      expiring = new Map();
      for (const [k, v] of s.entries()) if (k !== META) remember(s.ref(k, v));
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
      remember(state.ref(k, t));
      return out;
    },

    tick(now) {
      if (c.time === 'processing' && now > clock) clock = now;
      if (clock !== saved) {
        state.put(META, { clock });
        saved = clock;
      }
      const limit = Math.floor((clock - c.within) / 1000);
      for (const [sec, refs] of expiring) {
        if (sec > limit) continue;
        const keep: StateRef[] = [];
        for (const r of refs) {
          if (r.v === undefined) continue;
          if ((r.v as number) + c.within >= clock) keep.push(r);
          else state.delete(r.key);
        }
        if (keep.length) expiring.set(sec, keep);
        else expiring.delete(sec);
      }
      return [];
    },
  };
}
