/**
 * The log conformance suite (test/log/conformance.ts) for the nats backend, against the NATS server
 * scripts/setup.sh starts (JetStream on 127.0.0.1:4222): each case gets a namespace of its own,
 * whose streams and KV bucket are deleted after it.
 */
import { before } from 'node:test';
import { logConformance } from './conformance.ts';
import { natsConfig, removeNamespace, requireNats, uniqueNamespace } from './nats-helpers.ts';

before(requireNats);

logConformance({
  name: 'nats',
  // segmentBytes is ignored: retention removes single records. A smaller commit limit than the
  // default keeps the case that goes past it quick (it holds 1.5 times the limit in memory).
  async fresh() {
    const namespace = uniqueNamespace('conf');
    return { config: natsConfig({ namespace, maxCommitBytes: 8 << 20 }), remove: () => removeNamespace(namespace) };
  },
});
