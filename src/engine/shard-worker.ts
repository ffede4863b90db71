/**
 * One shard of a parallel processor (shards.ts), in a worker thread: its own copy of the
 * transform and the state of the keys it owns. The task sends it the records whose shard key
 * hashes to it, each with the task's clock as of it (what a window's watermark needs of the
 * records other shards own). Requests are handled one at a time, in the order they came.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../core/logger.ts';
import { processorSpec, tableNamer } from '../registry/index.ts';
import type { TransformInput, TransformOutput } from '../registry/spec.ts';
import { type ShardInit, type ShardReply, type ShardRequest, type WireBatch, type WireError } from './shard-wire.ts';
import { StateStore } from './state-store.ts';

const init = workerData as ShardInit;
const port = parentPort!;

/** Log lines go to the task's logger in the main thread. */
function logger(fields: Record<string, unknown>): Logger {
  const send = (level: string) => (msg: string, f?: Record<string, unknown>) => port.postMessage({ log: { level, msg, fields: { ...fields, ...f } } });
  return { debug: send('debug'), info: send('info'), warn: send('warn'), error: send('error'), child: (f) => logger({ ...fields, ...f }) };
}

const transform = await processorSpec(init.type).create(init.cfg, {
  pipeline: init.pipeline,
  logger: logger({ shard: init.shard }),
  tableOf: tableNamer(init.sourceType),
});
const store = new StateStore(init.maxKeys, `processor ${init.processor} (shard ${init.shard})`);

function wireError(e: unknown): WireError {
  const err = e as { message?: unknown; code?: unknown; name?: unknown };
  return { message: typeof err?.message === 'string' ? err.message : String(e), code: typeof err?.code === 'string' ? err.code : undefined, name: typeof err?.name === 'string' ? err.name : undefined };
}

/** The batch's records as the transform takes them: views of the batch's bytes. */
function records(b: WireBatch): TransformInput[] {
  const bytes = Buffer.from(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  const out = new Array<TransformInput>(b.n);
  let at = 0;
  for (let i = 0; i < b.n; i++) {
    const m = i * 5;
    const kl = b.nums[m + 3];
    const vl = b.nums[m + 4];
    const key = kl < 0 ? null : bytes.subarray(at, (at += kl));
    const value = vl < 0 ? null : bytes.subarray(at, (at += vl));
    out[i] = { topic: b.topics[b.topic[i]], partition: b.nums[m], offset: b.nums[m + 1], timestamp: b.nums[m + 2], key, value, headers: b.headers?.[i] };
  }
  return out;
}

/** The batch's records are this shard's: each applied after taking in the task's clock as of it. */
async function apply(b: WireBatch): Promise<ShardReply> {
  const idx: number[] = [];
  const outs: (TransformOutput[] | null)[] = [];
  const errors: (WireError | null)[] = [];
  const recs = records(b);
  for (let i = 0; i < recs.length; i++) {
    transform.advance?.(b.clocks[i]);
    try {
      let r = transform.apply(recs[i]);
      if (r instanceof Promise) r = await r;
      if (r.length) {
        idx.push(i);
        outs.push(r);
        errors.push(null);
      }
    } catch (e) {
      idx.push(i);
      outs.push(null);
      errors.push(wireError(e));
    }
  }
  transform.advance?.(b.end);
  return { idx, outs, errors };
}

async function handle(m: ShardRequest): Promise<ShardReply> {
  switch (m.op) {
    case 'load':
      for (let i = 0; i < m.entries.length; i += 2) store.load(m.entries[i] as string, m.entries[i + 1]);
      return {};
    case 'open':
      transform.open?.(store);
      return { size: store.size };
    case 'apply':
      return apply(m.batch);
    case 'tick':
      return { out: transform.tick ? transform.tick(m.now) : [], behind: transform.behind?.() ?? false };
    case 'flush': {
      const entries: (string | null)[] = [];
      store.drain((k, v) => entries.push(k, v));
      return { entries, size: store.size };
    }
  }
}

let chain: Promise<unknown> = Promise.resolve();
port.on('message', (m: ShardRequest) => {
  chain = chain.then(async () => {
    try {
      port.postMessage({ id: m.id, ...(await handle(m)) });
    } catch (e) {
      port.postMessage({ id: m.id, error: wireError(e) });
    }
  });
});
port.postMessage({ ready: true });
