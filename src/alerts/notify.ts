/**
 * Delivery of alert notices to receivers: one bounded queue and one sender per receiver, so a slow
 * or dead endpoint delays only its own notices, and a receiver's notices arrive in the order they
 * were raised (a firing before its resolve). A failed POST (network error, timeout, 408, 429, 5xx)
 * is retried with a backoff of 1 s doubling to 30 s, `retries` times; then the notice is dropped.
 * Every outcome is logged and counted (`sluice_alert_notifications_total{receiver,result}`); nothing
 * here ever stops the pipeline.
 */
import type { Logger } from '../core/logger.ts';
import { Counter, type Registry } from '../core/metrics.ts';
import { formatValue, type Notice } from './evaluate.ts';
import type { ReceiverConfig } from './spec.ts';

/** Scheme and host of a URL, for logs, status and `sluice alerts` (a webhook URL's path is its secret). */
export function maskedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(invalid URL)';
  }
}

/** The generic webhook's JSON body. */
export function webhookBody(n: Notice): Record<string, unknown> {
  const { receivers: _r, ...rest } = n;
  return rest;
}

const EMOJI: Record<string, string> = { critical: ':rotating_light:', warning: ':warning:', info: ':information_source:' };

/** A Slack incoming-webhook message: a readable one-line `text` (also the notification) and blocks. */
export function slackBody(n: Notice): Record<string, unknown> {
  const icon = n.status === 'resolved' ? ':white_check_mark:' : (EMOJI[n.severity] ?? ':warning:');
  const head = `${n.status === 'resolved' ? 'RESOLVED' : n.repeat ? 'STILL FIRING' : 'FIRING'} [${n.severity}] ${n.rule} (pipeline ${n.pipeline})`;
  const text = `${icon} ${head}: ${n.summary}`;
  const fields = [
    `*Value:* ${formatValue(n.kind, n.value)}`,
    `*Threshold:* ${formatValue(n.kind, n.threshold)}`,
    `*Since:* ${n.startsAt}`,
    ...(n.endsAt ? [`*Resolved:* ${n.endsAt}`] : []),
    ...Object.entries(n.labels).map(([k, v]) => `*${k}:* ${v}`),
  ];
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${icon} *${head}*\n${n.summary}` } },
      { type: 'section', fields: fields.slice(0, 10).map((f) => ({ type: 'mrkdwn', text: f })) },
    ],
  };
}

const retriableStatus = (s: number) => s === 408 || s === 429 || s >= 500;

class ReceiverQueue {
  private readonly queue: Notice[] = [];
  private running: Promise<void> | null = null;
  private readonly results = new Map<string, Counter>();
  /** The last failure (status, `sluice alerts`). */
  lastError: { message: string; at: string } | null = null;
  sent = 0;
  failed = 0;
  dropped = 0;

  constructor(
    readonly cfg: ReceiverConfig,
    private readonly o: { pipeline: string; registry: Registry; logger: Logger; maxQueue: number; signal: AbortSignal; sleep: (ms: number, signal: AbortSignal) => Promise<void> },
  ) {}

  private count(result: 'sent' | 'failed' | 'dropped'): void {
    let c = this.results.get(result);
    if (!c) {
      const labels = { pipeline: this.o.pipeline, receiver: this.cfg.name, result };
      this.results.set(result, (c = this.o.registry.register(new Counter('sluice_alert_notifications_total', 'Alert notices by receiver and outcome: sent (the receiver answered 2xx), failed (given up after the retries), dropped (the queue was full)', labels))));
    }
    c.inc();
    this[result]++;
  }

  push(n: Notice): void {
    if (this.queue.length >= this.o.maxQueue) {
      const old = this.queue.shift()!;
      this.count('dropped');
      this.o.logger.warn('alert notice dropped: the receiver\'s queue is full', { receiver: this.cfg.name, rule: old.rule, status: old.status });
    }
    this.queue.push(n);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves when the queue is empty (or, when stopping, after what is in flight). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    // The queue holds the notices waiting; the one being delivered is out of it.
    for (let n = this.queue.shift(); n; n = this.queue.shift()) await this.deliver(n);
  }

  private async deliver(n: Notice): Promise<void> {
    const { cfg, logger } = { cfg: this.cfg, logger: this.o.logger };
    const body = JSON.stringify(cfg.type === 'slack' ? slackBody(n) : webhookBody(n));
    const where = { receiver: cfg.name, url: maskedUrl(cfg.url), rule: n.rule, status: n.status };
    for (let attempt = 0; ; attempt++) {
      let error: string;
      let retriable = true;
      try {
        const res = await fetch(cfg.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'sluice-alerts', ...cfg.headers },
          body,
          signal: AbortSignal.timeout(cfg.timeoutMs),
        });
        await res.arrayBuffer().catch(() => null);
        if (res.ok) {
          this.count('sent');
          logger.info('alert notice sent', { ...where, attempt: attempt + 1 });
          return;
        }
        error = `HTTP ${res.status}`;
        retriable = retriableStatus(res.status);
      } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        error = err.name === 'TimeoutError' ? `no answer within ${cfg.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      }
      this.lastError = { message: error, at: new Date().toISOString() };
      if (!retriable || attempt >= cfg.retries || this.o.signal.aborted) {
        this.count('failed');
        logger.warn('alert notice could not be delivered; dropped', { ...where, error, attempts: attempt + 1 });
        return;
      }
      const delay = Math.min(30_000, 1000 * 2 ** attempt);
      logger.warn('alert notice delivery failed; retrying', { ...where, error, retryInMs: delay });
      await this.o.sleep(delay, this.o.signal);
    }
  }
}

export class Notifier {
  private readonly queues = new Map<string, ReceiverQueue>();
  constructor(receivers: ReceiverConfig[], o: { pipeline: string; registry: Registry; logger: Logger; maxQueue: number; signal: AbortSignal; sleep: (ms: number, signal: AbortSignal) => Promise<void> }) {
    for (const r of receivers) this.queues.set(r.name, new ReceiverQueue(r, o));
  }

  send(n: Notice): void {
    for (const r of n.receivers) this.queues.get(r)?.push(n);
  }

  async idle(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.idle()));
  }

  status(): Record<string, unknown>[] {
    return [...this.queues.values()].map((q) => ({ name: q.cfg.name, type: q.cfg.type, url: maskedUrl(q.cfg.url), sent: q.sent, failed: q.failed, dropped: q.dropped, lastError: q.lastError }));
  }
}
