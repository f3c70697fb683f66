/**
 * This node's id remembered per audit store (lib/harper/node-id-cache.ts): Harper's own lookup runs
 * once per store and node name, and the remembering function is installed whether Harper sets
 * `server.replication` before or after the component loads.
 */
import { describe, expect, it } from 'vitest';
import { rememberThisNodeId, rememberingNodeId } from '../../lib/harper/node-id-cache.js';

function countingLookup(ids: number[] = [0]) {
  const calls: object[] = [];
  const lookup = (store: object) => {
    calls.push(store);
    return ids[Math.min(calls.length - 1, ids.length - 1)];
  };
  return { calls, lookup };
}

describe('rememberingNodeId', () => {
  it('asks Harper once per audit store, then answers from memory', () => {
    const { calls, lookup } = countingLookup([0, 7]);
    const remembered = rememberingNodeId(lookup, () => 'node-a');
    const storeA = {};
    const storeB = {};
    expect([remembered(storeA), remembered(storeA), remembered(storeA)]).toEqual([0, 0, 0]);
    expect(remembered(storeB)).toBe(7);
    expect(remembered(storeB)).toBe(7);
    expect(calls).toEqual([storeA, storeB]);
  });

  it('asks again once the node name changes', () => {
    const { calls, lookup } = countingLookup([0, 3]);
    let name = 'node-a';
    const remembered = rememberingNodeId(lookup, () => name);
    const store = {};
    expect(remembered(store)).toBe(0);
    name = 'node-b';
    expect(remembered(store)).toBe(3);
    expect(remembered(store)).toBe(3);
    expect(calls).toHaveLength(2);
  });

  it('does not remember an answer that is not an id', () => {
    const calls: object[] = [];
    const remembered = rememberingNodeId(
      (store) => {
        calls.push(store);
        return undefined;
      },
      () => 'node-a',
    );
    const store = {};
    expect(remembered(store)).toBeUndefined();
    expect(remembered(store)).toBeUndefined();
    expect(calls).toHaveLength(2);
  });
});

describe('rememberThisNodeId', () => {
  it('wraps the lookup Harper has already set, once', () => {
    const { calls, lookup } = countingLookup();
    const server = { hostname: 'node-a', replication: { getThisNodeId: lookup } };
    rememberThisNodeId(server);
    const installed = server.replication.getThisNodeId;
    rememberThisNodeId(server);
    expect(server.replication.getThisNodeId).toBe(installed);
    const store = {};
    server.replication.getThisNodeId(store);
    server.replication.getThisNodeId(store);
    expect(calls).toEqual([store]);
  });

  it('wraps the lookup when Harper sets it later', () => {
    const { calls, lookup } = countingLookup();
    const server: { hostname: string; replication?: { getThisNodeId: (store: object) => number | undefined } } = {
      hostname: 'node-a',
    };
    rememberThisNodeId(server);
    server.replication = { getThisNodeId: lookup };
    const store = {};
    expect(server.replication.getThisNodeId(store)).toBe(0);
    expect(server.replication.getThisNodeId(store)).toBe(0);
    expect(calls).toEqual([store]);
  });
});
