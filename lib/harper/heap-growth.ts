/**
 * Lets each worker's old generation grow to twice what survived its last full collection before
 * the next one (V8's `--heap-growing-percent`), where V8 otherwise picks a factor from how fast its
 * collector runs against the program, which under a steady write load it keeps small.
 *
 * Why. At a steady rate the p99 of a delivery is its two slowest a second, and those are the ones
 * a collection holds up: a full collection's incremental marking runs on the worker thread in
 * steps of several milliseconds. This component stores a reading with each state, so it makes
 * about three times the plain table's LMDB writes per message, whose bookkeeping in lmdb-js and
 * Harper outlives the young generation: it promotes about twice the plain table's bytes to the
 * old generation, and with V8's factor ran two to four times as many full collections
 * (bench/README.md, the section on where the latency tail comes from). Growing the old generation further
 * between them makes them rarer: at 200 msg/s the component's p99 fell to about 0.7x of its own
 * (bench/README.md, design 20).
 *
 * The price is memory: a worker's heap may hold up to twice its live objects before a full
 * collection frees them. HEAP_GROWING_PERCENT sets another share (100 is twice, 0 hands the
 * choice back to V8). Like every V8 flag it holds for the whole Harper process; V8 reads it each
 * time it sets the next limit, after a full collection, so setting it at load takes effect from
 * the first one.
 */
import { setFlagsFromString } from 'node:v8';

/** How far (percent) the old generation may grow past its live objects between full collections. */
export const DEFAULT_GROWING_PERCENT = 100;

/**
 * The flag for `HEAP_GROWING_PERCENT` (a whole number from 0 to 400); any other value gives the
 * default's, with a warning. It never throws: a component that fails to load leaves Harper serving
 * its tables without the resource code that checks every write.
 */
export function heapGrowingFlag(value: string | undefined, warn: (message: string) => void = console.warn): string {
  let percent = value === undefined || value.trim() === '' ? DEFAULT_GROWING_PERCENT : Number(value);
  if (!Number.isInteger(percent) || percent < 0 || percent > 400) {
    warn(`HEAP_GROWING_PERCENT must be a whole number from 0 to 400, not "${value}": using ${DEFAULT_GROWING_PERCENT}`);
    percent = DEFAULT_GROWING_PERCENT;
  }
  return `--heap-growing-percent=${percent}`;
}

/** Sets the flag `env` asks for; `set` is V8's flag setter (both replaced in the unit test). */
export function setHeapGrowth(
  set: (flags: string) => void = setFlagsFromString,
  env: NodeJS.ProcessEnv = process.env,
): void {
  set(heapGrowingFlag(env.HEAP_GROWING_PERCENT));
}
