/**
 * One write at a time per sensor, each in a transaction of its own, and a bound on how many writes
 * one MQTT connection may have waiting.
 *
 * Order. Harper runs concurrent writes to one record in overlapping transactions, and under a
 * burst they do not commit in arrival order: the record ended at an earlier reading than the last
 * one sent, and alert evaluation read a state the write before had not committed yet. So the
 * writes of one sensor queue here, and each starts only after the previous one has COMMITTED.
 * Harper commits a request's transaction only after the resource method returns (the caller's
 * `transaction(context, fn)` commits when `fn` resolves), so waiting for the method is not enough:
 * the queue used to, commits still overlapped, and a burst of 1,000 acknowledged QoS 1 publishes
 * to one sensor kept 187 readings. Each queued write therefore runs on a context of its own
 * (`transaction(context)` would join the caller's open transaction) and the queue awaits its
 * commit. The context reads everything else (user, session, request, the per-call permission
 * flag) from the caller's.
 *
 * Backpressure. Harper reads MQTT packets as fast as they arrive and acknowledges a QoS 1 publish
 * once its handler finishes, so a publisher that does not wait for acknowledgements queues work
 * in server memory without bound (measured: RSS past 1 GB within 12 s, and every other client's
 * latency in seconds). Once one connection has MAX_PENDING writes queued, its socket stops being
 * read until half of them have committed: TCP then slows the publisher down, and nothing is
 * refused or lost.
 */
import { transaction, type HarperContext } from './harper-types.js';

/** Writes one MQTT connection may have queued before its socket is paused. */
const MAX_PENDING = Number(process.env.MQTT_MAX_PENDING_WRITES ?? 32);

interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

const pendingBySocket = new WeakMap<Pausable, number>();
const paused = new WeakSet<Pausable>();

function socketOf(caller: HarperContext | undefined): Pausable | undefined {
  const socket = caller?.socket as Partial<Pausable> | undefined;
  return socket && typeof socket.pause === 'function' && typeof socket.resume === 'function' ? (socket as Pausable) : undefined;
}

function hold(socket: Pausable | undefined): void {
  if (!socket) return;
  const count = (pendingBySocket.get(socket) ?? 0) + 1;
  pendingBySocket.set(socket, count);
  if (count >= MAX_PENDING && !paused.has(socket)) {
    paused.add(socket);
    socket.pause();
  }
}

function release(socket: Pausable | undefined): void {
  if (!socket) return;
  const count = (pendingBySocket.get(socket) ?? 1) - 1;
  pendingBySocket.set(socket, count);
  if (count <= MAX_PENDING / 2 && paused.has(socket)) {
    paused.delete(socket);
    socket.resume();
  }
}

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
 * but holds its own transaction, resource cache and permission flag (Harper clears the flag of
 * the context it checks; the caller's stays as it was).
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
  const authorize = caller?.authorize;
  const socket = socketOf(caller);
  hold(socket);
  const done = serially(key, () => {
    const context = contextOfItsOwn(caller, authorize);
    return transaction(context, () => write(context));
  });
  if (socket) {
    done.then(
      () => release(socket),
      () => release(socket),
    );
  }
  return done;
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
