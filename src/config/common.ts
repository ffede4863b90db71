/** Config pieces several components share: batch bounds and the pipeline name's derived defaults. */
import { duration, integer, object, size, type ResolveContext } from './fields.ts';

/** Which default a batch key takes: a number, or (for sinks) the pipeline's own batch setting. */
type BatchDefault = number | ((ctx: ResolveContext) => number);

/** A `batch:` mapping: commit at whichever bound comes first. */
export function batchField(d: { maxRecords: BatchDefault; maxBytes: BatchDefault; maxDelayMs: BatchDefault }, texts: { maxRecords?: string; maxBytes?: string; maxDelayMs?: string } = {}) {
  return object(
    {
      maxRecords: integer({ min: 1, description: 'Commit when this many records are pending…' }).default(d.maxRecords, texts.maxRecords),
      maxBytes: size({ description: '…or this many bytes…' }).default(d.maxBytes, texts.maxBytes ?? (typeof d.maxBytes === 'number' ? bytesText(d.maxBytes) : undefined)),
      maxDelayMs: duration({ description: '…or this long after the first pending record, at most. Batching adapts: when there is nothing more to read and there is room for a commit (a source: fewer than two log commits running, the log syncs one beside the other; a sink: no batch of its target running), the commit starts at once; batches grow only while the commits before are in flight.' }).default(d.maxDelayMs, texts.maxDelayMs),
    },
    { description: 'Bounds of one commit.' },
  );
}

/** `64MiB` for 67108864. */
export function bytesText(n: number): string {
  for (const [u, f] of [['GiB', 1 << 30], ['MiB', 1 << 20], ['KiB', 1024]] as const) if (n >= f && n % f === 0) return `\`${n / f}${u}\``;
  return `\`${n}\``;
}

/** The pipeline's name, from the config being resolved. */
export const pipelineName = (ctx: ResolveContext): string => String(ctx.root?.name ?? '');
