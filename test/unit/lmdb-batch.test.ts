/**
 * When a group-commit batch's hand-over runs inside one lmdb-js batch (lib/harper/lmdb-batch.ts):
 * only when every transaction is known to commit through conditional writes. The store is a
 * stand-in that records whether its `batch` ran; the transactions are shaped as Harper's are.
 */
import { describe, expect, it } from 'vitest';
import { inOneWrite } from '../../lib/harper/lmdb-batch.js';
import type { HarperContext } from '../../lib/harper/types.js';

function table() {
  const calls: string[] = [];
  const primaryStore = {
    batch(run: () => void): Promise<unknown> {
      calls.push('batch');
      run();
      return Promise.resolve(true);
    },
  };
  return { calls, run: inOneWrite({ primaryStore }) };
}

const open = (writes: unknown, lmdbDb: unknown): HarperContext => ({ transaction: { writes, lmdbDb } });
const handOver = (calls: string[]) => () => void calls.push('handOver');

describe('inOneWrite', () => {
  it('batches small transactions whose database has never failed a version check', () => {
    const { calls, run } = table();
    run(handOver(calls), [open([1, 2, 3], {}), open([1, 2], { retryRisk: 0 })]);
    expect(calls).toEqual(['batch', 'handOver']);
  });

  it('does not batch when one transaction would commit through a callback transaction', () => {
    const { calls, run } = table();
    // Harper's threshold: writes + retryRisk >= 100 commits through a callback transaction.
    run(handOver(calls), [open([1], {}), open([1, 2], { retryRisk: 97 })]);
    run(handOver(calls), [open(new Array(99).fill(0), {})]);
    expect(calls).toEqual(['handOver', 'handOver']);
  });

  it('does not batch what it cannot read: no transaction, no writes list, no database', () => {
    const { calls, run } = table();
    run(handOver(calls), [{}]);
    run(handOver(calls), [open(undefined, {})]);
    run(handOver(calls), [open([1], undefined)]);
    run(handOver(calls), [open([1], null)]);
    run(handOver(calls), [open([1], { retryRisk: 'high' })]);
    expect(calls).toEqual(['handOver', 'handOver', 'handOver', 'handOver', 'handOver']);
  });
});
