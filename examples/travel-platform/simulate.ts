/**
 * Seed 004's traffic against the gateway: mobile and web user journeys (page views, searches,
 * filters, booking views, calls to action, and sometimes a booking that is paid, updated or
 * cancelled), clicks and application logs, over HTTP as the apps would send them. Each request is
 * retried with the same body until it is answered 2xx (its ids make the retry harmless), and every
 * acknowledged event is appended to a journal (`sent.jsonl`): the truth check.ts compares the
 * topics with.
 *
 * Rates: by default the seed's (mobile 3–7 concurrent journeys with 1–3 s between steps, web 2–5
 * with 2–5 s, clicks 60 a minute, a few log lines a second: about 300 events a minute). `--rate N`
 * paces events at N per second instead, with as many concurrent journeys as that takes (a user has
 * one journey at a time, so each user's events are acknowledged in the order they were made).
 * `--time-scale K` makes event time run K times faster than the clock, so 5-minute windows close
 * within a short run.
 *
 *   npx tsx examples/travel-platform/simulate.ts [--seconds 60] [--rate N] [--users 500] [--time-scale 1] [--url http://127.0.0.1:8090]
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string' },
    users: { type: 'string', default: '500' },
    'time-scale': { type: 'string', default: '1' },
    url: { type: 'string', default: `http://127.0.0.1:${process.env.TRAVEL_PORT ?? 8090}` },
    journal: { type: 'string', default: join(process.env.TRAVEL_DIR ?? './data/travel', 'sent.jsonl') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: npx tsx examples/travel-platform/simulate.ts [--seconds 60] [--rate events/s] [--users 500] [--time-scale 1] [--url http://127.0.0.1:8090] [--journal ./data/travel/sent.jsonl]');
  process.exit(0);
}
const SECONDS = Number(values.seconds);
const RATE = values.rate ? Number(values.rate) : null;
const USERS = Number(values.users);
const SCALE = Number(values['time-scale']);
const URL_ = values.url!;
const TOKENS = {
  mobile: process.env.TRAVEL_MOBILE_TOKEN ?? 'mobile-dev-token-change-me',
  web: process.env.TRAVEL_WEB_TOKEN ?? 'web-dev-token-change-me',
  services: process.env.TRAVEL_SERVICES_TOKEN ?? 'services-dev-token-change-me',
};
mkdirSync(dirname(values.journal!), { recursive: true });

const t0 = Date.now();
/** Event time: the clock, running `SCALE` times faster from the start. */
const eventTime = () => new Date(t0 + (Date.now() - t0) * SCALE).toISOString();
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)];
const between = (a: number, b: number) => a + Math.random() * (b - a);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const DESTINATIONS = ['Ha Noi', 'Da Nang', 'Ho Chi Minh City', 'Hoi An', 'Nha Trang', 'Phu Quoc', 'Sa Pa', 'Hue'];
const PAGES = ['home', 'search_results', 'hotel_detail', 'booking_detail', 'checkout', 'profile'];

let stopping = false;
let acked = 0;
let retried = 0;
let bookingSeq = 0;
const counts: Record<string, number> = {};

/** POSTs until 2xx (same body: the ids make a retry a duplicate at worst), then journals the events. */
async function send(route: string, token: string, events: Record<string, unknown>[], topic: string, batch: boolean): Promise<void> {
  const body = JSON.stringify(batch ? events : events[0]);
  for (let attempt = 0; ; attempt++) {
    const status = await fetch(URL_ + route, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body })
      .then(async (r) => {
        const text = await r.text();
        if (r.status === 400 || r.status === 401 || r.status === 403 || r.status === 413 || r.status === 415) throw new Error(`${route} answered ${r.status}: ${text}`);
        return r.status;
      })
      .catch((e: Error) => {
        if (e.message.includes('answered')) throw e;
        return 0;
      });
    if (status >= 200 && status < 300) break;
    retried++;
    await sleep(Math.min(2000, 50 * 2 ** attempt));
  }
  appendFileSync(values.journal!, events.map((e) => JSON.stringify({ topic, route, event: e }) + '\n').join(''));
  acked += events.length;
  counts[topic] = (counts[topic] ?? 0) + events.length;
}

/** One user's session: browsing steps, sometimes a booking with what follows it. */
async function journey(user: string, app: 'mobile' | 'web', pace: () => Promise<void>): Promise<void> {
  const session = `sess_${randomUUID().slice(0, 8)}`;
  const token = TOKENS[app];
  const destination = pick(DESTINATIONS);
  const base = () => ({ event_id: randomUUID(), user_id: user, session_id: session, app_type: app, timestamp: eventTime() });
  const steps = 3 + Math.floor(Math.random() * 6);
  const browsing: Record<string, unknown>[] = [];
  for (let i = 0; i < steps && !stopping; i++) {
    await pace();
    const ev = { ...base(), event_type: pick(['page_view', 'page_view', 'search', 'filter_applied', 'booking_view', 'click_cta'] as const), properties: { page: pick(PAGES), destination } };
    // Web sends its page events in small batches; the apps one by one.
    if (app === 'web') {
      browsing.push(ev);
      if (browsing.length === 3) await send('/events/batch', TOKENS.web, browsing.splice(0), 'topic_app_events', true);
    } else await send('/events/user', token, [ev], 'topic_app_events', false);
  }
  if (browsing.length) await send('/events/batch', TOKENS.web, browsing.splice(0), 'topic_app_events', true);
  if (stopping || Math.random() > 0.3) return;
  const booking = `bk_${++bookingSeq}`;
  const price = (between(40, 900) | 0) + '.00';
  const flow: string[] = ['booking_created', ...(Math.random() < 0.3 ? ['booking_updated'] : []), Math.random() < 0.8 ? 'payment_completed' : 'booking_cancelled'];
  for (const type of flow) {
    if (stopping) return;
    await pace();
    const p = type === 'booking_updated' ? ((between(40, 900) | 0) + '.00') : price;
    await send('/events/booking', token, [{ ...base(), event_type: type, properties: { booking_id: booking, destination, price: p } }], 'topic_app_events', false);
  }
}

const idle = Array.from({ length: USERS }, (_, i) => `user_${i + 1}`);
/** A user with no journey running (each user's events in order), back to the pool after. */
async function withUser(fn: (user: string) => Promise<void>): Promise<void> {
  const user = idle.splice(Math.floor(Math.random() * idle.length), 1)[0];
  if (!user) return sleep(50);
  try {
    await fn(user);
  } finally {
    idle.push(user);
  }
}

async function clicks(perSecond: number): Promise<void> {
  while (!stopping) {
    const n = Math.max(1, Math.round(perSecond / 4));
    const batch = Array.from({ length: Math.min(n, 500) }, () => ({ click_id: randomUUID(), user_id: `user_${1 + Math.floor(Math.random() * USERS)}`, session_id: `sess_${Math.floor(Math.random() * 1e6)}`, page_url: `https://travel-booking.com/${pick(PAGES)}`, element_id: pick(['add_to_cart_button', 'search_button', 'filter_price', 'book_now']), x_coordinate: Math.floor(Math.random() * 1920), y_coordinate: Math.floor(Math.random() * 1080), timestamp: eventTime(), device_type: pick(['desktop', 'mobile', 'tablet'] as const) }));
    await send('/events/click', TOKENS.web, batch, 'topic_clickstream', true);
    await sleep((batch.length / perSecond) * 1000);
  }
}

async function logs(perSecond: number): Promise<void> {
  while (!stopping) {
    const n = Math.max(1, Math.round(perSecond / 2));
    const batch = Array.from({ length: Math.min(n, 500) }, () => ({ log_id: randomUUID(), service: pick(['api-gateway', 'booking-service', 'payment-service', 'search-service'] as const), level: pick(['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'] as const), message: `handled request ${randomUUID().slice(0, 8)}`, trace_id: randomUUID(), timestamp: eventTime() }));
    await send('/logs', TOKENS.services, batch, 'topic_app_logs', true);
    await sleep((batch.length / perSecond) * 1000);
  }
}

const runners: Promise<void>[] = [];
if (RATE === null) {
  // The seed's rates.
  const mobile = 3 + Math.floor(Math.random() * 5);
  const web = 2 + Math.floor(Math.random() * 4);
  for (let i = 0; i < mobile; i++) runners.push((async () => { while (!stopping) await withUser((u) => journey(u, 'mobile', () => sleep(between(1000, 3000)))); })());
  for (let i = 0; i < web; i++) runners.push((async () => { while (!stopping) await withUser((u) => journey(u, 'web', () => sleep(between(2000, 5000)))); })());
  runners.push(clicks(1), logs(2));
  console.log(`simulating seed 004's rates: ${mobile} mobile and ${web} web journeys, 60 clicks/min, 2 log lines/s, for ${SECONDS} s`);
} else {
  // A paced stream of steps: a token bucket of RATE per second shared by the journeys; clicks and logs a fifth of the rate each.
  let tokens = 0;
  let last = Date.now();
  const pace = async () => {
    for (;;) {
      const now = Date.now();
      tokens = Math.min(RATE / 10, tokens + ((now - last) / 1000) * RATE * 0.6);
      last = now;
      if (tokens >= 1) return void tokens--;
      await sleep(5);
    }
  };
  const journeys = Math.min(USERS - 1, Math.max(4, Math.ceil(RATE / 50)));
  for (let i = 0; i < journeys; i++) runners.push((async () => { while (!stopping) await withUser((u) => journey(u, i % 2 ? 'web' : 'mobile', pace)); })());
  runners.push(clicks(RATE * 0.2), logs(RATE * 0.2));
  console.log(`simulating ${RATE} events/s: ${journeys} concurrent journeys, clicks and logs a fifth each, for ${SECONDS} s`);
}
const progress = setInterval(() => console.log(`  ${Math.round((Date.now() - t0) / 1000)} s: ${acked} events acknowledged (${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ')}), ${retried} retries`), 5000);
await sleep(SECONDS * 1000);
stopping = true;
await Promise.all(runners);
clearInterval(progress);
console.log(`done: ${acked} events acknowledged in ${((Date.now() - t0) / 1000).toFixed(1)} s (${Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ')}), ${retried} retries; journal ${values.journal}`);
