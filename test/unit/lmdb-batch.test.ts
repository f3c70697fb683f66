/**
 * When a group-commit batch's hand-over runs inside one lmdb-js batch (lib/harper/lmdb-batch.ts):
 * only when every transaction is known to commit through conditional writes; and how a batch
 * behind a write in commit is sent down Harper's callback path. The store is a stand-in that
 * records whether its `batch` ran; the transactions are shaped as Harper's are.
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
    run(handOver(calls), [open([1, 2, 3], {}), open([1, 2], { retryRisk: 0 })], false);
    expect(calls).toEqual(['batch', 'handOver']);
  });

  it('does not batch when one transaction would commit through a callback transaction', () => {
    const { calls, run } = table();
    // Harper's threshold: writes + retryRisk >= 100 commits through a callback transaction.
    run(handOver(calls), [open([1], {}), open([1, 2], { retryRisk: 97 })], false);
    run(handOver(calls), [open(new Array(99).fill(0), {})], false);
    expect(calls).toEqual(['handOver', 'handOver']);
  });

  it('does not batch what it cannot read: no transaction, no writes list, no database', () => {
    const { calls, run } = table();
    run(handOver(calls), [{}], false);
    run(handOver(calls), [open(undefined, {})], false);
    run(handOver(calls), [open([1], undefined)], false);
    run(handOver(calls), [open([1], null)], false);
    run(handOver(calls), [open([1], { retryRisk: 'high' })], false);
    expect(calls).toEqual(['handOver', 'handOver', 'handOver', 'handOver', 'handOver']);
  });

  it("hands a batch with a write behind one in commit to the table's callback path, and sets the risk back after", () => {
    const calls: string[] = [];
    const primaryStore = {
      retryRisk: 3 as number | undefined,
      batch(run: () => void): Promise<unknown> {
        calls.push('batch');
        run();
        return Promise.resolve(true);
      },
    };
    const run = inOneWrite({ primaryStore });
    const seen: (number | undefined)[] = [];
    const handOverSeeing = () => {
      seen.push(primaryStore.retryRisk);
      calls.push('handOver');
    };
    run(handOverSeeing, [open([1, 2], primaryStore)], true);
    // Harper takes the callback path from writes + risk >= 100: the risk alone reaches it.
    expect(seen).toEqual([100]);
    expect(primaryStore.retryRisk).toBe(3);
    // Not batched, and set back also when the hand-over throws; a higher risk is left as it is.
    primaryStore.retryRisk = 250;
    expect(() =>
      run(
        () => {
          seen.push(primaryStore.retryRisk);
          throw new Error('commit refused');
        },
        [open([1], primaryStore)],
        true,
      ),
    ).toThrow('commit refused');
    expect(seen).toEqual([100, 250]);
    expect(primaryStore.retryRisk).toBe(250);
    expect(calls).toEqual(['handOver']);
  });
});
