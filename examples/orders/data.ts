/**
 * The orders example's order service and its truth. The service writes each change of an order
 * (created, paid, shipped, delivered or cancelled, an amended amount) as a document of the MongoDB
 * collection `order_events`, with its change_id; 5% of changes are written twice, as a service
 * that retries after a timeout does. `truth()` computes from the collection itself what the unique
 * changes and each order's state are, which check.ts compares DuckDB with.
 */
import { randomUUID } from 'node:crypto';
import { Decimal128, Int32, type Db } from 'mongodb';

/** One order event as the service writes it. */
export interface OrderEvent {
  _id: number;
  change_id: string;
  order_id: number;
  status: string;
  amount: Decimal128;
  /** When the service wrote the event (the load test measures lag from it). */
  ts: Date;
}

const FLOW = ['created', 'paid', 'shipped', 'delivered'];

/** Order states the service continues from (the collection's, read once per process). */
export class OrderService {
  private id = 0;
  private nextOrder = 1;
  private readonly state = new Map<number, { status: string; amount: string }>();
  private open: number[] = [];
  private x: number;

  private constructor(
    private readonly db: Db,
    seed: number,
  ) {
    this.x = (seed * 2654435761) >>> 0 || 1;
  }

  /** A service continuing from what the collection holds. */
  static async open(db: Db, seed = 1): Promise<OrderService> {
    const s = new OrderService(db, seed);
    const events = db.collection<OrderEvent>('order_events');
    for await (const e of events.find({}, { sort: { _id: 1 } })) {
      s.id = Math.max(s.id, e._id);
      s.nextOrder = Math.max(s.nextOrder, e.order_id + 1);
      s.state.set(e.order_id, { status: e.status, amount: e.amount.toString() });
    }
    s.open = [...s.state].filter(([, v]) => v.status !== 'delivered' && v.status !== 'cancelled').map(([o]) => o);
    return s;
  }

  private rnd(): number {
    return (this.x = (Math.imul(this.x, 1664525) + 1013904223) >>> 0) / 4294967296;
  }

  /** The next `changes` events (with the retries' repeats), stamped with the current time. */
  next(changes: number): OrderEvent[] {
    const out: OrderEvent[] = [];
    for (let i = 0; i < changes; i++) {
      let order: number;
      let s: { status: string; amount: string };
      if (this.open.length < 20 || this.rnd() < 0.3) {
        order = this.nextOrder++;
        s = { status: 'created', amount: (10 + Math.floor(this.rnd() * 50_000) / 100).toFixed(2) };
        this.open.push(order);
      } else {
        const at = Math.floor(this.rnd() * this.open.length);
        order = this.open[at];
        const cur = this.state.get(order)!;
        const r = this.rnd();
        s = r < 0.1 ? { ...cur, status: 'cancelled' } : r < 0.2 ? { ...cur, amount: (Number(cur.amount) * 0.9).toFixed(2) } : { ...cur, status: FLOW[Math.min(FLOW.indexOf(cur.status) + 1, FLOW.length - 1)] };
        if (s.status === 'delivered' || s.status === 'cancelled') this.open.splice(at, 1);
      }
      this.state.set(order, s);
      const change = randomUUID();
      const ts = new Date();
      const ev = (): OrderEvent => ({ _id: ++this.id, change_id: change, order_id: order, status: s.status, amount: Decimal128.fromString(s.amount), ts });
      out.push(ev());
      // A retry: the same change again, as its own document.
      if (this.rnd() < 0.05) out.push(ev());
    }
    return out;
  }

  /** Writes `changes` changes (and their repeats). */
  async write(changes: number): Promise<number> {
    const docs = this.next(changes);
    // _id and order_id as int32, as a typical service's driver writes small integers.
    await this.db.collection<{ _id: Int32 }>('order_events').insertMany(docs.map((d) => ({ ...d, _id: new Int32(d._id), order_id: new Int32(d.order_id) })), { ordered: true });
    return docs.length;
  }
}

/** The truth, from the collection: the first document of each change, and each order's state after its unique changes. */
export async function truth(db: Db): Promise<{ all: number; unique: { id: number; change_id: string; order_id: number }[]; orders: Map<number, { status: string; amount: string; changes: number }> }> {
  const seen = new Set<string>();
  const unique: { id: number; change_id: string; order_id: number }[] = [];
  const orders = new Map<number, { status: string; amount: string; changes: number }>();
  let all = 0;
  for await (const e of db.collection<OrderEvent>('order_events').find({}, { sort: { _id: 1 } })) {
    all++;
    if (seen.has(e.change_id)) continue;
    seen.add(e.change_id);
    unique.push({ id: e._id, change_id: e.change_id, order_id: e.order_id });
    const o = orders.get(e.order_id);
    orders.set(e.order_id, { status: e.status, amount: e.amount.toString(), changes: (o?.changes ?? 0) + 1 });
  }
  return { all, unique, orders };
}
