/**
 * A workaround for a slow path in how Harper 4.7's storage encodes keys: the index stores of our
 * tables get their own copy of ordered-binary's `writeKey`.
 *
 * Every key LMDB reads or writes (record ids, index keys, and the record ids stored as index
 * values) is encoded by one function, ordered-binary's `writeKey`, copying a string key byte by
 * byte into a buffer. V8 optimises that byte store for the kinds of buffer it has seen there, up
 * to four; past four the store is "megamorphic" and every byte of every key goes through V8's
 * generic runtime path, several times slower per key. A plain table uses four kinds of buffer
 * there (the read key buffer, the write-instruction buffer, lmdb's key-save buffer and the range
 * iterator's). An `@indexed` attribute adds a fifth: lmdb encodes a record id as an index value
 * into its key-save buffer after marking that buffer with the value's bounds, which changes its
 * shape. One indexed write is enough; from then on the thread's key encoding stays slow. Under
 * max-rate load it was a tenth of the worker's CPU, against almost nothing for a plain table
 * (bench/README.md, "Where the component's time goes").
 *
 * A second instance of the ordered-binary module has its own optimisation state, so index stores
 * encoding their values with it leave the original's store at the four kinds a plain table has,
 * and the copy sees two. The encoding is the same code, byte for byte.
 */
import { createRequire } from 'node:module';

type WriteKey = (key: unknown, target: Uint8Array, position: number, inSequence?: boolean) => number;
interface IndexStore {
  encoder?: { writeKey?: WriteKey };
}
export interface IndexedTable {
  indices?: Record<string, IndexStore | undefined>;
}

/**
 * lmdb's instance of the ordered-binary module, and a fresh one. Resolved the way Harper resolves
 * them (harperdb -> lmdb -> ordered-binary), which also holds in a deployed component, where
 * only harperdb is linked in.
 */
export function orderedBinaryInstances(): { shared: WriteKey; separate: WriteKey } {
  const requireHere = createRequire(import.meta.url);
  const requireLmdb = createRequire(createRequire(requireHere.resolve('harperdb')).resolve('lmdb'));
  const path = requireLmdb.resolve('ordered-binary');
  const shared = (requireHere(path) as { writeKey: WriteKey }).writeKey;
  const cached = requireHere.cache[path];
  delete requireHere.cache[path];
  try {
    return { shared, separate: (requireHere(path) as { writeKey: WriteKey }).writeKey };
  } finally {
    if (cached) requireHere.cache[path] = cached;
  }
}

/**
 * Gives every index store of `indexedTables` that encodes with lmdb's `writeKey` the copy's;
 * returns how many it changed. A failure only costs speed: keys are encoded the same either way.
 */
export function separateIndexKeyWriter(
  indexedTables: Iterable<IndexedTable>,
  instances = orderedBinaryInstances,
): number {
  let shared: WriteKey, separate: WriteKey;
  try {
    ({ shared, separate } = instances());
  } catch (error) {
    console.warn('index-key-writer: index stores keep the shared key encoder:', (error as Error).message);
    return 0;
  }
  let changed = 0;
  for (const table of indexedTables) {
    for (const index of Object.values(table.indices ?? {})) {
      if (index?.encoder?.writeKey !== shared) continue;
      index.encoder.writeKey = separate;
      changed++;
    }
  }
  return changed;
}
