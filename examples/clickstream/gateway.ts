/**
 * Writes seed 004's app events and clicks to the example's log topics, as the event gateway would.
 * Run it with the pipeline stopped (the embedded log has one writing process); run it again to add
 * more: the event clock continues.
 *
 *   npx tsx examples/clickstream/gateway.ts [--events 20000] [--users 300]
 */
import { parseArgs } from 'node:util';
import { DEFAULTS, gateway } from './data.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: String(DEFAULTS.events) }, users: { type: 'string', default: String(DEFAULTS.users) }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npx tsx examples/clickstream/gateway.ts [--events N] [--users N]   (CLICKSTREAM_DIR, default ./data/clickstream)');
  process.exit(0);
}
const r = await gateway(process.env.CLICKSTREAM_DIR ?? './data/clickstream', { events: Number(values.events), users: Number(values.users) });
console.log(`wrote events ${r.from}–${r.to - 1} of each kind to topic_app_events and topic_clickstream`);
