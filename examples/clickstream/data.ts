/**
 * The clickstream example's events, shaped as seed 004 defines them (app events and clicks), and
 * the gateway that writes them to the log topics `topic_app_events` and `topic_clickstream` (until
 * Sluice's own HTTP ingestion takes them). Each run of the gateway continues the event clock where
 * the last one stopped (the producer's checkpoint), and also appends every event to a JSON-lines
 * file per topic: the input the check's SQL reads.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';

export const TOPICS = { app: 'topic_app_events', click: 'topic_clickstream' } as const;
const EVENT_TYPES = ['page_view', 'click', 'search', 'filter_applied', 'booking_view', 'click_cta'];
const APPS = ['mobile', 'web'];
const PAGES = ['home', 'search', 'booking_detail', 'checkout', 'profile', 'deals', 'help'].map((p) => `https://travel-booking.com/${p}`);
const DEVICES = ['desktop', 'mobile', 'tablet'];

export interface GatewayOptions {
  /** Events of each kind to write. */
  events: number;
  users: number;
  /** Event time between events (ms); 60 events/minute in the seed, faster here. */
  stepMs: number;
  /** Share of events that arrive 15–40 minutes late (a phone that was offline). */
  lateShare: number;
  seed: number;
}

export const DEFAULTS: GatewayOptions = { events: 20_000, users: 300, stepMs: 250, lateShare: 0.01, seed: 11 };
const START = Date.UTC(2026, 1, 16, 10, 0, 0);

const uuid = (rnd: () => number) => '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) => (Number(c) ^ (Math.floor(rnd() * 256) & (15 >> (Number(c) / 4)))).toString(16));

/** Writes `events` app events and as many clicks to the log at `dir`/log (and the JSON-lines files in `dir`). */
export async function gateway(dir: string, opts: Partial<GatewayOptions> = {}): Promise<{ from: number; to: number }> {
  const o = { ...DEFAULTS, ...opts };
  mkdirSync(dir, { recursive: true });
  const log = await openLog(embeddedLogAt(join(dir, 'log')), {});
  try {
    for (const t of Object.values(TOPICS)) await log.ensureTopic(t, { partitions: 1 });
    const { producer, checkpoint } = await log.openProducer('clickstream-gateway');
    const from = checkpoint ? Number(checkpoint) : 0;
    let x = (o.seed + from) >>> 0 || 1;
    const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const lines: Record<string, string[]> = { [TOPICS.app]: [], [TOPICS.click]: [] };
    // The files follow the log: each commit's events are appended once it is durable.
    const commit = async (ckpt: string) => {
      await producer.commit(ckpt);
      for (const [topic, ls] of Object.entries(lines)) {
        appendFileSync(join(dir, `${topic}.jsonl`), ls.map((l) => l + '\n').join(''));
        ls.length = 0;
      }
    };
    for (let i = from; i < from + o.events; i++) {
      for (const topic of [TOPICS.app, TOPICS.click]) {
        const clock = START + i * o.stepMs;
        const behind = rnd() < o.lateShare ? 15 * 60_000 + Math.floor(rnd() * 25 * 60_000) : Math.floor(rnd() * 20_000);
        const ts = new Date(clock - behind).toISOString();
        const user = `user_${1 + Math.floor(rnd() ** 2 * o.users)}`;
        const session = `sess_${user.slice(5)}_${Math.floor(clock / 1_800_000)}`;
        const ev =
          topic === TOPICS.app
            ? { event_id: uuid(rnd), event_type: pick(EVENT_TYPES), user_id: user, session_id: session, app_type: pick(APPS), timestamp: ts, properties: { page: pick(PAGES).split('/').pop(), destination: pick(['Ha Noi', 'Da Nang', 'Hue']), price: (50 + Math.floor(rnd() * 400)).toFixed(2) } }
            : { click_id: uuid(rnd), user_id: user, session_id: session, page_url: pick(PAGES), element_id: pick(['add_to_cart_button', 'search_box', 'book_now', 'nav_home']), x_coordinate: Math.floor(rnd() * 1920), y_coordinate: Math.floor(rnd() * 1080), timestamp: ts, device_type: pick(DEVICES) };
        const line = JSON.stringify(ev);
        producer.append(topic, { key: JSON.stringify(user), value: line, timestamp: Date.parse(ts) }, 0);
        lines[topic].push(line);
      }
      if (producer.pendingRecords >= 4000) await commit(String(i + 1));
    }
    await commit(String(from + o.events));
    await producer.close();
    return { from, to: from + o.events };
  } finally {
    await log.close();
  }
}
