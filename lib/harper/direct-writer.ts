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
 * A publish goes to the instance's own `publish`, inside the caller's transaction (or one of its
 * own). Harper's static `publish` first calls the instance's `update()` with no changes: a write
 * that reads the record's stored entry, then drops itself at commit for having nothing to write.
 * For a publish that is only the cost of a record read: about 7 % of the worker's time per message
 * in a profiled `tput-fanout-only` run (bench/README.md).
 *
 * Only for writes: the newer style also drops record-level replay and read checks on
 * subscriptions (lib/resources/sensors.ts), so the exported resources keep the default style.
 */
import { isThenable, transaction, type HarperContext } from './types.js';

export interface DirectWriter<Row> {
  /** Writes `record` whole under `id`, in `context`'s transaction. */
  put(id: string, record: Row, context: HarperContext): unknown;
  /** Fans `message` out to the subscribers of `id` without storing it, in `context`'s transaction. */
  publish(id: string, message: Row, context: HarperContext): unknown;
}

interface TableClass {
  new (...args: never[]): object;
}

/** An instance of the newer style, bound to one id and a context. */
interface Instance {
  publish(message: unknown): unknown;
}

interface WriterClass {
  put(id: string, record: unknown, context: HarperContext): unknown;
  getResource(id: string, context: HarperContext, options: object): Instance | Promise<Instance>;
}

/** What Harper's static `publish` hands `getResource` (a write that creates: no load). */
const PUBLISH_ACTION = { hasContent: true, type: 'create', method: 'publish' };

export function directWriter<Row>(table: unknown): DirectWriter<Row> {
  const Base = table as TableClass;
  class Writer extends Base {
    static loadAsInstance = false;
    static explicitContext = true;
  }
  const writer = Writer as unknown as WriterClass;
  const send = (id: string, message: Row, context: HarperContext): unknown => {
    const resource = writer.getResource(id, context, PUBLISH_ACTION);
    return isThenable(resource)
      ? (resource as Promise<Instance>).then((instance) => instance.publish(message))
      : (resource as Instance).publish(message);
  };
  return {
    put: (id, record, context) => writer.put(id, record, context),
    publish: (id, message, context) =>
      context.transaction ? send(id, message, context) : transaction(context, async () => send(id, message, context)),
  };
}
