/** The embedded log backend's spec: files on local disk (the default). */
import { duration, integer, object, oneOf, size, string, type Infer } from '../../config/fields.ts';
import { pipelineName } from '../../config/common.ts';
import { defineLog } from '../../registry/spec.ts';
import { LOG_ERRORS } from '../errors.ts';
import { COMPRESSIONS, DEFAULT_COMPRESSION } from './format.ts';

const config = object({
  dir: string({ type: 'path', description: 'Topics, commit journal and consumer offsets. Relative to the working directory.' }).default((ctx) => `./data/${pipelineName(ctx)}/log`, '`./data/<name>/log`'),
  partitions: integer({ min: 1, max: 1024, description: 'Partitions of the topics the pipeline creates (existing topics keep theirs).' }).default(3),
  segmentBytes: size({ description: 'Segment file size before rolling.' }).default(64 << 20, '`64MiB`'),
  compression: oneOf(COMPRESSIONS, { description: 'How new batches are stored on disk. `auto`: `lz4` where its optional npm package lz4-napi is installed, else `brotli`. `lz4`: fastest to read (Debezium JSON shrinks about 11×). `brotli` (quality 1, built into Node): about twice as small again, reads about a tenth slower. `none`: as they are. Each batch records its codec, so the setting can change on an existing log.' }).default(DEFAULT_COMPRESSION),
  retentionMs: duration({ description: 'Delete whole segments older than this.' }).optional('keep forever'),
  retentionBytes: size({ description: 'Delete the oldest segments while a partition is larger than this.' }).optional('no limit'),
});

export type EmbeddedLogConfig = { backend: 'embedded' } & Infer<typeof config>;

export const embeddedLog = defineLog({
  kind: 'log',
  type: 'embedded',
  title: 'Embedded log',
  docs: 'log.md',
  config,
  errors: [LOG_ERRORS],
  describe: (c) => `log ${c.dir}`,
  resetHint: (c) => `move the log directory ${c.dir} away`,
  topicDefaults: (c) => ({ partitions: c.partitions, retentionMs: c.retentionMs, retentionBytes: c.retentionBytes }),
  async open(c, o) {
    const { openEmbeddedLog } = await import('./index.ts');
    return openEmbeddedLog({ dir: c.dir, segmentBytes: c.segmentBytes, defaultPartitions: o.defaultPartitions ?? c.partitions, readOnly: o.readOnly, compression: c.compression });
  },
});
