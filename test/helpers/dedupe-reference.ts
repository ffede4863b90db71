/** The dedupe processor's test reference, shared by its unit tests and the on-disk state tests: the definition applied by brute force. */
import { dedupeProcessor, type DedupeProcessorConfig } from '../../src/processors/dedupe/spec.ts';

export const dedupeConfig = (raw: Record<string, unknown> = {}): DedupeProcessorConfig => {
  const written = { type: 'dedupe', name: 'd', inputs: ['events'], id: 'id', timestamp: 'ts', within: '10s', ...raw };
  return dedupeProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) as DedupeProcessorConfig;
};

export interface DedupeEv {
  n: number;
  id: string | null;
  ts: number;
}

export function dedupeEvents(count: number): DedupeEv[] {
  let x = 3;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: count }, (_, n) => ({ n, id: rnd() < 0.05 ? null : `c${Math.floor(rnd() * 300)}`, ts: 1_000_000 + n * 100 - Math.floor(rnd() * 2000) }));
}

export function dedupeReference(evs: DedupeEv[], within: number): number[] {
  let clock = -Infinity;
  const seen = new Map<string, number>();
  const out: number[] = [];
  for (const e of evs) {
    clock = Math.max(clock, e.ts);
    if (e.id === null) {
      out.push(e.n);
      continue;
    }
    const s = seen.get(e.id);
    if (s !== undefined && s + within >= clock) continue;
    seen.set(e.id, e.ts);
    out.push(e.n);
  }
  return out;
}

