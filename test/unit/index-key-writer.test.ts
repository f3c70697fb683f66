/**
 * lib/harper/index-key-writer.ts: index stores get a separate instance of ordered-binary's writeKey that
 * encodes every key exactly as lmdb's own, and nothing else is touched.
 */
import { describe, expect, it } from 'vitest';
import {
  orderedBinaryInstances,
  separateIndexKeyWriter,
  type IndexedTable,
} from '../../lib/harper/index-key-writer.js';

const KEYS: unknown[] = [
  'sensor-101@1764577675123.001@127.0.0.1:1-abc123',
  'site-a/101',
  '',
  'ü€😀',
  0,
  -1.5,
  1764577675123.25,
  true,
  null,
  ['a', 2, 'b'],
  Symbol.for('remote-ids'),
];

function encode(writeKey: (key: unknown, target: Uint8Array, position: number) => number, key: unknown): number[] {
  const target = Buffer.alloc(512);
  const end = writeKey(key, target, 0);
  return [...target.subarray(0, end)];
}

describe('index key writer', () => {
  it('is a different function that encodes every key kind byte for byte like the shared one', () => {
    const { shared, separate } = orderedBinaryInstances();
    expect(separate).not.toBe(shared);
    for (const key of KEYS) expect(encode(separate, key), String(key)).toEqual(encode(shared, key));
  });

  it('replaces the shared writeKey of index stores only, leaving other encoders alone', () => {
    const { shared } = orderedBinaryInstances();
    const other = () => 0;
    const tables: IndexedTable[] = [
      { indices: { sensorId: { encoder: { writeKey: shared } }, time: { encoder: { writeKey: shared } } } },
      { indices: { custom: { encoder: { writeKey: other } }, none: {}, missing: undefined } },
      {},
    ];
    expect(separateIndexKeyWriter(tables)).toBe(2);
    expect(tables[0].indices!.sensorId!.encoder!.writeKey).not.toBe(shared);
    expect(tables[0].indices!.time!.encoder!.writeKey).toBe(tables[0].indices!.sensorId!.encoder!.writeKey);
    expect(tables[1].indices!.custom!.encoder!.writeKey).toBe(other);
  });

  it('changes nothing when the module cannot be resolved', () => {
    const tables: IndexedTable[] = [{ indices: { sensorId: { encoder: { writeKey: () => 1 } } } }];
    const before = tables[0].indices!.sensorId!.encoder!.writeKey;
    expect(
      separateIndexKeyWriter(tables, () => {
        throw new Error('no lmdb here');
      }),
    ).toBe(0);
    expect(tables[0].indices!.sensorId!.encoder!.writeKey).toBe(before);
  });
});
