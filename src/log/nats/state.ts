/**
 * What the NATS log keeps in its KV bucket (see names.ts for the keys), and the rules readers
 * apply with it. The bucket is the log's commit record: a commit is the one KV update that
 * clears a producer's intent and stores its checkpoint (producer.ts), so it is atomic across every
 * partition the commit wrote, whatever JetStream does with the records themselves.
 */
import type { TopicInfo } from '../types.ts';

/** `t.<topic id>`: a topic's settings, as TopicInfo. */
export type TopicEntry = TopicInfo;

/**
 * A commit a producer has started: the records it publishes may only land at or after `parts`'
 * offsets (each partition stream's end when the intent was stored). While it stands, readers stop
 * at those offsets, so they never see the commit's records, nor anything stored after them,
 * before the commit's update clears it.
 */
export interface Intent {
  epoch: number;
  commit: number;
  /** When it was stored (ms, the writer's clock; for people: writers time intents out by their own clocks). */
  at: number;
  /** Partition stream name → the first offset the commit's records may take there. */
  parts: Record<string, number>;
}

/** `p.x<producer id>`: one transactional producer. */
export interface ProducerEntry {
  /** Bumped by every openProducer: an update made with an older revision fails (fencing). */
  epoch: number;
  /** The number of the last commit this id completed (0: none); the next one takes commit + 1. */
  commit: number;
  checkpoint: string | null;
  intent: Intent | null;
  /**
   * The streams of the last completed commit, each with its end before and after it. A reader
   * whose stream info was taken while that commit was publishing (and who saw its intent gone only
   * afterwards) finds a count inside a range and knows it for a half commit.
   */
  done?: { parts: Record<string, [number, number]> } | null;
}

/** The header naming the commit a record belongs to: `<producer key> <epoch> <commit>`. */
export const TXN_HEADER = 'Sluice-Txn';

export const txnOf = (producerKey: string, epoch: number, commit: number): string => `${producerKey} ${epoch} ${commit}`;

export function parseTxn(v: string | undefined): { producerKey: string; epoch: number; commit: number } | null {
  if (!v) return null;
  const [producerKey, e, c] = v.split(' ');
  const epoch = Number(e);
  const commit = Number(c);
  if (!producerKey || !Number.isInteger(epoch) || !Number.isInteger(commit)) return null;
  return { producerKey, epoch, commit };
}

export function parseProducer(v: Uint8Array): ProducerEntry {
  const e = JSON.parse(Buffer.from(v).toString('utf8')) as Partial<ProducerEntry>;
  return { epoch: e.epoch ?? 0, commit: e.commit ?? 0, checkpoint: e.checkpoint ?? null, intent: e.intent ?? null, done: e.done ?? null };
}

export const encodeJson = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v), 'utf8');
