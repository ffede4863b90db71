/**
 * Runs the orders example's order service: writes `--changes` order changes (5% of them twice, as
 * retries) to the MongoDB collection `order_events`, in `--rounds` rounds `--interval` ms apart.
 *
 *   npx tsx examples/orders/service.ts [--changes 2000] [--rounds 5] [--interval 500]
 */
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { OrderService } from './data.ts';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' }, interval: { type: 'string', default: '500' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npx tsx examples/orders/service.ts [--changes N] [--rounds N] [--interval ms]   (ORDERS_MONGO, ORDERS_DB)');
  process.exit(0);
}
const url = process.env.ORDERS_MONGO ?? 'mongodb://127.0.0.1:27018';
const dbName = process.env.ORDERS_DB ?? 'orders';
const client = new MongoClient(`${url}/?directConnection=true`);
await client.connect();
const svc = await OrderService.open(client.db(dbName), Date.now());
const rounds = Number(values.rounds);
let written = 0;
for (let r = 0; r < rounds; r++) {
  written += await svc.write(Math.ceil(Number(values.changes) / rounds));
  await new Promise((res) => setTimeout(res, Number(values.interval)));
}
await client.close();
console.log(`wrote ${written} order events (${values.changes} changes and their retries) to ${dbName}.order_events`);
