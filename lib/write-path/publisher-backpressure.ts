/**
 * A bound on how many writes one MQTT connection may have waiting for their commit.
 *
 * Harper reads MQTT packets as fast as they arrive and acknowledges a QoS 1 publish once its
 * handler finishes, so a publisher that does not wait for acknowledgements would queue work in
 * server memory without bound (measured: RSS past 1 GB within 12 s, and every other client's
 * latency in seconds). Once one connection has MAX_PENDING writes waiting, its socket stops being
 * read until half of them have committed: TCP then slows the publisher down, and nothing is
 * refused or lost. The bound is generous so that it slows only publishers that do not wait, and
 * so that one fast connection's writes can fill group-commit batches (lib/write-path/group-commit.ts).
 */
import type { HarperContext } from '../harper/types.js';

/** Writes one MQTT connection may have waiting before its socket is paused. */
const MAX_PENDING = Number(process.env.MQTT_MAX_PENDING_WRITES ?? 256);

interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

const pendingBySocket = new WeakMap<Pausable, number>();
const paused = new WeakSet<Pausable>();

function socketOf(caller: HarperContext | undefined): Pausable | undefined {
  const socket = caller?.socket as Partial<Pausable> | undefined;
  return socket && typeof socket.pause === 'function' && typeof socket.resume === 'function'
    ? (socket as Pausable)
    : undefined;
}

function release(socket: Pausable): void {
  const count = (pendingBySocket.get(socket) ?? 1) - 1;
  pendingBySocket.set(socket, count);
  if (count <= MAX_PENDING / 2 && paused.has(socket)) {
    paused.delete(socket);
    socket.resume();
  }
}

/**
 * Counts `write` against the connection `caller` came from (if it is an MQTT connection) until it
 * settles, pausing the connection's socket while too many are waiting.
 */
export function bounded<T>(caller: HarperContext | undefined, write: Promise<T>): Promise<T> {
  const socket = socketOf(caller);
  if (!socket) return write;
  const count = (pendingBySocket.get(socket) ?? 0) + 1;
  pendingBySocket.set(socket, count);
  if (count >= MAX_PENDING && !paused.has(socket)) {
    paused.add(socket);
    socket.pause();
  }
  const settled = () => release(socket);
  write.then(settled, settled);
  return write;
}
