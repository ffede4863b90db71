/**
 * How the NATS log names things on the server. Everything of one log lives under its namespace:
 *
 *   stream  <ns>_<topic id>_<partition>        one JetStream stream per partition, subject
 *   subject <ns>.<topic id>.<partition>        (the only one the stream holds)
 *   bucket  sluice-<ns>                        one KV bucket: topics, producers, consumer groups
 *   keys    t.<topic id>                       a topic's settings (its name, partitions, retention)
 *           p.x<base64url(producer id)>        a producer's epoch, checkpoint, commit in flight
 *           g.x<base64url(group)>.<topic id>   a consumer group's offsets of one topic
 *           a.x<base64url(producer id)>.<epoch>.<commit>   a commit that was aborted (its records,
 *                                      where any are left, are skipped by readers)
 *
 * A topic id is the topic name made safe for subjects and stream names (which allow no `.`) plus a
 * hash of the exact name, so `a.b` and `a_b` never share a stream, and names up to Kafka's 249
 * characters stay within what JetStream accepts.
 */
import { createHash } from 'node:crypto';

/** Kafka's rule for topic names (the Log interface's). */
export const TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;
/** A namespace is one subject token and part of stream and bucket names. */
export const NAMESPACE_RE = /^[A-Za-z0-9_-]{1,64}$/;

export const validTopicName = (name: string): boolean => TOPIC_RE.test(name) && name !== '.' && name !== '..';

export function topicId(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
  return `${safe}-${hash}`;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
const unb64 = (s: string): string => Buffer.from(s, 'base64url').toString('utf8');

export class Names {
  readonly bucket: string;
  constructor(readonly ns: string) {
    this.bucket = `sluice-${ns}`;
  }

  stream(topic: string, partition: number): string {
    return `${this.ns}_${topicId(topic)}_${partition}`;
  }

  subject(topic: string, partition: number): string {
    return `${this.ns}.${topicId(topic)}.${partition}`;
  }

  /** Every subject of this namespace's partition streams (to list or remove them). */
  get allSubjects(): string {
    return `${this.ns}.>`;
  }

  topicKey(topic: string): string {
    return `t.${topicId(topic)}`;
  }

  producerKey(id: string): string {
    return `p.x${b64(id)}`;
  }

  /** The key marking a producer's commit as aborted (`producerKey` is `p.x…`). */
  abortedKey(producerKey: string, epoch: number, commit: number): string {
    return `a.${producerKey.slice(2)}.${epoch}.${commit}`;
  }

  groupKey(group: string, topic: string): string {
    return `g.x${b64(group)}.${topicId(topic)}`;
  }

  /** The group a `g.` key belongs to. */
  groupOfKey(key: string): string | null {
    const m = /^g\.x([A-Za-z0-9_-]*)\./.exec(key);
    return m ? unb64(m[1]) : null;
  }
}
