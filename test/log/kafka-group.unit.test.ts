/** The round-robin assignment the leader of a sink's Kafka consumer group deals (src/log/kafka/group.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignRoundRobin } from '../../src/log/kafka/group.ts';

const parts = (topic: string, n: number) => Array.from({ length: n }, (_, partition) => ({ topic, partition }));
const names = (m: Map<string, { topic: string; partition: number }[]>) => Object.fromEntries([...m].map(([id, l]) => [id, l.map((p) => `${p.topic}/${p.partition}`)]));

describe('assignRoundRobin', () => {
  it('deals every partition once, evenly, whatever order members and partitions come in', () => {
    const members = [{ id: 'm-c', topics: ['a', 'b'] }, { id: 'm-a', topics: ['a', 'b'] }, { id: 'm-b', topics: ['a', 'b'] }];
    const all = [...parts('b', 3), ...parts('a', 6)];
    const one = names(assignRoundRobin(members, all));
    assert.deepEqual(one, { 'm-a': ['a/0', 'a/3', 'b/0'], 'm-b': ['a/1', 'a/4', 'b/1'], 'm-c': ['a/2', 'a/5', 'b/2'] });
    // Whichever member leads, and in whatever order it learns of members and partitions, the deal is the same.
    assert.deepEqual(names(assignRoundRobin([...members].reverse(), [...all].reverse())), one);
  });

  it('gives a topic only to members that read it, and nothing to a member when there is too little', () => {
    const m = assignRoundRobin([{ id: 'x', topics: ['a'] }, { id: 'y', topics: ['a', 'b'] }], [...parts('a', 1), ...parts('b', 2)]);
    assert.deepEqual(names(m), { x: ['a/0'], y: ['b/0', 'b/1'] });
    assert.deepEqual(names(assignRoundRobin([{ id: 'x', topics: ['a'] }, { id: 'y', topics: ['a'] }], parts('a', 1))), { x: ['a/0'], y: [] });
  });
});
