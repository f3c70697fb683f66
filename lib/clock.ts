/**
 * Server time for writes: milliseconds since the epoch, strictly increasing within this thread,
 * so that readings written within the same millisecond keep their order (history is sorted by it).
 */
import { threadId } from 'node:worker_threads';
import { server } from 'harperdb';

let last = 0;

export function monotonicNow(): number {
  const now = Date.now();
  // A microsecond step keeps the value close to the wall clock and exact in a double.
  last = now > last ? now : Math.round((last + 0.001) * 1000) / 1000;
  return last;
}

/**
 * Distinguishes ids written at the same instant by different worker threads and, in a cluster, by
 * different nodes (Harper's node name: its replication hostname). Without the node, two nodes
 * writing one sensor in the same millisecond made the same reading id, and replication kept only
 * one of the two readings.
 */
export function writer(): string {
  const node = (server as unknown as { hostname?: string }).hostname;
  return node ? `${node}:${threadId}` : String(threadId);
}
