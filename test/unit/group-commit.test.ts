/**
 * The group commit's ordering rules (lib/write-path/group-commit.ts), as pure logic: Harper's transaction is
 * replaced by one that records what each batch wrote and lets the test decide when it commits.
 * The end-to-end guarantees (order under bursts, durability, alerts) are in the protocol tests.
 */
import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../lib/write-path/group-commit.js';
import type { HarperContext } from '../../lib/harper/types.js';

interface Row {
  key: string;
  n: number;
}

/** A stand-in for Harper's `transaction`: commits when the test says so. */
function fakeHarper(log?: string[]) {
  const batches: { rows: Row[]; handedOver: boolean; commit(): void; fail(error: Error): void }[] = [];
  const inTransaction = <T>(context: HarperContext, callback: () => Promise<T>): Promise<T> => {
    const batch = {
      rows: [] as Row[],
      handedOver: false,
      commit: () => undefined as void,
      fail: (_error: Error) => undefined as void,
    };
    context.rows = batch.rows;
    batches.push(batch);
    const done = new Promise<void>((resolve, reject) => {
      batch.commit = resolve;
      batch.fail = reject;
    });
    // As Harper does: commit once the callback's promise resolves.
    return callback().then((result) => {
      batch.handedOver = true;
      log?.push(`handed ${keysOf(batch.rows).join(',')}`);
      return done.then(() => result);
    });
  };
  const store = (row: Row, context: HarperContext) => void (context.rows as Row[]).push(row);
  return { batches, inTransaction, store };
}

/** A phase's store that logs what it writes, as `<phase> <key><n>`. */
const loggedStore =
  (harper: ReturnType<typeof fakeHarper>, log: string[]) => (phase: string) => (row: Row, context: HarperContext) => {
    log.push(`${phase} ${row.key}${row.n}`);
    harper.store(row, context);
  };

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const keysOf = (rows: Row[]) => rows.map((row) => `${row.key}${row.n}`);

describe('group commit', () => {
  it('commits the writes of one turn together, at most one per record per batch, later ones in later batches', async () => {
    const harper = fakeHarper();
    // Whether each batch's hand-over goes behind a write of its record still in commit.
    const behind: boolean[] = [];
    const inOneWrite = (handOver: () => void, _contexts: HarperContext[], behindCommit: boolean) => {
      behind.push(behindCommit);
      handOver();
    };
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction, inOneWrite);
    const writes = [
      { key: 'a', n: 1 },
      { key: 'b', n: 1 },
      { key: 'a', n: 2 },
      { key: 'a', n: 3 },
    ].map((row) => group.reserve(row.key).commit(() => row));
    await turn();
    await turn();
    // a2 goes behind a1 at once (two writes of the record were waiting), a3 waits for both.
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1'], ['a2']]);
    expect(behind).toEqual([false, true]);
    for (const batch of harper.batches) batch.commit();
    await Promise.all(writes.slice(0, 3));
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1'], ['a2'], ['a3']]);
    expect(behind).toEqual([false, true, false]);
    harper.batches[2].commit();
    expect(keysOf(await Promise.all(writes))).toEqual(['a1', 'b1', 'a2', 'a3']);
  });

  it("a record's next write waits until its previous one has committed", async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const first = group.reserve('a').commit(() => ({ key: 'a', n: 1 }));
    const second = group.reserve('a').commit(() => ({ key: 'a', n: 2 }));
    const other = group.reserve('b').commit(() => ({ key: 'b', n: 1 }));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1']]);
    harper.batches[0].commit();
    await Promise.all([first, other]);
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1'], ['a2']]);
    harper.batches[1].commit();
    expect(await second).toEqual({ key: 'a', n: 2 });
  });

  it('a record written faster than its commits complete has its writes handed over one behind the other, in order', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    // Three writes waiting behind the first: the first two of them go at once, one behind the
    // other; the last, alone in the queue then, waits for the three in commit.
    const writes = [1, 2, 3, 4].map((n) => group.reserve('a').commit(() => ({ key: 'a', n })));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1'], ['a2'], ['a3']]);
    expect(harper.batches.map((batch) => batch.handedOver)).toEqual([true, true, true]);
    // Each is acknowledged when its own batch commits.
    let firstDone = false;
    void writes[0].then(() => (firstDone = true));
    harper.batches[1].commit();
    expect(await writes[1]).toEqual({ key: 'a', n: 2 });
    expect(firstDone).toBe(false);
    harper.batches[0].commit();
    harper.batches[2].commit();
    await Promise.all(writes.slice(0, 3));
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1'], ['a2'], ['a3'], ['a4']]);
    harper.batches[3].commit();
    expect(keysOf(await Promise.all(writes))).toEqual(['a1', 'a2', 'a3', 'a4']);
  });

  it('keeps arrival order when the later write is ready first', async () => {
    const harper = fakeHarper();
    const committed: Row[] = [];
    const group = new GroupCommit<Row>([harper.store], (row) => committed.push(row), harper.inTransaction);
    const early = group.reserve('a');
    const late = group.reserve('a');
    const lateDone = late.commit(() => ({ key: 'a', n: 2 }));
    await turn();
    expect(harper.batches).toHaveLength(0); // the earlier write holds its place
    const earlyDone = early.commit(() => ({ key: 'a', n: 1 }));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1']]);
    harper.batches[0].commit();
    await earlyDone;
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1'], ['a2']]);
    harper.batches[1].commit();
    await lateDone;
    expect(keysOf(committed)).toEqual(['a1', 'a2']);
  });

  it('a write that reads the current state waits until every earlier write of its record has committed', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const first = group.reserve('a').commit(() => ({ key: 'a', n: 1 }));
    const patch = group.reserve('a').commit(() => ({ key: 'a', n: 2 }), { readsCurrent: true });
    const after = group.reserve('a').commit(() => ({ key: 'a', n: 3 }));
    await turn();
    await turn();
    // Two writes of the record wait, which would send the first behind a1 at once: not a PATCH.
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1']]);
    harper.batches[0].commit();
    await first;
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1'], ['a2']]);
    harper.batches[1].commit();
    expect(await patch).toEqual({ key: 'a', n: 2 });
    await turn();
    harper.batches[2].commit();
    expect(await after).toEqual({ key: 'a', n: 3 });
  });

  it('a slot given up lets the writes behind it go', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const abandoned = group.reserve('a');
    const next = group.reserve('a').commit(() => ({ key: 'a', n: 2 }));
    await turn();
    expect(harper.batches).toHaveLength(0);
    abandoned.cancel();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a2']]);
    harper.batches[0].commit();
    await next;
  });

  it('a refused write fails alone; a failed commit fails every write of its batch', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const refused = group.reserve('a').commit(() => {
      throw new Error('invalid reading');
    });
    const fine = group.reserve('b').commit(() => ({ key: 'b', n: 1 }));
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['b1']]);
    harper.batches[0].commit();
    await expect(refused).rejects.toThrow('invalid reading');
    expect(await fine).toEqual({ key: 'b', n: 1 });

    const lost = [
      group.reserve('c').commit(() => ({ key: 'c', n: 1 })),
      group.reserve('d').commit(() => ({ key: 'd', n: 1 })),
    ];
    await turn();
    harper.batches[1].fail(new Error('disk full'));
    for (const write of lost) await expect(write).rejects.toThrow('disk full');
    // The records are free again: their next writes go through.
    const after = group.reserve('c').commit(() => ({ key: 'c', n: 2 }));
    await turn();
    harper.batches[2].commit();
    expect(await after).toEqual({ key: 'c', n: 2 });
  });

  it('splits a large turn into batches of at most 40 writes', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const writes = Array.from({ length: 100 }, (_, i) => group.reserve(`s${i}`).commit(() => ({ key: `s${i}`, n: 1 })));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => batch.rows.length)).toEqual([40, 40, 20]);
    for (const batch of harper.batches) batch.commit();
    expect(await Promise.all(writes)).toHaveLength(100);
  });

  it('commits a batch in phases, each a transaction of its own handed over in order, and acknowledges once all committed', async () => {
    const log: string[] = [];
    const harper = fakeHarper(log);
    const storeIn = loggedStore(harper, log);
    const group = new GroupCommit<Row>(['history', 'state'].map(storeIn), undefined, harper.inTransaction);
    // Three writes of one record: the second is handed over behind the first without waiting
    // (see above), the third waits for both.
    const writes = [1, 2, 3].map((n) => group.reserve('a').commit(() => ({ key: 'a', n })));
    await turn();
    await turn();
    // Every phase of both batches is handed over before anything has committed, each batch's
    // history before its state, the first batch's state before the second's.
    expect(harper.batches.map((batch) => batch.handedOver)).toEqual([true, true, true, true]);
    const written = log.filter((entry) => !entry.startsWith('handed'));
    expect([...written].sort()).toEqual(['history a1', 'history a2', 'state a1', 'state a2']);
    // No phase of a batch goes to Harper before all of them are written; then both go in order.
    expect(log.indexOf('handed a1')).toBeGreaterThan(log.indexOf('state a1'));
    expect(log.filter((entry) => entry.startsWith('handed'))).toEqual([
      'handed a1',
      'handed a1',
      'handed a2',
      'handed a2',
    ]);
    const at = (entry: string) => log.indexOf(entry);
    expect(at('history a1')).toBeLessThan(at('state a1'));
    expect(at('history a2')).toBeLessThan(at('state a2'));
    expect(at('state a1')).toBeLessThan(at('state a2'));
    expect(harper.batches.map((batch) => keysOf(batch.rows).length)).toEqual([1, 1, 1, 1]);
    // Acknowledged only once its last phase has committed.
    let firstDone = false;
    void writes[0].then(() => (firstDone = true));
    const historyOfFirst = harper.batches.find((batch) => batch.rows[0].n === 1)!;
    historyOfFirst.commit();
    await turn();
    expect(firstDone).toBe(false);
    for (const batch of harper.batches) batch.commit();
    await Promise.all(writes.slice(0, 2));
    await turn();
    await turn();
    expect(harper.batches).toHaveLength(6);
    for (const batch of harper.batches.slice(4)) batch.commit();
    expect(keysOf(await Promise.all(writes))).toEqual(['a1', 'a2', 'a3']);
  });

  it("hands every phase of a batch to Harper within one call of inOneWrite, given the phases' contexts", async () => {
    const log: string[] = [];
    const harper = fakeHarper(log);
    const storeIn = loggedStore(harper, log);
    const seen: HarperContext[][] = [];
    const inOneWrite = (handOver: () => void, contexts: HarperContext[]) => {
      seen.push([...contexts]);
      log.push('write begins');
      handOver();
      log.push('write ends');
    };
    const group = new GroupCommit<Row>(['history', 'state'].map(storeIn), undefined, harper.inTransaction, inOneWrite);
    const writes = ['a', 'b'].map((key) => group.reserve(key).commit(() => ({ key, n: 1 })));
    await turn();
    await turn();
    // The fake records a hand-over in its reaction to the callback's result, which the group
    // commit calls itself: both phases, in order, between the bounds of one write.
    expect(log).toEqual([
      'history a1',
      'history b1',
      'state a1',
      'state b1',
      'write begins',
      'handed a1,b1',
      'handed a1,b1',
      'write ends',
    ]);
    // One context per phase, each holding that phase's rows.
    expect(seen.map((contexts) => contexts.map((context) => keysOf(context.rows as Row[])))).toEqual([
      [
        ['a1', 'b1'],
        ['a1', 'b1'],
      ],
    ]);
    for (const batch of harper.batches) batch.commit();
    expect(keysOf(await Promise.all(writes))).toEqual(['a1', 'b1']);
  });
});
