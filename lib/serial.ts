/**
 * One write at a time per sensor, each in a transaction of its own.
 *
 * Harper runs concurrent writes to one record in overlapping transactions, and under a burst
 * (a device publishing faster than each write commits) they do not commit in arrival order: the
 * record ended at an earlier reading than the last one sent, and each write's alert evaluation
 * read a state that the write before it had not yet committed. So the writes of one sensor queue
 * here, and each starts only after the previous one has COMMITTED.
 *
 * That needs a transaction per write, which Harper does not give an MQTT publish: every publish of
 * one connection runs with the connection's one context object, and `transaction(context, fn)`
 * joins whatever transaction that object holds open. A publish arriving while an earlier one is
 * still being handled therefore joins the earlier one's transaction, which commits when the
 * earlier handler finishes; writes the later publish makes after that are lost (a burst of 1,000
 * QoS 1 publishes kept 187 readings, all acknowledged). Each queued write therefore runs on a
 * context of its own, derived from the caller's, and the queue waits for its commit.
 *
 * The same shared context carries Harper's "check permissions for this call" flag (`authorize`),
 * set by each publish and cleared by the first permission check that reads it: a queued write could
 * see it cleared by another publish's check and skip its own. The flag is captured when the call
 * arrives and given to the write's own context.
 */
import { transaction, type HarperContext } from './harper-types.js';

const queues = new Map<string, Promise<unknown>>();

function serially<T>(key: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(key);
  const result = previous ? previous.then(task, task) : task();
  const settled = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return result;
}

/**
 * A context for one write: it reads everything else (user, request, session) from the caller's,
 * but holds its own transaction, resource cache and permission flag.
 */
function contextOfItsOwn(caller: HarperContext | undefined, authorize: unknown): HarperContext {
  const own = Object.create(caller ?? null) as HarperContext;
  own.transaction = undefined;
  own.resourceCache = undefined;
  own.authorize = authorize;
  return own;
}

/**
 * Runs `write` for the record `key` once every earlier write of that record has committed, in a
 * transaction of its own, and resolves once this one has committed (or rejects, having written
 * nothing).
 */
export function writeInTurn<T>(key: string, caller: HarperContext | undefined, write: (context: HarperContext) => Promise<T>): Promise<T> {
  const authorize = caller?.authorize; // read now: another call on this context may clear it
  return serially(key, () => {
    const context = contextOfItsOwn(caller, authorize);
    return transaction(context, () => write(context));
  });
}

/**
 * The record a REST/MQTT write targets, as a queue key: its id. Harper hands over a target whose id
 * is not parsed yet (MQTT: the topic below the resource as a path, "/101"); both forms give "101".
 */
export function writeKey(target: unknown): string {
  if (target === null || target === undefined) return '';
  if (typeof target !== 'object') return String(target);
  const { id, pathname, url } = target as { id?: unknown; pathname?: unknown; url?: unknown };
  if (id !== undefined && id !== null) return String(id);
  const path = String(pathname ?? url ?? '');
  const query = path.indexOf('?');
  return (query < 0 ? path : path.slice(0, query)).replace(/^\//, '');
}
