/**
 * Server time for writes: milliseconds since the epoch, strictly increasing within this thread,
 * so that readings written within the same millisecond keep their order (history is sorted by it).
 */
let last = 0;

export function monotonicNow(): number {
  const now = Date.now();
  // A microsecond step keeps the value close to the wall clock and exact in a double.
  last = now > last ? now : Math.round((last + 0.001) * 1000) / 1000;
  return last;
}
