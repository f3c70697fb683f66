/**
 * Group commit: the stored writes of one worker thread are committed together, in batches formed
 * once per turn of the event loop, and each write is acknowledged only once its batch committed.
 * A batch may commit in phases, each a transaction of its own committed after the one before,
 * handed to Harper together once all are written (lib/resources/sensors.ts: the readings and
 * alerts, then the states).
 *
 * Why batches. A commit has a fixed cost (a Harper transaction, its audit entries, a place in an
 * LMDB write cycle) that dwarfs the cost of the records in it; committing every message on its
 * own made the component several times slower than a plain table (profile in bench/README.md).
 * Writes that arrive while earlier ones are being prepared wait for the next turn, so a quiet
 * server commits each write at once and a busy one commits many per transaction.
 *
 * Order per record. Every write takes a slot in its record's queue the moment it arrives (before
 * Harper loads the record or checks rights, which may take different times for different
 * writes). A batch holds at most one write per record: two writes of one record in one
 * transaction would share one audit entry, and subscribers would see one event for two writes.
 * A record's next write goes into a later batch, and batches are prepared one after the other
 * and handed to Harper's commit in the order they were formed (per phase), so their commit
 * timestamps increase in that order. Harper keeps the write with the newest timestamp, so a
 * record's state always ends at its last write, and every write of it reaches subscribers in
 * arrival order. (Harper itself runs concurrent writes of one record in overlapping transactions
 * whose timestamps follow no order, and drops the one that commits last when its timestamp is
 * older: which is why this order is ours to keep.)
 *
 * A record's next write waits until its previous one has committed. Harper commits a small
 * transaction through conditional writes, each expecting the record's version as it was when the
 * write was made; a write handed over while the record's previous write is still in commit
 * expects the older version, so its check fails, Harper commits the whole transaction again, and
 * it raises the table's retry risk, which sends the table's next commits down its callback path
 * (run on LMDB's write thread, which stops there until this thread's event loop gets to the
 * callback). At max rate with two writes per sensor in flight, most batches went that way; with
 * the wait, none did, and throughput rose (bench/README.md, design 29).
 *
 * Except for a record written faster than its commits complete: while HOT_DEPTH of its writes
 * are waiting, the first of them is handed over behind the ones in commit without waiting.
 * Waiting would commit one write of that record per LMDB write; handed over one behind the
 * other, several commit per LMDB write, through Harper's callback path, which reads each record
 * inside LMDB's write transaction (lib/harper/lmdb-batch.ts sends such a batch there, so its check
 * never fails). A write that reads its record's current state (a PATCH) always waits, so it
 * merges into the state the earlier writes left.
 *
 * Batch bound. Harper 4.7 commits a transaction of 100 writes or more differently (one LMDB
 * callback transaction); a batch holds at most MAX_BATCH writes, so its records (a state and a
 * reading each, plus alerts) normally stay below that.
 */
import { transaction, type HarperContext, isThenable } from '../harper/types.js';

/** Writes committed together in one transaction, at most. */
const MAX_BATCH = Number(process.env.GROUP_COMMIT_MAX_BATCH ?? 40);
/** Writes of one record waiting at which the first goes without waiting for the one in commit. */
const HOT_DEPTH = 2;

/** What a batch's transaction writes for each of its writes (a promise, or not, when it is done). */
export type StoreFunction<Stored> = (record: Stored, context: HarperContext) => unknown;
/** Builds the record to store, in the batch's transaction; a throw refuses this write alone. */
export type Prepare<Stored> = (context: HarperContext) => Stored | Promise<Stored>;

interface Slot<Stored> {
  key: string;
  prepare?: Prepare<Stored>;
  readsCurrent: boolean;
  done?: { resolve(record: Stored): void; reject(error: unknown): void };
}

export interface Reservation<Stored> {
  /**
   * Writes this slot's record: resolves with it once committed, rejects if it was refused.
   * `readsCurrent`: `prepare` reads the record's stored state, so it runs only once every earlier
   * write of the record has committed.
   */
  commit(prepare: Prepare<Stored>, options?: { readsCurrent?: boolean }): Promise<Stored>;
  /** Gives the slot up without writing (the request failed before it reached `commit`). */
  cancel(): void;
  readonly key: string;
  readonly filled: boolean;
}

/**
 * A batch's place in one phase's order of hand-over: released once the batch has handed that
 * phase to Harper, which lets the next batch write the same phase. Callbacks rather than promises:
 * this runs once per phase per batch, which at a low rate is once per message, and every promise
 * here carries Harper's async-context bookkeeping.
 */
class Turn {
  private released = false;
  private waiter?: () => void;

  static released(): Turn {
    const turn = new Turn();
    turn.released = true;
    return turn;
  }

  release(): void {
    this.released = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) queueMicrotask(waiter);
  }

  /** Runs `next` in a microtask once released (one batch waits on each turn). */
  whenReleased(next: () => void): void {
    if (this.released) queueMicrotask(next);
    else this.waiter = next;
  }
}

/** Runs a batch's hand-over; `behindCommit`: a write in it follows one of its record still in commit. */
export type HandOverRunner = (handOver: () => void, contexts: HarperContext[], behindCommit: boolean) => void;

/** Harper's reaction to a transaction callback's result: commits the transaction, returns its outcome. */
type HandOver = (result: undefined) => unknown;

export class GroupCommit<Stored> {
  /** Per record, its writes not yet in a batch, in arrival order. */
  private readonly queues = new Map<string, Slot<Stored>[]>();
  /** Per record, how many of its writes are in batches that have not committed yet. */
  private readonly unsettled = new Map<string, number>();
  /** Records whose first queued write can join the next batch. */
  private readonly ready = new Set<string>();
  private scheduled = false;
  /** Per phase: the last batch formed's turn, released once it has handed that phase over. */
  private readonly handedOver: Turn[];
  /** The deepest record queue since `takeDeepestQueue` was last called (for lib/metrics/counters.ts). */
  private deepest = 0;
  /** Told of each batch once it has settled: seconds from its forming, writes it stored. Once per batch, never per write. */
  onBatch?: (seconds: number, stored: number) => void;

  /**
   * `phases` write one write's records, each phase in a transaction of its own per batch, phase
   * after phase (the first also prepares the records); `afterCommit` sees each committed record,
   * in commit order; `inTransaction` is Harper's `transaction`; `inOneWrite` runs the hand-over
   * of a batch's transactions (their contexts given, and whether the batch holds a write behind
   * one of its record still in commit) so that LMDB starts writing them once
   * (lib/harper/lmdb-batch.ts). Both are replaceable for unit tests.
   */
  constructor(
    private readonly phases: StoreFunction<Stored>[],
    private readonly afterCommit: (record: Stored) => void = () => undefined,
    private readonly inTransaction: typeof transaction = transaction,
    private readonly inOneWrite: HandOverRunner = (handOver) => handOver(),
  ) {
    this.handedOver = phases.map(() => Turn.released());
  }

  /** Takes the next place in `key`'s order, now. */
  reserve(key: string): Reservation<Stored> {
    const slot: Slot<Stored> = { key, readsCurrent: false };
    const queue = this.queues.get(key);
    if (queue) {
      if (queue.push(slot) > this.deepest) this.deepest = queue.length;
    } else this.queues.set(key, [slot]);
    return {
      commit: (prepare, options) =>
        new Promise<Stored>((resolve, reject) => {
          slot.prepare = prepare;
          slot.readsCurrent = options?.readsCurrent === true;
          slot.done = { resolve, reject };
          this.check(key);
        }),
      cancel: () => {
        if (slot.prepare) return;
        const list = this.queues.get(key);
        const index = list?.indexOf(slot) ?? -1;
        if (index < 0) return;
        list!.splice(index, 1);
        if (list!.length === 0) this.queues.delete(key);
        else if (index === 0) this.check(key);
      },
      key,
      get filled() {
        return slot.prepare !== undefined;
      },
    };
  }

  /** The deepest record queue (writes waiting for a batch) since the last call, then starts over. */
  takeDeepestQueue(): number {
    const deepest = Math.max(this.deepest, this.queues.size > 0 ? 1 : 0);
    this.deepest = 0;
    return deepest;
  }

  /** Marks `key` ready when its first queued write can join a batch. */
  private check(key: string): void {
    const queue = this.queues.get(key);
    const first = queue?.[0];
    if (!first?.prepare) return;
    if (this.unsettled.has(key) && (first.readsCurrent || queue!.length < HOT_DEPTH)) return;
    this.ready.add(key);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Forms this turn's batches: each takes at most one write per record, in arrival order. */
  private flush(): void {
    this.scheduled = false;
    while (this.ready.size > 0) {
      const round = [...this.ready];
      this.ready.clear();
      for (let start = 0; start < round.length; start += MAX_BATCH) {
        const batch: Slot<Stored>[] = [];
        for (const key of round.slice(start, start + MAX_BATCH)) {
          const queue = this.queues.get(key)!;
          batch.push(queue.shift()!);
          this.unsettled.set(key, (this.unsettled.get(key) ?? 0) + 1);
          if (queue.length === 0) this.queues.delete(key);
        }
        // This batch's place in each phase's order of hand-over.
        const turns = this.handedOver.map((previous, phase) => {
          const own = new Turn();
          this.handedOver[phase] = own;
          return { previous, own };
        });
        this.commitBatch(batch, turns);
      }
      // The next write of each record may go into a later batch of this same turn (`check`).
      for (const key of round) this.check(key);
    }
  }

  /**
   * Runs the batch's phases, each in a transaction of its own, one after the other (the first
   * prepares the records, the later ones store what it kept). Harper commits a transaction in its
   * reaction to the callback's result, and LMDB's write thread starts on the first write it is
   * given: so the callback returns a thenable whose reaction is kept, no phase is handed over
   * until every phase of the batch has been written, and then all are handed over in phase order
   * at once, inside `inOneWrite`, so that LMDB commits the batch in one write of its own (handing
   * each phase over as soon as it was written gave LMDB's thread time to commit the first on its
   * own). Each phase is also written only after the same phase of the batch before was handed
   * over. The writes are settled once every phase has committed; a refused write stops at the
   * phase that refused it; a failed commit fails every write of the batch.
   */
  private commitBatch(batch: Slot<Stored>[], turns: { previous: Turn; own: Turn }[]): void {
    const formed = this.onBatch ? performance.now() : 0;
    const records: (Stored | undefined)[] = [];
    const refused: unknown[] = [];
    const handOvers: (HandOver | undefined)[] = [];
    let outstanding = this.phases.length; // phases whose commit has not settled (or that were skipped)
    let failure: unknown;

    const phaseSettled = (error?: unknown, failed = false): void => {
      if (failed && failure === undefined) failure = error ?? new Error('commit failed');
      if (--outstanding > 0) return;
      this.settle(batch, records, refused, failure);
      if (this.onBatch) {
        let stored = 0;
        if (failure === undefined) for (const record of records) if (record !== undefined) stored++;
        this.onBatch((performance.now() - formed) / 1000, stored);
      }
    };
    const committed = (): void => phaseSettled();
    const commitFailed = (error: unknown): void => phaseSettled(error, true);

    // Every phase written (or skipped): hand them to Harper in order, releasing each phase's turn.
    const contexts: HarperContext[] = [];
    // Behind a commit: an earlier batch holds a write of one of its records and has not settled.
    // Asked now, while `unsettled` counts only this batch and earlier ones (later ones add theirs).
    const behindCommit = batch.some((slot) => this.unsettled.get(slot.key)! > 1);
    const handOverAll = (): void => this.inOneWrite(handOverEach, contexts, behindCommit);
    const handOverEach = (): void => {
      for (const [phase, handOver] of handOvers.entries()) {
        try {
          if (!handOver) continue;
          const outcome = handOver(undefined);
          if (isThenable(outcome)) outcome.then(committed, commitFailed);
          else committed();
        } catch (error) {
          commitFailed(error);
        } finally {
          turns[phase].own.release();
        }
      }
    };

    const startPhase = (phase: number): void => {
      if (phase === this.phases.length) return handOverAll();
      turns[phase].previous.whenReleased(() => {
        if (phase > 0 && !records.some((record) => record !== undefined)) {
          // Nothing left to store: the phase is skipped, its turn released in order.
          handOvers[phase] = undefined;
          phaseSettled();
          return startPhase(phase + 1);
        }
        const context: HarperContext = {};
        contexts.push(context);
        try {
          // Harper reacts to the callback's result at once; the reaction (its commit) is kept.
          void this.inTransaction(
            context,
            () =>
              ({
                then: (handOver: HandOver) => void (handOvers[phase] = handOver),
              }) as unknown as Promise<void>,
          );
        } catch (error) {
          handOvers[phase] = undefined;
          phaseSettled(error, true);
          return startPhase(phase + 1);
        }
        if (!handOvers[phase]) {
          phaseSettled(new Error('the transaction did not take its callback'), true);
          return startPhase(phase + 1);
        }
        this.writeAll(phase, batch, context, records, refused, () => startPhase(phase + 1));
      });
    };
    startPhase(0);
  }

  /**
   * Writes the phase's records in the open transaction of `context`, in batch order, then calls
   * `written`. The first phase prepares each record (a refusal drops that write); a later phase
   * stores what the first kept (a refusal drops it from the later phases too). Waits only where a
   * prepare or store returns a promise: most are synchronous.
   */
  private writeAll(
    phase: number,
    batch: Slot<Stored>[],
    context: HarperContext,
    records: (Stored | undefined)[],
    refused: unknown[],
    written: () => void,
  ): void {
    const store = this.phases[phase];
    let next = 0;
    const refuse = (index: number, error: unknown): void => {
      records[index] = undefined;
      refused[index] = error;
    };
    // Stores one record; true when it went on asynchronously (and will resume the loop).
    const storeOne = (index: number, record: Stored): boolean => {
      let stored: unknown;
      try {
        stored = store(record, context);
      } catch (error) {
        refuse(index, error);
        return false;
      }
      if (!isThenable(stored)) {
        records[index] = record;
        return false;
      }
      stored.then(
        () => {
          records[index] = record;
          loop();
        },
        (error: unknown) => {
          refuse(index, error);
          loop();
        },
      );
      return true;
    };
    const loop = (): void => {
      while (next < batch.length) {
        const index = next++;
        if (phase > 0) {
          const record = records[index];
          if (record !== undefined && storeOne(index, record)) return;
          continue;
        }
        let prepared: Stored | Promise<Stored>;
        try {
          prepared = batch[index].prepare!(context);
        } catch (error) {
          refuse(index, error);
          continue;
        }
        if (!isThenable(prepared)) {
          if (storeOne(index, prepared)) return;
          continue;
        }
        (prepared as Promise<Stored>).then(
          (record) => {
            if (!storeOne(index, record)) loop();
          },
          (error: unknown) => {
            refuse(index, error);
            loop();
          },
        );
        return;
      }
      written();
    };
    loop();
  }

  private settle(batch: Slot<Stored>[], records: (Stored | undefined)[], refused: unknown[], failure: unknown): void {
    for (const [i, slot] of batch.entries()) {
      const record = records[i];
      if (failure !== undefined || record === undefined) slot.done!.reject(failure ?? refused[i]);
      else {
        this.afterCommit(record);
        slot.done!.resolve(record);
      }
      const left = this.unsettled.get(slot.key)! - 1;
      if (left > 0) this.unsettled.set(slot.key, left);
      else {
        this.unsettled.delete(slot.key);
        this.check(slot.key); // a write waiting to read the committed state may go now
      }
    }
  }
}
