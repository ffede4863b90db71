/**
 * The log conformance suite (test/log/conformance.ts) for the kafka backend, against the real
 * broker scripts/kafka-server.sh starts (scripts/setup.sh starts it): each case gets a topic prefix
 * of its own, and its topics and groups are deleted after it.
 */
import { before } from 'node:test';
import { logConformance } from './conformance.ts';
import { kafkaConfig, removePrefix, requireKafka, uniquePrefix } from './kafka-helpers.ts';

before(requireKafka);

// The longest prefix uniquePrefix makes, so that every case holds the same longest name.
const PREFIX_ROOM = uniquePrefix('conf').length + 8;

logConformance({
  name: 'kafka',
  commitVisibility: 'per-partition',
  maxTopicName: 249 - PREFIX_ROOM,
  // segmentBytes is ignored: retention (enforceRetention) removes single records.
  async fresh() {
    const prefix = uniquePrefix('conf').padEnd(PREFIX_ROOM, 'x');
    return { config: kafkaConfig({ topicPrefix: prefix }), remove: () => removePrefix(prefix) };
  },
});
