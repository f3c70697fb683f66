/**
 * Gap-free resume of a Harper subscription over SSE or WebSocket, without a duplicate.
 *
 * Harper's frames carry no SSE `id:` line, so the browser's own Last-Event-ID resume does nothing.
 * Instead this remembers the `localTime` of the last frame seen, and the next connection asks for
 * `?startTime=<that>`: the server replays what was missed, then continues live. A frame at or
 * before that time is one already seen and is dropped (a record subscription with nothing to
 * replay starts with the current state, i.e. the last event again; observed with Harper 4.7).
 * No DOM: the unit tests import this file as it is.
 */
import type { Frame } from '../types.js';

/** Why the server ended a subscription with a last error event (lib/streams/slow-consumers.ts, lib/resources/server-notice.ts). */
export type EndReason = 'slow_consumer' | 'server_shutting_down';

/** What one message of a Harper stream is to its reader. */
export type Reading<T> =
  /** A new event. */
  | { kind: 'event'; frame: Frame<T> }
  /** An event already delivered before the connection resumed. */
  | { kind: 'repeat'; frame: Frame<T> }
  /** The server ended the subscription: resume from the last event seen. */
  | { kind: 'ended'; reason: EndReason }
  /** Not an event: a WebSocket reply to a write (ack/error), or not a frame at all. */
  | { kind: 'other' };

export class ResumePoint {
  /** localTime of the newest frame seen: where the next connection resumes. */
  lastLocalTime: number | undefined;
  /** Frames a resumed connection sent again (at or before its startTime) and were dropped. */
  repeatsDropped = 0;
  /** The startTime of the current connection, when it resumes. */
  private resumedFrom: number | undefined;

  /** The query of the next connection: resume after the last frame, or else `first` (e.g. an initial startTime). */
  query(first: Record<string, string> = {}): string {
    const query = new URLSearchParams();
    if (this.lastLocalTime !== undefined) query.set('startTime', String(this.lastLocalTime));
    else for (const [name, value] of Object.entries(first)) query.set(name, value);
    const search = query.toString();
    return search ? `?${search}` : '';
  }

  /** A connection with the query above is being opened. */
  opened(): void {
    this.resumedFrom = this.lastLocalTime;
  }

  /** Reads one message (JSON text) of the stream, and moves the resume point past a new event. */
  read<T>(data: string): Reading<T> {
    let frame: Frame<T>;
    try {
      frame = JSON.parse(data) as Frame<T>;
    } catch {
      return { kind: 'other' };
    }
    if (frame === null || typeof frame !== 'object') return { kind: 'other' };
    // The server ends a subscription with a last error event when the subscriber fell too far
    // behind or the server is stopping; Harper may leave an SSE response open after it.
    const ended = (frame as { value?: { error?: unknown } }).value?.error;
    if (frame.type === 'error' && (ended === 'slow_consumer' || ended === 'server_shutting_down'))
      return { kind: 'ended', reason: ended };
    if (frame.type === 'ack' || frame.type === 'error') return { kind: 'other' };
    if (this.resumedFrom !== undefined && typeof frame.localTime === 'number' && frame.localTime <= this.resumedFrom) {
      this.repeatsDropped++;
      return { kind: 'repeat', frame };
    }
    if (
      typeof frame.localTime === 'number' &&
      (this.lastLocalTime === undefined || frame.localTime > this.lastLocalTime)
    )
      this.lastLocalTime = frame.localTime;
    return { kind: 'event', frame };
  }
}
