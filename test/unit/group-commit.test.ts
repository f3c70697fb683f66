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
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const writes = [
      { key: 'a', n: 1 },
      { key: 'b', n: 1 },
      { key: 'a', n: 2 },
      { key: 'a', n: 3 },
    ].map((row) => group.reserve(row.key).commit(() => row));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1'], ['a2'], ['a3']]);
    for (const batch of harper.batches) batch.commit();
    expect(keysOf(await Promise.all(writes))).toEqual(['a1', 'b1', 'a2', 'a3']);
  });

  it('hands a later batch over before an earlier one has committed, and in the order they were formed', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const first = group.reserve('a').commit(() => ({ key: 'a', n: 1 }));
    const second = group.reserve('a').commit(() => ({ key: 'a', n: 2 }));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => batch.handedOver)).toEqual([true, true]);
    let firstDone = false;
    void first.then(() => (firstDone = true));
    harper.batches[1].commit();
    await second;
    expect(firstDone).toBe(false);
    harper.batches[0].commit();
    await first;
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
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1'], ['a2']]);
    for (const batch of harper.batches) batch.commit();
    await Promise.all([earlyDone, lateDone]);
    expect(keysOf(committed)).toEqual(['a1', 'a2']);
  });

  it('a write that reads the current state waits until every earlier write of its record has committed', async () => {
    const harper = fakeHarper();
    const group = new GroupCommit<Row>([harper.store], undefined, harper.inTransaction);
    const first = group.reserve('a').commit(() => ({ key: 'a', n: 1 }));
    const patch = group.reserve('a').commit(() => ({ key: 'a', n: 2 }), { readsCurrent: true });
    const other = group.reserve('b').commit(() => ({ key: 'b', n: 1 }));
    await turn();
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1']]);
    harper.batches[0].commit();
    await Promise.all([first, other]);
    await turn();
    expect(harper.batches.map((batch) => keysOf(batch.rows))).toEqual([['a1', 'b1'], ['a2']]);
    harper.batches[1].commit();
    expect(await patch).toEqual({ key: 'a', n: 2 });
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
    const first = group.reserve('a').commit(() => ({ key: 'a', n: 1 }));
    const second = group.reserve('a').commit(() => ({ key: 'a', n: 2 }));
    await turn();
    await turn();
    // Every phase of both batches is handed over before anything has committed, each batch's
    // history before its state, the first batch's state before the second's.
    expect(harper.batches.map((batch) => batch.handedOver)).toEqual([true, true, true, true]);
    const writes = log.filter((entry) => !entry.startsWith('handed'));
    expect([...writes].sort()).toEqual(['history a1', 'history a2', 'state a1', 'state a2']);
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
    void first.then(() => (firstDone = true));
    const historyOfFirst = harper.batches.find((batch) => batch.rows[0].n === 1)!;
    historyOfFirst.commit();
    await turn();
    expect(firstDone).toBe(false);
    for (const batch of harper.batches) batch.commit();
    expect(await Promise.all([first, second])).toEqual([
      { key: 'a', n: 1 },
      { key: 'a', n: 2 },
    ]);
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
