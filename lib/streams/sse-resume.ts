/**
 * Server-Sent Events that a browser's own EventSource can resume: every event that is a point in
 * the log carries an `id:` line, the first event of a stream a `retry:` line, and a reconnecting
 * client's `Last-Event-ID` header replays exactly what it missed (lib/streams/replay.ts, as `?startTime=`).
 *
 * The id is the event's `localTime`, the commit time Harper's audit log is keyed by, which a
 * replay from it excludes: a client that reconnects with the id of the last event it saw gets
 * every later event once, in order, then live events. The `data:` line is unchanged (the same
 * JSON object as before, with `localTime` in it), so clients that read only `data` see no change.
 *
 * A table stream that starts without a replay first sends the current state of every record, in
 * the order of their ids, not of time: those events are not points in the log (resuming after the
 * third would skip records not yet sent), so they carry no id. The first change after them does;
 * a stream dropped before any change reconnects without a resume point and starts over with the
 * current state. A record stream's first event, the record's current state, is the record's
 * latest write and carries its time.
 *
 * Harper writes `text/event-stream` with its own serializer (4.7: `id:` only for events that come
 * with a `timestamp`, which subscription events do not). This module puts its own handler in
 * Harper's registry of content types, in front of Harper's: each event is still serialised by
 * Harper's handler, once per commit rather than per subscriber, and the lines are added to its
 * block (lib/streams/sse-frames.ts). It also counts SSE deliveries for /metrics
 * (lib/metrics/counters.ts). No promise or timer of its own per event: the stream is mapped event
 * by event, as Harper's serializer maps it.
 */
import { Readable } from 'node:stream';
import { server } from 'harperdb';
import { countDelivery } from '../metrics/counters.js';
import { streamFramer, type Serialize } from './sse-frames.js';

/** How long (ms) a browser should wait before it reconnects a dropped stream (`retry:`). */
export const RETRY_MS = Number(process.env.SSE_RETRY_MS ?? 1_000);

/** Events of this stream older than this time (ms), or sized, are a table's initial state: no id. */
const SNAPSHOT_BEFORE = Symbol('events before this time are initial state');

interface ContentHandler {
  serialize?(data: unknown, response?: unknown): unknown;
  serializeStream?(data: unknown, response?: unknown): unknown;
  [key: string]: unknown;
}

interface HeaderBag {
  get?(name: string): string | string[] | undefined | null;
}

/** The SSE request a subscription belongs to, if it is one: Harper's request context. */
export function isEventStream(context: unknown): boolean {
  const headers = (context as { headers?: HeaderBag } | null | undefined)?.headers;
  return typeof headers?.get === 'function' && String(headers.get('accept') ?? '') === 'text/event-stream';
}

/** The Last-Event-ID an SSE request carries (a reconnecting EventSource sends it), or undefined. */
export function lastEventIdOf(context: unknown): string | undefined {
  if (!isEventStream(context)) return undefined;
  const value = (context as { headers: Required<HeaderBag> }).headers.get('last-event-id');
  const id = Array.isArray(value) ? value[0] : value;
  return id === null || id === undefined || id === '' ? undefined : String(id);
}

/** Marks a table stream whose events before `time` are its initial state (see above). */
export function markInitialState<T extends object>(stream: T, time: number): T {
  (stream as Record<symbol, unknown>)[SNAPSHOT_BEFORE] = time;
  return stream;
}

interface AnyIterator {
  next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>>;
  return?(value?: unknown): unknown;
  throw?(error?: unknown): unknown;
}

function framed(stream: unknown, serialize: Serialize): AsyncIterable<unknown> {
  const source = stream as {
    [Symbol.asyncIterator]?: () => AnyIterator;
    [Symbol.iterator]?: () => AnyIterator;
    [SNAPSHOT_BEFORE]?: number;
  };
  const frame = streamFramer(serialize, source[SNAPSHOT_BEFORE] ?? -Infinity, RETRY_MS);
  const step = (result: IteratorResult<unknown>): IteratorResult<unknown> => {
    if (result.done) return result;
    countDelivery('sse');
    return { done: false, value: frame(result.value) };
  };
  return {
    [Symbol.asyncIterator]() {
      const inner = (source[Symbol.asyncIterator] ?? source[Symbol.iterator])!.call(source);
      return {
        next() {
          const result = inner.next();
          return (
            typeof (result as { then?: unknown }).then === 'function'
              ? (result as Promise<IteratorResult<unknown>>).then(step)
              : step(result as IteratorResult<unknown>)
          ) as Promise<IteratorResult<unknown>>;
        },
        return(value?: unknown) {
          return Promise.resolve(inner.return?.(value)).then(() => ({ done: true, value: undefined }));
        },
        throw(error?: unknown) {
          return Promise.resolve(inner.throw?.(error)).then(() => ({ done: true, value: undefined }));
        },
      };
    },
  };
}

const registry = (server as unknown as { contentTypes: Map<string, ContentHandler> }).contentTypes;
const harperSse = registry.get('text/event-stream');
if (harperSse?.serialize && harperSse.serializeStream) {
  const serialize = harperSse.serialize.bind(harperSse) as Serialize;
  registry.set('text/event-stream', {
    ...harperSse,
    serializeStream: (stream: unknown) => Readable.from(framed(stream, serialize)),
  });
} else {
  console.warn(
    'this Harper has no text/event-stream serializer to extend: SSE events carry no id, and Last-Event-ID resumes nothing',
  );
}
