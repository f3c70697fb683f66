/**
 * Keeps Harper 4.7's key encoding on V8's fast path.
 *
 * Every key LMDB reads or writes (record ids, index and audit keys, and the record ids stored as
 * index values) is encoded by one function, ordered-binary's `writeKey`, which copies a string key
 * byte by byte into a buffer. V8 optimises that byte store for the kinds (hidden classes) of
 * buffer it has seen there, by default up to four; past four the store is "megamorphic" and every
 * byte of every key goes through V8's generic runtime path, several times slower per key. A plain
 * table's thread stays at four kinds (lmdb's read-key, write-instruction, key-save and range
 * buffers). This component's threads see more: an `@indexed` attribute makes lmdb encode a
 * record id as an index value into its key-save buffer after marking that buffer with the value's
 * bounds, which changes its shape, and its streams read keys through further buffers. Once
 * megamorphic, the thread's key encoding stays slow: under max-rate load `writeKey` took a tenth
 * of the worker's CPU, against almost nothing for a plain table (bench/README.md, "Where the
 * component's time goes").
 *
 * V8's limit is a flag that V8 reads each time an inline cache meets a new kind. Raised to eight
 * before the component's first write, the store stays polymorphic. The flag holds for the whole
 * Harper process (every thread and component); what it changes is only that a cache with five to
 * eight kinds is searched in order rather than handed to the generic path. Node warns that flags
 * set at run time may behave unpredictably; this one is read only where described, and the
 * benchmark shows its effect.
 */
import { setFlagsFromString } from 'node:v8';

/** Buffer kinds a keyed store may see and stay polymorphic (V8's default is four). */
export const POLYMORPHIC_KINDS = 8;

/** Raises V8's polymorphism limit; `set` is V8's flag setter (replaced in the unit test). */
export function keepKeyEncodingPolymorphic(set: (flags: string) => void = setFlagsFromString): void {
  set(`--max-valid-polymorphic-map-count=${POLYMORPHIC_KINDS}`);
}
