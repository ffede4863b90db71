/**
 * A small Prometheus registry (counters, gauges, histograms with fixed labels) rendered in the text
 * exposition format. Every component reports the same set: events in/out, errors by stage, lag,
 * batch latency, queue bytes.
 */
type Labels = Record<string, string>;

const fmtLabels = (l: Labels) => {
  const e = Object.entries(l);
  return e.length ? `{${e.map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}` : '';
};

/** Sample values as Prometheus writes them (+Inf, -Inf, NaN). */
const fmtValue = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

abstract class Metric {
  constructor(readonly name: string, readonly help: string, readonly type: string, readonly labels: Labels) {}
  abstract lines(): string[];
}

export class Counter extends Metric {
  value = 0;
  constructor(name: string, help: string, labels: Labels = {}) {
    super(name, help, 'counter', labels);
  }
  inc(n = 1): void {
    if (n < 0) throw new RangeError(`counter ${this.name} cannot decrease`);
    this.value += n;
  }
  lines(): string[] {
    return [`${this.name}${fmtLabels(this.labels)} ${fmtValue(this.value)}`];
  }
}

export class Gauge extends Metric {
  value = 0;
  constructor(name: string, help: string, labels: Labels = {}) {
    super(name, help, 'gauge', labels);
  }
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  lines(): string[] {
    return [`${this.name}${fmtLabels(this.labels)} ${fmtValue(this.value)}`];
  }
}

export class Histogram extends Metric {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(name: string, help: string, labels: Labels = {}, readonly buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]) {
    super(name, help, 'histogram', labels);
    this.counts = new Array(buckets.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }
  lines(): string[] {
    const out = this.buckets.map((b, i) => `${this.name}_bucket${fmtLabels({ ...this.labels, le: String(b) })} ${this.counts[i]}`);
    out.push(`${this.name}_bucket${fmtLabels({ ...this.labels, le: '+Inf' })} ${this.count}`);
    out.push(`${this.name}_sum${fmtLabels(this.labels)} ${fmtValue(this.sum)}`);
    out.push(`${this.name}_count${fmtLabels(this.labels)} ${this.count}`);
    return out;
  }
}

/** One series' value as the registry holds it now (counters and gauges; a histogram gives its `_count` and `_sum`). */
export interface Sample {
  name: string;
  labels: Labels;
  value: number;
}

export class Registry {
  private readonly metrics: Metric[] = [];
  /** Run before the values are read (render, samples): gauges computed from state (a sink's lag while a batch is stuck). */
  private readonly collectors = new Set<() => void>();
  register<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  /** Stops exporting `m` (a partition a sink no longer applies). */
  unregister(m: Metric): void {
    const i = this.metrics.indexOf(m);
    if (i >= 0) this.metrics.splice(i, 1);
  }
  /** The metric of `name` with exactly these labels, when registered (a task registering again after a restart). */
  find<M extends Metric>(name: string, labels: Labels): M | undefined {
    const key = JSON.stringify(Object.entries(labels).sort());
    return this.metrics.find((m) => m.name === name && JSON.stringify(Object.entries(m.labels).sort()) === key) as M | undefined;
  }
  /** Adds a function run before values are read; returns its removal. */
  collect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }
  private runCollectors(): void {
    for (const fn of this.collectors) {
      try {
        fn();
      } catch {
        // A collector's failure leaves its gauges at their last values.
      }
    }
  }
  /** Current values of the series (all, or those of the metric names given), for the alert rules. */
  samples(names?: ReadonlySet<string>): Sample[] {
    this.runCollectors();
    const out: Sample[] = [];
    for (const m of this.metrics) {
      if (m instanceof Histogram) {
        if (!names || names.has(m.name + '_count')) out.push({ name: m.name + '_count', labels: m.labels, value: m.count });
        if (!names || names.has(m.name + '_sum')) out.push({ name: m.name + '_sum', labels: m.labels, value: m.sum });
      } else if ((!names || names.has(m.name)) && (m instanceof Counter || m instanceof Gauge)) out.push({ name: m.name, labels: m.labels, value: m.value });
    }
    return out;
  }
  render(): string {
    this.runCollectors();
    const byName = new Map<string, Metric[]>();
    for (const m of this.metrics) byName.set(m.name, [...(byName.get(m.name) ?? []), m]);
    const out: string[] = [];
    for (const [name, ms] of byName) {
      out.push(`# HELP ${name} ${ms[0].help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${ms[0].type}`);
      for (const m of ms) out.push(...m.lines());
    }
    return out.join('\n') + '\n';
  }
}

/** The standard metric set of one component. */
export class ComponentMetrics {
  readonly eventsIn: Counter;
  readonly eventsOut: Counter;
  readonly lagMs: Gauge;
  readonly queueBytes: Gauge;
  readonly batchLatency: Histogram;
  /** Attempts the supervisor started again after a retriable failure (a restart loop shows here). */
  readonly restarts: Counter;
  private readonly errors = new Map<string, Counter>();
  constructor(readonly registry: Registry, private readonly labels: Labels) {
    this.eventsIn = registry.register(new Counter('sluice_events_in_total', 'Events received by the component', labels));
    this.eventsOut = registry.register(new Counter('sluice_events_out_total', 'Events durably written by the component', labels));
    this.lagMs = registry.register(new Gauge('sluice_lag_ms', 'Milliseconds between the source commit and processing of the latest event', labels));
    this.queueBytes = registry.register(new Gauge('sluice_queue_bytes', 'Bytes waiting in the component queue', labels));
    this.batchLatency = registry.register(new Histogram('sluice_batch_latency_seconds', 'Time to commit one batch durably', labels));
    this.restarts = registry.register(new Counter('sluice_task_restarts_total', 'Times the component was restarted after a retriable failure (its supervisor backs off 0.5 s doubling to 30 s)', labels));
  }
  error(stage: string): void {
    let c = this.errors.get(stage);
    if (!c) {
      c = this.registry.register(new Counter('sluice_errors_total', 'Errors by stage', { ...this.labels, stage }));
      this.errors.set(stage, c);
    }
    c.inc();
  }
}
