/**
 * Replay and resume for subscriptions: `?startTime=<ms>` (every event after that time, in order)
 * or `?previousCount=<n>` (the last n events of a record, at most 1000), on SSE and WebSocket URLs
 * and on MQTT topics (`sensors/101?startTime=...`).
 *
 * Harper's subscriptions support both, fed by the audit log, but it does not take them from the
 * URL or the topic itself, so `subscribe` overrides copy them across with this function. The
 * start time is exclusive: a client that reconnects with the last `localTime` it saw receives
 * every later event, in order, without a duplicate.
 *
 * Bounded work per request. Harper keeps the audit log for 3 days, and reads it
 * like this (4.7): a table's `startTime` replay scans every entry of the database (all tables)
 * from that time on; a record's `startTime` replay walks the record's versions back to that time
 * and holds them all before sending; a table's `previousCount` scans the database's whole log
 * backwards until it has found n entries of the table, which on a table written rarely means the
 * whole log, synchronously. So:
 * - `startTime` must lie within the last REPLAY_WINDOW_MS on a record (default 1 hour, env
 *   REPLAY_MAX_WINDOW_MS) and within TABLE_REPLAY_WINDOW_MS on a table (default 10 minutes, env
 *   REPLAY_MAX_TABLE_WINDOW_MS): a record's replay costs one step per version of that record, a
 *   table's one step per write to ANY table in the window, read without a pause while nothing
 *   matches, so an hour of a busy server's log would hold a thread for seconds.
 *   `?startTime=0` is refused with the earliest time allowed, instead of reading three days of
 *   log. A client away for longer reads the state afresh (subscribe without startTime; history
 *   from /readings/ and /alerts/);
 * - `previousCount` (at most 1000) is for one record, whose versions are followed one by one; on
 *   a table it is refused: `startTime` or a REST query (`/alerts/?sort(-time)&limit(20)`) does
 *   the same with bounded work.
 */
import { Refusal } from '../rules/errors.js';

export interface ReplayOptions {
  startTime?: number;
  previousCount?: number;
  /** With startTime: no current-state event (a record-level resume would repeat the last one seen). */
  omitCurrent?: boolean;
}

/** The subscription request as each protocol hands it over. */
interface SubscriptionRequestLike {
  /** SSE and WebSocket: the URL's query as a RequestTarget (URLSearchParams). */
  get?: (name: string) => string | null;
  /** MQTT: the topic's query string, e.g. "?startTime=1700000000000". */
  search?: string;
  startTime?: number;
  previousCount?: number;
}

const MAX_PREVIOUS = 1000;
/** How far back `startTime` may reach on a record, in ms. */
export const REPLAY_WINDOW_MS = Number(process.env.REPLAY_MAX_WINDOW_MS ?? 3_600_000);
/** How far back `startTime` may reach on a table (or a wildcard), in ms. */
export const TABLE_REPLAY_WINDOW_MS = Number(process.env.REPLAY_MAX_TABLE_WINDOW_MS ?? 600_000);

function parameters(request: SubscriptionRequestLike): { startTime: string | null; previousCount: string | null } {
  if (typeof request.get === 'function')
    return { startTime: request.get('startTime'), previousCount: request.get('previousCount') };
  const query = new URLSearchParams(typeof request.search === 'string' ? request.search.replace(/^\?/, '') : '');
  return { startTime: query.get('startTime'), previousCount: query.get('previousCount') };
}

/**
 * Reads and checks the replay parameters; refuses malformed and unbounded ones (400 / SUBACK
 * error). `collection`: the subscription is to a whole table (or a wildcard), not one record.
 */
export function replayOptions(
  request: unknown,
  collection = false,
  now = Date.now(),
  lastEventId?: string,
): ReplayOptions | undefined {
  if (request === null || typeof request !== 'object') return undefined;
  // A reconnecting EventSource asks again for the URL it was opened with, which may carry its
  // first ?startTime= or ?previousCount=: the Last-Event-ID it sends is where it really stands.
  const { startTime, previousCount } =
    lastEventId !== undefined
      ? { startTime: lastEventId, previousCount: null }
      : parameters(request as SubscriptionRequestLike);
  const field = lastEventId !== undefined ? 'Last-Event-ID' : 'startTime';
  if (startTime === null && previousCount === null) return undefined;
  if (startTime !== null && previousCount !== null) {
    throw new Refusal({
      error: 'invalid_query',
      field: 'startTime',
      message: 'use startTime or previousCount, not both',
    });
  }
  if (startTime !== null) {
    const value = Number(startTime);
    if (startTime.trim() === '' || !Number.isFinite(value) || value < 0) {
      throw new Refusal({
        error: 'invalid_query',
        field,
        rule: 'milliseconds since the epoch',
        message: `${field} must be milliseconds since the epoch`,
      });
    }
    const window = collection ? TABLE_REPLAY_WINDOW_MS : REPLAY_WINDOW_MS;
    const earliest = now - window;
    if (value < earliest) {
      throw new Refusal(
        {
          error: 'query_too_broad',
          field,
          rule: `at most ${window} ms ago (not before ${earliest})`,
          message: `${field} ${value} is more than ${window / 60_000} minutes ago, beyond what a ${collection ? 'table' : 'record'}'s replay may read; subscribe without startTime for the current state, and query /readings/ or /alerts/ for older history`,
        },
        400,
      );
    }
    // Harper's record-level replay sends the current state after the history unless told not to;
    // when nothing was missed that is the very event the client saw last, a duplicate.
    return { startTime: value, omitCurrent: true };
  }
  if (collection) {
    throw new Refusal({
      error: 'query_too_broad',
      field: 'previousCount',
      rule: 'one record: /<table>/<id>?previousCount=n',
      message: `previousCount replays the last events of one record; on a whole table it scans the entire audit log. Use ?startTime=<ms> (at most ${TABLE_REPLAY_WINDOW_MS / 60_000} minutes ago) or a REST query such as ?sort(-time)&limit(n)`,
    });
  }
  const count = Number(previousCount);
  if (!Number.isInteger(count) || count < 1 || count > MAX_PREVIOUS) {
    throw new Refusal({
      error: 'invalid_query',
      field: 'previousCount',
      rule: `an integer from 1 to ${MAX_PREVIOUS}`,
      message: `previousCount must be an integer from 1 to ${MAX_PREVIOUS}`,
    });
  }
  return { previousCount: count };
}

/**
 * Applies replay parameters from the URL or topic to the subscription request Harper will use;
 * `lastEventId`: an SSE client's Last-Event-ID header (lib/streams/sse-resume.ts), which takes the place
 * of the URL's parameters.
 */
export function withReplay<T>(request: T, collection = false, lastEventId?: string): T {
  const options = replayOptions(request, collection, Date.now(), lastEventId);
  if (options) Object.assign(request as object, options);
  return request;
}
