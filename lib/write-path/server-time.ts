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

/**
 * A server time as fixed-width text (milliseconds with three decimals, 17 characters until the
 * year 2286), which sorts as the time does: `1000.5` and `1000` as plain numbers would sort the
 * later one first (`.` before `@`). Reading ids start with it (lib/resources/readings.ts).
 */
export function timeKey(time: number): string {
  return time.toFixed(3).padStart(17, '0');
}
