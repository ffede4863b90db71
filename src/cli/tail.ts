import { parseArgs } from 'node:util';
import { openReadOnly, resolveLog } from './common.ts';
import { UsageError, type Command } from './command.ts';

export const tailCommand: Command = {
  summary: 'print records of a topic, from any offset, optionally following',
  usage: `usage: sluice tail <topic> (--config <pipeline.yaml> | --log-dir <dir>) [options]

Reads committed records of a topic from the log (read-only; works while the pipeline runs).

options:
  --from <pos>        earliest (default), latest, an offset for every partition, or
                      <partition>:<offset>; with --group the group's committed offsets
  --partition <n>     only this partition
  --group <name>      consumer group: start at its committed offsets and commit after printing
  -f, --follow        keep waiting for new records
  --max <n>           stop after n records
  --format <f>        value (default: value JSON per line), key-value (key<TAB>value),
                      json ({topic,partition,offset,timestamp,key,value} per line)

examples:
  sluice tail shop.public.customers --config pipeline.yaml --from earliest --max 10
  sluice tail shop.public.orders --log-dir data/shop/log --group audit -f
`,
  async run(args) {
    const { positionals, values } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'log-dir': { type: 'string' },
        from: { type: 'string' },
        partition: { type: 'string' },
        group: { type: 'string' },
        follow: { type: 'boolean', short: 'f' },
        max: { type: 'string' },
        format: { type: 'string', default: 'value' },
      },
    });
    if (positionals.length !== 1) throw new UsageError('expected one topic name');
    const topic = positionals[0];
    const format = values.format!;
    if (!['value', 'key-value', 'json'].includes(format)) throw new UsageError(`--format must be value, key-value or json, not ${format}`);
    const max = values.max !== undefined ? Number(values.max) : Infinity;
    if (!(max >= 0)) throw new UsageError(`--max must be a number`);
    const log = await openReadOnly(await resolveLog(values));
    try {
      const offsets = await log.offsets(topic);
      const only = values.partition !== undefined ? Number(values.partition) : null;
      if (only !== null && !offsets.some((o) => o.partition === only)) throw new UsageError(`topic ${topic} has no partition ${values.partition}`);
      const parts = offsets.filter((o) => only === null || o.partition === only);
      const pos = new Map<number, number>();
      const committed = values.group ? await log.committedOffsets(values.group, topic) : new Map<number, number>();
      const from = values.from ?? (values.group ? 'group' : 'earliest');
      for (const o of parts) {
        let start: number;
        if (from === 'earliest') start = o.start;
        else if (from === 'latest') start = o.end;
        else if (from === 'group') start = committed.get(o.partition) ?? o.start;
        else if (/^\d+$/.test(from)) start = Number(from);
        else if (/^\d+:\d+$/.test(from)) {
          const [p, off] = from.split(':').map(Number);
          if (p !== o.partition) continue;
          start = off;
        } else throw new UsageError(`--from must be earliest, latest, <offset> or <partition>:<offset>, not ${from}`);
        pos.set(o.partition, Math.max(start, o.start));
      }
      let printed = 0;
      const out = stdoutWriter();
      for (;;) {
        let any = false;
        for (const [p, off] of pos) {
          if (printed >= max) break;
          const { records, next } = await log.read(topic, p, off, 1 << 20);
          for (const r of records) {
            if (printed >= max) break;
            const key = r.key?.toString('utf8') ?? 'null';
            const value = r.value?.toString('utf8') ?? 'null';
            if (format === 'value') await out.line(value);
            else if (format === 'key-value') await out.line(`${key}\t${value}`);
            else await out.line(`{"topic":${JSON.stringify(topic)},"partition":${p},"offset":${r.offset},"timestamp":${r.timestamp},"key":${asJson(key)},"value":${asJson(value)}}`);
            if (out.closed) break;
            printed++;
            pos.set(p, r.offset + 1);
            any = true;
          }
          // Past a gap in the offsets when everything read was printed.
          if (printed < max && !out.closed && (pos.get(p) ?? 0) < next) pos.set(p, next);
        }
        if (values.group) await log.commitOffsets(values.group, [...pos].map(([partition, offset]) => ({ topic, partition, offset })));
        if (printed >= max || out.closed) break;
        if (!any) {
          if (!values.follow) break;
          await Promise.race([...pos].map(([p, off]) => log.waitFor(topic, p, off, 1000)));
        }
      }
    } finally {
      await log.close();
    }
    return 0;
  },
};

/** Keys and values are JSON in Sluice's topics; anything else is embedded as a JSON string. */
function asJson(s: string): string {
  if (s === 'null') return s;
  try {
    JSON.parse(s);
    return s;
  } catch {
    return JSON.stringify(s);
  }
}

/**
 * Writes lines to stdout honouring backpressure (a slow pipe slows reading, it never grows memory)
 * and treats a closed pipe (`sluice tail … | head`) as the end rather than a crash.
 */
function stdoutWriter(): { line(s: string): Promise<void>; readonly closed: boolean } {
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') closed = true;
    else throw e;
  });
  return {
    get closed() {
      return closed;
    },
    async line(s: string) {
      if (closed) return;
      if (!process.stdout.write(s + '\n')) await new Promise<void>((r) => {
        const done = () => {
          process.stdout.off('drain', done);
          process.stdout.off('error', done);
          r();
        };
        process.stdout.once('drain', done);
        process.stdout.once('error', done);
      });
    },
  };
}
