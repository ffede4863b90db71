/**
 * The built-in registry on the kafka log (the broker scripts/kafka-server.sh runs): its topic is a
 * compacted Kafka topic of one partition, changes are committed through a transactional producer,
 * and a registry started again reads the same subjects, versions and ids back from Kafka.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openLog } from '../../src/log/open.ts';
import { SchemaRegistryClient } from '../../src/schema-registry/client.ts';
import { startRegistryServer } from '../../src/schema-registry/server.ts';
import { DEFAULT_SCHEMA_TOPIC, RegistryStore } from '../../src/schema-registry/store.ts';
import { kafkaConfig, removePrefix, requireKafka, uniquePrefix } from '../log/kafka-helpers.ts';

const prefix = uniquePrefix('registry');
const config = kafkaConfig({ topicPrefix: prefix });

before(requireKafka);
after(() => removePrefix(prefix).catch(() => {}));

test('register over HTTP, restart, the same state from Kafka', async () => {
  const rec = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'K', fields });
  let log = await openLog(config);
  let store = await RegistryStore.open(log);
  let server = await startRegistryServer(store);
  let client = new SchemaRegistryClient({ url: server.url });
  const id1 = await client.register('k-value', rec([{ name: 'a', type: 'int' }]));
  const id2 = await client.register('k-value', rec([{ name: 'a', type: 'long' }, { name: 'b', type: ['null', 'string'], default: null }]));
  await client.setCompatibilityLevel('FULL', 'k-value');
  const info = await log.topicInfo(DEFAULT_SCHEMA_TOPIC);
  assert.equal(info?.partitions, 1);
  assert.equal(info?.compaction, true);
  await server.close();
  await store.close();
  await log.close();

  log = await openLog(config);
  store = await RegistryStore.open(log);
  server = await startRegistryServer(store);
  client = new SchemaRegistryClient({ url: server.url });
  try {
    assert.deepEqual(await client.versions('k-value'), [1, 2]);
    assert.equal((await client.version('k-value', 1)).id, id1);
    assert.equal((await client.latest('k-value')).id, id2);
    assert.equal(await client.compatibilityLevel('k-value'), 'FULL');
    // FULL: dropping b (it has a default) is fine both ways; changing a back to int is not (int cannot read long)
    assert.equal((await client.checkCompatibility('k-value', rec([{ name: 'a', type: 'long' }]))).compatible, true);
    const bad = await client.checkCompatibility('k-value', rec([{ name: 'a', type: 'int' }, { name: 'b', type: ['null', 'string'], default: null }]));
    assert.equal(bad.compatible, false);
    assert.match(bad.messages.join(), /FULL: the new schema cannot read data written with version 2: at K\.a: the reader's type int cannot read the writer's long/);
    const id3 = await client.register('other-value', '"string"');
    assert.ok(id3 > id2);
  } finally {
    await server.close();
    await store.close();
    await log.close();
  }
});
