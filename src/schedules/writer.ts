/**
 * The one log producer of a pipeline's schedules (`schedules.<pipeline>`): runs of different
 * schedules finish at any time and may write the same topic and always write the history topic,
 * so their commits take turns — each run's records and history entry are one commit of their own.
 * The producer's checkpoint maps each schedule to the last fire time it handled; it is committed
 * with every run, so after a crash it says exactly which fire times' runs are in the log.
 */
import type { AppendRecord, Log, Producer } from '../log/types.ts';

export type RunWriterAppend = (topic: string, record: AppendRecord, partition?: number) => void;

/** The producer id of a pipeline's scheduled runs; `sluice schedules run` uses its own (`.manual`). */
export const producerIdOf = (pipeline: string, manual = false): string => `schedules.${pipeline}${manual ? '.manual' : ''}`;

/** The last handled fire time of each schedule, from a producer checkpoint. */
export function readCheckpoint(text: string | null): Record<string, number> {
  if (!text) return {};
  try {
    const c = JSON.parse(text) as { lastFire?: Record<string, unknown> };
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(c.lastFire ?? {})) if (typeof v === 'number') out[k] = v;
    return out;
  } catch {
    return {};
  }
}

export class RunWriter {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly producer: Producer,
    /** Each schedule's last handled fire time, as committed. */
    readonly lastFire: Record<string, number>,
  ) {}

  static async open(log: Log, pipeline: string, manual = false): Promise<RunWriter> {
    const { producer, checkpoint } = await log.openProducer(producerIdOf(pipeline, manual));
    return new RunWriter(producer, readCheckpoint(checkpoint));
  }

  /**
   * Appends what `fill` appends and commits it, alone (other runs' commits wait their turn), with
   * `fire` (a schedule's fire time now handled) in the checkpoint. Nothing is left appended when it fails.
   */
  write(fill: (append: RunWriterAppend) => void, fire?: { schedule: string; fire: number }): Promise<void> {
    const turn = this.chain.then(async () => {
      const next = { ...this.lastFire };
      if (fire) next[fire.schedule] = Math.max(next[fire.schedule] ?? 0, fire.fire);
      try {
        fill((topic, record, partition) => void this.producer.append(topic, record, partition));
        await this.producer.commit(JSON.stringify({ lastFire: next }));
      } catch (e) {
        await this.producer.abort().catch(() => {});
        throw e;
      }
      Object.assign(this.lastFire, next);
    });
    this.chain = turn.catch(() => {});
    return turn;
  }

  close(): Promise<void> {
    return this.chain.then(() => this.producer.close());
  }
}
