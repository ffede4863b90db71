// A child process for the nats log's tests (test/log/nats.test.ts): it commits `base` records to
// topic `t` (3 partitions) as producer `w` with checkpoint `base`, then appends `big` records of
// `size` bytes (values `big-<i>`) over the partitions, prints `committing` and commits them with
// checkpoint `big`, printing `committed` when done, or `failed <code>` (a fenced commit). The
// test kills it with SIGKILL mid-commit, or takes its producer over while it publishes.
// With `compact`, `t` is a compacted topic, record i has key `key-<i mod base>`, and the base
// records are written twice (values `old-<i>`, checkpoint `old`, then `base-<i>`).
// With `clean`, it only prints `cleaning`, runs enforceRetention (compaction) and prints `cleaned`.
//   nats-child.ts <log config JSON> <argument JSON>
import type { LogConfig } from '../../src/config/types.ts';
import { openLog } from '../../src/log/open.ts';

const cfg = JSON.parse(process.argv[2]) as LogConfig;
const arg = JSON.parse(process.argv[3] ?? '{}') as { base: number; big: number; size: number; compact?: boolean; clean?: boolean };
const say = (line: string) => process.stdout.write(line + '\n');

const log = await openLog(cfg);
if (arg.clean) {
  say('cleaning');
  await log.enforceRetention();
  say('cleaned');
} else {
  await log.ensureTopic('t', { partitions: 3, compaction: arg.compact });
  const key = (i: number) => (arg.compact ? `key-${i % arg.base}` : null);
  const { producer, checkpoint } = await log.openProducer('w');
  if (checkpoint === null) {
    if (arg.compact) {
      for (let i = 0; i < arg.base; i++) producer.append('t', { key: key(i), value: `old-${i}`, timestamp: Date.now() }, i % 3);
      await producer.commit('old');
    }
    for (let i = 0; i < arg.base; i++) producer.append('t', { key: key(i), value: `base-${i}`, timestamp: Date.now() }, i % 3);
    await producer.commit('base');
  }
  const pad = 'x'.repeat(arg.size);
  for (let i = 0; i < arg.big; i++) producer.append('t', { key: key(i), value: `big-${i}:${pad}`, timestamp: Date.now() }, i % 3);
  say('committing');
  try {
    await producer.commit('big');
    say('committed');
  } catch (e) {
    say(`failed ${(e as { code?: string }).code}`);
  }
}
setInterval(() => {}, 1000);
