/**
 * One start of LMDB's write thread for several Harper transactions committed back to back.
 *
 * Harper opens its databases with lmdb-js's event-turn batching off. Then lmdb-js starts its write
 * thread from a setImmediate after a transaction's first instruction, unless more than five writes
 * are outstanding: then it starts it at once, in the write that crosses that count. A group-commit
 * batch (a reading, its index and audit entries, a state and its audit entry) crosses it inside
 * Harper's commit of its first transaction, so the write thread starts while the second is still
 * being queued and waits for it by polling, on a machine whose cores the worker needs. Inside
 * lmdb-js's `batch`, the instructions queued by the callback do not start the thread; it is
 * started once, from the setImmediate, when the batch is complete (as a plain table's single
 * record is). Harper's transactions stay what they are: each has its own audit entries and
 * timestamp, which replication keeps apart.
 *
 * Only while Harper commits through conditional writes. When a transaction is large or its
 * database's version checks have been failing (Harper's `retryRisk`, raised by each failed check
 * and decayed by each commit), Harper commits through an lmdb-js callback transaction instead,
 * which its write thread runs. With every hand-over batched, writes stalled at max rate in the
 * benchmark, and those commits queued inside a batch are the likely cause (bench/README.md,
 * design 26). So the batch is used only when every transaction handed over is known to take the
 * conditional path; anything this code cannot read of the transaction counts as not known.
 *
 * A batch with a write behind one of its record still in commit (lib/write-path/group-commit.ts
 * lets a record written faster than its commits complete do that) goes to the callback path
 * instead. Through conditional writes its check of that record would fail (it expects the version
 * before the write in commit) and raise the table's `retryRisk` by half the threshold, sending the
 * table's next few dozen commits, every other sensor's included, down the callback path (what
 * that costs: group-commit.ts). The callback path reads each record inside LMDB's write
 * transaction, so nothing fails: the table's risk is raised for the moment Harper chooses the
 * path of this batch's transactions, and set back after.
 */
import type { HandOverRunner } from '../write-path/group-commit.js';
import type { HarperContext } from './types.js';

interface BatchingStore {
  batch(run: () => void): Promise<unknown>;
  retryRisk?: number;
}

/** What Harper's transaction exposes of its choice of commit path (4.7.29). */
interface OpenTransaction {
  writes?: unknown[];
  lmdbDb?: { retryRisk?: number };
}

/** Harper commits a transaction through a callback transaction from this many writes plus risk on. */
const CALLBACK_COMMIT_AT = 100;

function commitsConditionally(context: HarperContext): boolean {
  const open = context.transaction as OpenTransaction | undefined;
  if (!open || !Array.isArray(open.writes) || !open.lmdbDb) return false;
  // Harper leaves the risk unset until a version check first fails.
  const risk = open.lmdbDb.retryRisk ?? 0;
  return typeof risk === 'number' && open.writes.length + risk < CALLBACK_COMMIT_AT - 1;
}

/** Runs `handOver` with `store`'s retry risk at the callback path's threshold, then sets it back. */
function onCallbackPath(store: BatchingStore, handOver: () => void): void {
  const risk = store.retryRisk;
  store.retryRisk = Math.max(risk ?? 0, CALLBACK_COMMIT_AT);
  try {
    handOver();
  } finally {
    store.retryRisk = risk;
  }
}

/**
 * A function that runs `handOver` (which commits the transactions of `contexts`, in order) inside
 * one lmdb-js batch of `table`'s database when all of them commit conditionally, on Harper's
 * callback path for `table` when the batch holds a write behind one in commit, else as is.
 */
export function inOneWrite(table: unknown): HandOverRunner {
  const store = (table as { primaryStore: BatchingStore }).primaryStore;
  return (handOver, contexts, behindCommit) => {
    if (behindCommit) return onCallbackPath(store, handOver);
    if (!contexts.every(commitsConditionally)) return handOver();
    // Each transaction committed inside reports its own outcome; the batch's promise only
    // repeats it, so its rejection is no one's to handle.
    store.batch(handOver).catch(() => undefined);
  };
}
