/**
 * A writer for records our own code has already checked, inside a transaction it already holds.
 *
 * Harper's default table class loads a record before every write to it (to choose between its
 * create and update rights, and to hand the instance its current state), and runs each call in
 * its request-context store. For the writes our write path makes itself (the group commit's
 * readings and states, the rollup flush's parts, a checked non-retained publish) neither is
 * needed: the rights are decided, the record is replaced whole, and the transaction's context is
 * passed explicitly. A subclass in Harper's newer style (`loadAsInstance = false`) with an explicit
 * context skips both: `put(id, record, context)` goes straight to the table's write of the full
 * record, which reads the stored entry itself where the write needs it (indexes, versions).
 *
 * Only for writes: the newer style also drops record-level replay and read checks on
 * subscriptions (lib/resources/sensors.ts), so the exported resources keep the default style.
 */
import type { HarperContext } from './types.js';

export interface DirectWriter<Row> {
  /** Writes `record` whole under `id`, in `context`'s transaction. */
  put(id: string, record: Row, context: HarperContext): unknown;
  /** Fans `message` out to the subscribers of `id` without storing it, in `context`'s transaction. */
  publish(id: string, message: Row, context: HarperContext): unknown;
}

interface TableClass {
  new (...args: never[]): object;
}

export function directWriter<Row>(table: unknown): DirectWriter<Row> {
  const Base = table as TableClass;
  class Writer extends Base {
    static loadAsInstance = false;
    static explicitContext = true;
  }
  return Writer as unknown as DirectWriter<Row>;
}
