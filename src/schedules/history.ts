/** Reading the run history of a pipeline's schedules (the topic `<pipeline>.schedules`). */
import type { Log } from '../log/types.ts';
import { historyTopicOf } from './spec.ts';
import type { RunEntry } from './types.ts';

/** Every history entry, oldest first (optionally of one schedule); empty when no schedule has run. */
export async function readHistory(log: Log, pipeline: string, schedule?: string): Promise<RunEntry[]> {
  const topic = historyTopicOf(pipeline);
  if (!(await log.topicInfo(topic))) return [];
  const out: RunEntry[] = [];
  for (const p of await log.offsets(topic)) {
    for (let at = p.start; at < p.end; ) {
      const { records, next } = await log.read(topic, p.partition, at, 1 << 20);
      for (const r of records) {
        if (!r.value) continue;
        if (schedule !== undefined && r.key?.toString() !== schedule) continue;
        try {
          out.push(JSON.parse(r.value.toString('utf8')) as RunEntry);
        } catch {
          // not an entry this version wrote; history is informational
        }
      }
      if (next <= at) break;
      at = next;
    }
  }
  return out.sort((a, b) => Date.parse(a.endedAt) - Date.parse(b.endedAt));
}
