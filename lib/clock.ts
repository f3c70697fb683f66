/**
 * Server time for writes: milliseconds since the epoch, strictly increasing within this thread,
 * so that readings written within the same millisecond keep their order (history is sorted by it).
 */
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';

let last = 0;

export function monotonicNow(): number {
  const now = Date.now();
  // A microsecond step keeps the value close to the wall clock and exact in a double.
  last = now > last ? now : Math.round((last + 0.001) * 1000) / 1000;
  return last;
}

/**
 * Names this writer (this worker thread of this Harper process) in ids it creates, so records
 * written at the same instant by two threads, two restarts or two nodes of a cluster never share
 * an id: thread ids repeat across processes and nodes, the random part does not.
 */
export const WRITER = `${randomBytes(3).toString('hex')}${threadId}`;
